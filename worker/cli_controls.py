"""The operator commands: ``pause``, ``resume``, ``cursor``, ``holds``, ``dlq redrive|purge`` and
``replay --dry-run``.

The state-changing ones write to Kafka with the worker's own credentials from the configuration file, the
authenticated path; the ops port stays read-only. Bad input is one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import structlog

from worker.config import WorkerConfig, load_config
from worker.controls import handler_control_name, poller_control_name, request_pause
from worker.errors import ConfigurationError
from worker.logs import configure_logging
from worker.topics import OPERATOR_CONTROL, all_topics, ensure_topics, redrive_topic, state_topics
from worker.wiring import Wiring, build_wiring

log = structlog.get_logger(__name__)
# The commands log their decisions at warning; restores and connections at info are noise here.
QUIET = "warning"


class ControlError(ConfigurationError, ValueError):
    """An operator command names something this configuration does not run."""


def _wiring(config: WorkerConfig) -> Wiring:
    wiring = build_wiring(config)
    anyio.run(wiring.clients.aclose)  # the commands talk to Kafka only
    return wiring


def poller_names(wiring: Wiring) -> list[str]:
    """``TENANT/NAME`` of every poller the configuration runs."""
    return sorted(f"{s.poller.tenant}/{s.poller.name}" for s in wiring.pollers)


def check_poller(wiring: Wiring, name: str) -> tuple[str, str]:
    """``(tenant, poller)`` of ``TENANT/NAME``; ``ControlError`` when the configuration has none such."""
    known = poller_names(wiring)
    if name not in known:
        raise ControlError(f"unknown poller {name!r} (known: {', '.join(known) or 'none'})")
    tenant, _, poller = name.partition("/")
    return tenant, poller


def check_handler(wiring: Wiring, name: str) -> str:
    """``name`` if the configuration runs that handler; else ``ControlError``."""
    known = sorted(h.name for h in wiring.handlers)
    if name not in known:
        raise ControlError(f"unknown handler {name!r} (known: {', '.join(known) or 'none'})")
    return name


async def _ready_kafka(config: WorkerConfig) -> None:
    from worker.runtime import wait_for_kafka

    kafka = config.kafka.connection()
    await wait_for_kafka(kafka, min(config.kafka.broker_patience_seconds, 15.0))
    await ensure_topics(kafka, [s for s in state_topics() if s.name == OPERATOR_CONTROL],
                        config.kafka.replication_factor, config.kafka.min_insync_replicas)


def _emit(args: argparse.Namespace, report: dict[str, Any], line: str) -> None:
    print(json.dumps(report, sort_keys=True) if getattr(args, "json", False) else line)


def _pause(args: argparse.Namespace, paused: bool) -> int:
    config = load_config(args.config)
    configure_logging(QUIET)
    wiring = _wiring(config)
    if args.poller:
        component = poller_control_name(*check_poller(wiring, args.poller))
    else:
        component = handler_control_name(check_handler(wiring, args.handler))

    async def go() -> None:
        await _ready_kafka(config)
        await request_pause(config.kafka.connection(), component, paused)

    anyio.run(go)
    verb = "pause" if paused else "resume"
    _emit(args, {"component": component, "paused": paused, "requested": True},
          f"{verb} of {component} requested; the replica that runs it acts on it between cycles")
    return 0


def _pause_cmd(args: argparse.Namespace) -> int:
    return _pause(args, True)


def _resume(args: argparse.Namespace) -> int:
    return _pause(args, False)


def _dlq_resolve(args: argparse.Namespace) -> int:
    from worker.dead_letters import pending_letters, resolve_letters

    config = load_config(args.config)
    configure_logging(QUIET)
    handler = check_handler(_wiring(config), args.handler)
    kafka, prefix = config.kafka.connection(), config.kafka.consumer_group_prefix
    redrive = args.action == "redrive"

    async def go() -> tuple[int, int]:
        await _ready_kafka(config)
        await ensure_topics(kafka, [s for s in all_topics(handlers=[handler]) if s.name == redrive_topic(handler)],
                            config.kafka.replication_factor, config.kafka.min_insync_replicas)
        done = await resolve_letters(kafka, handler, redrive=redrive, prefix=prefix)
        return done, len(await pending_letters(kafka, handler, prefix))

    done, remaining = anyio.run(go)
    key = "redriven" if redrive else "purged"
    _emit(args, {"handler": handler, "action": args.action, key: done, "dead_letters": remaining},
          f"{done} dead letter(s) of {handler} {key}; {remaining} unresolved")
    return 0


async def _held(config: WorkerConfig, tenant: str, poller: str) -> dict[str, Any] | None:
    from worker.poller_frame import cursor_key
    from worker.state_store import StateStore
    from worker.topics import CURSORS

    cursors = StateStore(config.kafka.connection(), CURSORS, tenant=tenant)
    await cursors.restore()
    cursor = cursors.get(cursor_key(tenant, poller)) or {}
    hold = cursor.get("hold")
    return hold if isinstance(hold, dict) and int(cursor.get("held") or 0) > 0 else None


def _holds(args: argparse.Namespace) -> int:
    from worker.controls import operator_identity, send_control
    from worker.pollers.deletion_holds import HoldDecision, HoldSummary, hold_key
    from worker.pollers.illuminate_snapshot import IlluminateSnapshotPoller

    config = load_config(args.config)
    configure_logging(QUIET)
    wiring = _wiring(config)
    tenant, poller = check_poller(wiring, args.poller)
    spec = next(s for s in wiring.pollers if s.poller.tenant == tenant and s.poller.name == poller)
    if not isinstance(spec.poller, IlluminateSnapshotPoller):
        raise ControlError(f"poller {args.poller!r} is not an Illuminate snapshot poller (illuminate.<entity>), "
                           "whose held deletions can be reviewed")
    component = poller_control_name(tenant, poller)

    async def go() -> dict[str, Any]:
        await _ready_kafka(config)
        raw = await _held(config, tenant, poller)
        if args.action == "show":
            if raw is None:
                return {"poller": args.poller, "held": 0}
            hold = HoldSummary.model_validate(raw)
            return {"poller": args.poller, "held": hold.count, **hold.model_dump(exclude={"fingerprint"})}
        if raw is None:
            raise ControlError(f"poller {args.poller!r} holds no deletions back")
        hold = HoldSummary.model_validate(raw)
        decision = HoldDecision(decision=args.action, fingerprint=hold.fingerprint, count=hold.count,
                                requested_at=datetime.now(UTC), requested_by=operator_identity())
        await send_control(config.kafka.connection(), hold_key(component), decision)
        log.warning(f"held deletions {args.action} requested", poller=args.poller, entity=hold.entity,
                    count=hold.count, requested_by=decision.requested_by)
        return {"poller": args.poller, "decision": args.action, "entity": hold.entity, "count": hold.count,
                "requested": True}

    report = anyio.run(go)
    if args.action == "show":
        line = (f"{args.poller}: nothing held" if not report["held"] else
                f"{args.poller}: {report['count']} {report['entity']} deletion(s) held, "
                f"{report['share']:.1%} of {report['stored']} (walk {report['walk']}); "
                f"sample ids: {', '.join(report['sample'])}")
    else:
        line = (f"{args.action} of {report['count']} held {report['entity']} deletion(s) requested; the poller "
                "acts on it at the end of its next complete walk if it still holds exactly these")
    _emit(args, report, line)
    return 0


def _cursor(args: argparse.Namespace) -> int:
    from worker.controls import CursorCommand, cursor_command_key, operator_identity, send_control

    config = load_config(args.config)
    configure_logging(QUIET)
    tenant, poller = check_poller(_wiring(config), args.poller)
    component = poller_control_name(tenant, poller)
    value: Any = None
    if args.action == "set":
        if args.to is None:
            raise ControlError("cursor set needs --to VALUE (the cursor as JSON, as `cursor show` prints it)")
        try:
            value = json.loads(args.to)
        except ValueError as exc:
            raise ControlError(f"--to is not JSON: {exc}") from None
    elif args.to is not None:
        raise ControlError(f"--to goes with cursor set, not cursor {args.action}")

    async def go() -> dict[str, Any]:
        from worker.poller_frame import cursor_key
        from worker.state_store import StateStore
        from worker.topics import CURSORS

        await _ready_kafka(config)
        cursors = StateStore(config.kafka.connection(), CURSORS, tenant=tenant)
        await cursors.restore()
        current = cursors.get(cursor_key(tenant, poller))
        if args.action == "show":
            return {"poller": args.poller, "cursor": current}
        command = CursorCommand(component=component, action=args.action, value=value,
                                requested_at=datetime.now(UTC), requested_by=operator_identity())
        await send_control(config.kafka.connection(), cursor_command_key(component), command)
        log.warning(f"cursor {args.action} requested", poller=args.poller, before=current, cursor=value,
                    requested_by=command.requested_by)
        return {"poller": args.poller, "action": args.action, "before": current, "cursor": value, "requested": True}

    report = anyio.run(go)
    if args.action == "show":
        line = json.dumps(report["cursor"], sort_keys=True)
    else:
        line = (f"cursor {args.action} of {args.poller} requested (was {json.dumps(report['before'])}); the "
                "replica that runs the poller applies it between two polls")
    _emit(args, report, line)
    return 0


def guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``func`` with a ``ControlError`` as one line on stderr and exit code 2."""
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ControlError as exc:
            print(f"edusync: {exc}", file=sys.stderr)
            return 2
    return run


