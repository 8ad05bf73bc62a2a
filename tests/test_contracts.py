"""Event contracts are edusync's own: a change to any published payload is a visible diff.

``schemas/contracts/`` holds the JSON Schemas ``edusync schemas export`` writes; this test runs the
real command and compares. After an intended contract change, run
``edusync schemas export schemas/contracts`` and commit the diff (and bump the type's version if
the change breaks consumers).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "schemas" / "contracts"


def test_exported_schemas_equal_the_checked_in_contracts(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "worker", "schemas", "export", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    exported = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    checked_in = {p.name: p.read_text() for p in CONTRACTS.glob("*.json")}
    assert sorted(exported) == sorted(checked_in), "event types were added or removed: re-export the contracts"
    changed = sorted(name for name in exported if exported[name] != checked_in[name])
    assert not changed, f"contracts changed: {changed}; re-export them with `edusync schemas export schemas/contracts`"


def test_every_checked_in_schema_names_its_dialect_and_a_unique_id() -> None:
    from schemas.export import JSON_SCHEMA_DIALECT

    schemas = {p.name: json.loads(p.read_text()) for p in CONTRACTS.glob("*.json")}
    assert schemas
    assert {name for name, s in schemas.items() if s.get("$schema") != JSON_SCHEMA_DIALECT} == set()
    ids = [s.get("$id") for s in schemas.values()]
    assert None not in ids and len(set(ids)) == len(schemas)


def test_schemas_do_not_import_client_models() -> None:
    for path in (ROOT / "schemas").glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in modules if m.startswith("worker")], f"{path.name} imports from worker: {modules}"


def test_simulators_check_signatures_with_their_own_code() -> None:
    for path in (ROOT / "simulators").rglob("*.py"):
        text = path.read_text()
        assert "worker.clients" not in text, f"{path.relative_to(ROOT)} uses the client's code"
