"""One contract for every `StateStore`: memory (the reference) and the worker's DocumentStore.

`DocumentStore` is the store the worker runs: a memory store that writes its changed
documents to a Faust table (RocksDB and a changelog) once per batch and is loaded back
from them after a restart or a handover (`topologies/tables.py`). Every test here runs on
it too, and then saves it to a table and loads it into a new store, which must hold
exactly what the live one held.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.store import Bucket, BucketKey, HeldEvent, StateStore
from service.core.times import from_us
from service.models.events import Event
from service.state.documents import DocumentStore
from service.state.memory import MemoryStateStore

BACKENDS = ["memory", "document"]
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# What a RocksDB partition of a Faust table holds: document key -> bytes.
Table = dict[bytes, bytes]


def save(store: DocumentStore, table: Table) -> None:
    """Write the store's changed documents as `PartitionTable.write` does."""
    for key, value in store.flush():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value


def reload(table: Table) -> DocumentStore:
    """A new store loaded from the table, in RocksDB's key order, as after a recovery."""
    loaded = DocumentStore()
    loaded.load(sorted(table.items()))
    return loaded


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore()
        return
    live = DocumentStore()
    yield live
    table: Table = {}
    save(live, table)
    assert_same_holdings(reload(table), live)


# -- helpers ------------------------------------------------------------------------------
def uid(n: int) -> str:
    return str(uuid.UUID(int=n))


def make_event(
    occurred: int,
    *,
    n: int | None = None,
    follows: str | None = None,
    received: int | None = None,
    source_received: int | None = None,
    payload: dict[str, Any] | None = None,
) -> EventRecord:
    data: dict[str, Any] = {
        "id": uid(n) if n is not None else str(uuid.uuid4()),
        "occurred": from_us(occurred).isoformat(),
        "event": "prefect.flow-run.Completed",
        "resource": {"prefect.resource.id": "prefect.flow-run.1", "name": "ünïcode ✓"},
        "related": [{"prefect.resource.id": "prefect.flow.9", "prefect.resource.role": "flow"}],
        "payload": payload if payload is not None else {"n": 1},
    }
    if follows is not None:
        data["follows"] = follows
    if source_received is not None:
        data["received"] = from_us(source_received).isoformat()
    return EventRecord(Event.model_validate(data), received)


def event_view(event: EventRecord | None) -> Any:
    if event is None:
        return None
    return (event.id, event.name, event.occurred, event.received, event.follows, event.to_json())


def bucket_view(bucket: Bucket | None) -> Any:
    if bucket is None:
        return None
    return (bucket.start, bucket.end, bucket.count, event_view(bucket.last_event))


def firing_view(firing: Firing) -> Any:
    return (
        firing.id,
        firing.trigger_id,
        firing.automation_id,
        firing.fired_at,
        firing.labels,
        event_view(firing.triggering_event),
        firing.state,
        firing.window,
        tuple(firing_view(child) for child in firing.child_firings),
        repr(firing.triggering_value),
    )


def due_view(rows: list[tuple[BucketKey, Bucket]]) -> list[Any]:
    return [(key, bucket_view(bucket)) for key, bucket in rows]


def ids(events: list[EventRecord]) -> list[str]:
    return [event.id for event in events]


def bucket(end: int, *, start: int | None = None, count: int = 1) -> Bucket:
    if start is None:
        start = end - 10 if end - 10 >= INT64_MIN else end
    return Bucket(start=start, end=end, count=count)


# -- buckets --------------------------------------------------------------------------------
def test_bucket_round_trip(store: StateStore) -> None:
    event = make_event(
        1_000,
        payload={
            "big": 2**63 - 1,
            "small": -(2**63),
            "float": 0.1,
            "nested": {"l": [1, None, "x"]},
            "e": "é",
        },
    )
    stored = Bucket(start=-5, end=1_005, count=7, last_event=event)
    store.put_bucket("t1", ("a", "b"), stored)
    assert bucket_view(store.bucket("t1", ("a", "b"))) == bucket_view(stored)
    assert store.bucket("t1", ("a",)) is None
    assert store.bucket("t2", ("a", "b")) is None
    store.put_bucket("t1", (), bucket(50))
    assert bucket_view(store.bucket("t1", ())) == bucket_view(bucket(50))


def test_put_bucket_replaces(store: StateStore) -> None:
    store.put_bucket("t1", ("k",), bucket(10, count=1))
    store.put_bucket("t1", ("k",), bucket(10, count=2))
    assert bucket_view(store.bucket("t1", ("k",))) == bucket_view(bucket(10, count=2))
    assert store.bucket_count() == 1
    assert due_view(store.due_buckets("t1", 10)) == [(("k",), bucket_view(bucket(10, count=2)))]