def dlq_action(args: argparse.Namespace, show: Callable[[argparse.Namespace], int]) -> int:
    """``edusync dlq ACTION``: ``show`` as before, ``redrive`` and ``purge`` here."""
    if args.action in ("redrive", "purge"):
        return guarded(_dlq_resolve)(args)
    return show(args)


DLQ_ACTIONS = ["show", "redrive", "purge"]


def _since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-12-01T08:00:00Z)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def replay_options(replay: argparse.ArgumentParser) -> None:
    """The dry-run options of ``edusync replay``."""
    replay.add_argument("--dry-run", action="store_true", help="make no writes; print those it would make, per target")
    replay.add_argument("--from", dest="since", type=_since, metavar="TIME",
                        help="dry run: the events since this ISO 8601 time")
    replay.add_argument("--tenant", help="dry run: this tenant's events")
    replay.add_argument("--keep-group", action="store_true", help="keep the replay's consumer group afterwards")
    replay.add_argument("--json", action="store_true", help="dry run: print the report as JSON")


def replay_action(args: argparse.Namespace, replay: Callable[[argparse.Namespace], int]) -> int:
    """``edusync replay``: the dry run here, the real replay as before (it needs ``--handler``)."""
    from worker.replay import ReplayError

    if not args.dry_run:
        if args.handler is None or args.since is not None or args.tenant is not None:
            print("edusync: replay needs --handler; --from and --tenant go with --dry-run", file=sys.stderr)
            return 2
        return replay(args)
    if args.since is None or args.tenant is None:
        print("edusync: replay --dry-run needs --from TIME and --tenant T", file=sys.stderr)
        return 2
    from worker.replay_dry_run import dry_run

    config = load_config(args.config)
    configure_logging(QUIET)
    try:
        report = anyio.run(dry_run, config, args.tenant, args.since, args.handler)
    except ReplayError as exc:
        print(f"edusync: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(report.model_dump_json())
        return 0
    for target in report.targets:
        print(f"{target.system} {target.host}: {target.writes} write(s)")
        for call in target.calls:
            print(f"  {call}")
    print(f"{report.events} event(s) of {report.tenant} since {report.since.isoformat()}: "
          f"{report.writes} write(s) would be made; none made")
    return 0


def register(sub: Any) -> None:
    """Add ``pause``, ``resume``, ``cursor`` and ``holds`` to the ``edusync`` subcommands (``sub``:
    argparse's subparsers); ``dlq`` and ``replay`` call ``dlq_action`` and ``replay_action``."""
    for verb, paused in (("pause", True), ("resume", False)):
        cmd = sub.add_parser(verb, help=f"{verb} a poller or handler, on whichever replica runs it "
                             "(through the Kafka control topic)")
        cmd.add_argument("--config", required=True, type=Path)
        target = cmd.add_mutually_exclusive_group(required=True)
        target.add_argument("--poller", metavar="TENANT/NAME", help="a poller, e.g. district-a/abconnect_events")
        target.add_argument("--handler", metavar="NAME", help="a handler (all its tenant slots)")
        cmd.add_argument("--json", action="store_true", help="print the request as JSON")
        cmd.set_defaults(func=guarded(_resume if not paused else _pause_cmd))

    cursor = sub.add_parser("cursor", help="a poller's stored cursor: show, set (--to JSON), reset (start over)")
    cursor.add_argument("action", choices=["show", "set", "reset"])
    cursor.add_argument("--config", required=True, type=Path)
    cursor.add_argument("--poller", required=True, metavar="TENANT/NAME")
    cursor.add_argument("--to", metavar="VALUE", help='set: the new cursor as JSON, e.g. \'{"seq": 120}\'')
    cursor.add_argument("--json", action="store_true", help="print the result as JSON")
    cursor.set_defaults(func=guarded(_cursor))

    holds = sub.add_parser("holds", help="mass deletions the snapshot guard held back: show, approve, reject")
    holds.add_argument("action", choices=["show", "approve", "reject"])
    holds.add_argument("--config", required=True, type=Path)
    holds.add_argument("--poller", required=True, metavar="TENANT/NAME", help="e.g. district-a/illuminate.students")
    holds.add_argument("--json", action="store_true", help="print the result as JSON")
    holds.set_defaults(func=guarded(_holds))
