"""The job API's request, task and error bodies (the OpenAPI document is generated from these)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gen4sdk.store._tasks import TaskStatus
from gen4sdk.types import GenerationRequest, RefusalCode

__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorCode",
    "GenerationCreate",
    "GenerationList",
    "GenerationOutput",
    "GenerationTask",
    "TaskFailureCode",
]

# Why a task failed: a refusal's code, or what went wrong around the model. A closed set, like RefusalCode.
TaskFailureCode = Literal[
    RefusalCode,
    "GENERATION.CANCELLED",
    "GENERATION.FAILED",
    "MODEL.UNAVAILABLE",
    "INVALID.REQUEST",
    "OUTPUT.FAILED",
    "SIGNING.FAILED",
    "STORE.FAILED",
    "WORKER.LOST",
    "INTERNAL",
]

# The API's own errors (an HTTP status each), and input refusals answered before any queueing.
ErrorCode = Literal[
    RefusalCode,
    "INVALID.REQUEST",
    "UNAUTHORIZED",
    "NOT_FOUND",
    "RATE_LIMITED",
    "IDEMPOTENCY.CONFLICT",
    "TASK.FINISHED",
    "TASK.NOT_READY",
    "PAYLOAD_TOO_LARGE",
    "UNAVAILABLE",
]


_REQUEST: dict[str, Any] = dict(GenerationRequest.model_fields)  # FieldInfo: defaults, bounds


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerationCreate(_Body):
    """``POST /v1/generations``: what to generate, for whom and for what use."""

    prompt: str = Field(min_length=1, max_length=4000)
    negative_prompt: str | None = Field(default=None, max_length=4000)
    # the Client's own fields, defaults and bounds: one definition, so the API cannot drift from what it runs
    num_frames: int = _REQUEST["num_frames"]
    height: int = _REQUEST["height"]
    width: int = _REQUEST["width"]
    fps: float = _REQUEST["fps"]
    steps: int = _REQUEST["steps"]
    guidance_scale: float = _REQUEST["guidance_scale"]
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    user: str | None = Field(
        default=None, max_length=200, description="the end user the partner app acts for"
    )
    use: str | None = Field(
        default=None, max_length=128, description="the purpose, matched against likeness grants"
    )
    image: str | None = Field(
        default=None,
        description="a reference image (image-to-video) as a data URI: data:image/png;base64,... or image/jpeg",
    )


class GenerationOutput(_Body):
    """Where a finished clip is and what identifies it."""

    url: str = Field(description="GET it with the same API key: the signed MP4")
    sha256: str
    manifest_id: str
    watermark_payload: str | None = Field(
        default=None,
        description="the payload of the invisible mark, hex; absent when the content could not hold one and the "
        "credentials claim none",
    )


class GenerationTask(_Body):
    """A generation task as the API shows it."""

    id: str
    status: TaskStatus
    progress: float = Field(ge=0, le=1)
    stage: str | None = Field(default=None, description="the stage running now (generate, encode, sign, ...)")
    queue_position: int | None = Field(default=None, description="pending tasks ahead of this one")
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    failure_code: TaskFailureCode | None = None
    failure: str | None = None
    output: GenerationOutput | None = None


class GenerationList(_Body):
    data: list[GenerationTask]


class ApiError(_Body):
    code: ErrorCode
    message: str
    field: str | None = None
    request_id: str | None = Field(default=None, description="the audit log's id of a refused request")
    categories: list[str] | None = None


class ErrorBody(_Body):
    """Every error the job API answers has this body."""

    error: ApiError