def test_delete_bucket(store: StateStore) -> None:
    store.put_bucket("t1", ("k",), bucket(10), satisfied=True)
    store.put_bucket("t1", ("j",), bucket(10))
    store.delete_bucket("t1", ("k",))
    assert store.bucket("t1", ("k",)) is None
    assert store.bucket_count() == 1
    assert [key for key, _ in store.due_buckets("t1", 100)] == [("j",)]
    assert store.expired_buckets(100) == [("t1", ("j",))]
    assert store.satisfied_keys("t1") == []
    store.delete_bucket("t1", ("k",))  # absent: no error, nothing changes
    store.delete_bucket("t9", ("zz",))
    assert store.bucket_count() == 1
    store.delete_bucket("t1", ("j",))
    assert store.bucket_count() == 0
    assert store.next_end_after("t1", 0) is None
    assert list(store.buckets("t1")) == []


def test_index_follows_a_changed_end(store: StateStore) -> None:
    store.put_bucket("t1", ("k",), bucket(10))
    store.put_bucket("t1", ("k",), bucket(20))
    assert store.due_buckets("t1", 15) == []
    assert [key for key, _ in store.due_buckets("t1", 20)] == [("k",)]
    assert store.expired_buckets(15) == []
    assert store.expired_buckets(20) == [("t1", ("k",))]
    assert store.next_end_after("t1", 0) == 20
    store.put_bucket("t1", ("k",), bucket(5))  # an end can move back, too
    assert store.next_end_after("t1", 0) == 5
    assert store.next_end_after("t1", 5) is None
    assert store.expired_buckets(5) == [("t1", ("k",))]
    assert store.bucket_count() == 1


def test_every_bucket_comes_due_however_often_ends_change(store: StateStore) -> None:
    """The end index is compacted as it grows; no bucket may drop out of it then.

    Compaction rebuilt it from the stored buckets before the one being stored was in
    them: that bucket never came due (a proactive bucket that never fired).
    """
    for end in range(1, 3000):
        store.put_bucket("t1", ("moving",), bucket(end))
        store.put_bucket("t1", (f"new-{end}",), bucket(10_000 + end))
        store.delete_bucket("t1", (f"new-{end - 1}",))
        expired = store.expired_buckets(20_000)
        assert ("t1", ("moving",)) in expired, end
        assert ("t1", (f"new-{end}",)) in expired, end


def test_satisfied_set(store: StateStore) -> None:
    store.put_bucket("t1", ("b",), bucket(10), satisfied=True)
    store.put_bucket("t1", ("a",), bucket(10), satisfied=True)
    store.put_bucket("t1", ("c",), bucket(10))
    store.put_bucket("t2", ("z",), bucket(10), satisfied=True)
    assert store.satisfied_keys("t1") == [("a",), ("b",)]
    assert store.satisfied_keys("t2") == [("z",)]
    assert store.satisfied_keys("t3") == []
    store.put_bucket("t1", ("b",), bucket(11))  # re-put without satisfied clears it
    assert store.satisfied_keys("t1") == [("a",)]
    store.put_bucket("t1", ("a",), bucket(10), satisfied=True)  # stays satisfied
    store.put_bucket("t1", ("c",), bucket(10), satisfied=True)
    assert store.satisfied_keys("t1") == [("a",), ("c",)]
    store.delete_bucket("t1", ("a",))
    assert store.satisfied_keys("t1") == [("c",)]
    store.put_bucket("t1", ("a",), bucket(10))  # re-created: not satisfied any more
    assert store.satisfied_keys("t1") == [("c",)]


def test_due_buckets_order_and_boundaries(store: StateStore) -> None:
    store.put_bucket("t1", ("b",), bucket(20))
    store.put_bucket("t1", ("a",), bucket(20))
    store.put_bucket("t1", ("c",), bucket(10))
    store.put_bucket("t1", ("d",), bucket(30))
    store.put_bucket("t2", ("a",), bucket(5))
    assert store.due_buckets("t1", 9) == []
    assert [key for key, _ in store.due_buckets("t1", 10)] == [("c",)]  # end == as_of: due
    assert [key for key, _ in store.due_buckets("t1", 19)] == [("c",)]  # end == as_of + 1: not
    assert due_view(store.due_buckets("t1", 29)) == [
        (("c",), bucket_view(bucket(10))),
        (("a",), bucket_view(bucket(20))),
        (("b",), bucket_view(bucket(20))),
    ]
    assert [key for key, _ in store.due_buckets("t1", 30)] == [("c",), ("a",), ("b",), ("d",)]
    assert [key for key, _ in store.due_buckets("t2", 100)] == [("a",)]
    assert store.due_buckets("t3", 100) == []


