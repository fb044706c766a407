"""A generation worker: one Client (one model on one device) running queued tasks from the store.

Each task runs in two halves (``Client``'s): the first, where the model runs (policy, denoising, frame checks,
watermark), on the *producer* thread; the second, on the CPU (encode, sign, record), on the *finisher* thread. So
while task N is encoded and signed, task N+1 is already denoising: with a GPU the stages after the model leave
the GPU's wall time. At most one finished first half waits for the finisher, which bounds memory to two clips'
frames. A third thread sends heartbeats (progress, liveness) and passes cancellations to the running tasks.
"""

from __future__ import annotations

import logging
import os
import queue as queue_mod
import shutil
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typing_extensions import Self

from gen4sdk.errors import InvalidRequestError, StoreError
from gen4sdk.server._jobs import DEFAULT_LEASE, failure_code, settle_stale, write_image
from gen4sdk.store import Store
from gen4sdk.store._tasks import TaskQueue, TaskRow
from gen4sdk.types import GenerationResult, ProgressEvent

if TYPE_CHECKING:
    from gen4sdk.client import Client

logger = logging.getLogger(__name__)

__all__ = ["GenerationWorker"]

# where each stage leaves a task's progress (generate moves from 0.02 to 0.85 with its steps)
_STAGE_DONE = {
    "policy": 0.02,
    "generate": 0.85,
    "frames_policy": 0.87,
    "label": 0.88,
    "watermark": 0.9,
    "encode": 0.95,
    "watermark_check": 0.97,
    "sign": 0.98,
    "record": 1.0,
}


@dataclass
class _Active:
    task: TaskRow
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: float = 0.0
    stage: str | None = "queued"
    reference: Path | None = None


