"""Per-step progress and cancellation inside a pipeline's denoising loop.

Most diffusers pipelines call ``callback_on_step_end(pipe, i, t, kwargs)`` after every step; raising from it leaves
the loop at once (no VAE decode). Some (HunyuanVideo 1.5, ModelScope's TextToVideoSD) have no such hook. For them
the scheduler's ``step`` is wrapped on the pipeline's own scheduler object for the duration of one call: every
denoising step calls it exactly once, after the denoiser ran, so counting calls counts steps, and raising there
stops the loop as the callback would. The wrapper is an instance attribute, removed afterwards, so the scheduler
class and other pipelines sharing it are untouched.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Cancelled", "step_hooks"]

logger = logging.getLogger(__name__)

StepCallback = Callable[[int, int], None]


class Cancelled(Exception):
    """Raised from a step hook to leave the denoising loop at once (skipping the VAE decode)."""


class _Counter:
    def __init__(self, steps: int, on_step: StepCallback | None, cancel: threading.Event | None) -> None:
        self.done = 0
        self.steps = steps
        self.on_step = on_step
        self.cancel = cancel

    def tick(self, total: int | None) -> None:
        self.done += 1
        if self.on_step is not None:
            self.on_step(self.done, int(total or self.steps))
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled


@contextlib.contextmanager
def step_hooks(
    pipeline: Any,
    call_parameters: dict[str, Any],
    *,
    steps: int,
    on_step: StepCallback | None,
    cancel: threading.Event | None,
) -> Iterator[tuple[dict[str, Any], _Counter]]:
    """Yield the keyword arguments to add to the pipeline call and the step counter.

    With ``callback_on_step_end`` in the call's parameters the callback does the work; otherwise the scheduler's
    ``step`` is wrapped while the block runs (a pipeline with neither gets no per-step events, which is logged).
    """
    counter = _Counter(steps, on_step, cancel)
    if "callback_on_step_end" in call_parameters:

        def _step_end(p: Any, i: int, t: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
            counter.tick(getattr(p, "num_timesteps", None))
            return callback_kwargs

        yield {"callback_on_step_end": _step_end}, counter
        return
    scheduler: Any = getattr(pipeline, "scheduler", None)
    original = getattr(scheduler, "step", None)
    if original is None:
        logger.warning(
            "%s has no step callback and no scheduler: no per-step progress", type(pipeline).__name__
        )
        yield {}, counter
        return

    def _step(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        timesteps = getattr(scheduler, "timesteps", None)
        order = getattr(scheduler, "order", 1) or 1
        counter.tick(len(timesteps) // order if timesteps is not None else None)
        return out

    scheduler.step = _step  # instance attribute shadows the method for this call only
    try:
        yield {}, counter
    finally:
        del scheduler.step
