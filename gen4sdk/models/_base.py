"""The one interface every video model backend implements."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from gen4sdk.types import GenerationParams, GenerationRequest, ModelInfo

__all__ = ["StepCallback", "VideoModel"]

StepCallback = Callable[[int, int], None]


@runtime_checkable
class VideoModel(Protocol):
    """A text/image-to-video model the Client can drive.

    ``generate`` returns uint8 frames shaped (T, H, W, 3), RGB, with exactly the requested T, H and W, and the
    parameters the backend actually ran with. It raises ``InvalidRequestError`` for a request the model cannot
    honour (before any heavy work), ``GenerationCancelled`` when ``cancel`` is set, and ``GenerationFailed``
    (cause chained) when the model itself raises.

    A backend may also offer ``validate(request, *, image=None)``, the same input checks without running the model;
    the Client calls it, when present, before the policy stage. A backend that runs on an accelerator may offer
    ``generate_on_device(...)`` (the same arguments) returning the frames as a uint8 (T, H, W, 3) torch tensor where
    they were decoded, and a ``device`` property (``"cuda:0"``): the Client then watermarks them there and moves
    them to the CPU marked (see :class:`~gen4sdk.models.DiffusersVideoModel`).
    """

    @property
    def info(self) -> ModelInfo: ...

    def generate(
        self,
        request: GenerationRequest,
        *,
        image: np.ndarray | None = None,
        on_step: StepCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[np.ndarray, GenerationParams]: ...
