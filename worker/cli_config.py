"""``edusync --version``, ``edusync config check FILE [--connect]`` and ``edusync config example``."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import anyio

from deploy.resources import example_config

DISTRIBUTION = "edusync"


def package_version() -> str:
    """The installed distribution's version (package metadata, so a wheel and a checkout agree)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed)"


def _example(_: argparse.Namespace) -> int:
    sys.stdout.write(example_config())
    return 0


def _check(args: argparse.Namespace) -> int:
    from worker.config import load_config

    config = load_config(args.file)  # a ConfigError is reported by the CLI: file:line: field: message
    flows = sorted({f for t in config.tenants for f in _enabled(t)})
    print(f"ok      {args.file}: valid; {len(config.tenants)} tenant(s), flows: {', '.join(flows) or 'none'}")
    if not args.connect:
        return 0
    import logging

    from worker.config_check import connect_checks

    # The checks report failures themselves, one line each; library retry chatter would bury them.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    checks = anyio.run(connect_checks, config)
    for check in checks:
        print(check.line(), flush=True)
    failed = sum(not c.ok for c in checks)
    if failed:
        print(f"edusync: {failed} of {len(checks)} connection check(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _enabled(tenant: object) -> list[str]:
    from worker.config import TenantConfig, enabled_flows

    assert isinstance(tenant, TenantConfig)
    return enabled_flows(tenant)


def add_version_option(parser: argparse.ArgumentParser) -> None:
    """``--version``: prints ``edusync <version>`` and exits."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")


def add_config_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """``config check`` and ``config example``."""
    config = sub.add_parser("config", help="validate a configuration file, or print the example one")
    actions = config.add_subparsers(dest="config_action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate FILE (every error and missing ${ENV} at once); "
                               "--connect also tries Kafka and each tenant's credentials")
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--connect", action="store_true",
                       help="reach Kafka and send one cheap authenticated request per tenant and system")
    check.set_defaults(func=_check)
    example = actions.add_parser("example", help="print the example configuration (edusync.example.yaml)")
    example.set_defaults(func=_example)
