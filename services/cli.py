"""The `govsync` command: one entry point, a subcommand per process."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govsync",
        description="Bridge case-handling and document systems to the national platforms.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("ingest", help="consume, validate and normalise source events")

    sync = commands.add_parser("sync", help="push normalised dossier status to a destination")
    sync.add_argument("--target", choices=("portal", "ndxp"), required=True)

    scores = commands.add_parser(
        "scores", help="compute the portal's Decision 766 scores per agency and period"
    )
    scores.add_argument(
        "action",
        nargs="?",
        choices=("run", "migrate"),
        default="run",
        help="run the service (default) or only bring its database schema up to date",
    )

    reconcile = commands.add_parser(
        "reconcile", help="check what the portal holds and scores against govsync's view"
    )
    reconcile.add_argument(
        "action",
        choices=("dossiers", "scores"),
        help="sweep every dossier of the period (TraCuuHoSo), or compare the period's scores",
    )
    reconcile.add_argument("--agency", required=True, help="the agency code (madonvi)")
    reconcile.add_argument("--period", required=True, help="2026-11, 2026-Q4 or 2026")

    simulate = commands.add_parser("simulate", help="run the local portal and NDXP simulator")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8090)

    run = commands.add_parser("run", help="run the whole pipeline locally on an embedded broker")
    run.add_argument("--kafka", help="bootstrap servers of an external broker to use instead")
    run.add_argument("--duration", type=float, help="stop after this many seconds")

    check = commands.add_parser(
        "check", help="say what ingest would do with sample events (no broker needed)"
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="files or directories")
    check.add_argument("--format", choices=("text", "json"), default="text")

    account = commands.add_parser(
        "dvcqg-account",
        help="print a hashed login entry for the portal-compatible intake (GOVSYNC_DVCQG_ACCOUNTS)",
    )
    account.add_argument("username")
    account.add_argument(
        "--agency", action="append", required=True, help="an agency code it may write (repeat)"
    )
    account.add_argument("--source", help="CloudEvents source of its events")

    dlq = commands.add_parser("dlq", help="list or replay dead letters")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    for name, text in (("list", "show dead letters"), ("replay", "re-publish dead letters")):
        action = dlq_commands.add_parser(name, help=text)
        action.add_argument("--reason", help="only those whose reason contains this text")
        action.add_argument("--stage", help="only those from this stage")
        action.add_argument("--source", help="only those from this CloudEvents source")
        action.add_argument("--since", help="ISO 8601 time: only those dead-lettered after it")
        action.add_argument("--until", help="ISO 8601 time: only those dead-lettered before it")
        action.add_argument("--limit", type=int, default=1000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Imports are deferred so that one subcommand never pays for another's dependencies.
    if args.command == "ingest":
        from services.ingest.main import main as ingest_main

        return ingest_main()
    if args.command == "sync":
        from services.sync.main import main as sync_main

        return sync_main(target=args.target)
    if args.command == "scores":
        from services.scores.main import main as scores_main
        from services.scores.main import migrate_main

        return migrate_main() if args.action == "migrate" else scores_main()
    if args.command == "reconcile":
        from services.reconcile.command import main as reconcile_main

        return reconcile_main(args.action, args.agency, args.period)
    if args.command == "simulate":
        from services.simulator.main import main as simulate_main

        return simulate_main(host=args.host, port=args.port)
    if args.command == "run":
        from services.localrun.command import main as run_main

        return run_main(kafka=args.kafka, duration=args.duration)
    if args.command == "check":
        from services.ingest.check import main as check_main

        return check_main(args.files, output=args.format)
    if args.command == "dvcqg-account":
        from services.ingest.dvcqg.command import main as account_main

        return account_main(args.username, args.agency, args.source)
    from services.dlq.command import main as dlq_main

    return dlq_main(args)


if __name__ == "__main__":
    sys.exit(main())
