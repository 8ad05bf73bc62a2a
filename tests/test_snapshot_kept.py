"""The ``kept`` mark a rejected mass deletion leaves in the snapshot store."""

from __future__ import annotations

from worker.pollers.deletion_holds import fingerprint, summarize
from worker.pollers.snapshot_store import Section, Seen, stored_value


def test_a_kept_record_survives_the_topic_round_trip_and_is_cleared_when_upstream_shows_it_again() -> None:
    section = Section("student")
    section.apply("7", stored_value(0xABC, kept=True))
    assert section.is_kept("7") and not section.is_pending("7")
    assert section.value("7") == {"hash": f"{0xABC:016x}", "kept": True}
    reread = Section("student")
    reread.apply("7", section.value("7"))
    assert reread.is_kept("7")
    # Seen again with the same content: revived, so the poller writes the plain value back.
    assert reread.observe("7", 0xABC, tag=3).seen is Seen.REVIVED
    assert not reread.is_kept("7")
    assert reread.value("7") == {"hash": f"{0xABC:016x}"}


def test_a_hold_is_summarised_with_ids_and_a_fingerprint_of_every_held_key() -> None:
    keys = [str(n) for n in range(30, 0, -1)]
    hold = summarize("students", keys, 100, walk=4)
    assert (hold.count, hold.stored, hold.share, hold.walk) == (30, 100, 0.3, 4)
    assert hold.sample == sorted(keys)[:10]
    assert hold.fingerprint == fingerprint(sorted(keys)) != fingerprint(keys[1:])
