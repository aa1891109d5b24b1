"""Timelines laid out for an inline SVG: an automation's firings and action outcomes, and a backtest's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["BACKTEST_HOURS", "RANGES", "Timeline", "compare_layout", "layout"]

# The ranges the console offers, by the name in its `?range=`.
RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}

# The history a console backtest reads, in hours back from now (the page's select).
BACKTEST_HOURS = (1, 6, 24, 168)

# One row per kind of mark, top to bottom: (kind, label).
ROWS = (
    ("triggered", "fired"),
    ("resolved", "resolved"),
    ("executed", "action ok"),
    ("failed", "action failed"),
)
_TICK_STEPS = (
    timedelta(minutes=5),
    timedelta(minutes=10),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
)
WIDTH, LEFT, RIGHT, ROW_HEIGHT, TOP, BOTTOM = 900, 110, 16, 28, 12, 28
MAX_TICKS = 8


@dataclass
class Mark:
    """One event on the plot: where, which kind, and its hover text."""

    x: float
    y: float
    kind: str
    title: str


@dataclass
class Timeline:
    """Everything the template draws; coordinates are the SVG's user units."""

    since: datetime
    until: datetime
    width: int = WIDTH
    height: int = 0
    left: int = LEFT
    right: int = WIDTH - RIGHT
    rows: list[tuple[str, str, float]] = field(default_factory=list)  # kind, label, y
    ticks: list[tuple[float, str]] = field(default_factory=list)  # x, label
    marks: list[Mark] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _kind(name: str) -> str | None:
    outcome = name.rsplit(".", 1)[-1]
    if name in ("prefect.automation.triggered", "prefect.automation.resolved"):
        return outcome
    if name.startswith("prefect.automation.action.") and outcome in ("executed", "failed"):
        return outcome
    return None  # `.action.triggered` only says an action started: its outcome is drawn


def _ticks(since: datetime, until: datetime) -> list[datetime]:
    span = until - since
    step = next((s for s in _TICK_STEPS if span / s <= MAX_TICKS), _TICK_STEPS[-1])
    # Ticks on round times (UTC): the first multiple of the step after `since`.
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    first = epoch + ((since - epoch) // step + 1) * step
    out = []
    while first <= until:
        out.append(first)
        first += step
    return out


def _frame(since: datetime, until: datetime, rows: tuple[tuple[str, str], ...]) -> Timeline:
    """An empty plot of [since, until] with one row per (kind, label) and its time ticks."""
    plot = Timeline(since, until)
    plot.height = TOP + ROW_HEIGHT * len(rows) + BOTTOM
    plot.rows = [
        (kind, label, TOP + ROW_HEIGHT * (i + 0.5)) for i, (kind, label) in enumerate(rows)
    ]
    long_range = until - since > timedelta(days=1)
    for tick in _ticks(since, until):
        label = tick.strftime("%b %d %H:%M" if long_range else "%H:%M")
        plot.ticks.append((_x_of(plot, tick), label))
    plot.counts = {kind: 0 for kind, _ in rows}
    return plot


def _x_of(plot: Timeline, moment: datetime) -> float:
    share = (moment - plot.since).total_seconds() / (plot.until - plot.since).total_seconds()
    return round(plot.left + share * (plot.right - plot.left), 1)


def _moment(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# A backtest against the deployed version: one row per version.
VERSION_ROWS = (("new", "new version"), ("deployed", "deployed"))


def compare_layout(firings: list[dict[str, Any]], since: datetime, until: datetime) -> Timeline:
    """A backtest's firings (`POST /api/automations/backtest` lines with `diff`) by version.

    A firing both versions make is drawn on both rows (the deployed one at its own time,
    where it differs); each mark's kind is its `diff`, so the page colours what only one
    version fires. `counts` counts the marks of each row.
    """
    plot = _frame(since, until, VERSION_ROWS)
    rows = {kind: y for kind, _, y in plot.rows}
    for line in firings:
        diff = str(line.get("diff", "only_new"))
        moment = _moment(line.get("fired_at"))
        if moment is None:
            continue
        where = [("new", moment)] if diff != "only_deployed" else [("deployed", moment)]
        if diff == "both":
            deployed = _moment((line.get("deployed") or {}).get("fired_at")) or moment
            where.append(("deployed", deployed))
        bucket = ", ".join(f"{k}={v}" for k, v in sorted((line.get("bucket") or {}).items()))
        event = line.get("triggering_event")
        for row, at in where:
            if not since <= at <= until:
                continue
            plot.counts[row] += 1
            title = f"{_utc(at)}: {line.get('state', '')} ({diff.replace('_', ' ')})"
            if line.get("path", "trigger") != "trigger":
                title += f" {line['path']}"  # a child trigger's firing
            title += f", {bucket}" if bucket else ""
            title += f", event {event}" if event else ""
            plot.marks.append(Mark(_x_of(plot, at), rows[row], diff, title))
    return plot


def layout(events: list[dict[str, Any]], since: datetime, until: datetime) -> Timeline:
    """Place each firing and action outcome of [since, until] on its row, by time."""
    plot = _frame(since, until, ROWS)
    rows = {kind: y for kind, _, y in plot.rows}

    def x_of(moment: datetime) -> float:
        return _x_of(plot, moment)

    for event in events:
        kind = _kind(str(event.get("event", "")))
        if kind is None:
            continue
        try:
            moment = datetime.fromisoformat(str(event["occurred"]))
        except (KeyError, ValueError):
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if not since <= moment <= until:
            continue
        plot.counts[kind] += 1
        payload = event.get("payload") or {}
        when = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        title = f"{when}: {kind}"
        if payload.get("action_type"):
            title += f", action {payload.get('action_index')} {payload['action_type']}"
        if payload.get("reason"):
            title += f": {payload['reason']}"
        plot.marks.append(Mark(x_of(moment), rows[kind], kind, title))
    return plot
