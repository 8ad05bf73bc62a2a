"""AB Connect's ODATA-like filter language, sparse fieldsets and sort keys (api/abconnect.md §2).

Filter grammar (L630-674), precedence high to low: ``( )``, ``func()`` (``isempty``, ``query``),
``not``, comparators ``eq ne gt ge lt le in``, ``and``, ``or``. Operators are case-insensitive;
literals may be single-quoted (``\\'`` escapes), double-quoted, bare words or numbers, since
the documented examples mix all of them (§2.2).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

COMPARATORS = frozenset({"eq", "ne", "gt", "ge", "lt", "le", "in"})
_KEYWORDS = COMPARATORS | {"and", "or", "not"}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) | (?P<comma>,)
      | '(?P<sq>(?:\\.|[^'\\])*)'
      | "(?P<dq>(?:\\.|[^"\\])*)"
      | (?P<word>[^\s(),'"]+)
    )""",
    re.VERBOSE,
)

Resolver = Callable[[Any, str], list[Any]]


class FilterError(ValueError):
    """A filter statement that does not parse."""


@dataclass(frozen=True)
class Cmp:
    """``<path> <op> <value>`` (``in`` carries several values)."""

    path: str
    op: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class BoolOp:
    """``and`` / ``or`` over two or more operands."""

    op: str
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """``not <node>``."""

    item: Node


@dataclass(frozen=True)
class Func:
    """``isempty(path)`` or ``query([path,] 'text')``."""

    name: str
    args: tuple[Any, ...]


Node = Cmp | BoolOp | Not | Func


@dataclass
class _Tok:
    kind: str
    value: Any
    quoted: bool = False


@dataclass
class _Parser:
    tokens: list[_Tok]
    pos: int = 0
    refs: set[str] = field(default_factory=set)

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise FilterError("unexpected end of filter")
        self.pos += 1
        return tok

    def keyword(self, *names: str) -> bool:
        tok = self.peek()
        return bool(tok and tok.kind == "word" and not tok.quoted and str(tok.value).lower() in names)

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.keyword("or"):
            self.pos += 1
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_not()]
        while self.keyword("and"):
            self.pos += 1
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def parse_not(self) -> Node:
        if self.keyword("not"):
            self.pos += 1
            return Not(self.parse_not())
        return self.parse_primary()

    def parse_primary(self) -> Node:
        tok = self.take()
        if tok.kind == "lparen":
            node = self.parse_or()
            if self.take().kind != "rparen":
                raise FilterError("missing ')'")
            return node
        if tok.kind != "word" or tok.quoted or str(tok.value).lower() in _KEYWORDS:
            raise FilterError(f"expected a property name, got {tok.value!r}")
        name = str(tok.value)
        nxt = self.peek()
        if nxt is not None and nxt.kind == "lparen" and name.lower() in ("isempty", "query"):
            self.pos += 1
            args = self.parse_list_rest()
            if name.lower() == "isempty":
                self.refs.update(str(a) for a in args)
            return Func(name.lower(), tuple(args))
        op_tok = self.take()
        op = str(op_tok.value).lower()
        if op_tok.kind != "word" or op_tok.quoted or op not in COMPARATORS:
            raise FilterError(f"expected a comparator after {name!r}, got {op_tok.value!r}")
        self.refs.add(name)
        if op == "in":
            if self.take().kind != "lparen":
                raise FilterError("'in' needs a parenthesised list")
            return Cmp(name, op, tuple(self.parse_list_rest()))
        return Cmp(name, op, (self.parse_value(),))

    def parse_list_rest(self) -> list[Any]:
        values: list[Any] = []
        while True:
            values.append(self.parse_value())
            tok = self.take()
            if tok.kind == "rparen":
                return values
            if tok.kind != "comma":
                raise FilterError(f"expected ',' or ')', got {tok.value!r}")

    def parse_value(self) -> Any:
        tok = self.take()
        if tok.kind != "word":
            raise FilterError(f"expected a value, got {tok.value!r}")
        return tok.value


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"cannot read filter at character {pos}")
        pos = m.end()
        if m.group("lparen"):
            tokens.append(_Tok("lparen", "("))
        elif m.group("rparen"):
            tokens.append(_Tok("rparen", ")"))
        elif m.group("comma"):
            tokens.append(_Tok("comma", ","))
        elif m.group("sq") is not None:
            tokens.append(_Tok("word", re.sub(r"\\(.)", r"\1", m.group("sq")), quoted=True))
        elif m.group("dq") is not None:
            tokens.append(_Tok("word", re.sub(r"\\(.)", r"\1", m.group("dq")), quoted=True))
        else:
            tokens.append(_Tok("word", m.group("word")))
    return tokens


