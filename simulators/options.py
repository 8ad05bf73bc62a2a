"""What ``edusync simulate`` asks a simulator to generate."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimulateOptions:
    """Where to serve and how much generated data; each simulator reads the sizes it knows."""

    host: str = "127.0.0.1"
    port: int = 8101
    documents: int = 20
    standards_per_document: int = 100
    students: int = 1000
    seed: int = 1