def test_next_end_after_is_strict(store: StateStore) -> None:
    store.put_bucket("t1", ("a",), bucket(10))
    store.put_bucket("t1", ("b",), bucket(20))
    store.put_bucket("t2", ("a",), bucket(15))
    assert store.next_end_after("t1", 9) == 10
    assert store.next_end_after("t1", 10) == 20
    assert store.next_end_after("t1", 19) == 20
    assert store.next_end_after("t1", 20) is None
    assert store.next_end_after("t2", 10) == 15
    assert store.next_end_after("t3", 0) is None


def test_expired_buckets_across_triggers(store: StateStore) -> None:
    store.put_bucket("t2", ("a",), bucket(10))
    store.put_bucket("t1", ("b",), bucket(10))
    store.put_bucket("t1", ("a",), bucket(10))
    store.put_bucket("t1", ("z",), bucket(5))
    store.put_bucket("t3", ("a",), bucket(11))
    assert store.expired_buckets(4) == []
    assert store.expired_buckets(5) == [("t1", ("z",))]
    assert store.expired_buckets(10) == [
        ("t1", ("z",)),
        ("t1", ("a",)),
        ("t1", ("b",)),
        ("t2", ("a",)),
    ]
    assert store.expired_buckets(11)[-1] == ("t3", ("a",))
    assert len(store.expired_buckets(11)) == 5


def test_buckets_by_key_with_awkward_keys(store: StateStore) -> None:
    keys: list[BucketKey] = [
        ("b",),
        ("a", "b"),
        ("a",),
        (),
        ("a", ""),
        ("a\x00",),
        ("a\x00b",),
        ("a\x01",),
        ("aa",),
        ("é",),
        ("\U0001f600",),
        ("\uffff",),
        ("", "a"),
        ("a", "b", "c"),
    ]
    for n, key in enumerate(keys):
        store.put_bucket("t", key, bucket(100 + n))
    # trigger ids that are prefixes of each other, or contain NUL, must not leak
    store.put_bucket("t\x00", ("a",), bucket(1))
    store.put_bucket("tt", ("a",), bucket(1))
    store.put_bucket("", ("a",), bucket(1))
    listed = list(store.buckets("t"))
    assert [key for key, _ in listed] == sorted(keys)
    assert [b.end for _, b in listed] == [100 + keys.index(key) for key in sorted(keys)]
    assert [key for key, _ in store.buckets("t\x00")] == [("a",)]
    assert [key for key, _ in store.buckets("")] == [("a",)]
    assert list(store.buckets("nope")) == []
    # equal ends: due buckets come in key order
    for key in keys:
        store.put_bucket("same", key, bucket(7))
    assert [key for key, _ in store.due_buckets("same", 7)] == sorted(keys)
    assert [key for trigger, key in store.expired_buckets(7) if trigger == "same"] == sorted(keys)


def test_buckets_lists_many(store: StateStore) -> None:
    keys = [(f"{n:05d}",) for n in range(2_500)]
    for key in reversed(keys):
        store.put_bucket("t", key, bucket(int(key[0])))
    listed = list(store.buckets("t"))
    assert [key for key, _ in listed] == keys
    assert [b.end for _, b in listed] == list(range(2_500))
    assert store.bucket_count() == 2_500


def test_bucket_count(store: StateStore) -> None:
    assert store.bucket_count() == 0
    store.put_bucket("t1", ("a",), bucket(1))
    store.put_bucket("t1", ("b",), bucket(1))
    store.put_bucket("t2", ("a",), bucket(1))
    store.put_bucket("t2", ("a",), bucket(2))
    assert store.bucket_count() == 3
    store.drop_trigger("t1")
    assert store.bucket_count() == 1


# -- held events ----------------------------------------------------------------------------
def test_held_events(store: StateStore) -> None:
    first = [HeldEvent(occurred=-3, event_id=uid(1), held_at=5), HeldEvent(10, uid(2), 11)]
    assert store.held("t1", ("k",)) == []
    store.put_held("t1", ("k",), first)
    store.put_held("t1", (), [HeldEvent(1, uid(3), 2)])
    store.put_held("t0", ("z",), [HeldEvent(1, uid(4), 2)])
    assert store.held("t1", ("k",)) == first
    assert store.held("t1", ("j",)) == []
    assert store.held_keys() == [("t0", ("z",)), ("t1", ()), ("t1", ("k",))]
    store.put_held("t1", ("k",), [HeldEvent(99, uid(5), 100)])
    assert store.held("t1", ("k",)) == [HeldEvent(99, uid(5), 100)]
    store.put_held("t1", ("k",), [])
    assert store.held("t1", ("k",)) == []
    assert store.held_keys() == [("t0", ("z",)), ("t1", ())]
    store.put_held("t1", ("never",), [])
    assert store.held_keys() == [("t0", ("z",)), ("t1", ())]


