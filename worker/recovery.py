"""Whether the event being handled may have been applied already by a runner that died before its
commit.

A slot runner resumes at its group's committed offset. Everything after it, up to the end of the
partition when the runner starts, may have been written to a target by the last runner, whose
ledger entries for it were never committed. For those events a handler must not trust a shortcut
that assumes the target holds only what the ledger says: above all it must not skip an event
because a newer one of its subject is known (the newer one, a drop, would then find no ledger
entry and leave the enrolment the dead runner made). The frame marks them with ``recovering``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_recovering: ContextVar[bool] = ContextVar("edusync_recovering", default=False)


def recovering() -> bool:
    """True while the frame hands over an event a dead runner may have applied without commit."""
    return _recovering.get()


@contextmanager
def recovery(active: bool) -> Iterator[None]:
    """Mark the events handled inside the block as possibly applied already (when ``active``)."""
    token = _recovering.set(active)
    try:
        yield
    finally:
        _recovering.reset(token)


@contextmanager
def marking() -> Iterator[Callable[[bool], None]]:
    """For a pass over many events: ``mark(active)`` before each says whether it is in recovery.
    The flag is set only when it changes (the hot path marks every event), reset at the end."""
    token = _recovering.set(False)
    current = False

    def mark(active: bool) -> None:
        nonlocal current
        if active is not current:
            _recovering.set(active)
            current = active

    try:
        yield mark
    finally:
        _recovering.reset(token)
