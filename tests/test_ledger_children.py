"""The ledger view's parent index: ``children`` lists the entries under one key without a scan,
and stays right through writes, forgets and rollbacks (the roster handlers' rename fan-out reads
a person's enrolments this way)."""

from __future__ import annotations

from worker.ledger import Ledger, LedgerView


def _ledger() -> Ledger:
    # No restore, no broker: these are the view's local writes, which is what the index tracks.
    return Ledger(LedgerView("127.0.0.1:1"), "roster_to_class")


def test_children_lists_direct_entries_only() -> None:
    ledger = _ledger()
    ledger.put("person/s-1/enrollment/sec-1", {"class": 1})
    ledger.put("person/s-1/enrollment/sec-2", {"class": 2})
    ledger.put("person/s-1/enrollment/sec-2/extra", {"deeper": True})
    ledger.put("person/s-2/enrollment/sec-1", {"class": 1})
    assert ledger.children("person/s-1/enrollment") == {
        "person/s-1/enrollment/sec-1": {"class": 1},
        "person/s-1/enrollment/sec-2": {"class": 2},
    }
    # Another handler's entries under the same path are not ours.
    Ledger(ledger.view, "roster_to_canvas").put("person/s-1/enrollment/sec-9", {"class": 9})
    assert set(ledger.children("person/s-1/enrollment")) == {
        "person/s-1/enrollment/sec-1", "person/s-1/enrollment/sec-2"}


def test_forget_and_rollback_keep_the_index_right() -> None:
    ledger = _ledger()
    ledger.put("class/c-1/member/a", 1)
    # As ``flush`` then a committed transaction would leave it: nothing staged, nothing to undo.
    keys, ledger._staged = list(ledger._staged), {}
    ledger.committed(keys)
    ledger.put("class/c-1/member/b", 2)
    ledger.put("class/c-1/member/a", None)
    assert ledger.children("class/c-1/member") == {"class/c-1/member/b": 2}
    assert ledger.rollback() == 2
    assert ledger.children("class/c-1/member") == {"class/c-1/member/a": 1}
    assert ledger.children("class/c-2/member") == {}
