"""The job API, in the shape of the hosted video APIs: ``POST /v1/generations`` queues a request and answers with
its task at once, ``GET /v1/generations/{id}`` tells its status and progress, ``DELETE`` cancels it, and
``GET /v1/generations/{id}/content`` returns the signed clip. Partner apps authenticate with an API key
(``Authorization: Bearer g4k_...``); every error has the body ``{"error": {"code", "message", ...}}``.
"""

# No "from __future__ import annotations": FastAPI resolves the route signatures.

import logging
import time
from pathlib import Path
from typing import Annotated, Any

from gen4sdk.errors import InvalidRequestError, PolicyViolation, StoreError
from gen4sdk.server._job_models import (
    ApiError,
    ErrorBody,
    ErrorCode,
    GenerationCreate,
    GenerationList,
    GenerationTask,
)
from gen4sdk.server._jobs import GenerationService
from gen4sdk.store._tasks import ApiKey, IdempotencyConflict, RateLimited, TaskRow, TaskStatus

logger = logging.getLogger(__name__)

__all__ = ["add_generation_routes"]

PREFIX = "/v1/generations"


class _Failure(Exception):
    """An API error: answered as an ErrorBody with its HTTP status."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
        categories: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(
            error=ApiError(
                code=code, message=message, field=field, request_id=request_id, categories=categories
            )
        )
        self.headers = headers


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        400: "Malformed request, or its inputs refused by the policy (code SAFETY.*)",
        401: "Missing, unknown or revoked API key",
        404: "No such task for this API key",
        409: "Idempotency key reused for another request, or the task is not in a state for this",
        413: "Request body too large",
        429: "The API key's rate limit is reached (Retry-After)",
        503: "The store cannot be reached",
    }
    return {s: {"model": ErrorBody, "description": meaning[s]} for s in statuses}


def add_generation_routes(app: Any, service: GenerationService) -> None:
    """Add the job API to ``app``; its tasks run on :class:`~gen4sdk.server.GenerationWorker` s over the same
    store."""
    from fastapi import Depends, Header, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False, description="an API key from `gen4sdk keys api-key create`")
    previous_handler = app.exception_handlers.get(RequestValidationError)

    @app.exception_handler(_Failure)
    async def failure(request: Request, exc: _Failure) -> JSONResponse:
        return JSONResponse(
            exc.body.model_dump(mode="json", exclude_none=True), exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        if not request.url.path.startswith("/v1/"):
            if previous_handler is not None:
                return await previous_handler(request, exc)
            from fastapi.exception_handlers import request_validation_exception_handler

            return await request_validation_exception_handler(request, exc)
        err = exc.errors()[0]
        where = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "header", "path")]
        field = ".".join(where) or None
        message = f"invalid {field or 'request'}: {err.get('msg')}"
        return await failure(request, _Failure(400, "INVALID.REQUEST", message, field=field))

    def authenticate(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiKey:
        if credentials is None:
            raise _Failure(401, "UNAUTHORIZED", "send an API key: Authorization: Bearer g4k_...",
                           headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        try:
            key = service.queue.authenticate(credentials.credentials)
        except StoreError as exc:
            raise _unavailable(exc) from None
        if key is None:
            raise _Failure(
                401, "UNAUTHORIZED", "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
            )
        return key

    def _unavailable(exc: StoreError) -> _Failure:
        logger.error("job API: store unavailable: %s", exc)
        return _Failure(503, "UNAVAILABLE", "the service's store cannot be reached; retry later",
                        headers={"Retry-After": "5"})  # fmt: skip

    def task_of(task_id: str, key: ApiKey) -> TaskRow:
        try:
            task = service.queue.get(task_id, api_key_id=key.id)
            stale = task is not None and task.heartbeat_at is not None and task.status == "RUNNING"
            if stale and time.time() - task.heartbeat_at > service.lease:  # type: ignore[union-attr,operator]
                service.settle_stale()  # its worker was lost: say so now, not when another worker idles
                task = service.queue.get(task_id, api_key_id=key.id)
        except StoreError as exc:
            raise _unavailable(exc) from None
        if task is None:
            raise _Failure(404, "NOT_FOUND", f"no generation {task_id!r} for this API key")
        return task

    def view(task: TaskRow) -> GenerationTask:
        try:
            return service.view(task)
        except StoreError as exc:
            raise _unavailable(exc) from None

    @app.post(
        PREFIX,
        response_model=GenerationTask,
        response_model_exclude_none=True,
        status_code=201,
        tags=["generations"],
        operation_id="createGeneration",
        summary="Queue a generation; answers at once with its task (PENDING).",
        description=(
            "The prompt, negative prompt, reference image and likeness are checked before anything is queued: a "
            "refused request is answered 400 with its SAFETY.* code and recorded in the audit log. With an "
            "Idempotency-Key header, a resubmission returns the first task (200) instead of queuing another."
        ),
        responses={200: {"model": GenerationTask, "description": "An earlier task with this Idempotency-Key"}}
        | _errors(400, 401, 409, 413, 429, 503),
    )
    def create(
        body: GenerationCreate,
        key: Annotated[ApiKey, Depends(authenticate)],
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    ) -> Any:
        try:
            task, created = service.submit(key, body, idempotency_key=idempotency_key)
        except PolicyViolation as exc:
            raise _Failure(
                400, exc.code, str(exc), request_id=exc.request_id, categories=list(exc.categories)
            ) from None
        except IdempotencyConflict as exc:
            raise _Failure(409, "IDEMPOTENCY.CONFLICT", str(exc), field="Idempotency-Key") from None
        except InvalidRequestError as exc:
            raise _Failure(400, "INVALID.REQUEST", str(exc), field=getattr(exc, "field", None)) from None
        except RateLimited as exc:
            raise _Failure(429, "RATE_LIMITED", str(exc),
                           headers={"Retry-After": str(max(1, int(exc.retry_after) + 1))}) from None  # fmt: skip
        except StoreError as exc:
            raise _unavailable(exc) from None
        shown = view(task)
        if created:
            return shown
        return JSONResponse(shown.model_dump(mode="json", exclude_none=True), 200)

    @app.get(
        PREFIX,
        response_model=GenerationList,
        response_model_exclude_none=True,
        tags=["generations"],
        operation_id="listGenerations",
        summary="This API key's tasks, newest first.",
        responses=_errors(400, 401, 503),
    )
    def list_tasks(
        key: Annotated[ApiKey, Depends(authenticate)],
        status: Annotated[TaskStatus | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> GenerationList:
        try:
            tasks = service.queue.tasks(api_key_id=key.id, status=status, limit=limit)
        except StoreError as exc:
            raise _unavailable(exc) from None
        return GenerationList(data=[view(t) for t in tasks])

    @app.get(
        PREFIX + "/{task_id}",
        response_model=GenerationTask,
        response_model_exclude_none=True,
        tags=["generations"],
        operation_id="getGeneration",
        summary="A task's status, progress, failure code, and where its clip is once it has SUCCEEDED.",
        responses=_errors(401, 404, 503),
    )
    def get_task(task_id: str, key: Annotated[ApiKey, Depends(authenticate)]) -> GenerationTask:
        return view(task_of(task_id, key))

    @app.delete(
        PREFIX + "/{task_id}",
        response_model=GenerationTask,
        response_model_exclude_none=True,
        tags=["generations"],
        operation_id="cancelGeneration",
        summary="Cancel a task: at once when PENDING; a RUNNING one stops at its next denoising step.",
        description="A task that has SUCCEEDED or FAILED is not changed (409); cancelling twice is not an error.",
        responses=_errors(401, 404, 409, 503),
    )
    def cancel(task_id: str, key: Annotated[ApiKey, Depends(authenticate)]) -> GenerationTask:
        task = task_of(task_id, key)
        if task.status in ("SUCCEEDED", "FAILED"):
            raise _Failure(409, "TASK.FINISHED", f"generation {task_id} has already {task.status.lower()}")
        try:
            updated = service.queue.cancel(task_id)
        except StoreError as exc:
            raise _unavailable(exc) from None
        return view(updated or task)

    @app.get(
        PREFIX + "/{task_id}/content",
        tags=["generations"],
        operation_id="getGenerationContent",
        summary="The signed MP4 of a task that has SUCCEEDED.",
        response_class=FileResponse,
        responses={
            200: {"content": {"video/mp4": {}}, "description": "The clip, with its Content Credentials"}
        }
        | _errors(401, 404, 409, 503),
    )
    def content(task_id: str, key: Annotated[ApiKey, Depends(authenticate)]) -> FileResponse:
        task = task_of(task_id, key)
        if task.status != "SUCCEEDED" or not task.result:
            raise _Failure(409, "TASK.FINISHED" if task.finished else "TASK.NOT_READY",
                           f"generation {task_id} is {task.status}; its clip exists once it has SUCCEEDED")  # fmt: skip
        path = Path(task.result["path"])
        if not path.is_file():
            raise _Failure(404, "NOT_FOUND", f"the clip of generation {task_id} is no longer kept")
        return FileResponse(path, media_type="video/mp4", filename=f"{task_id}.mp4")
