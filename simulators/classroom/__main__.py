"""Run the Class simulator standalone.

    python -m simulators.classroom --port 8105 --size 1000
"""

from __future__ import annotations

import argparse

import uvicorn

from simulators.classroom.app import create_app
from simulators.classroom.auth import DEMO_SECRET
from simulators.classroom.generator import SeedSpec
from simulators.classroom.state import ClassSimulator


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, seed the organisation, serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8105)
    parser.add_argument("--size", type=int, default=0, help="seed this many students (0: the seed's examples only)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sim = ClassSimulator()
    if args.size:
        sim.seed(SeedSpec(size=args.size, seed=args.seed))
    url = f"http://{args.host}:{args.port}"
    print(f"Class simulator: {url}/api/v1/  Bearer {DEMO_SECRET}  (control: {url}/_sim/)")
    # No access log: request URLs carry personal data.
    uvicorn.run(create_app(sim), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