def test_held_events_are_copies(store: StateStore) -> None:
    events = [HeldEvent(1, uid(1), 2)]
    store.put_held("t1", ("k",), events)
    events.append(HeldEvent(3, uid(2), 4))
    store.held("t1", ("k",)).append(HeldEvent(5, uid(3), 6))
    assert store.held("t1", ("k",)) == [HeldEvent(1, uid(1), 2)]


# -- child firings --------------------------------------------------------------------------
def test_child_firings_round_trip(store: StateStore) -> None:
    leaf = Firing(
        id=uid(10),
        trigger_id="leaf",
        automation_id=uid(99),
        fired_at=-1_500,
        labels={"prefect.resource.id": "x", "é": "✓"},
        triggering_event=make_event(-2_000, received=-1_900),
        window=(-3_000, -1_000),
        triggering_value=2.5,
    )
    middle = Firing(
        id=uid(11),
        trigger_id="middle",
        automation_id=uid(99),
        fired_at=3_000,
        labels={},
        triggering_event=None,
        state="Resolved",
        child_firings=(leaf,),
        triggering_value=float("inf"),
    )
    plain = Firing(
        id=uid(12),
        trigger_id="plain",
        automation_id=uid(99),
        fired_at=7,
        labels={"a": "b"},
        triggering_event=make_event(6, source_received=6),
    )
    store.put_child_firings("comp", [middle, plain])
    got = store.child_firings("comp")
    assert [firing_view(f) for f in got] == [firing_view(middle), firing_view(plain)]
    assert got[0].child_firings[0].triggering_event is not None
    assert got[0].child_firings[0].triggering_event.received == -1_900
    assert store.child_firings("other") == []
    store.put_child_firings("comp", [plain])
    assert [f.id for f in store.child_firings("comp")] == [uid(12)]
    store.put_child_firings("comp", [])
    assert store.child_firings("comp") == []


# -- seen ids ---------------------------------------------------------------------------------
def test_seen_ids(store: StateStore) -> None:
    assert store.seen_at(uid(1)) is None
    store.mark_seen(uid(1), 100)
    store.mark_seen(uid(2), 200)
    store.mark_seen(uid(3), 300)
    assert store.seen_at(uid(1)) == 100
    store.mark_seen(uid(1), 400)  # re-marking moves it later
    assert store.seen_at(uid(1)) == 400
    store.forget_seen_before(300)  # at < cutoff goes, at == cutoff stays
    assert store.seen_at(uid(2)) is None
    assert store.seen_at(uid(3)) == 300
    assert store.seen_at(uid(1)) == 400
    store.forget_seen_before(400)
    assert store.seen_at(uid(3)) is None
    assert store.seen_at(uid(1)) == 400
    store.forget_seen_before(401)
    assert store.seen_at(uid(1)) is None


def test_forget_seen_regardless_of_marking_order(store: StateStore) -> None:
    # A wall clock can step back: the id marked later may carry the earlier time.
    store.mark_seen(uid(1), 500)
    store.mark_seen(uid(2), 100)
    store.mark_seen(uid(3), -50)
    store.mark_seen(uid(4), 100)
    store.mark_seen(uid(4), 600)  # re-marked later than the cutoff: kept
    store.forget_seen_before(200)
    assert [store.seen_at(uid(n)) for n in range(1, 5)] == [500, None, None, 600]


def test_forget_many_seen_ids(store: StateStore) -> None:
    for n in range(10_050):
        store.mark_seen(uid(n), n)
    store.forget_seen_before(10_040)
    assert store.seen_at(uid(10_039)) is None
    assert store.seen_at(uid(0)) is None
    assert [store.seen_at(uid(n)) for n in range(10_040, 10_050)] == list(range(10_040, 10_050))


