"""What every MatrixLMS function receives, plus the shared paging rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from simulators.matrixlms.config import SimConfig
from simulators.matrixlms.errors import bad_request
from simulators.matrixlms.params import Args
from simulators.matrixlms.store import SiteStore

PAGE_SIZE = 100  # seed 000:L53: "return data in pages of 100 results"
RESERVED = frozenset({"api_key", "api_version"})

T = TypeVar("T")


@dataclass
class Call:
    """One authenticated, admitted call: the site's data, its arguments, the caller and the time."""

    store: SiteStore
    args: Args
    now: float
    config: SimConfig

    @property
    def caller_id(self) -> int | None:
        """The user id of the key's administrator ("Execute as", A.1)."""
        return self.store.admin_id

    def reject_unknown(self, names: Sequence[str], allowed: frozenset[str]) -> None:
        """The strict-attributes switch: a 400 for the first name the simulator does not know."""
        if self.config.strict_attributes:
            for name in names:
                if name not in allowed:
                    raise bad_request(f"Unknown attribute: {name}")


Function = Callable[[Call], Any]


def page_of(items: Sequence[T], page: int) -> list[T]:
    """Page ``page`` (1-based) of 100; past the last page an empty list (seed 000:L53)."""
    start = (page - 1) * PAGE_SIZE
    return list(items[start:start + PAGE_SIZE])