class GenerationWorker:
    """Runs tasks from the generation queue of ``client``'s store with ``client`` until :meth:`stop`. The queue,
    the audit log and the manifests are that one store: a shared one (PostgreSQL) for workers on several hosts.

    ``output_dir``: where clips are written, as ``<task id>.mp4`` (the API serves them from there, so API
    processes on other hosts need the same directory mounted). ``overlap=False`` runs the two halves of a task
    back to back (the serial baseline). ``lease``: heartbeats (which also fetch cancellations) are sent every sixth of it, at most every 2 s; a worker silent for a
    whole lease is taken for lost and its task failed with ``WORKER.LOST``.
    """

    def __init__(
        self,
        client: Client,
        output_dir: str | os.PathLike[str],
        *,
        name: str | None = None,
        overlap: bool = True,
        lease: float = DEFAULT_LEASE,
        poll_interval: float = 0.25,
    ) -> None:
        if client.store is None:
            raise InvalidRequestError(
                "a generation worker needs a Client with a store (its queue)", field="client"
            )
        self.client = client
        self.store: Store = client.store
        self.queue = TaskQueue(self.store)
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.name = name or f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"
        self.overlap = overlap
        self.lease = lease
        self.poll_interval = poll_interval
        self.completed = 0  # tasks settled by this worker, whatever their outcome
        self._active: dict[str, _Active] = {}
        # outcomes the store could not take (it was unreachable): retried with the heartbeats until it is back
        self._unsettled: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()  # take no more tasks
        self._done = threading.Event()  # every taken task is settled: heartbeats end
        self._handoff: queue_mod.Queue[tuple[_Active, Any] | None] = queue_mod.Queue(maxsize=1)
        self._threads: list[threading.Thread] = []
        self._scratch = Path(tempfile.mkdtemp(prefix="gen4sdk-worker-"))

    # ------------------------------------------------------------------ life cycle
    def start(self) -> Self:
        if self._threads:
            raise RuntimeError("the worker is already running")
        self._stop.clear()
        self._done.clear()
        self._scratch.mkdir(parents=True, exist_ok=True)
        targets = [self._produce_loop] + ([self._finish_loop] if self.overlap else []) + [self._beat_loop]
        self._threads = [
            threading.Thread(target=t, name=f"gen4sdk-worker{t.__name__}", daemon=True) for t in targets
        ]
        for t in self._threads:
            t.start()
        logger.info("generation worker %s started (overlap=%s)", self.name, self.overlap)
        return self

    def stop(self, *, cancel: bool = False, timeout: float | None = None) -> None:
        """Stop taking tasks and wait for the running ones to finish (``cancel=True``: they are cancelled at
        their next check, between denoising steps)."""
        self._stop.set()
        if cancel:
            with self._lock:
                for active in self._active.values():
                    active.cancel.set()
        if not self._threads:
            return
        producer, *rest, beater = self._threads
        producer.join(timeout)
        if self.overlap:
            self._handoff.put(None)
            rest[0].join(timeout)
        self._done.set()
        beater.join(timeout)
        self._threads = []
        self._retry_unsettled()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> list[str]:
        with self._lock:
            return list(self._active)

    # ------------------------------------------------------------------ the threads
    def _produce_loop(self) -> None:
        idle_since = time.monotonic()
        while not self._stop.is_set():
            try:
                task = self.queue.claim(self.name)
            except Exception as exc:  # noqa: BLE001 - the store is down or answers oddly: the worker waits, not dies
                logger.error("worker %s cannot claim a task: %s", self.name, exc)
                self._stop.wait(max(1.0, self.poll_interval))
                continue
            if task is None:
                if time.monotonic() - idle_since > self.lease / 2:
                    idle_since = time.monotonic()
                    try:
                        settle_stale(self.queue, self.store, self.lease)
                    except StoreError as exc:
                        logger.error("worker %s cannot settle lost tasks: %s", self.name, exc)
                self._stop.wait(self.poll_interval)
                continue
            idle_since = time.monotonic()
            active = _Active(task)
            with self._lock:
                self._active[task.id] = active
            run = self._first_half(active)
            if run is None:
                continue
            if self.overlap:
                self._handoff.put((active, run))  # waits while the finisher still holds the previous task
            else:
                self._second_half(active, run)

    def _finish_loop(self) -> None:
        while True:
            item = self._handoff.get()
            if item is None:
                return
            self._second_half(*item)

    def _beat_loop(self) -> None:
        interval = max(0.2, min(2.0, self.lease / 6))  # also how soon a cancellation is seen
        while not self._done.wait(interval):
            self._retry_unsettled()
            with self._lock:
                beats = {tid: (a.progress, a.stage) for tid, a in self._active.items()}
            try:
                stop = self.queue.heartbeat(beats, self.name)
            except StoreError as exc:
                logger.error("worker %s cannot send heartbeats: %s", self.name, exc)
                continue
            with self._lock:
                for tid in stop:
                    if tid in self._active:
                        self._active[tid].cancel.set()

    # ------------------------------------------------------------------ one task
    def _progress(self, active: _Active) -> Any:
        def on_progress(event: ProgressEvent) -> None:
            if event.stage == "generate":
                active.progress = 0.02 + 0.83 * event.step / max(1, event.total)
            else:
                active.progress = max(active.progress, _STAGE_DONE.get(event.stage, active.progress))
            active.stage = event.stage

        return on_progress

    def _first_half(self, active: _Active) -> Any:
        task = active.task
        try:
            active.reference = write_image(task, self._scratch)
            fields = {k: v for k, v in task.request.items() if k != "image"}
            run = self.client._start(
                **fields,
                image=active.reference,
                output=self.output_dir / f"{task.id}.mp4",
                request_id=task.id,
                cancel=active.cancel,
                on_progress=self._progress(active),
            )
            active.stage = "policy"
            run.produce()
            return run
        except BaseException as exc:
            self._settle(active, None, exc)
            if not isinstance(exc, Exception):
                raise
            return None

    def _second_half(self, active: _Active, run: Any) -> None:
        try:
            result = run.finish()
        except BaseException as exc:
            self._settle(active, None, exc)
            if not isinstance(exc, Exception):
                raise
        else:
            self._settle(active, result, None)

    def _settle(self, active: _Active, result: GenerationResult | None, exc: BaseException | None) -> None:
        task = active.task
        if result is not None:
            outcome: dict[str, Any] = {
                "status": "SUCCEEDED",
                "result": {
                    "path": str(result.path),
                    "sha256": result.sha256,
                    "manifest_id": result.manifest_id,
                    "watermark_payload": result.watermark_payload,
                },
            }
        else:
            assert exc is not None
            code = failure_code(exc)
            outcome = {
                "status": "CANCELLED" if code == "GENERATION.CANCELLED" else "FAILED",
                "failure_code": code,
                "failure": str(exc) or type(exc).__name__,
            }
            quiet = code.startswith("SAFETY.") or code == "GENERATION.CANCELLED"
            logger.log(logging.INFO if quiet else logging.ERROR, "task %s: %s: %s", task.id, code, exc)
        try:
            self._finish_task(task.id, outcome)
        except StoreError as exc2:
            # the store is unreachable: the outcome is kept here and written when it is back
            logger.error("worker %s cannot settle task %s yet: %s", self.name, task.id, exc2)
            with self._lock:
                self._unsettled.append((task.id, outcome))
        finally:
            if active.reference is not None:
                active.reference.unlink(missing_ok=True)
            with self._lock:
                self._active.pop(task.id, None)
                self.completed += 1

    def _finish_task(self, task_id: str, outcome: dict[str, Any]) -> None:
        fields = dict(outcome)
        if not self.queue.finish(task_id, self.name, fields.pop("status"), **fields):
            logger.warning("task %s was settled elsewhere before worker %s finished it", task_id, self.name)

    def _retry_unsettled(self) -> None:
        with self._lock:
            waiting, self._unsettled = self._unsettled, []
        for i, (task_id, outcome) in enumerate(waiting):
            try:
                self._finish_task(task_id, outcome)
            except StoreError:
                with self._lock:
                    self._unsettled.extend(waiting[i:])
                return
            logger.info("worker %s settled task %s once the store was back", self.name, task_id)