# -- followers ----------------------------------------------------------------------------------
def test_followers(store: StateStore) -> None:
    leader, other = uid(1000), uid(1001)
    late = make_event(300, n=1, follows=leader, received=310)
    early = make_event(100, n=2, follows=leader, received=320)
    tie_b = make_event(200, n=4, follows=leader, received=330)
    tie_a = make_event(200, n=3, follows=leader, received=330)
    elsewhere = make_event(150, n=5, follows=other, received=300)
    for event in (late, early, tie_b, tie_a, elsewhere):
        store.add_follower(event)
    assert ids(store.followers_of(leader)) == [uid(2), uid(3), uid(4), uid(1)]
    assert [event_view(e) for e in store.followers_of(other)] == [event_view(elsewhere)]
    assert store.followers_of(uid(7)) == []
    store.remove_follower(tie_a)
    assert ids(store.followers_of(leader)) == [uid(2), uid(4), uid(1)]
    store.remove_follower(tie_a)  # absent: no error
    store.remove_follower(make_event(1, n=77, follows=uid(55)))
    store.remove_follower(elsewhere)
    assert store.followers_of(other) == []
    assert ids(store.followers_of(leader)) == [uid(2), uid(4), uid(1)]


def test_followers_received_by(store: StateStore) -> None:
    leader = uid(1000)
    explicit = make_event(50, n=1, follows=leader, received=200)  # received only on the record
    in_source = make_event(40, n=2, follows=uid(1001), source_received=100)
    later = make_event(10, n=3, follows=leader, received=201)
    unknown = make_event(5, n=4, follows=leader)  # never received: never lost
    for event in (explicit, in_source, later, unknown):
        store.add_follower(event)
    assert store.followers_received_by(99) == []
    assert ids(store.followers_received_by(100)) == [uid(2)]
    got = store.followers_received_by(200)  # received <= cutoff, by occurred
    assert [event_view(e) for e in got] == [event_view(in_source), event_view(explicit)]
    assert got[1].received == 200
    assert "received" not in got[1].to_json() or got[1].to_json()["received"] is None
    assert ids(store.followers_received_by(10**12)) == [uid(3), uid(2), uid(1)]
    store.remove_follower(in_source)
    assert ids(store.followers_received_by(10**12)) == [uid(3), uid(1)]


def test_re_adding_a_follower_replaces_it(store: StateStore) -> None:
    leader = uid(1000)
    store.add_follower(make_event(50, n=1, follows=leader, received=100))
    store.add_follower(make_event(60, n=1, follows=leader, received=500))
    assert [(e.occurred, e.received) for e in store.followers_of(leader)] == [(60, 500)]
    assert store.followers_received_by(499) == []
    assert ids(store.followers_received_by(500)) == [uid(1)]
    store.remove_follower(make_event(60, n=1, follows=leader))
    assert store.followers_received_by(10**12) == []
    assert store.followers_of(leader) == []


def test_a_follower_needs_a_leader(store: StateStore) -> None:
    with pytest.raises(ValueError, match="follows no event"):
        store.add_follower(make_event(1, n=1))
    with pytest.raises(ValueError, match="follows no event"):
        store.remove_follower(make_event(1, n=1))


# -- meta -------------------------------------------------------------------------------------
def test_meta(store: StateStore) -> None:
    assert store.meta("events_clock") is None
    store.put_meta("events_clock", 5)
    store.put_meta("other", -7)
    assert store.meta("events_clock") == 5
    store.put_meta("events_clock", -(2**62))
    assert store.meta("events_clock") == -(2**62)
    assert store.meta("other") == -7
    store.put_meta("events_clock", None)
    assert store.meta("events_clock") is None
    store.put_meta("events_clock", None)  # absent: no error
    assert store.meta("other") == -7


# -- drop_trigger ---------------------------------------------------------------------------------
def fill_trigger(store: StateStore, trigger_id: str, base: int) -> None:
    store.put_bucket(trigger_id, ("a",), bucket(base), satisfied=True)
    store.put_bucket(trigger_id, ("b",), bucket(base + 5))
    store.put_bucket(trigger_id, (), bucket(base + 7), satisfied=True)
    store.put_held(trigger_id, ("a",), [HeldEvent(1, uid(base), 2)])
    store.put_child_firings(
        trigger_id,
        [Firing(uid(base), trigger_id, uid(0), base, {}, None)],
    )


