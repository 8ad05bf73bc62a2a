"""Run the Illuminate simulator standalone.

    python -m simulators.illuminate --port 8010 --students 1000
"""

from __future__ import annotations

import argparse

import uvicorn

from simulators.illuminate.app import IlluminateSimulator
from simulators.illuminate.generator import SeedSpec


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, seed a district, serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--students", type=int, default=0, help="seed a district of this size (0: empty)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sim = IlluminateSimulator()
    if args.students:
        sim.seed(SeedSpec(sites=args.sites, students=args.students, staff=max(5, args.students // 25),
                          courses=max(3, args.students // 100), seed=args.seed))
    url = f"http://{args.host}:{args.port}"
    print(f"Illuminate simulator: {url}/live/rest_server.php/Api/  (control: {url}/_sim/)")
    uvicorn.run(sim.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
