"""``edusync simulate``: serve the simulators on fixed loopback ports for your own tests."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from simulators.abconnect import ABConnectSimulator, SeedRequest
from simulators.abconnect import create_app as ab_app
from simulators.canvas import DEFAULT_TOKEN, CanvasSimulator
from simulators.canvas import create_app as canvas_app
from simulators.illuminate import IlluminateSimulator
from simulators.illuminate.generator import SeedSpec
from simulators.illuminate.oauth import DEFAULT_CREDENTIALS
from worker.asgi_server import serve_app

SYSTEMS = ("abconnect", "canvas", "illuminate")
AB_PARTNER, AB_KEY = "sim-partner", "sim-partner-key"


@dataclass
class SimulateOptions:
    """Which simulators, where, and how much generated data."""

    systems: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8101
    documents: int = 20
    standards: int = 100
    students: int = 1000
    seed: int = 1


async def serve_simulators(opts: SimulateOptions) -> None:
    """Serve each chosen simulator on consecutive ports until cancelled (Ctrl-C)."""
    async with anyio.create_task_group() as tg:
        for offset, system in enumerate(SYSTEMS):
            if system in opts.systems:
                tg.start_soon(_serve_one, system, opts, opts.port + offset)


async def _serve_one(system: str, opts: SimulateOptions, port: int) -> None:
    if system == "abconnect":
        ab = ABConnectSimulator({AB_PARTNER: AB_KEY})
        ab.seed(SeedRequest(documents=opts.documents, standards_per_document=opts.standards, seed=opts.seed))
        app, hint = ab_app(ab), f"API /rest/v4.1/  partner.id={AB_PARTNER} key={AB_KEY}"
    elif system == "canvas":
        app, hint = canvas_app(CanvasSimulator()), f"API /api/v1/  Bearer token {DEFAULT_TOKEN}"
    else:
        sim = IlluminateSimulator()
        if opts.students:
            sim.seed(SeedSpec(students=opts.students, staff=max(5, opts.students // 25),
                              courses=max(3, opts.students // 100), seed=opts.seed))
        c = DEFAULT_CREDENTIALS
        app = sim.app
        hint = (f"API /live/rest_server.php/Api/  OAuth1 consumer {c.consumer_key}/{c.consumer_secret} "
                f"token {c.token}/{c.token_secret}")
    async with serve_app(app, opts.host, port) as url:
        print(f"{system:<11} {url}  {hint}  (control: {url}/_sim/)", flush=True)
        await anyio.sleep_forever()
