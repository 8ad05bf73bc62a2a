"""A local AB Connect v4.1 simulator: signed JSON:API standards and events, with a ``/_sim/`` control API.

Use ``ABConnectSimulator`` directly from tests, or serve ``create_app(sim)`` with
``simulators.server.serve_app`` / ``ThreadedServer``.
"""

from simulators.abconnect.app import create_app
from simulators.abconnect.state import ABConnectSimulator, MutateRequest, SeedRequest, SimConfig

__all__ = ["ABConnectSimulator", "MutateRequest", "SeedRequest", "SimConfig", "create_app"]
