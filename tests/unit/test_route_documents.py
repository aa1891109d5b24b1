"""The route stage's seen ids and held followers survive a save and a reload."""

from __future__ import annotations

from service.state.documents import DocumentStore
from tests.contract.test_state_store import event_view, make_event, uid

MINUTE = 60_000_000


def test_seen_ids_are_one_document_per_flush_and_reload() -> None:
    store = DocumentStore()
    store.mark_seen(uid(1), 10)
    store.mark_seen(uid(2), 20)
    first = store.flush()
    assert len(first) == 1
    store.mark_seen(uid(3), 30)
    store.mark_seen(uid(1), 40)  # seen again later: the later time wins
    reloaded = _reloaded_from(first, store.flush())
    assert [reloaded.seen_at(uid(n)) for n in (1, 2, 3, 4)] == [40, 20, 30, None]


def test_a_seen_document_is_deleted_once_every_id_in_it_expired() -> None:
    store = DocumentStore()
    store.mark_seen(uid(1), 0)
    store.mark_seen(uid(2), 5 * MINUTE)
    documents = dict(store.flush())
    store.forget_seen_before(1)  # uid(1) is forgotten, uid(2) is not: the document stays
    assert store.seen_at(uid(1)) is None
    assert store.flush() == []
    store.forget_seen_before(5 * MINUTE + 1)
    deleted = store.flush()
    assert deleted == [(next(iter(documents)), None)]
    # The next document does not reuse the deleted one's key (one flush may hold both).
    store.mark_seen(uid(3), 6 * MINUTE)
    (key, _), *_ = store.flush()
    assert key not in documents


def test_held_followers_survive_a_reload_and_released_ones_do_not() -> None:
    store = DocumentStore()
    leader = uid(100)
    kept = make_event(10, n=1, follows=leader, received=10)
    released = make_event(20, n=2, follows=uid(200), received=20)
    store.add_follower(kept)
    store.add_follower(released)
    saved = store.flush()
    store.remove_follower(released)
    reloaded = _reloaded_from(saved, store.flush())
    assert [event_view(e) for e in reloaded.followers_of(leader)] == [event_view(kept)]
    assert reloaded.followers_of(uid(200)) == []
    assert [e.id for e in reloaded.followers_received_by(100)] == [kept.id]


def _reloaded_from(*flushes: list[tuple[bytes, bytes | None]]) -> DocumentStore:
    documents: dict[bytes, bytes] = {}
    for flush in flushes:
        for key, value in flush:
            if value is None:
                documents.pop(key, None)
            else:
                documents[key] = value
    reloaded = DocumentStore()
    reloaded.load(sorted(documents.items()))
    return reloaded
