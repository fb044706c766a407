"""The generation service's logic, without HTTP: input checks before anything is queued, the API's view of a task,
and settling tasks whose worker was lost. The routes (``_generations.py``) and the workers (``_worker.py``) share it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from gen4sdk import media
from gen4sdk.errors import (
    GenerationCancelled,
    GenerationFailed,
    InvalidRequestError,
    MediaError,
    ModelLoadError,
    OutputError,
    PolicyViolation,
    SigningError,
    StoreError,
    WatermarkFailure,
)
from gen4sdk.server._job_models import GenerationCreate, GenerationOutput, GenerationTask, TaskFailureCode
from gen4sdk.store import Store
from gen4sdk.store._tasks import ApiKey, TaskQueue, TaskRow
from gen4sdk.types import AuditRecord, GenerationRequest

if TYPE_CHECKING:
    from gen4sdk.policy import LikenessRegistry, Policy

logger = logging.getLogger(__name__)

__all__ = ["GenerationService", "failure_code", "settle_stale", "write_image"]

DEFAULT_LEASE = 60.0
_IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


# the first class an exception is an instance of gives its code (subclasses before their bases)
_FAILURE_CODES: tuple[tuple[type[BaseException], TaskFailureCode], ...] = (
    (GenerationCancelled, "GENERATION.CANCELLED"),
    (ModelLoadError, "MODEL.UNAVAILABLE"),
    (InvalidRequestError, "INVALID.REQUEST"),
    (OutputError, "OUTPUT.FAILED"),
    (SigningError, "SIGNING.FAILED"),
    (StoreError, "STORE.FAILED"),
    (MediaError, "GENERATION.FAILED"),
    (GenerationFailed, "GENERATION.FAILED"),
    (WatermarkFailure, "GENERATION.FAILED"),
)


def failure_code(exc: BaseException) -> TaskFailureCode:
    """The task failure code of an exception a generation raised."""
    if isinstance(exc, PolicyViolation):
        return exc.code
    return next((code for kind, code in _FAILURE_CODES if isinstance(exc, kind)), "INTERNAL")


def _utc(t: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc) if t is not None else None


def _record(
    store: Store, task_id: str, fields: dict[str, Any], outcome: str, failure: str, code: str, **extra: Any
) -> None:
    """The audit record of a task that ended outside a Client (refused at the API, its worker lost)."""
    store.append(
        AuditRecord(
            request_id=task_id,
            caller=fields.get("user"),
            outcome=outcome,  # type: ignore[arg-type]
            prompt=fields["prompt"],
            negative_prompt=fields.get("negative_prompt"),
            parameters=fields,
            failure=failure,
            failure_code=code,
            **extra,
        )
    )


def _decode_image(data_uri: str, max_bytes: int) -> tuple[bytes, str]:
    head, sep, body = data_uri.partition(",")
    mime = head.removeprefix("data:").removesuffix(";base64").lower()
    if not sep or not head.startswith("data:") or not head.endswith(";base64") or mime not in _IMAGE_TYPES:
        raise InvalidRequestError(
            "image must be a data URI: data:image/png;base64,... (or image/jpeg, image/webp)", field="image"
        )
    if len(body) > max_bytes * 4 // 3 + 4:
        raise InvalidRequestError(f"image is larger than {max_bytes} bytes", field="image")
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("image is not valid base64", field="image") from None
    if not raw:
        raise InvalidRequestError("image is empty", field="image")
    return raw, mime


def write_image(task: TaskRow, directory: Path) -> Path | None:
    """The task's reference image as a file in ``directory`` (None without one)."""
    if task.image is None:
        return None
    path = directory / f"{task.id}-reference{_IMAGE_TYPES.get(task.image_type or '', '.png')}"
    path.write_bytes(task.image)
    return path


