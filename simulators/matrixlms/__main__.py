"""Run the MatrixLMS simulator standalone.

    python -m simulators.matrixlms --port 8104 --size 1000 --scale 10
"""

from __future__ import annotations

import argparse

import uvicorn

from simulators.matrixlms.app import create_app
from simulators.matrixlms.generator import SeedSpec
from simulators.matrixlms.keys import DEMO_API_KEY
from simulators.matrixlms.state import MatrixSimulator


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, seed the demo site, serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8104)
    parser.add_argument("--size", type=int, default=0, help="seed this many students (0: the seed's examples only)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="simulated seconds per real second")
    args = parser.parse_args(argv)
    sim = MatrixSimulator()
    if args.size:
        sim.seed(SeedSpec(size=args.size, seed=args.seed))
    sim.clock.set_scale(args.scale)
    url = f"http://{args.host}:{args.port}"
    print(f"MatrixLMS simulator: {url}/api/<function>?api_key={DEMO_API_KEY}  (control: {url}/_sim/)")
    # No access log: request URLs carry the api_key and personal data.
    uvicorn.run(create_app(sim), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
