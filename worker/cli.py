"""The ``edusync`` command line: one entry point for the worker, the demo, Kafka and operations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from deploy.local_kafka import DEFAULT_DATA_DIR, DEFAULT_PORT, KafkaLaunchError, LocalKafka
from worker import cli_controls
from worker.cli_config import add_config_commands, add_version_option
from worker.cli_parser import OneLineParser
from worker.concurrency import first_error
from worker.config import ConfigError, load_config
from worker.errors import EdusyncError
from worker.logs import configure_logging
from worker.replay import ReplayError


def _kafka(args: argparse.Namespace) -> int:
    broker = LocalKafka(data_dir=args.data_dir, port=args.port, secured=args.secured, secure_port=args.secure_port)
    if args.action == "up":
        print(f"starting Apache Kafka (KRaft) in {broker.data_dir} ...", flush=True)
        print(f"Kafka is up: bootstrap {broker.up()}")
        if broker.secured:
            # The password stays in its file: terminals and CI logs keep what is printed.
            print(f"SASL_SSL: bootstrap {broker.secure_bootstrap} (SASL PLAIN or SCRAM-SHA-512), "
                  f"CA {broker.ca_file}, user {broker.sasl_username}, password in {broker.credentials_file}")
    elif args.action == "down":
        print("Kafka stopped" if broker.down() else "Kafka was not running (nothing to stop)")
    else:
        up = broker.is_up()
        secure = f", SASL_SSL {broker.secure_bootstrap}" if broker.secured else ""
        print(f"Kafka is {'up' if up else 'down'}: bootstrap {broker.bootstrap}{secure}, data {broker.data_dir}")
        return 0 if up else 3
    return 0


def _run(args: argparse.Namespace) -> int:
    from worker.runtime import run_worker

    config = load_config(args.config)
    configure_logging(config.log_level)
    anyio.run(run_worker, config)
    return 0


def _replay(args: argparse.Namespace) -> int:
    import json

    from worker.replay import replay_handler

    config = load_config(args.config)
    configure_logging(config.log_level)
    counts = anyio.run(lambda: replay_handler(config, args.handler, args.group, keep_group=args.keep_group))
    print(json.dumps({"handler": args.handler, "outcomes": counts}, sort_keys=True))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from simulators.options import SimulateOptions
    from simulators.serve_all import serve_simulators
    from worker.systems import SYSTEMS

    names = [s.name for s in SYSTEMS if s.simulator] if args.system == "all" else [args.system]
    opts = SimulateOptions(host=args.host, port=args.port, documents=args.documents,
                           standards_per_document=args.standards_per_document, students=args.students, seed=args.seed)
    anyio.run(serve_simulators, names, opts)  # runs until Ctrl-C
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from worker.cli_kafka import require_kafka
    from worker.operations import status

    config = load_config(args.config)
    configure_logging(config.log_level)
    anyio.run(require_kafka, config)
    print(json.dumps(anyio.run(status, config), indent=2, sort_keys=True, default=str))
    return 0


def _dlq(args: argparse.Namespace) -> int:
    from worker.cli_kafka import require_kafka
    from worker.operations import read_dead_letters

    config = load_config(args.config)
    configure_logging(config.log_level)
    anyio.run(require_kafka, config)
    letters = anyio.run(read_dead_letters, config.kafka.connection(), args.handler, config.kafka.consumer_group_prefix)
    for letter in letters:
        o = letter.original
        print(f"{letter.failed_at:%Y-%m-%dT%H:%M:%SZ}  {o.topic}[{o.partition}]@{o.offset}  key={o.key}  "
              f"attempts={letter.attempts}  {letter.reason.splitlines()[0]}")
    print(f"{len(letters)} dead letter(s) for {args.handler}", file=sys.stderr)
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from schemas.export import export_schemas
    from worker.flows import event_types

    for path in export_schemas(args.directory, event_types()):
        print(path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from worker.demo import DemoOptions, run_demo

    return anyio.run(run_demo, DemoOptions(
        duration=args.duration, bootstrap=args.bootstrap, ops_port=args.ops_port,
        documents=args.documents, standards_per_document=args.standards_per_document, seed=args.seed,
        data_dir=args.data_dir, kafka_port=args.kafka_port, students=args.students,
    ))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subcommand per job."""
    from worker.flows import handler_names

    parser = OneLineParser(
        prog="edusync",
        description="Event-driven integration worker for school-district data, on Apache Kafka.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_version_option(parser)
    add_config_commands(sub)

    run = sub.add_parser("run", help="run pollers and handlers for every tenant in a config file")
    run.add_argument("--config", required=True, type=Path, help="YAML configuration (see deploy/edusync.example.yaml)")
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="the whole system on this machine: Kafka, simulators, worker, live changes")
    demo.add_argument("--duration", type=float, default=None, metavar="S",
                      help="stop after S seconds and print the convergence summary (default: until Ctrl-C)")
    demo.add_argument("--bootstrap", default=None, help="use this Kafka instead of starting a local one")
    demo.add_argument("--documents", type=int, default=20, help="AB Connect documents to generate (default 20)")
    demo.add_argument("--standards-per-document", type=int, default=100, help="AB Connect catalogue size (default 100)")
    demo.add_argument("--students", type=int, default=2000,
                      help="students of the generated district for the roster flows (default 2000; 0: none)")
    demo.add_argument("--seed", type=int, default=1, help="random seed for the catalogue and changes")
    demo.add_argument("--ops-port", type=int, default=9464, help="port for /metrics, /healthz, /readyz")
    demo.add_argument("--data-dir", type=Path, default=Path("var/kafka-demo"), help="local Kafka data folder")
    demo.add_argument("--kafka-port", type=int, default=9192, help="local Kafka port for the demo")
    demo.set_defaults(func=_demo)

    replay = sub.add_parser("replay", help="re-run a handler over its topics from the beginning (fresh group), "
                            "or --dry-run: print the writes a tenant's events since --from would make")
    replay.add_argument("--config", required=True, type=Path)
    replay.add_argument("--handler", choices=handler_names(), help="the handler to replay (dry run: default all)")
    replay.add_argument("--group", default=None, help="tag for the replay's consumer group (default: replay-<time>)")
    cli_controls.replay_options(replay)
    replay.set_defaults(func=lambda args: cli_controls.replay_action(args, _replay))

    status = sub.add_parser("status", help="poller cursors, handler backlogs and dead-letter counts")
    status.add_argument("--config", required=True, type=Path)
    status.set_defaults(func=_status)

    dlq = sub.add_parser("dlq", help="a handler's unresolved dead letters: show, redrive (apply again), purge")
    dlq.add_argument("action", choices=cli_controls.DLQ_ACTIONS)
    dlq.add_argument("--config", required=True, type=Path)
    dlq.add_argument("--handler", required=True, choices=handler_names(), help="whose dead letters")
    dlq.add_argument("--json", action="store_true", help="redrive/purge: print the counts as JSON")
    dlq.set_defaults(func=lambda args: cli_controls.dlq_action(args, _dlq))
    cli_controls.register(sub)

    from worker.systems import SYSTEMS

    simulated = [s.name for s in SYSTEMS if s.simulator]
    simulate = sub.add_parser("simulate", help="serve the API simulators on loopback for your own tests")
    simulate.add_argument("system", choices=[*simulated, "all"])
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8101,
                          help=f"first port: {', '.join(simulated)} take it and the next ones in this order "
                          "(default 8101)")
    simulate.add_argument("--documents", type=int, default=20, help="AB Connect documents (default 20)")
    simulate.add_argument("--standards-per-document", type=int, default=100,
                          help="AB Connect catalogue size (default 100)")
    simulate.add_argument("--students", type=int, default=1000, help="Illuminate district size (default 1000)")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.set_defaults(func=_simulate)

    kafka = sub.add_parser("kafka", help="a local single-node Apache Kafka (KRaft) for development")
    kafka.add_argument("action", choices=["up", "down", "status"])
    kafka.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"default {DEFAULT_DATA_DIR}")
    kafka.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"client port (default {DEFAULT_PORT}; "
                       "the controller uses the next one)")
    kafka.add_argument("--secured", action="store_true",
                       help="also a SASL_SSL listener (PLAIN, SCRAM-SHA-512) with a local CA, in DATA_DIR/tls")
    kafka.add_argument("--secure-port", type=int, default=None,
                       help="SASL_SSL port with --secured (default: the client port + 2)")
    kafka.set_defaults(func=_kafka)

    schemas = sub.add_parser("schemas", help="event schemas")
    schemas_sub = schemas.add_subparsers(dest="schemas_action", required=True, metavar="ACTION")
    export = schemas_sub.add_parser("export", help="write one JSON Schema per event type to DIR")
    export.add_argument("directory", type=Path, metavar="DIR")
    export.set_defaults(func=_schemas)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``edusync`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except BaseException as exc:  # task groups wrap errors; report the first meaningful one
        code = _report(first_error(exc))
    sys.exit(code)


def _report(exc: BaseException) -> int:
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, ConfigError):
        print(f"edusync: configuration error:\n{exc}", file=sys.stderr)
        return 2
    if isinstance(exc, ReplayError):
        print(f"edusync: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, KafkaLaunchError):
        print(f"edusync: local Kafka: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, EdusyncError | OSError):  # Kafka unreachable or refusing us, a port in use, ...
        print(f"edusync: {_one_line(exc)}", file=sys.stderr)
        return 1
    from aiokafka.errors import KafkaError

    if isinstance(exc, KafkaError):
        print(f"edusync: Kafka: {_one_line(exc)}", file=sys.stderr)
        return 1
    raise exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
