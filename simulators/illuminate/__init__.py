"""A local simulator of the Illuminate Education REST API (OAuth 1, paging, typing quirks,
``modified_after`` on the three assessment-aggregate endpoints) with a ``/_sim/`` control API."""

from simulators.illuminate.app import IlluminateSimulator, SimConfig, create_app
from simulators.illuminate.generator import SeedSpec
from simulators.illuminate.oauth import DEFAULT_CREDENTIALS, Credentials

__all__ = ["DEFAULT_CREDENTIALS", "Credentials", "IlluminateSimulator", "SeedSpec", "SimConfig", "create_app"]
