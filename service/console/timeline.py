"""The timeline of one automation's firings and action outcomes, laid out for an inline SVG."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["RANGES", "Timeline", "layout"]

# The ranges the console offers, by the name in its `?range=`.
RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}

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


def layout(events: list[dict[str, Any]], since: datetime, until: datetime) -> Timeline:
    """Place each firing and action outcome of [since, until] on its row, by time."""
    plot = Timeline(since, until)
    plot.height = TOP + ROW_HEIGHT * len(ROWS) + BOTTOM
    rows = {kind: TOP + ROW_HEIGHT * (i + 0.5) for i, (kind, _) in enumerate(ROWS)}
    plot.rows = [(kind, label, rows[kind]) for kind, label in ROWS]
    span = (until - since).total_seconds()

    def x_of(moment: datetime) -> float:
        share = (moment - since).total_seconds() / span
        return round(plot.left + share * (plot.right - plot.left), 1)

    long_range = until - since > timedelta(days=1)
    for tick in _ticks(since, until):
        label = tick.strftime("%b %d %H:%M" if long_range else "%H:%M")
        plot.ticks.append((x_of(tick), label))
    plot.counts = {kind: 0 for kind, _ in ROWS}
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
