"""A local simulator of the Illuminate Education REST API (OAuth 1, paging, typing quirks,
``modified_after`` on the three assessment-aggregate endpoints) with a ``/_sim/`` control API."""

from typing import Any

from simulators.illuminate.app import IlluminateSimulator, SimConfig, create_app
from simulators.illuminate.generator import SeedSpec
from simulators.illuminate.oauth import DEFAULT_CREDENTIALS, Credentials
from simulators.options import SimulateOptions


def simulate_app(opts: SimulateOptions) -> tuple[Any, str]:
    """For ``edusync simulate``: a generated district of ``opts.students`` students."""
    sim = IlluminateSimulator()
    if opts.students:
        sim.seed(SeedSpec(students=opts.students, staff=max(5, opts.students // 25),
                          courses=max(3, opts.students // 100), seed=opts.seed))
    c = DEFAULT_CREDENTIALS
    hint = (f"API /live/rest_server.php/Api/  OAuth1 consumer {c.consumer_key}/{c.consumer_secret} "
            f"token {c.token}/{c.token_secret}")
    return sim.app, hint


__all__ = ["DEFAULT_CREDENTIALS", "Credentials", "IlluminateSimulator", "SeedSpec", "SimConfig", "create_app",
           "simulate_app"]
