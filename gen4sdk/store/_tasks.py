"""The generation queue: partner apps' API keys and their generation tasks, in the store's database.

The database is the queue. Any number of API processes submit into it and any number of workers, on any hosts
that reach the same store, claim from it: a claim is one write transaction under the named lock ``tasks``
(PostgreSQL: a transaction-scoped advisory lock; SQLite: the file's write lock), so no task is claimed twice.
Running tasks carry a heartbeat; a task whose worker stopped beating for longer than the lease is handed back to
the caller of :meth:`TaskQueue.stale` to settle (the service marks it failed, ``WORKER.LOST``). API keys are kept
as SHA-256 digests: a key is 32 random bytes, so a fast hash is enough and the key itself is shown once.

Times are seconds since the epoch (``time.time()``) of the host that wrote them; hosts are expected to keep their
clocks in NTP sync, which the leases (tens of seconds) tolerate.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gen4sdk.errors import InvalidRequestError, StoreError
from gen4sdk.store._database import Database

__all__ = ["ApiKey", "IdempotencyConflict", "RateLimited", "TaskQueue", "TaskRow", "TaskStatus"]

TaskStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
FINISHED: tuple[TaskStatus, ...] = ("SUCCEEDED", "FAILED", "CANCELLED")
KEY_PREFIX = "g4k_"
_WINDOW = 60.0  # a key's rate limit counts the tasks it created in the last minute

_COLUMNS = (
    "id, api_key_id, idempotency_key, request_sha256, status, request_json, image, image_type, progress, stage, "
    "cancel_requested, worker, failure_code, failure, result_json, created_at, started_at, finished_at, heartbeat_at"
)


class ApiKey(BaseModel):
    """A partner application's API key, as kept (never the key itself)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    rate_limit: int  # generations a minute
    created_at: float
    revoked_at: float | None = None


