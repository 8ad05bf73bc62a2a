"""Run the AB Connect simulator standalone: ``python -m simulators.abconnect --port 8101 --documents 20``."""

from __future__ import annotations

import argparse

import uvicorn

from simulators.abconnect.app import create_app
from simulators.abconnect.state import ABConnectSimulator, SeedRequest


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, seed a catalogue and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--partner", action="append", metavar="ID:KEY",
                        help="partner credentials (repeatable); default edusync-demo:demo-key")
    parser.add_argument("--documents", type=int, default=5)
    parser.add_argument("--standards-per-document", type=int, default=100)
    parser.add_argument("--sections-per-document", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    partners = dict(p.split(":", 1) for p in (args.partner or ["edusync-demo:demo-key"]))
    sim = ABConnectSimulator(partners)
    sim.seed(SeedRequest(documents=args.documents, standards_per_document=args.standards_per_document,
                         sections_per_document=args.sections_per_document, seed=args.seed))
    uvicorn.run(create_app(sim), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
