"""Webhook targets that fail, hang and flap, at volume: every (firing, action) ends either
delivered once or dead-lettered once, never both, never neither.

The flapping endpoint fails by a seeded coin per request, so which request succeeded is
known from the order the target saw them (TRIPWIRE_RELIABILITY_SEED reruns one draw).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator

import orjson
import pytest

from tests.integration.actions_harness import Actions, firing
from tests.integration.harness import Cluster
from tests.integration.http_target import HANG, Target, always, http_target

SEED = int(os.environ.get("TRIPWIRE_RELIABILITY_SEED", "11"))
FIRINGS = 300
ATTEMPTS = 3
# Where each action goes, by weight: a hang costs ATTEMPTS timeouts, so it is the rarest.
ENDPOINTS = {"/ok": 35, "/flap": 35, "/fail": 22, "/hang": 8}


@pytest.fixture
def target() -> Iterator[Target]:
    with http_target() as server:
        yield server


def test_failing_hanging_and_flapping_webhooks_end_delivered_once_or_dead_lettered(
    cluster: Cluster, target: Target
) -> None:
    rng = random.Random(SEED)  # noqa: S311  # a seeded draw, not a secret
    flap = [rng.random() < 0.5 for _ in range(100_000)]  # True: that request fails
    target.on("/ok", always(200))
    target.on("/fail", always(500))
    target.on("/hang", lambda _: (HANG, b""))
    target.on("/flap", lambda seen: (500, b"{}") if flap[seen] else (200, b"{}"))
    target.hang_seconds = 2.0  # past the action timeout below
    actions = Actions(
        cluster,
        action_max_attempts=str(ATTEMPTS),
        action_backoff="0.05",
        action_backoff_max="0.2",
        action_timeout="1",
        # Batches wait for their slowest firing: large ones keep the hangs overlapping.
        actions_concurrency="100",
    )
    actions.start()

    paths, weights = list(ENDPOINTS), list(ENDPOINTS.values())
    records = []
    where: dict[str, str] = {}  # "<firing id>:<index>" -> path
    for _ in range(FIRINGS):
        chosen = rng.choices(paths, weights, k=rng.randint(1, 3))
        record = firing(
            [{"type": "call-webhook", "url": f"{target.url}{p}", "payload": ""} for p in chosen]
        )
        records.append(record)
        where.update({f"{record['id']}:{i}": p for i, p in enumerate(chosen)})
    actions.produce(*records)

    def delivered() -> Counter[str]:
        # A request to /ok, or a request to /flap whose coin said 200, took effect.
        out: Counter[str] = Counter()
        for path in ("/ok", "/flap"):
            for n, request in enumerate(target.to(path)):
                if path == "/ok" or not flap[n]:
                    out[request.headers["Idempotency-Key"]] += 1
        return out

    documents: dict[str, dict[str, object]] = {}

    def dead() -> Counter[str]:
        letters = cluster.read(actions.dlq, lambda recs: True, timeout=10, settle=1.5)
        out: Counter[str] = Counter()
        for letter in letters:
            document = orjson.loads(letter.value)
            key = f"{document['firing']['id']}:{document['action_index']}"
            out[key] += 1
            documents[key] = document
        return out

    started = time.monotonic()
    while time.monotonic() - started < 180:
        ended = set(delivered()) | set(dead())
        if ended >= set(where):
            break
        time.sleep(1)
    time.sleep(3)  # a late repeat or a second dead letter would show here
    ok, letters = delivered(), dead()
    both = set(ok) & set(letters)
    neither = set(where) - set(ok) - set(letters)
    repeated = {k: n for k, n in ok.items() if n > 1}
    lettered_twice = {k: n for k, n in letters.items() if n > 1}
    by_path = Counter(where.values())
    print(
        "\nRELIABILITY "
        + orjson.dumps(
            {
                "run": "action faults",
                "firings": FIRINGS,
                "actions": len(where),
                "by_endpoint": dict(by_path),
                "delivered": len(ok),
                "dead_lettered": len(letters),
                "flap_requests": len(target.to("/flap")),
                "seconds": round(time.monotonic() - started, 1),
            }
        ).decode()
    )
    assert not neither, f"{len(neither)} actions vanished, e.g. {sorted(neither)[:3]}"
    assert not both, f"{len(both)} delivered and dead-lettered, e.g. {sorted(both)[:3]}"
    assert not repeated, f"repeated effects: {list(repeated.items())[:3]}"
    assert not lettered_twice, f"dead-lettered twice: {list(lettered_twice.items())[:3]}"
    assert set(ok) | set(letters) == set(where)
    # Failing and hanging targets always end in the DLQ, after every attempt.
    assert {k for k, p in where.items() if p in ("/fail", "/hang")} <= set(letters)
    assert {k for k, p in where.items() if p == "/ok"} <= set(ok)
    # Every attempt was made (the target may not see one: a refused connection is retried).
    errors = Counter((where[k], documents[k]["attempts"], documents[k]["error"]) for k in letters)
    print(f"RELIABILITY action faults, dead letters by (endpoint, attempts, error): {errors}")
    for key in letters:
        assert documents[key]["attempts"] == ATTEMPTS, documents[key]
    assert 0 < len(target.to("/fail")) <= ATTEMPTS * by_path["/fail"]
    flapped = {k for k, p in where.items() if p == "/flap"}
    assert flapped & set(ok) and flapped & set(letters)  # the coin went both ways