@dataclass(frozen=True)
class Filter:
    """A parsed filter: the tree plus every property it mentions."""

    root: Node
    refs: frozenset[str]

    def matches(self, record: Any, resolve: Resolver) -> bool:
        """Evaluate against ``record``; ``resolve(record, path)`` returns the path's values."""
        return _eval(self.root, record, resolve)

    def top_level_equalities(self) -> dict[str, set[str]]:
        """``path -> allowed values`` for ``eq``/``in`` terms ANDed at the top (for index lookups)."""
        items = self.root.items if isinstance(self.root, BoolOp) and self.root.op == "and" else (self.root,)
        out: dict[str, set[str]] = {}
        for item in items:
            if isinstance(item, Cmp) and item.op in ("eq", "in"):
                values = {str(v).upper() for v in item.values}
                path = item.path.lower()
                out[path] = out[path] & values if path in out else values
        return out

    def lower_bound(self, path: str) -> tuple[float, bool] | None:
        """For a top-level ``path gt|ge n``: (n, inclusive); lets the event feed bisect."""
        items = self.root.items if isinstance(self.root, BoolOp) and self.root.op == "and" else (self.root,)
        for item in items:
            if isinstance(item, Cmp) and item.path.lower() == path and item.op in ("gt", "ge"):
                number = _number(item.values[0])
                if number is not None:
                    return number, item.op == "ge"
        return None


def parse_filter(text: str) -> Filter:
    """Parse a filter statement; raises ``FilterError`` with a short reason."""
    parser = _Parser(_tokenize(text))
    if not parser.tokens:
        raise FilterError("empty filter")
    root = parser.parse_or()
    if parser.peek() is not None:
        raise FilterError(f"unexpected {parser.peek().value!r}")  # type: ignore[union-attr]
    return Filter(root, frozenset(r.lower() for r in parser.refs))


_NUMERIC = re.compile(r"-?\d+(?:\.\d+)?")


def _number(value: Any) -> float | None:
    # Only plain decimals count as numbers: "1E5" or "inf" are codes, not floats.
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    return float(text) if _NUMERIC.fullmatch(text) else None


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if actual is None:
        return False
    a_num, e_num = _number(actual), _number(expected)
    if a_num is not None and e_num is not None:
        left: Any = a_num
        right: Any = e_num
    else:
        # GUIDs and codes compare case-insensitively; dates compare as their sortable strings.
        left, right = str(actual).upper(), str(expected).upper()
    if op == "eq":
        return bool(left == right)
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    return bool(left <= right)  # le


def _eval(node: Node, record: Any, resolve: Resolver) -> bool:
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(_eval(item, record, resolve) for item in node.items)
        return any(_eval(item, record, resolve) for item in node.items)
    if isinstance(node, Not):
        return not _eval(node.item, record, resolve)
    if isinstance(node, Func):
        if node.name == "isempty":
            return not any(v not in (None, "", [], {}) for v in resolve(record, str(node.args[0])))
        *paths, text = node.args
        haystack = " ".join(str(v) for p in (paths or ["statement.descr"]) for v in resolve(record, str(p)))
        return all(word in haystack.lower() for word in str(text).lower().split())
    values = resolve(record, node.path)
    if node.op == "ne":
        return not any(_compare(v, "eq", node.values[0]) for v in values)
    if node.op == "in":
        return any(_compare(v, "eq", e) for v in values for e in node.values)
    return any(_compare(v, node.op, node.values[0]) for v in values)


def dig(obj: Any, path: str) -> list[Any]:
    """Values at a dotted path, flattening lists on the way (``education_levels.grades.code``)."""
    current: list[Any] = [obj]
    for key in path.split("."):
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, dict) and key in item:
                value = item[key]
                nxt.extend(value if isinstance(value, list) else [value])
        current = nxt
    return current


# ---------------------------------------------------------------------- sparse fieldsets

FieldTree = dict[str, "FieldTree"]


def parse_fields(text: str | None) -> FieldTree | None:
    """``fields[type]`` CSV into a tree; ``None`` when absent (id and type only, L2310); ``*`` means all."""
    if text is None:
        return None
    tree: FieldTree = {}
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        node = tree
        parts = name.split(".")
        for i, part in enumerate(parts):
            if part in node and not node[part] and i < len(parts) - 1:
                break  # already asked for the whole object
            if i == len(parts) - 1:
                node[part] = {}
            else:
                node = node.setdefault(part, {})
    return tree


def prune(value: Any, tree: FieldTree) -> Any:
    """Keep only the leaves named in ``tree``, with their minimal containing objects (L2310-2348)."""
    if not tree or "*" in tree:
        return value
    if isinstance(value, list):
        return [prune(item, tree) for item in value]
    if isinstance(value, dict):
        return {k: prune(value[k], sub) for k, sub in tree.items() if k in value}
    return value


def sort_key_paths(text: str | None) -> list[tuple[str, bool]]:
    """``sort[type]`` CSV into (path, descending) pairs (L110-116)."""
    if not text:
        return []
    keys = []
    for raw in text.split(","):
        name = raw.strip()
        if name:
            keys.append((name.lstrip("-+"), name.startswith("-")))
    return keys


def sort_records(records: list[Any], keys: Iterable[tuple[str, bool]], resolve: Resolver) -> list[Any]:
    """Stable multi-key sort; missing values sort first, numbers numerically, text case-insensitively."""
    out = list(records)
    for path, descending in reversed(list(keys)):
        def key(record: Any, path: str = path) -> tuple[int, float, str]:
            values = resolve(record, path)
            if not values or values[0] is None:
                return (0, 0.0, "")
            number = _number(values[0])
            return (1, number, "") if number is not None else (2, 0.0, str(values[0]).upper())
        out.sort(key=key, reverse=descending)
    return out
