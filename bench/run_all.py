"""Run every registered benchmark in turn: ``python -m bench.run_all`` (``make bench``).

Each benchmark module has ``main(argv: list[str] | None) -> int``, runs with its defaults
here and writes its own report under ``bench/reports/``; register new ones in
``BENCHMARKS``. Set ``KAFKA_BOOTSTRAP_SERVERS`` to run them all against one existing
broker instead of a local broker each.

    python -m bench.run_all [--only bench.frames]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from typing import cast

BENCHMARKS: list[str] = [
    "bench.frames",
    "bench.standards_flow",
    "bench.illuminate_snapshot",
    "bench.canvas_requests",
    "bench.matrixlms_budget",
    "bench.roster_sync",
    "bench.state_restore",
]


def main(argv: list[str] | None = None) -> int:
    """Run each benchmark (or only the named ones); returns non-zero if any failed."""
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run just this one (repeatable)")
    args = parser.parse_args(argv)
    failed: list[str] = []
    for name in args.only or BENCHMARKS:
        print(f"=== {name}", flush=True)
        started = time.monotonic()
        bench_main = cast(Callable[[list[str]], int], importlib.import_module(name).main)
        try:
            code = bench_main([])
        except Exception as exc:  # one broken benchmark must not hide the others' reports
            print(f"{name} failed: {exc!r}", file=sys.stderr, flush=True)
            code = 1
        print(f"=== {name}: {'ok' if code == 0 else f'failed ({code})'} in {time.monotonic() - started:.0f} s",
              flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
