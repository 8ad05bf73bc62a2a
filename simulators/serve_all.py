"""``edusync simulate``: serve the registered systems' simulators on consecutive loopback ports.

Each system names its simulator in the registry (``worker.systems``) as ``module:function``; the
function takes ``SimulateOptions`` and returns the ASGI app and a one-line hint.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from simulators.options import SimulateOptions
from worker.asgi_server import serve_app
from worker.systems import SYSTEMS


def simulator_factory(system: str) -> Callable[[SimulateOptions], tuple[Any, str]]:
    """The registered simulator function of ``system``."""
    spec = next((s.simulator for s in SYSTEMS if s.name == system), None)
    if spec is None:
        raise ValueError(f"system {system!r} has no simulator")
    module, _, function = spec.partition(":")
    factory: Callable[[SimulateOptions], tuple[Any, str]] = getattr(importlib.import_module(module), function)
    return factory


async def serve_simulators(systems: Sequence[str], opts: SimulateOptions) -> None:
    """Serve each chosen simulator, in registry order from ``opts.port``, until cancelled (Ctrl-C)."""
    ordered = [s.name for s in SYSTEMS if s.simulator]
    async with anyio.create_task_group() as tg:
        for offset, name in enumerate(ordered):
            if name in systems:
                tg.start_soon(_serve_one, name, opts, opts.port + offset)


async def _serve_one(system: str, opts: SimulateOptions, port: int) -> None:
    app, hint = simulator_factory(system)(opts)
    async with serve_app(app, opts.host, port, what=f"{system} simulator") as url:
        print(f"{system:<11} {url}  {hint}  (control: {url}/_sim/)", flush=True)
        await anyio.sleep_forever()