class TaskRow(BaseModel):
    """One generation task as stored."""

    model_config = ConfigDict(frozen=True)

    id: str
    api_key_id: str
    idempotency_key: str | None
    request_sha256: str
    status: TaskStatus
    request: dict[str, Any]
    image: bytes | None
    image_type: str | None
    progress: float
    stage: str | None
    cancel_requested: bool
    worker: str | None
    failure_code: str | None
    failure: str | None
    result: dict[str, Any] | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class RateLimited(StoreError):
    """The key created as many tasks in the last minute as its limit allows; ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyConflict(InvalidRequestError):
    """An idempotency key reused with a different request."""


def _row(r: tuple[Any, ...]) -> TaskRow:
    return TaskRow(
        id=r[0],
        api_key_id=r[1],
        idempotency_key=r[2],
        request_sha256=r[3],
        status=r[4],
        request=json.loads(r[5]),
        image=bytes(r[6]) if r[6] is not None else None,
        image_type=r[7],
        progress=float(r[8]),
        stage=r[9],
        cancel_requested=bool(r[10]),
        worker=r[11],
        failure_code=r[12],
        failure=r[13],
        result=json.loads(r[14]) if r[14] else None,
        created_at=float(r[15]),
        started_at=r[16],
        finished_at=r[17],
        heartbeat_at=r[18],
    )


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class TaskQueue:
    """API keys and generation tasks in a store's database.

    ``store``: a :class:`~gen4sdk.store.Store` (its database is shared), a :class:`~gen4sdk.store.Database`, or a
    store's path or ``postgresql://`` URL.
    """

    def __init__(self, store: Any) -> None:
        shared = store if isinstance(store, Database) else getattr(store, "database", None)
        self._db: Database = shared if isinstance(shared, Database) else Database(store)

    @property
    def location(self) -> str:
        return self._db.location

    # ------------------------------------------------------------------ API keys
    def create_api_key(self, name: str, *, rate_limit: int = 10) -> tuple[ApiKey, str]:
        """A new key for the application ``name``: its record and the key, which is not kept and cannot be shown
        again. ``rate_limit``: generations it may submit a minute."""
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidRequestError("an API key needs a name of 1 to 200 characters", field="name")
        if not 1 <= rate_limit <= 100_000:
            raise InvalidRequestError("rate_limit must be between 1 and 100000 a minute", field="rate_limit")
        key_id = uuid.uuid4().hex[:12]
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        key = f"{KEY_PREFIX}{key_id}_{secret}"
        record = ApiKey(id=key_id, name=name, rate_limit=rate_limit, created_at=time.time())
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO jobs_api_keys(id, name, key_sha256, rate_limit, created_at) VALUES (?, ?, ?, ?, ?)",
                (record.id, record.name, _digest(key), record.rate_limit, record.created_at),
            )
        return record, key

    def api_keys(self) -> list[ApiKey]:
        rows = self._db.read(
            "SELECT id, name, rate_limit, created_at, revoked_at FROM jobs_api_keys ORDER BY created_at, id"
        )
        return [ApiKey(id=r[0], name=r[1], rate_limit=r[2], created_at=r[3], revoked_at=r[4]) for r in rows]

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke a key at once; its tasks stay readable to nobody but the store's operator."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE jobs_api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
        for key in self.api_keys():
            if key.id == key_id:
                return key
        raise InvalidRequestError(f"no API key {key_id!r}", field="key_id")

    def authenticate(self, key: str) -> ApiKey | None:
        """The live key record for ``key``, or None (unknown, malformed or revoked)."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        rows = self._db.read(
            "SELECT id, name, rate_limit, created_at, revoked_at FROM jobs_api_keys "
            "WHERE key_sha256 = ? AND revoked_at IS NULL",
            (_digest(key),),
        )
        if not rows:
            return None
        r = rows[0]
        return ApiKey(id=r[0], name=r[1], rate_limit=r[2], created_at=r[3], revoked_at=r[4])

    # ------------------------------------------------------------------ tasks, the API's side
    def submit(
        self,
        key: ApiKey,
        request: dict[str, Any],
        *,
        task_id: str | None = None,
        image: bytes | None = None,
        image_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[TaskRow, bool]:
        """Queue a request; returns the task and whether it is new. A resubmission with the same idempotency key
        returns the first task (``IdempotencyConflict`` if the request differs); over the key's rate limit,
        ``RateLimited``."""
        body = json.dumps(request, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(body.encode() + b"\0" + (image or b"")).hexdigest()
        now = time.time()
        with self._db.write() as conn:
            self._db.lock(conn, "tasks")
            if idempotency_key is not None:
                found = conn.execute(
                    f"SELECT {_COLUMNS} FROM jobs_tasks WHERE api_key_id = ? AND idempotency_key = ?",
                    (key.id, idempotency_key),
                ).fetchone()
                if found is not None:
                    task = _row(tuple(found))
                    if task.request_sha256 != digest:
                        raise IdempotencyConflict(
                            f"idempotency key {idempotency_key!r} was used for another request (task {task.id})",
                            field="Idempotency-Key",
                        )
                    return task, False
            recent = conn.execute(
                "SELECT COUNT(*), MIN(created_at) FROM jobs_tasks WHERE api_key_id = ? AND created_at > ?",
                (key.id, now - _WINDOW),
            ).fetchone()
            if int(recent[0]) >= key.rate_limit:
                wait = max(0.0, float(recent[1]) + _WINDOW - now)
                raise RateLimited(f"API key {key.id} may submit {key.rate_limit} generations a minute", wait)
            new_id = task_id or uuid.uuid4().hex
            conn.execute(
                "INSERT INTO jobs_tasks(id, api_key_id, idempotency_key, request_sha256, status, request_json, "
                "image, image_type, progress, cancel_requested, created_at) "
                "VALUES (?, ?, ?, ?, 'PENDING', ?, ?, ?, 0, 0, ?)",
                (new_id, key.id, idempotency_key, digest, body, image, image_type, now),
            )
        created = self.get(new_id)
        if created is None:
            raise StoreError(f"task {new_id} vanished right after it was queued")
        return created, True

    def get(self, task_id: str, *, api_key_id: str | None = None) -> TaskRow | None:
        """The task, or None; with ``api_key_id``, only a task that key created."""
        sql = f"SELECT {_COLUMNS} FROM jobs_tasks WHERE id = ?"
        params: list[Any] = [task_id]
        if api_key_id is not None:
            sql += " AND api_key_id = ?"
            params.append(api_key_id)
        rows = self._db.read(sql, params)
        return _row(rows[0]) if rows else None

    def tasks(
        self, *, api_key_id: str | None = None, status: TaskStatus | None = None, limit: int = 100
    ) -> list[TaskRow]:
        """Tasks, newest first."""
        where, params = [], []
        if api_key_id is not None:
            where.append("api_key_id = ?")
            params.append(api_key_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {_COLUMNS} FROM jobs_tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        return [_row(r) for r in self._db.read(sql, [*params, int(limit)])]

    def cancel(self, task_id: str) -> TaskRow | None:
        """A pending task is cancelled at once; a running one is asked to stop (its worker sees it at its next
        heartbeat and stops between denoising steps). A finished task is left as it is."""
        now = time.time()
        with self._db.write() as conn:
            self._db.lock(conn, "tasks")
            conn.execute(
                "UPDATE jobs_tasks SET status = 'CANCELLED', finished_at = ?, failure_code = 'GENERATION.CANCELLED', "
                "failure = 'cancelled before it started' WHERE id = ? AND status = 'PENDING'",
                (now, task_id),
            )
            conn.execute(
                "UPDATE jobs_tasks SET cancel_requested = 1 WHERE id = ? AND status = 'RUNNING'", (task_id,)
            )
        return self.get(task_id)

    def queued_before(self, task: TaskRow) -> int:
        """How many pending tasks were submitted before this one."""
        rows = self._db.read(
            "SELECT COUNT(*) FROM jobs_tasks WHERE status = 'PENDING' AND (created_at < ? OR "
            "(created_at = ? AND id < ?))",
            (task.created_at, task.created_at, task.id),
        )
        return int(rows[0][0])

    # ------------------------------------------------------------------ tasks, the workers' side
    def claim(self, worker: str) -> TaskRow | None:
        """The oldest pending task, now running on ``worker``; None when the queue is empty."""
        now = time.time()
        with self._db.write() as conn:
            self._db.lock(conn, "tasks")
            found = conn.execute(
                "SELECT id FROM jobs_tasks WHERE status = 'PENDING' ORDER BY created_at, id LIMIT 1"
            ).fetchone()
            if found is None:
                return None
            conn.execute(
                "UPDATE jobs_tasks SET status = 'RUNNING', worker = ?, started_at = ?, heartbeat_at = ?, "
                "stage = 'queued' WHERE id = ?",
                (worker, now, now, found[0]),
            )
        return self.get(str(found[0]))

    def heartbeat(self, beats: dict[str, tuple[float, str | None]], worker: str) -> set[str]:
        """Record progress and liveness of ``worker``'s running tasks (id -> (progress, stage)); returns the ids
        whose cancellation was requested, and, as cancelled too, those no longer running on this worker."""
        if not beats:
            return set()
        now = time.time()
        with self._db.write() as conn:
            for task_id, (progress, stage) in beats.items():
                conn.execute(
                    "UPDATE jobs_tasks SET heartbeat_at = ?, progress = ?, stage = ? "
                    "WHERE id = ? AND worker = ? AND status = 'RUNNING'",
                    (now, float(progress), stage, task_id, worker),
                )
        marks = ",".join("?" for _ in beats)
        rows = self._db.read(
            f"SELECT id, status, worker, cancel_requested FROM jobs_tasks WHERE id IN ({marks})", list(beats)
        )
        live = {r[0] for r in rows if r[1] == "RUNNING" and r[2] == worker}
        return {r[0] for r in rows if r[3]} | (set(beats) - live)

    def finish(
        self,
        task_id: str,
        worker: str | None,
        status: Literal["SUCCEEDED", "FAILED", "CANCELLED"],
        *,
        result: dict[str, Any] | None = None,
        failure_code: str | None = None,
        failure: str | None = None,
    ) -> bool:
        """Settle a running task (only if it still runs on ``worker``; None: whichever worker holds it). False
        when it did not (settled meanwhile, by the lease's expiry or another caller)."""
        sql = (
            "UPDATE jobs_tasks SET status = ?, finished_at = ?, result_json = ?, failure_code = ?, failure = ?, "
            "progress = ?, stage = ?, image = NULL WHERE id = ? AND status = 'RUNNING'"
        )
        params: list[Any] = [
            status,
            time.time(),
            json.dumps(result) if result is not None else None,
            failure_code,
            failure,
            1.0 if status == "SUCCEEDED" else 0.0,
            None,  # a finished task has no stage running; a failed one keeps the stage it failed in
            task_id,
        ]
        if worker is not None:
            sql += " AND worker = ?"
            params.append(worker)
        with self._db.write() as conn:
            self._db.lock(conn, "tasks")
            before = conn.execute(
                "SELECT progress, stage FROM jobs_tasks WHERE id = ? AND status = 'RUNNING'", (task_id,)
            ).fetchone()
            if before is None:
                return False
            if status != "SUCCEEDED":
                params[5], params[6] = float(before[0]), before[1]  # how far it got, and where it stopped
            cur = conn.execute(sql, params)
            return bool(getattr(cur, "rowcount", 1))

    def stale(self, lease: float) -> list[TaskRow]:
        """Running tasks whose worker has not beaten for ``lease`` seconds."""
        rows = self._db.read(
            f"SELECT {_COLUMNS} FROM jobs_tasks WHERE status = 'RUNNING' AND heartbeat_at < ?",
            (time.time() - lease,),
        )
        return [_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Tasks by status."""
        return {
            str(s): int(n)
            for s, n in self._db.read("SELECT status, COUNT(*) FROM jobs_tasks GROUP BY status")
        }
