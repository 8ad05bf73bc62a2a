"""AB Connect event payloads (filled in by the standards flow)."""