def test_drop_trigger(store: StateStore) -> None:
    fill_trigger(store, "doomed", 10)
    fill_trigger(store, "kept", 10)
    fill_trigger(store, "doomed2", 30)  # shares a prefix with the dropped id
    store.put_meta("doomed", 1)
    store.mark_seen(uid(1), 5)
    store.drop_trigger("doomed")
    assert list(store.buckets("doomed")) == []
    assert store.bucket("doomed", ("a",)) is None
    assert store.due_buckets("doomed", 100) == []
    assert store.next_end_after("doomed", 0) is None
    assert store.satisfied_keys("doomed") == []
    assert store.held("doomed", ("a",)) == []
    assert store.child_firings("doomed") == []
    assert {t for t, _ in store.expired_buckets(100)} == {"kept", "doomed2"}
    assert store.held_keys() == [("doomed2", ("a",)), ("kept", ("a",))]
    assert store.bucket_count() == 6
    for kept in ("kept", "doomed2"):
        assert [key for key, _ in store.buckets(kept)] == [(), ("a",), ("b",)]
        assert store.satisfied_keys(kept) == [(), ("a",)]
        assert len(store.due_buckets(kept, 100)) == 3
        assert len(store.child_firings(kept)) == 1
    assert store.meta("doomed") == 1
    assert store.seen_at(uid(1)) == 5
    store.drop_trigger("doomed")  # again, and an unknown trigger: no error
    store.drop_trigger("never")
    assert store.bucket_count() == 6
    fill_trigger(store, "doomed", 50)  # a dropped id can be used again
    assert [key for key, _ in store.due_buckets("doomed", 100)] == [("a",), ("b",), ()]


# -- times ----------------------------------------------------------------------------------------
def test_negative_times_sort_numerically(store: StateStore) -> None:
    ends = [-(10**12), -257, -256, -1, 0, 1, 255, 256, 10**12]
    for n, end in enumerate(reversed(ends)):
        store.put_bucket("t", (f"k{n}",), bucket(end))
    assert [b.end for _, b in store.due_buckets("t", 10**13)] == ends
    assert [b.end for _, b in store.due_buckets("t", -1)] == ends[:4]
    assert store.next_end_after("t", -257) == -256
    assert store.next_end_after("t", -1) == 0
    assert store.next_end_after("t", -(10**13)) == -(10**12)
    assert len(store.expired_buckets(-2)) == 3
    store.mark_seen(uid(1), -10)
    store.mark_seen(uid(2), -20)
    store.forget_seen_before(-10)
    assert (store.seen_at(uid(1)), store.seen_at(uid(2))) == (-10, None)
    leader = uid(1000)
    store.add_follower(make_event(-5, n=3, follows=leader, received=-100))
    store.add_follower(make_event(-6, n=4, follows=leader, received=-99))
    assert ids(store.followers_received_by(-100)) == [uid(3)]
    assert ids(store.followers_of(leader)) == [uid(4), uid(3)]


def test_extreme_times(store: StateStore) -> None:
    store.put_bucket("t", ("lo",), bucket(INT64_MIN, start=INT64_MIN))
    store.put_bucket("t", ("hi",), bucket(INT64_MAX))
    assert [key for key, _ in store.due_buckets("t", INT64_MIN)] == [("lo",)]
    assert [key for key, _ in store.due_buckets("t", INT64_MAX)] == [("lo",), ("hi",)]
    assert [key for key, _ in store.due_buckets("t", INT64_MAX + 1)] == [("lo",), ("hi",)]
    assert store.due_buckets("t", INT64_MIN - 1) == []
    assert store.next_end_after("t", INT64_MIN - 1) == INT64_MIN
    assert store.next_end_after("t", INT64_MIN) == INT64_MAX
    assert store.next_end_after("t", INT64_MAX) is None
    assert store.next_end_after("t", INT64_MAX + 1) is None
    assert store.expired_buckets(INT64_MIN - 1) == []
    assert len(store.expired_buckets(INT64_MAX + 1)) == 2
    store.mark_seen(uid(1), INT64_MIN)
    store.mark_seen(uid(2), INT64_MAX)
    store.forget_seen_before(INT64_MIN)
    assert store.seen_at(uid(1)) == INT64_MIN
    store.forget_seen_before(INT64_MAX)
    assert (store.seen_at(uid(1)), store.seen_at(uid(2))) == (None, INT64_MAX)
    store.forget_seen_before(INT64_MAX + 1)
    assert store.seen_at(uid(2)) is None


