"""Redelivery guards: which ones a tick forgets, and that it visits only the old ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.store import Bucket
from service.state.documents import DocumentStore, bucket_doc_key

KEYS = [("t", (str(n),)) for n in range(6)]


def _marked(*walls: int) -> tuple[DocumentStore, list[tuple[bytes, bytes | None]]]:
    """A store whose key n was last used at walls[n], and the documents it wrote."""
    store = DocumentStore()
    for number, wall in enumerate(walls):
        trigger_id, key = KEYS[number]
        store.mark_applied(trigger_id, key, (0, number, 0), wall)
    return store, store.flush()


def _store_with(*walls: int) -> DocumentStore:
    return _marked(*walls)[0]


def test_a_stateless_guard_last_used_before_the_cutoff_is_forgotten_and_its_document_deleted() -> (
    None
):
    store = _store_with(10, 20, 30)
    store.forget_guards_before(25)
    assert not store.already_applied("t", ("0",), (0, 0, 0))
    assert not store.already_applied("t", ("1",), (0, 1, 0))
    assert store.already_applied("t", ("2",), (0, 2, 0))
    deleted = {bucket_doc_key(*KEYS[0]), bucket_doc_key(*KEYS[1])}
    assert {key for key, value in store.flush() if value is None} == deleted


def test_a_guard_whose_key_holds_a_bucket_is_kept_until_the_bucket_is_gone() -> None:
    store = _store_with(10, 20)
    store.put_bucket("t", ("0",), Bucket(0, 100, 1, None))
    store.forget_guards_before(25)
    assert store.already_applied("t", ("0",), (0, 0, 0))
    assert not store.already_applied("t", ("1",), (0, 1, 0))
    store.delete_bucket("t", ("0",))
    store.forget_guards_before(26)
    assert not store.already_applied("t", ("0",), (0, 0, 0))


def test_a_guard_used_again_after_the_cutoff_is_kept() -> None:
    store = _store_with(10, 20)
    store.mark_applied("t", ("0",), (0, 9, 0), 30)
    store.forget_guards_before(25)
    assert store.already_applied("t", ("0",), (0, 9, 0))
    assert not store.already_applied("t", ("1",), (0, 1, 0))


def test_guards_loaded_from_documents_in_key_order_are_forgotten_oldest_first() -> None:
    # Key order ("0" < "1" < "2") is the reverse of last use here.
    _, documents = _marked(30, 20, 10)
    loaded = DocumentStore()
    loaded.load(sorted((key, value) for key, value in documents if value is not None))
    loaded.forget_guards_before(25)
    assert loaded.already_applied("t", ("0",), (0, 0, 0))
    assert not loaded.already_applied("t", ("1",), (0, 1, 0))
    assert not loaded.already_applied("t", ("2",), (0, 2, 0))


operations = st.lists(
    st.one_of(
        st.tuples(st.just("mark"), st.integers(0, 5)),
        st.tuples(st.just("open"), st.integers(0, 5)),
        st.tuples(st.just("close"), st.integers(0, 5)),
        st.tuples(st.just("forget"), st.integers(0, 40)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_forgetting_never_drops_a_guard_in_use_and_drops_every_idle_one_in_the_end(
    steps: list[tuple[str, int]],
) -> None:
    store = DocumentStore()
    wall = 0
    last_used: dict[int, int] = {}
    for name, value in steps:
        wall += 1
        trigger_id, key = KEYS[value % len(KEYS)]
        if name == "mark":
            store.mark_applied(trigger_id, key, (0, wall, 0), wall)
            last_used[value] = wall
        elif name == "open":
            store.put_bucket(trigger_id, key, Bucket(0, 100, 1, None))
        elif name == "close":
            store.delete_bucket(trigger_id, key)
        else:
            cutoff = wall - value
            before = {n for n, used in last_used.items() if _guarded(store, n, used)}
            store.forget_guards_before(cutoff)
            for number in before:
                trigger_id, key = KEYS[number]
                holds_state = store.bucket(trigger_id, key) is not None
                if last_used[number] >= cutoff or holds_state:
                    assert _guarded(store, number, last_used[number])
    for trigger_id, key in KEYS:
        store.delete_bucket(trigger_id, key)
    store.forget_guards_before(wall + 1)
    assert not any(_guarded(store, n, used) for n, used in last_used.items())


def _guarded(store: DocumentStore, number: int, used: int) -> bool:
    trigger_id, key = KEYS[number]
    return store.already_applied(trigger_id, key, (0, used, 0))
