"""Stream time: what the events read so far prove about time, per partition and merged.

The route stage reads each events partition in offset order and keeps a `SourceClock`
per partition. Its watermark is the event time (`occurred`, as Prefect's windows use)
up to which the partition has been read, less the disorder allowance:

* while the partition has a backlog (records past what route has processed), the
  watermark stands where the backlog is: at the earliest `occurred` among the records
  of the last batch, so events that arrive late (a bridge catching up, a restart
  reading what came in while it was down) are judged among the events around them;
* once route has read the partition to its end, the watermark is Prefect's events
  clock for that partition: the latest `occurred` read plus the wall time elapsed
  since it was read, but only as far as a fetch has proven the partition still had
  nothing more (`caught_up`). A worker that was paused or stopped has proven nothing
  for that time, so its watermark does not jump when it resumes; a partition that
  really is quiet moves with the wall clock, so a true absence still fires.

It never runs ahead of the wall clock that read it. Each evaluate partition merges the
watermarks of every source partition (`Watermarks`): its stream time is their minimum,
unknown until every source has reported once, as Flink carries watermarks through a
shuffle. Nothing here reads a clock: times come in as arguments (microseconds).

A partition has a second mark, the *order mark*, for the order in which evaluate
applies matches (service/core/hold.py): while it has a backlog, the latest `occurred`
of the last batch read (no allowance; as Kafka Streams' stream time, the partition is
taken to be in order); once read to its end, the time of the fetch that proved it,
since every event appended before that fetch has been read. An event waits only for
the other partitions to be read past its own time, not for the disorder allowance, so
ordering costs a fetch's latency, not seconds. An event appended after that fetch with
an older `occurred` is late for ordering: applied at once, which is the order it was
produced in, as `tripwire replay` reads a file.
"""

from __future__ import annotations

__all__ = ["SourceClock", "Watermarks"]


class SourceClock:
    """The progress of one events partition through the route stage."""

    __slots__ = ("_backlog", "_backlog_latest", "caught_up_at", "latest", "read_at")

    def __init__(self) -> None:
        self.latest: int | None = None  # latest occurred read, capped at the read time
        self.read_at: int | None = None  # wall time `latest` was read at
        self.caught_up_at: int | None = None  # when a fetch last proved nothing was left
        self._backlog: int | None = None  # earliest occurred of the last backlogged batch
        self._backlog_latest: int | None = None  # and its latest

    def read(self, earliest: int, latest: int, wall: int, *, caught_up_at: int | None) -> None:
        """A batch of this partition's events, with `occurred` from `earliest` to `latest`.

        `caught_up_at`: the time of the fetch after which nothing was left to read, or
        None when the batch ended with records still behind it.
        """
        latest = min(latest, wall)
        if self.latest is None or latest >= self.latest:
            self.latest, self.read_at = latest, wall
        if caught_up_at is None:
            self._backlog, self._backlog_latest = min(earliest, wall), latest
        else:
            self.idle(caught_up_at)

    def idle(self, caught_up_at: int) -> None:
        """A fetch at `caught_up_at` found nothing left to read in the partition."""
        if self.caught_up_at is None or caught_up_at > self.caught_up_at:
            self.caught_up_at = caught_up_at
        self._backlog = self._backlog_latest = None

    def order_mark(self) -> int | None:
        """Event time this partition has been read up to, for ordering; None: unknown.

        While records wait, the latest `occurred` of the last batch: the partition's
        records come in offset order, and one behind it with an older `occurred` is late
        (applied at once, after the newer ones of other partitions).
        """
        if self._backlog_latest is not None:
            return self._backlog_latest
        return self.caught_up_at

    def watermark(self, allowance: int) -> int | None:
        """Event time this partition has been read up to, less `allowance`; None: unknown."""
        if self._backlog is not None:
            return self._backlog - allowance
        if self.caught_up_at is None:
            return None
        if self.latest is None or self.read_at is None:
            return self.caught_up_at - allowance
        return self.latest + max(0, self.caught_up_at - self.read_at) - allowance


class Watermarks:
    """The marks of every source partition feeding one partition, and their minimum."""

    __slots__ = ("_by_source", "_order_by_source", "sources")

    def __init__(self, sources: int) -> None:
        self.sources = sources
        self._by_source: dict[int, int] = {}
        self._order_by_source: dict[int, int] = {}

    def advance(self, source: int, watermark: int, order_mark: int) -> None:
        """The latest marks of one source (they may move back: a backlog came in)."""
        self._by_source[source] = watermark
        self._order_by_source[source] = order_mark

    def lower(self, source: int, watermark: int) -> None:
        """A late event of `source` arrived: its watermark is no later than this.

        The watermark this partition last heard from `source` was sent before the event
        was read; until `source` reports again, deadlines wait for the late event's
        neighbours (a sweep or a proactive judgment would otherwise act on its bucket
        before the events that follow it arrive).
        """
        known = self._by_source.get(source)
        if known is not None and watermark < known:
            self._by_source[source] = watermark

    def current(self) -> int | None:
        """The stream time of this partition: the slowest source's, once all reported."""
        if len(self._by_source) < self.sources:
            return None
        return min(self._by_source.values())

    def order(self) -> int | None:
        """Event time up to which every source has been read; None until all reported."""
        if len(self._order_by_source) < self.sources:
            return None
        return min(self._order_by_source.values())
