"""Faust consumer fix: each source partition's records reach the agents in order, none skipped.

Around a rebalance Faust's consumer can hand out records that are not the next ones
after the committed offset: records fetched for an earlier generation or before the
post-recovery seek (Faust resumes the partitions, then seeks them to their committed
offsets), from positions far ahead of the commit. Faust reads the jump from its read
offset to such a record as a gap in the log (as compaction or transaction markers
leave) and counts every offset in it as acknowledged, and it drops the records that
arrive again from the seek offset as already read. The next commit then passes records
that no agent ever saw: the reliability suite's rebalance test lost events, match and
child-firing records this way (docs/reliability.md, "Found by this suite").

`Positions` keeps, per source partition, the offset of the next record to hand out:

* from an assignment until the partitions are sought to their committed offsets,
  nothing is handed out: where the fetcher stands is unknown. Faust seeks after
  recovery; a record that arrives before that makes the consumer seek first (as Faust
  itself does when it fetches while paused). With nothing committed, the records must
  start at the log's beginning;
* a record below the next offset was handed out already (the seek went back) and is
  dropped;
* a record above it means records were skipped: the partition is sought back and the
  rest of that fetch is dropped. If a fetch made after that still starts above it, the
  offsets really are missing from the log (compaction, transaction markers) and the
  record is handed out, as Faust would;
* a record that Faust drops from an agent's queue before any agent took it was not
  processed, though it was handed out: when recovery ends, Faust seeks the partitions
  to their committed offsets and only then resumes its flow control, which empties the
  agents' queues, so records fetched in between were dropped. The partition is sought
  back to the first of them before the next fetch. Faust would otherwise go on with the
  next records and commit past the one it dropped (its commit tolerates one unacked
  record at the committed offset): the rebalance test lost a record so;
* a batch that an agent could not finish (its records dropped unprocessed, say a send
  failed) is rewound the same way (`rewind`), and the records of its partitions that
  were fetched before the seek are stale (`stale`): handed out ahead of the rewound
  ones, they would pass the redelivery guards of the records they follow.

Whatever was rewound is also held: Faust commits the first run of acknowledged
offsets wherever it starts, so records acknowledged after an unprocessed one would
carry the commit past it. No commit passes a held record until it was handed out
again and acknowledged.

An agent may also keep part of what it read for later (evaluate holds matches until
the stream's order mark passes them, service/core/hold.py) and acknowledge the records
anyway, so that Faust's rebalance, which waits for every unacknowledged record, is not
held up. Such a partition has a floor (`floors`): the first record whose content is
still kept. No commit reaches past it, so a crash or a new owner reads it again.

Changelog partitions are not ordered here: recovery reads them in bulk, and compacted
ones are full of real gaps. But the same resume also empties the changelog queue, and
Faust never seeks a changelog partition back either: a standby replica that started
reading just before recovery ended lost the records waiting there, went on with the
next ones, and its persisted offset then claimed a copy it never had (the rebalance
test lost a bucket's count when that replica took the partition over). Recovery skips
a changelog record at or below the last one it took, so the rest of the fetch in
flight is held back for such a partition, and before the next fetch it is sought back
to the first dropped record, unless the consumer already stands at or below it
(`refetch_changelogs`).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from enum import Enum
from typing import Any

__all__ = [
    "Decision",
    "Positions",
    "install_ordered_fetch",
    "positions_of",
    "refetch_changelogs",
    "waiting_records",
]

logger = logging.getLogger(__name__)


class Decision(Enum):
    """What to do with a fetched record."""

    HAND_OUT = "hand out"
    DROP = "drop"
    SEEK_BACK = "seek back"
    SEEK_COMMITTED = "seek to the committed offsets"


class Positions:
    """Per source partition: the next offset to hand out, and where a hole was sought back."""

    def __init__(self) -> None:
        self.next: dict[Any, int] = {}
        self.blocked: set[Any] = set()
        self.sought_back: dict[Any, int] = {}  # partition -> the fetch it was sought back in
        self.rewinds: dict[Any, int] = {}  # partition -> offset to seek to before fetching
        # Partitions not ordered here (changelogs) -> the first record dropped unapplied.
        self.refetches: dict[Any, int] = {}
        # partition -> offset a failed batch was rewound to: records past it that were
        # fetched before the rewind are stale until that offset is handed out again.
        self.awaiting: dict[Any, int] = {}
        # partition -> a record handed out but not processed: no commit may pass it
        # until it is handed out again and acknowledged.
        self.held: dict[Any, int] = {}
        # partition -> the first record an agent acknowledged but still keeps unapplied.
        self.floors: dict[Any, int] = {}

    def assigned(self, partitions: Iterable[Any]) -> None:
        """A new assignment: hold every partition until it is sought."""
        self.next.clear()
        self.sought_back.clear()
        self.rewinds.clear()
        self.awaiting.clear()
        self.held.clear()
        self.floors.clear()
        # Recovery seeks every changelog partition from its persisted offset anyway.
        self.refetches.clear()
        self.blocked = set(partitions)

    def sought(self, partition: Any, offset: int | None) -> None:
        """The partition was sought to `offset`.

        None: nothing committed yet. The consumer then starts at the log's beginning
        (auto_offset_reset "earliest") but Faust does not seek, so the fetcher may still
        stand where an earlier generation left it; the first record must be the log's
        first, and one past it is sought back (a log that starts later is a real gap).
        """
        self.blocked.discard(partition)
        self.sought_back.pop(partition, None)
        self.rewinds.pop(partition, None)
        self.awaiting.pop(partition, None)
        self.held.pop(partition, None)
        self.next[partition] = offset if offset is not None and offset >= 0 else 0

    def dropped(self, partition: Any, offset: int) -> None:
        """Faust dropped the handed-out record at `offset` before an agent took it.

        It and the records handed out after it go out again: the next offset moves back
        to it, and the partition is sought there before the next fetch (`take_rewinds`).
        A record at or past the next offset will be fetched anyway, and a blocked
        partition is sought to its committed offset anyway. A partition not ordered
        here (a table's changelog) is kept for `take_refetches`.
        """
        expected = self.next.get(partition)
        if expected is None and partition not in self.blocked:
            self.refetches[partition] = min(offset, self.refetches.get(partition, offset))
            return
        if partition in self.blocked or expected is None or offset >= expected:
            return
        self.rewind(partition, offset)

    def rewind(self, partition: Any, offset: int) -> bool:
        """A batch from `offset` on failed: process the partition again from there.

        Records past it that were fetched before the seek (waiting in a queue or a
        take buffer) are stale until `offset` is handed out again (`stale`): applied
        ahead of it they would pass the redelivery guards of the records they follow.
        False for a partition this consumer does not order (not assigned any more).
        """
        if partition in self.blocked or partition not in self.next:
            return False
        self.next[partition] = offset
        self.sought_back.pop(partition, None)
        self.rewinds[partition] = offset
        self.awaiting[partition] = offset
        self.held[partition] = min(offset, self.held.get(partition, offset))
        return True

    def stale(self, partition: Any, offset: int) -> bool:
        """Is this record one fetched before its partition was rewound (skip it)?"""
        awaited = self.awaiting.get(partition)
        if awaited is None:
            return False
        if offset == awaited:
            del self.awaiting[partition]
            return False
        return True

    def may_commit_from(self, partition: Any, first: int, acked: Any) -> bool:
        """May a commit cover the acked run that starts at `first`?

        Not while a record below it is held (handed out, never processed); the hold
        ends once that record was handed out again and acked.
        """
        held = self.held.get(partition)
        if held is None:
            return True
        if held in acked:
            del self.held[partition]
            return True
        return first <= held

    def take_rewinds(self) -> dict[Any, int]:
        """The partitions to seek back before the next fetch, and where to."""
        rewinds, self.rewinds = self.rewinds, {}
        return rewinds

    def holds(self, partition: Any) -> bool:
        """Is an unordered partition waiting to be fetched again? Its records are dropped.

        Recovery applies a changelog record only above the last one it took: one that
        followed the dropped records would make them look applied.
        """
        return partition in self.refetches

    def take_refetches(self) -> dict[Any, int]:
        """Unordered partitions whose records were dropped unprocessed, and the first.

        Taken before a fetch: the partitions are released and sought back.
        """
        refetches, self.refetches = self.refetches, {}
        return refetches

    def decide(self, partition: Any, offset: int, fetch: int) -> Decision:
        """Hand out, drop, or seek back for the record at `offset`, read in fetch `fetch`."""
        if partition in self.blocked:
            return Decision.SEEK_COMMITTED
        expected = self.next.get(partition)
        if expected is not None:
            if offset < expected:
                return Decision.DROP
            if offset > expected:
                sought_in = self.sought_back.get(partition)
                if sought_in is None:
                    self.sought_back[partition] = fetch
                    return Decision.SEEK_BACK
                if sought_in == fetch:
                    return Decision.DROP
                # A fetch made after seeking back still starts past it: a real gap.
        self.next[partition] = offset + 1
        self.sought_back.pop(partition, None)
        return Decision.HAND_OUT


def waiting_records(queues: Iterable[Any]) -> dict[Any, int]:
    """Per partition, the lowest offset of the records waiting in agents' queues."""
    lowest: dict[Any, int] = {}
    for queue in queues:
        for item in list(queue._queue):  # asyncio.Queue's deque: what clear() drops
            message = getattr(item, "message", None)
            if message is None:
                continue
            tp, offset = message.tp, message.offset
            if tp not in lowest or offset < lowest[tp]:
                lowest[tp] = offset
    return lowest


async def refetch_changelogs(
    consumer: Any, refetches: dict[Any, int], seek: Callable[[Any, Any, int], Awaitable[None]]
) -> dict[Any, int]:
    """Seek changelog partitions back to records a resume dropped before recovery applied them.

    Only partitions still assigned, and only backwards: a consumer that stands at or
    below the first dropped record (recovery sought it there since) fetches it anyway.
    Returns the partitions sought and where to.
    """
    assignment = consumer.assignment() if refetches else set()
    sought: dict[Any, int] = {}
    for tp, offset in refetches.items():
        if tp not in assignment or not consumer._is_changelog_tp(tp):
            continue
        position = await consumer.position(tp)
        if position is None or position <= offset:
            continue
        await _seek_back(
            consumer, seek, tp, offset, "were dropped before recovery applied them; fetching"
        )
        sought[tp] = offset
    return sought


async def _seek_back(
    consumer: Any, seek: Callable[[Any, Any, int], Awaitable[None]], tp: Any, offset: int, why: str
) -> None:
    """Seek `tp` back to `offset`, saying why in the log."""
    logger.warning(
        "%s[%d]: records from %d %s them again",
        tp.topic,
        tp.partition,
        offset,
        why,
        extra={"topic": tp.topic, "partition": tp.partition},
    )
    await seek(consumer, tp, offset)


# Every consumer's positions: mode's flow control does not know the consumer it serves.
_every: weakref.WeakSet[Positions] = weakref.WeakSet()


def positions_of(consumer: Any) -> Positions:
    """The positions of one Faust consumer (created on first use)."""
    positions: Positions | None = consumer.__dict__.get("_tripwire_positions")
    if positions is None:
        positions = consumer.__dict__["_tripwire_positions"] = Positions()
        _every.add(positions)
    return positions


_installed = False


def install_ordered_fetch() -> None:
    """Patch faust-streaming 0.15's base consumer and mode's flow control (idempotent)."""
    global _installed
    if _installed:
        return
    from faust.transport.consumer import Consumer
    from mode.utils.queues import FlowControlEvent

    getmany = Consumer.getmany
    seek = Consumer.seek
    perform_seek = Consumer.perform_seek
    on_assigned = Consumer.on_partitions_assigned
    resume = FlowControlEvent.resume
    new_offset = Consumer._new_offset
    fetches = [0]

    async def ordered_getmany(
        self: Any,
        timeout: float,  # noqa: ASYNC109  # Faust's signature
    ) -> AsyncIterator[tuple[Any, Any]]:
        positions = positions_of(self)
        fetches[0] += 1
        fetch = fetches[0]
        rewinds = positions.take_rewinds()
        assignment = self.assignment() if rewinds else set()
        for tp, offset in rewinds.items():
            if tp in assignment:
                await _seek_back(
                    self, seek, tp, offset, "were dropped before an agent took them; seeking to"
                )
        await refetch_changelogs(self, positions.take_refetches(), seek)
        async for tp, message in getmany(self, timeout):
            if self._is_changelog_tp(tp):
                if not positions.holds(tp):
                    yield tp, message
                continue
            expected = positions.next.get(tp)
            decision = positions.decide(tp, message.offset, fetch)
            if decision is Decision.SEEK_COMMITTED:
                await ordered_perform_seek(self)
                continue
            if decision is Decision.SEEK_BACK and expected is not None:
                logger.warning(
                    "%s[%d]: record %d arrived where %d was next; seeking back to it",
                    tp.topic,
                    tp.partition,
                    message.offset,
                    expected,
                    extra={"topic": tp.topic, "partition": tp.partition},
                )
                await seek(self, tp, expected)
            if decision is not Decision.HAND_OUT:
                continue
            # Faust drops a record below its read offset as read; a stale record may
            # have moved that offset past records that were never handed out.
            read = self._read_offset.get(tp)
            if read is not None and read > message.offset:
                self._read_offset[tp] = message.offset
            yield tp, message

    async def ordered_seek(self: Any, partition: Any, offset: int) -> None:
        await seek(self, partition, offset)
        if not self._is_changelog_tp(partition):
            positions_of(self).sought(partition, offset)

    async def ordered_perform_seek(self: Any) -> None:
        await perform_seek(self)
        positions = positions_of(self)
        # Faust's read offsets cover the changelogs too; those are not ordered here.
        for tp, offset in list(self._read_offset.items()):
            if not self._is_changelog_tp(tp):
                positions.sought(tp, offset)

    async def ordered_on_assigned(self: Any, assigned: Any, generation_id: int = 0) -> None:
        positions_of(self).assigned(tp for tp in assigned if not self._is_changelog_tp(tp))
        await on_assigned(self, assigned, generation_id)

    def ordered_resume(self: Any) -> None:
        # Resuming empties the agents' queues and the changelog queue (clear_on_resume):
        # what waited there was handed out but never processed.
        dropped = waiting_records(self._queues)
        resume(self)
        for positions in list(_every):
            for tp, offset in dropped.items():
                positions.dropped(tp, offset)

    def held_new_offset(self: Any, tp: Any) -> int | None:
        # Faust commits the first run of acked offsets wherever it starts (it tolerates
        # one unacked record at the committed offset, and any number while nothing is
        # committed), so a batch that failed was passed as soon as later records were
        # acked: its events were lost (issue 19). A held record stops that; checked
        # before Faust's own, which consumes the run it returns.
        acked = self._acked[tp]
        positions = positions_of(self)
        if acked and not positions.may_commit_from(tp, min(acked), self._acked_index[tp]):
            return None
        floor = positions.floors.get(tp)
        if floor is None or not acked or max(acked) < floor:
            result: int | None = new_offset(self, tp)
            return result
        # Only the offsets below the floor are offered; the rest wait, still acked.
        above = [offset for offset in acked if offset >= floor]
        acked[:] = [offset for offset in acked if offset < floor]
        try:
            result = new_offset(self, tp) if acked else None
        finally:
            acked.extend(above)
        return result

    Consumer.getmany = ordered_getmany  # type: ignore[method-assign]
    Consumer.seek = ordered_seek  # type: ignore[method-assign]
    Consumer.perform_seek = ordered_perform_seek  # type: ignore[method-assign]
    Consumer.on_partitions_assigned = ordered_on_assigned  # type: ignore[method-assign]
    FlowControlEvent.resume = ordered_resume  # type: ignore[method-assign]
    Consumer._new_offset = held_new_offset  # type: ignore[method-assign]
    _installed = True