# -- DocumentStore: saved and reloaded -------------------------------------------------------
def holdings(store: DocumentStore) -> Any:
    """Everything a store holds, by its public reads where the protocol can list it."""
    everything = INT64_MAX + 1
    triggers = sorted(
        {t for t, _ in store.expired_buckets(everything)} | {t for t, _ in store.held_keys()}
    )
    return {
        "count": store.bucket_count(),
        "by end": store.expired_buckets(everything),
        "satisfied": store.satisfied_buckets(),
        "buckets": {
            t: (
                [(key, bucket_view(b)) for key, b in store.buckets(t)],
                store.satisfied_keys(t),
                due_view(store.due_buckets(t, everything)),
                store.next_end_after(t, INT64_MIN - 1),
            )
            for t in triggers
        },
        "held": {(t, key): store.held(t, key) for t, key in store.held_keys()},
        "held early": store.held_keys_held_before(everything),
        # The protocol lists no composites, metric states, named values or leaders.
        "children": {c: [firing_view(f) for f in store.child_firings(c)] for c in store._children},
        "metric": dict(store._metric),
        "meta": dict(store._meta),
        "followers": {
            leader: [event_view(e) for e in store.followers_of(leader)]
            for leader in store._followers
        },
        "lost": [event_view(e) for e in store.followers_received_by(everything)],
        "guards": dict(store._guards),
        "applied children": {c: ids for c, ids in store._applied_children.items() if ids},
        "child offsets": dict(store._child_offsets),
    }


def assert_same_holdings(reloaded: DocumentStore, live: DocumentStore) -> None:
    assert holdings(reloaded) == holdings(live)
    # Seen ids are saved a batch per document, deleted once all of its ids are forgotten:
    # a reload may bring back an older id its document still holds (the core judges a
    # seen id by its age), never lose or move one the live store knows.
    for event_id, at in live._seen.items():
        assert reloaded.seen_at(event_id) == at, event_id


def test_document_store_saved_and_reloaded_keeps_everything() -> None:
    event = make_event(20, n=1, follows=uid(9), received=25)
    firing = Firing(uid(5), "child", uid(6), 30, {"k": "v"}, event, window=(0, 30))
    first = DocumentStore()
    first.put_bucket("t", ("a",), Bucket(0, 30, 2, event), satisfied=True)
    first.put_bucket("t", ("b",), bucket(-40))
    first.put_held("t", ("a",), [HeldEvent(1, uid(2), 3)])
    first.put_held("t", ("held only",), [HeldEvent(4, uid(7), 5)])
    first.put_child_firings("comp", [firing])
    first.mark_seen(uid(3), 44)
    first.add_follower(event)
    first.put_meta("next_run:t", 77)
    first.put_metric_state("m", b"state")
    table: Table = {}
    save(first, table)
    assert first.flush() == []  # saved: nothing is dirty any more
    second = reload(table)
    assert second.bucket_count() == 2
    assert bucket_view(second.bucket("t", ("a",))) == bucket_view(Bucket(0, 30, 2, event))
    assert [key for key, _ in second.due_buckets("t", 30)] == [("b",), ("a",)]
    assert second.expired_buckets(-40) == [("t", ("b",))]
    assert second.next_end_after("t", -40) == 30
    assert second.satisfied_keys("t") == [("a",)]
    assert second.held_keys() == [("t", ("a",)), ("t", ("held only",))]
    assert [firing_view(f) for f in second.child_firings("comp")] == [firing_view(firing)]
    assert second.seen_at(uid(3)) == 44
    assert [event_view(e) for e in second.followers_received_by(25)] == [event_view(event)]
    assert second.meta("next_run:t") == 77
    assert second.metric_state("m") == b"state"
    assert_same_holdings(second, first)
    # Changes of the reloaded store are saved over the same documents.
    second.delete_bucket("t", ("b",))
    second.put_held("t", ("held only",), [])
    second.put_meta("next_run:t", None)
    save(second, table)
    third = reload(table)
    assert third.bucket_count() == 1
    assert third.held_keys() == [("t", ("a",))]
    assert third.meta("next_run:t") is None
    assert_same_holdings(third, second)


def test_a_dropped_trigger_stays_dropped_after_a_save() -> None:
    # drop_trigger changed held events, child firings and metric state without marking
    # their documents: a save after the drop kept them, and a reload brought them back.
    store = DocumentStore()
    fill_trigger(store, "doomed", 10)
    store.put_held("doomed", ("held only",), [HeldEvent(1, uid(99), 2)])
    store.put_metric_state("doomed", b"state")
    fill_trigger(store, "kept", 10)
    table: Table = {}
    save(store, table)
    store.drop_trigger("doomed")
    save(store, table)
    reloaded = reload(table)
    assert list(reloaded.buckets("doomed")) == []
    assert [t for t, _ in reloaded.held_keys()] == ["kept"]
    assert reloaded.child_firings("doomed") == []
    assert reloaded.metric_state("doomed") is None
    assert len(reloaded.child_firings("kept")) == 1
    assert_same_holdings(reloaded, store)
    assert not [key for key in table if b"doomed" in key]


