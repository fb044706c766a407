"""The generation queue in the store, on both backends: API keys kept as digests, submission with idempotency keys
and per-key rate limits, claims that never hand a task out twice, cancellation, heartbeats and leases."""

from __future__ import annotations

import threading
import time

import pytest
from postgres_server import raw_connection

from gen4sdk.errors import InvalidRequestError
from gen4sdk.store import Store, TaskQueue
from gen4sdk.store._tasks import IdempotencyConflict, RateLimited

REQUEST = {"prompt": "a lighthouse at dusk", "steps": 2, "seed": None}


@pytest.fixture
def queue(store_location: str) -> TaskQueue:
    return TaskQueue(Store(store_location))


def test_keys_are_kept_as_digests_and_revoked_at_once(queue: TaskQueue, store_location: str) -> None:
    record, key = queue.create_api_key("storyboard-app", rate_limit=5)
    assert key.startswith("g4k_" + record.id + "_") and len(key) > 50
    assert queue.authenticate(key) == record
    assert queue.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert queue.authenticate("Bearer " + key) is None and queue.authenticate("") is None
    with raw_connection(Store(store_location).database.target) as db:
        rows = db.execute("SELECT * FROM jobs_api_keys").fetchall()
    assert len(rows) == 1 and key not in repr(rows) and key.split("_")[2] not in repr(rows)
    assert [k.name for k in queue.api_keys()] == ["storyboard-app"]
    revoked = queue.revoke_api_key(record.id)
    assert revoked.revoked_at is not None and queue.authenticate(key) is None
    with pytest.raises(InvalidRequestError, match="no API key"):
        queue.revoke_api_key("nope")
    with pytest.raises(InvalidRequestError, match="name"):
        queue.create_api_key("  ")
    with pytest.raises(InvalidRequestError, match="rate_limit"):
        queue.create_api_key("x", rate_limit=0)


def test_idempotency_keys_and_the_rate_limit(queue: TaskQueue) -> None:
    key, _ = queue.create_api_key("app", rate_limit=2)
    first, created = queue.submit(key, REQUEST, idempotency_key="req-1")
    again, created_again = queue.submit(key, REQUEST, idempotency_key="req-1")
    assert created and not created_again and again.id == first.id
    with pytest.raises(IdempotencyConflict, match="another request"):
        queue.submit(key, {**REQUEST, "steps": 3}, idempotency_key="req-1")
    other, _ = queue.create_api_key("other app", rate_limit=2)
    theirs, created = queue.submit(other, REQUEST, idempotency_key="req-1")  # keys are per application
    assert created and theirs.id != first.id
    queue.submit(key, REQUEST)
    with pytest.raises(RateLimited) as limited:
        queue.submit(key, REQUEST)
    assert 0 < limited.value.retry_after <= 60
    # a resubmission is answered even over the limit: it queues nothing
    assert queue.submit(key, REQUEST, idempotency_key="req-1")[0].id == first.id
    assert queue.counts() == {"PENDING": 3}


def test_claims_are_oldest_first_and_never_twice(queue: TaskQueue) -> None:
    key, _ = queue.create_api_key("app", rate_limit=100)
    ids = [queue.submit(key, {**REQUEST, "seed": i})[0].id for i in range(12)]
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (task := queue.claim(name)) is not None:
            with lock:
                claimed.append((task.id, name))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for i, _ in claimed) == sorted(ids)  # each exactly once
    running = queue.tasks(status="RUNNING", limit=100)
    assert len(running) == 12 and all(t.worker and t.started_at for t in running)
    assert queue.claim("late") is None


def test_oldest_first(queue: TaskQueue) -> None:
    key, _ = queue.create_api_key("app", rate_limit=100)
    ids = [queue.submit(key, {**REQUEST, "seed": i})[0].id for i in range(3)]
    assert [queue.claim("w").id for _ in ids] == ids  # type: ignore[union-attr]


def test_cancel_heartbeat_finish_and_leases(queue: TaskQueue) -> None:
    key, _ = queue.create_api_key("app", rate_limit=100)
    pending, _ = queue.submit(key, REQUEST)
    running, _ = queue.submit(key, {**REQUEST, "seed": 1})
    queue.cancel(pending.id)  # claimed next would be this one: it must be gone from the queue
    assert queue.get(pending.id).status == "CANCELLED"  # type: ignore[union-attr]
    task = queue.claim("w1")
    assert task is not None and task.id == running.id
    assert queue.queued_before(task) == 0
    assert queue.heartbeat({task.id: (0.5, "generate")}, "w1") == set()
    seen = queue.get(task.id)
    assert seen is not None and seen.progress == 0.5 and seen.stage == "generate"
    queue.cancel(task.id)  # running: asked, not forced
    assert queue.get(task.id).status == "RUNNING"  # type: ignore[union-attr]
    assert queue.heartbeat({task.id: (0.6, "generate")}, "w1") == {task.id}
    # another worker cannot settle it; its own can, once
    assert not queue.finish(task.id, "w2", "SUCCEEDED", result={})
    assert queue.finish(task.id, "w1", "CANCELLED", failure_code="GENERATION.CANCELLED", failure="asked")
    assert not queue.finish(task.id, "w1", "FAILED")
    done = queue.get(task.id)
    assert (
        done is not None and done.status == "CANCELLED" and done.progress == 0.6 and done.stage == "generate"
    )
    # a task no longer running on this worker is reported back as one to stop
    assert queue.heartbeat({task.id: (0.7, "encode")}, "w1") == {task.id}

    third, _ = queue.submit(key, {**REQUEST, "seed": 2})
    claimed = queue.claim("w3")
    assert claimed is not None and claimed.id == third.id
    assert queue.stale(lease=30.0) == []
    time.sleep(0.3)
    assert [t.id for t in queue.stale(lease=0.2)] == [third.id]
    assert queue.finish(third.id, None, "SUCCEEDED", result={"path": "x"})  # whoever holds it
    assert queue.get(third.id).result == {"path": "x"} and queue.get(third.id).image is None  # type: ignore[union-attr]


def test_images_are_kept_until_the_task_is_settled(queue: TaskQueue) -> None:
    key, _ = queue.create_api_key("app")
    task, _ = queue.submit(key, REQUEST, image=b"\x89PNG fake", image_type="image/png")
    claimed = queue.claim("w")
    assert claimed is not None and claimed.image == b"\x89PNG fake" and claimed.image_type == "image/png"
    queue.finish(task.id, "w", "FAILED", failure_code="INTERNAL", failure="x")
    assert queue.get(task.id).image is None  # type: ignore[union-attr]
