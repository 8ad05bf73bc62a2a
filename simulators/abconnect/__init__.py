"""A local AB Connect v4.1 simulator: signed JSON:API standards and events, with a ``/_sim/`` control API.

Use ``ABConnectSimulator`` directly from tests, or serve ``create_app(sim)`` with
``simulators.server.serve_app`` / ``ThreadedServer``.
"""

from typing import Any

from simulators.abconnect.app import create_app
from simulators.abconnect.state import ABConnectSimulator, MutateRequest, SeedRequest, SimConfig
from simulators.options import SimulateOptions

SIM_PARTNER, SIM_KEY = "sim-partner", "sim-partner-key"


def simulate_app(opts: SimulateOptions) -> tuple[Any, str]:
    """For ``edusync simulate``: a seeded catalogue and one partner account."""
    sim = ABConnectSimulator({SIM_PARTNER: SIM_KEY})
    sim.seed(SeedRequest(documents=opts.documents, standards_per_document=opts.standards_per_document, seed=opts.seed))
    return create_app(sim), f"API /rest/v4.1/  partner.id={SIM_PARTNER} key={SIM_KEY}"


__all__ = ["ABConnectSimulator", "MutateRequest", "SeedRequest", "SimConfig", "create_app", "simulate_app"]