def test_a_trigger_id_with_a_nul_survives_a_reload() -> None:
    # Bucket documents are keyed trigger NUL key-JSON; JSON never holds a raw NUL.
    store = DocumentStore()
    store.put_bucket("t\x00", ("a\x00",), bucket(5))
    store.put_bucket("t", ("\x00",), bucket(6))
    table: Table = {}
    save(store, table)
    reloaded = reload(table)
    assert [key for key, _ in reloaded.buckets("t\x00")] == [("a\x00",)]
    assert [key for key, _ in reloaded.buckets("t")] == [("\x00",)]


# -- memory and a saved and reloaded DocumentStore agree on any sequence of writes -----------
triggers = st.sampled_from(["t", "t\x00", "tt", "é", ""])
parts = st.sampled_from(["", "a", "a\x00", "a\x00b", "b", "ab", "é", "\U0001f600"])
keys = st.lists(parts, max_size=2).map(tuple)
times = st.integers(-20, 20) | st.sampled_from([INT64_MIN, INT64_MAX])
Operation = tuple[str, str, BucketKey, int, int, bool]
puts = st.tuples(st.just("put"), triggers, keys, times, st.integers(0, 3), st.booleans())
holds = st.tuples(st.just("hold"), triggers, keys, times, st.integers(0, 2), st.just(False))
children = st.tuples(
    st.just("children"), triggers, st.just(()), times, st.integers(0, 2), st.just(False)
)
metrics = st.tuples(
    st.just("metric"), triggers, st.just(()), st.just(0), st.integers(0, 2), st.just(False)
)
deletes = st.tuples(st.just("delete"), triggers, keys, st.just(0), st.just(0), st.just(False))
drops = st.tuples(st.just("drop"), triggers, st.just(()), st.just(0), st.just(0), st.just(False))
saves = st.tuples(st.just("save"), st.just(""), st.just(()), st.just(0), st.just(0), st.just(False))
operations = st.lists(
    st.one_of(puts, puts, holds, children, metrics, deletes, drops, saves, saves), max_size=40
)
TRIGGERS = ["t", "t\x00", "tt", "é", ""]


def apply(target: StateStore, op: Operation) -> None:
    kind, trigger, key, end, count, satisfied = op
    if kind == "put":
        target.put_bucket(trigger, key, bucket(end, count=count), satisfied=satisfied)
    elif kind == "hold":
        target.put_held(trigger, key, [HeldEvent(end, uid(n), end) for n in range(count)])
    elif kind == "children":
        rows = [Firing(uid(n), f"child{n}", uid(0), end, {}, None) for n in range(count)]
        target.put_child_firings(trigger, rows)
    elif kind == "metric":
        target.put_metric_state(trigger, str(count).encode() if count else None)
    elif kind == "delete":
        target.delete_bucket(trigger, key)
    else:
        target.drop_trigger(trigger)


def answers(store: StateStore, moments: list[int]) -> Any:
    per_trigger = {
        trigger: (
            store.satisfied_keys(trigger),
            [due_view(store.due_buckets(trigger, moment)) for moment in moments],
            [store.next_end_after(trigger, moment) for moment in moments],
            [(key, bucket_view(b)) for key, b in store.buckets(trigger)],
            [firing_view(f) for f in store.child_firings(trigger)],
            store.metric_state(trigger),
        )
        for trigger in TRIGGERS
    }
    return (
        per_trigger,
        [store.expired_buckets(moment) for moment in moments],
        store.bucket_count(),
        {(t, key): store.held(t, key) for t, key in store.held_keys()},
        [store.held_keys_held_before(moment) for moment in moments],
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_memory_and_a_reloaded_document_store_agree(ops: list[Operation]) -> None:
    memory, documents = MemoryStateStore(), DocumentStore()
    table: Table = {}
    moments = [INT64_MIN - 1, INT64_MIN, INT64_MAX, INT64_MAX + 1]
    for op in ops:
        if op[0] == "save":
            save(documents, table)
            continue
        apply(memory, op)
        apply(documents, op)
        moments.extend((op[3] - 1, op[3], op[3] + 1))
    assert answers(documents, moments) == answers(memory, moments)
    save(documents, table)
    assert answers(reload(table), moments) == answers(memory, moments)


def test_memory_store_forgets_the_oldest_ids_beyond_its_limit() -> None:
    from service.state.memory import MemoryStateStore

    store = MemoryStateStore(max_seen=3)
    for at, event_id in enumerate(["a", "b", "c", "d", "e"]):
        store.mark_seen(event_id, at)
    assert [store.seen_at(i) for i in "abcde"] == [None, None, 2, 3, 4]
    store.mark_seen("c", 10)  # marked again: now the newest
    store.mark_seen("f", 11)
    assert [store.seen_at(i) for i in "cdef"] == [10, None, 4, 11]
