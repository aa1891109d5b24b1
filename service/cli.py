"""The `tripwire` command line."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

__all__ = ["build_parser", "main"]

LOG_LEVELS = ("debug", "info", "notice", "warning", "error")


def _version() -> str:
    try:
        return version("tripwire")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tripwire",
        description="Prefect-style automation triggers over a Kafka event stream.",
    )
    parser.add_argument("--version", action="version", version=f"tripwire {_version()}")
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="least severe log lines written (default: TRIPWIRE_LOG_LEVEL, else notice: "
        "warnings and one line per process started or ready)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = commands.add_parser(
        "replay",
        help="run the trigger core over files and print firings as JSON lines",
        description=(
            "Evaluate automations over an events file with a simulated clock and print "
            "one JSON firing per line on stdout. The file is read one line at a time, so "
            "memory does not grow with its length; on a terminal a progress bar shows on "
            "stderr. Invalid events are reported on stderr and skipped; an invalid "
            "automation, ticks or an unreadable file exits 2."
        ),
    )
    replay.add_argument(
        "--automations",
        required=True,
        metavar="FILE",
        help="JSON list of automations (Prefect's JSON; one object = a list of one)",
    )
    replay.add_argument(
        "--events",
        required=True,
        metavar="FILE",
        help="events in arrival order, one JSON object per line",
    )
    replay.add_argument(
        "--ticks",
        metavar="SPEC|FILE",
        help="when periodic work runs: 'step:SECONDS[,from=ISO][,until=ISO]' inline, or a "
        "file holding that, a JSON list of timestamps, or one ISO timestamp per line; "
        "checked before any event is read (default: no ticks, nothing proactive)",
    )
    replay.add_argument(
        "--proactive-mode",
        choices=("direct", "scheduled"),
        default="direct",
        help="direct: every proactive trigger at every tick (default); "
        "scheduled: Prefect's production schedule",
    )
    replay.add_argument(
        "--feed-state-events",
        action="store_true",
        help="feed prefect.automation.triggered events back in (automation chaining)",
    )

    backtest = commands.add_parser(
        "backtest",
        help="what automations would have fired over the events topic's history (or a file)",
        description=(
            "Evaluate automations over history: every partition of TRIPWIRE_TOPIC_EVENTS "
            "(--from-topic), each read in offset order up to its end at the start and "
            "merged by event time as the live stream orders them, or an events file "
            "(--events). Each event is processed at its own occurred time and ticks run "
            "every TRIPWIRE_TICK_INTERVAL of event time. Firings go to stdout (JSON "
            "lines with --json), a summary to stderr, and a progress bar to stderr on a "
            "terminal. --against deployed also runs the deployed versions (from "
            "TRIPWIRE_API_URL; same id, else same name) and shows the difference: + only "
            "the new version fires, - only the deployed one, blank both. Unreadable "
            "records are counted and skipped. See docs/backtest.md."
        ),
    )
    backtest.add_argument(
        "--automations",
        required=True,
        metavar="FILE",
        help="automations in Prefect's JSON or YAML (as `automations apply` reads them)",
    )
    source = backtest.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-topic",
        action="store_true",
        help="read TRIPWIRE_TOPIC_EVENTS on TRIPWIRE_KAFKA_BOOTSTRAP",
    )
    source.add_argument(
        "--events", metavar="FILE", help="read events from a JSON-lines file, in file order"
    )
    backtest.add_argument(
        "--against",
        choices=("deployed",),
        help="compare with the deployed versions of the same automations",
    )
    backtest.add_argument(
        "--since",
        metavar="DURATION|ISO",
        help="only events that occurred from this long ago (90s, 30m, 2h, 7d, 1w) or this "
        "ISO 8601 time (default: all history)",
    )
    backtest.add_argument(
        "--until",
        metavar="DURATION|ISO",
        help="only events that occurred before this (same forms); ticks run up to it "
        "(default: the end of history)",
    )
    backtest.add_argument("--json", action="store_true", help="print firings as JSON lines")

    events = commands.add_parser(
        "events",
        help="produce events to TRIPWIRE_TOPIC_EVENTS from the shell",
        description="Write events to TRIPWIRE_TOPIC_EVENTS on TRIPWIRE_KAFKA_BOOTSTRAP.",
    )
    events_actions = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    produce = events_actions.add_parser(
        "produce",
        help="produce JSON-lines events, each keyed by its prefect.resource.id",
        description=(
            "Read Prefect events, one JSON object per line, from FILE or stdin, validate "
            "each as the worker does, and produce the valid ones to TRIPWIRE_TOPIC_EVENTS "
            "keyed by their prefect.resource.id (so one resource's events keep their "
            "order). Blank lines and lines starting with # or // are skipped. An invalid "
            "line is reported on stderr with its line number and not produced; the rest "
            "still are. Prints `produced N, refused M`; exits 1 if any line was refused, "
            "2 if the broker or the topic is missing."
        ),
    )
    produce.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="events file; '-' or none: stdin"
    )
    firings = commands.add_parser(
        "firings",
        help="read firing records from TRIPWIRE_TOPIC_FIRINGS",
        description="Read TRIPWIRE_TOPIC_FIRINGS on TRIPWIRE_KAFKA_BOOTSTRAP.",
    )
    firings_actions = firings.add_subparsers(dest="action", required=True, metavar="ACTION")
    tail = firings_actions.add_parser(
        "tail",
        help="print firing records as JSON lines, from now on (or from the beginning)",
        description=(
            "Print each firing record (docs/firings.md) as one JSON line on stdout, "
            "partition by partition, without a consumer group (nothing is committed). "
            "It starts at the topic's current end (the newest firings only) unless "
            "--from-beginning is given; without --follow it stops at the end it found "
            "on start, so on its own it prints nothing. --follow keeps printing until "
            "Ctrl-C or SIGTERM, which exit 0. Exits 2 if the broker or the topic is missing."
        ),
    )
    tail.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing new firings until interrupted",
    )
    tail.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the oldest record still on the topic instead of its current end",
    )
    tail.add_argument(
        "--automation",
        metavar="NAME",
        help="only firings of this automation (its exact name or id)",
    )

    commands.add_parser(
        "up",
        help="run the embedded default: broker, worker, API and action worker, supervised",
        description=(
            "Start a local Kafka-protocol broker (Tansu) on TRIPWIRE_KAFKA_BOOTSTRAP, "
            "create the topics, re-publish the automations saved in TRIPWIRE_DATA_DIR, "
            "and run one stream worker, the automations API and an action worker. "
            "Prints one line per part started and one when every part answers ready. "
            "SIGINT (Ctrl-C), SIGTERM and SIGHUP stop every part; when one part exits, "
            "the others are stopped and `up` exits with that part's status after "
            "printing the end of its log. Its ports must be free: a busy one is an error. "
            "To run beside another `up`, give every port: TRIPWIRE_KAFKA_BOOTSTRAP, "
            "TRIPWIRE_API_PORT (and TRIPWIRE_API_URL for the CLI), TRIPWIRE_WORKER_WEB_PORT, "
            "TRIPWIRE_ACTIONS_WEB_PORT, and a TRIPWIRE_DATA_DIR of its own. The web console "
            "is at http://TRIPWIRE_API_HOST:TRIPWIRE_API_PORT/console/ "
            "(TRIPWIRE_CONSOLE_ENABLED)."
        ),
    )
    commands.add_parser(
        "worker",
        help="run one stream worker against TRIPWIRE_KAFKA_BOOTSTRAP",
        description=(
            "Run a stream worker (route, evaluate, compose agents and the tick timer) "
            "on any Kafka cluster; settings come from TRIPWIRE_* environment variables."
        ),
    )
    commands.add_parser(
        "api",
        help="serve the automations REST API (Prefect's routes) on TRIPWIRE_API_PORT",
        description=(
            "Serve Prefect's automation routes under /api on TRIPWIRE_API_HOST:"
            "TRIPWIRE_API_PORT, backed by the automations topic; OpenAPI docs at /api/docs. "
            "Point Prefect's client at it with PREFECT_API_URL."
        ),
    )
    automations = commands.add_parser(
        "automations",
        help="apply, list, show, pause, resume or remove automations through the API",
        description=(
            "Manage automations through the API at TRIPWIRE_API_URL (with "
            "TRIPWIRE_API_TOKEN when it is set). Every worker picks a change up without "
            "a restart. AUTOMATION is an id or an exact name."
        ),
    )
    actions = automations.add_subparsers(dest="action", required=True, metavar="ACTION")
    apply = actions.add_parser(
        "apply",
        help="create or update automations from a JSON or YAML file (Prefect's JSON)",
        description=(
            "Idempotent: an automation with an id updates that id (or is created with "
            "it); without an id, the one automation of the same name is updated, else "
            "a new one is created. All or nothing: every automation is validated first, "
            "and if any is invalid, each error is printed and nothing is written."
        ),
    )
    apply.add_argument(
        "file",
        help="JSON or YAML (.json: JSON), '-' for stdin; Prefect's shapes: an object "
        "with an `automations` list, a list, or one automation",
    )
    apply.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and print what would be created, updated or unchanged; write nothing",
    )
    apply.add_argument(
        "--allow-self-trigger",
        action="store_true",
        help="accept a trigger that matches the automation's own triggered events or "
        "action outcome events",
    )
    actions.add_parser("ls", help="list automations: id, state, last fired, name")
    history = actions.add_parser(
        "history",
        help="show an automation's firings and whether their actions worked",
        description=(
            "Read the API's history (POST /api/events/filter): each firing of the "
            "automation, oldest first, with its triggering event and bucket labels, and "
            "the outcome of each of its actions (executed, or failed with the reason). "
            "The API keeps TRIPWIRE_HISTORY_MAX_AGE seconds and "
            "TRIPWIRE_HISTORY_MAX_PER_AUTOMATION events per automation."
        ),
    )
    history.add_argument("automation", metavar="AUTOMATION", help="an id or an exact name")
    history.add_argument(
        "--since",
        metavar="DURATION|ISO",
        help="from this long ago (90s, 30m, 2h, 7d, 1w) or this ISO 8601 time "
        "(default: everything kept)",
    )
    history.add_argument("--json", action="store_true", help="print the firings as JSON")
    for name, text in (
        ("get", "print automations as JSON"),
        ("pause", "stop evaluating automations (enabled: false)"),
        ("resume", "evaluate automations again (enabled: true)"),
        ("rm", "delete automations"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("automations", nargs="+", metavar="AUTOMATION")
    explain = commands.add_parser(
        "explain",
        help="show an automation's live bucket state and why it has or has not fired",
        description=(
            "Ask the API, which asks every worker holding state for the automation: "
            "per trigger, the open buckets per bucketing key (window, count against the "
            "threshold, `after` seen, composite children stored) and a plain sentence."
        ),
    )
    explain.add_argument("automation", metavar="AUTOMATION", help="an id or an exact name")
    explain.add_argument("--key", help="one bucketing key: its for_each values joined by commas")
    explain.add_argument("--json", action="store_true", help="print the API's JSON")
    commands.add_parser(
        "actions",
        help="run an action worker: turn firings into effects (webhooks, Prefect API calls)",
        description=(
            "Consume TRIPWIRE_TOPIC_FIRINGS in the consumer group TRIPWIRE_ACTIONS_GROUP and "
            "run each firing's actions (Prefect's action JSON): webhooks and notifications, "
            "emit-event, Prefect API actions against TRIPWIRE_PREFECT_API_URL, pause/resume "
            "of automations against TRIPWIRE_API_URL. Failures are retried with backoff "
            "(TRIPWIRE_ACTION_MAX_ATTEMPTS, TRIPWIRE_ACTION_MAX_SECONDS), then dead-lettered "
            "to TRIPWIRE_TOPIC_ACTIONS_DLQ; completed actions are recorded in "
            "TRIPWIRE_ACTIONS_STATE_DIR so a redelivered firing does not repeat them. "
            "Serves /metrics, /healthz and /readyz on TRIPWIRE_ACTIONS_WEB_PORT. "
            "See docs/actions.md."
        ),
    )
    bridge = commands.add_parser(
        "bridge",
        help="bring another system's events into the events topic",
        description="Bridges produce external events to TRIPWIRE_TOPIC_EVENTS.",
    )
    bridges = bridge.add_subparsers(dest="source", required=True, metavar="SOURCE")
    prefect_bridge = bridges.add_parser(
        "prefect",
        help="follow a Prefect server's live event stream (its events websocket)",
        description=(
            "Subscribe to the events websocket of the Prefect server at "
            "TRIPWIRE_PREFECT_API_URL (e.g. http://127.0.0.1:4200/api) and produce every "
            "event to TRIPWIRE_TOPIC_EVENTS, keyed by its prefect.resource.id. After a "
            "disconnect or a restart it asks the server again from one minute before the "
            "newest event it produced (kept in TRIPWIRE_DATA_DIR/bridge-prefect.json) and "
            "drops ids it has already produced. The server backfills at most "
            "PREFECT_EVENTS_MAXIMUM_WEBSOCKET_BACKFILL (15 minutes by default)."
        ),
    )
    prefect_bridge.add_argument(
        "--since",
        metavar="ISO",
        help="start from this time instead of the saved position (default: the saved "
        "position, else one minute ago)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tripwire` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "replay":
        from service import replay

        status: int = replay.main(args)
        return status
    if args.command in (
        "up",
        "worker",
        "api",
        "automations",
        "explain",
        "actions",
        "bridge",
        "events",
        "firings",
        "backtest",
    ):
        from service.config import Settings
        from service.errors import ServiceError, ValidationFailed
        from service.logs import configure_logging

        try:
            settings = Settings()
            if args.log_level is not None:
                settings = settings.model_copy(update={"log_level": args.log_level})
            configure_logging(settings.log_format, args.command, settings.log_level)
            if args.command in ("automations", "explain"):
                from service import automations_cli

                return automations_cli.main(args, settings)
            if args.command in ("events", "firings"):
                from service import kafka_cli

                return kafka_cli.main(args, settings)
            if args.command == "backtest":
                from service import backtest_cli

                status = backtest_cli.main(args, settings)
                return status
            if args.command == "up":
                from service.embedded import run_up

                return run_up(settings)
            if args.command == "api":
                from service.api.server import run_api

                return run_api(settings)
            if args.command == "actions":
                from service.actions.worker import run_actions

                return run_actions(settings)
            if args.command == "bridge":
                from service.bridge.prefect import run_bridge

                return run_bridge(settings, args.since)
            from service.worker import run_worker

            return run_worker(settings)
        except ValidationFailed as exc:
            print(f"tripwire {args.command}: invalid automation: {exc}", file=sys.stderr)
            return 2
        except ServiceError as exc:
            print(f"tripwire {args.command}: {exc}", file=sys.stderr)
            return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