class GenerationService:
    """The job API's side of the generation queue in ``store``.

    ``policy``/``likeness``: the input checks run before a request is queued (by default the shipped default pack
    and the store's likeness registry), so a refused request never waits in the queue; workers check again.
    ``validate``: the model's own rules for a request (frame counts, sizes), when the API knows the model.
    ``lease``: seconds without a heartbeat after which a running task's worker is taken for lost.
    """

    def __init__(
        self,
        store: Store,
        *,
        policy: Policy | None = None,
        likeness: LikenessRegistry | None = None,
        validate: Callable[[GenerationRequest, np.ndarray | None], None] | None = None,
        lease: float = DEFAULT_LEASE,
        max_image_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        from gen4sdk.policy import LikenessRegistry, Policy

        if store.database.read_only:
            raise InvalidRequestError("the generation service needs a writable store", field="store")
        self.store = store
        self.queue = TaskQueue(store)
        self.policy = policy if policy is not None else Policy.default()
        self.likeness = likeness if likeness is not None else LikenessRegistry(store)
        self.validate = validate
        self.lease = lease
        self.max_image_bytes = max_image_bytes

    # ------------------------------------------------------------------ submitting
    def submit(
        self, key: ApiKey, body: GenerationCreate, *, idempotency_key: str | None = None
    ) -> tuple[TaskRow, bool]:
        """Check the request's inputs and queue it. Raises ``InvalidRequestError`` for a malformed request,
        ``PolicyViolation`` for a refused one (recorded in the audit log, nothing queued), ``RateLimited`` and
        ``IdempotencyConflict`` from the queue."""
        task_id = uuid.uuid4().hex
        image_bytes, image_type, array = None, None, None
        if body.image is not None:
            image_bytes, image_type = _decode_image(body.image, self.max_image_bytes)
            with tempfile.TemporaryDirectory(prefix="gen4sdk-ref-") as tmp:
                path = Path(tmp) / f"reference{_IMAGE_TYPES[image_type]}"
                path.write_bytes(image_bytes)
                try:
                    array = media.load_image(path)
                except MediaError as exc:
                    raise InvalidRequestError(f"image: {exc}", field="image") from exc
        stored = body.model_dump(mode="json", exclude={"image"})
        try:
            request = GenerationRequest(**{**stored, "seed": stored["seed"] or 0}, request_id=task_id)
        except ValidationError as exc:
            raise InvalidRequestError.from_validation(exc) from exc
        if self.validate is not None:
            self.validate(request, array)
        decision = self.policy.check_request(request, image=array, likeness=self.likeness)
        if not decision.allowed:
            violation = PolicyViolation.from_decision(decision, request_id=task_id)
            # every refusal is recorded; a refusal that cannot be recorded is a failure, not a quiet answer
            fields = {**stored, "api_key": key.id, "stage": "api"}
            _record(
                self.store, task_id, fields, "refused", str(violation), violation.code, decisions=[decision]
            )
            raise violation
        return self.queue.submit(
            key,
            stored,
            task_id=task_id,
            image=image_bytes,
            image_type=image_type,
            idempotency_key=idempotency_key,
        )

    # ------------------------------------------------------------------ reading
    def view(self, task: TaskRow) -> GenerationTask:
        output = None
        if task.status == "SUCCEEDED" and task.result:
            output = GenerationOutput(
                url=f"/v1/generations/{task.id}/content",
                sha256=task.result["sha256"],
                manifest_id=task.result["manifest_id"],
                watermark_payload=task.result["watermark_payload"],
            )
        return GenerationTask(
            id=task.id,
            status=task.status,
            progress=round(task.progress, 4),
            stage=task.stage,
            queue_position=self.queue.queued_before(task) if task.status == "PENDING" else None,
            created_at=_utc(task.created_at),  # type: ignore[arg-type]
            started_at=_utc(task.started_at),
            finished_at=_utc(task.finished_at),
            failure_code=task.failure_code,  # type: ignore[arg-type]
            failure=task.failure,
            output=output,
        )

    # ------------------------------------------------------------------ lost workers
    def settle_stale(self) -> list[str]:
        """Settle running tasks whose worker stopped beating for longer than the lease: as the audit log has them
        when the worker recorded an outcome before it died, else ``FAILED`` with ``WORKER.LOST`` (recorded)."""
        return settle_stale(self.queue, self.store, self.lease)


def settle_stale(queue: TaskQueue, store: Store, lease: float) -> list[str]:
    """See :meth:`GenerationService.settle_stale`; the workers call it too, when their queue is empty."""
    settled = []
    for task in queue.stale(lease):
        try:
            entry = store.find_record(task.id)
        except StoreError as exc:
            logger.error("cannot read the audit log to settle task %s: %s", task.id, exc)
            continue
        record = entry.record if entry is not None else None
        if record is not None and record.outcome == "allowed" and record.output_path and record.manifest_id:
            ok = queue.finish(
                task.id,
                task.worker,
                "SUCCEEDED",
                result={
                    "path": record.output_path,
                    "sha256": record.output_sha256,
                    "manifest_id": record.manifest_id,
                    "watermark_payload": record.watermark_payload,
                },
            )
        elif record is not None:
            ok = queue.finish(
                task.id,
                task.worker,
                "CANCELLED" if record.outcome == "cancelled" else "FAILED",
                failure_code=record.failure_code or "INTERNAL",
                failure=record.failure,
            )
        else:
            message = (
                f"worker {task.worker} stopped sending heartbeats for {lease:.0f} s; nothing was written"
            )
            ok = queue.finish(task.id, task.worker, "FAILED", failure_code="WORKER.LOST", failure=message)
            if ok:
                fields = {**task.request, "api_key": task.api_key_id, "worker": task.worker}
                _record(store, task.id, fields, "failed", message, "WORKER.LOST")
        if ok:
            logger.warning("task %s settled after its worker %s was lost", task.id, task.worker)
            settled.append(task.id)
    return settled
