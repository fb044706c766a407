"""Video models for tests: the tiny model's run with other frames, for what the Client does with content."""

from __future__ import annotations

from typing import Any

import numpy as np

import gen4sdk
from gen4sdk.models import tiny_model


class StaticNoise:
    """The tiny model's parameters with frames of one still picture of black and white pixels at random: no
    strength of the mark can be read from it (it is the picture's own strongest texture at every scale)."""

    def __init__(self) -> None:
        self._model = tiny_model()

    @property
    def info(self) -> gen4sdk.ModelInfo:
        return self._model.info

    def generate(self, request: Any, **kwargs: Any) -> Any:
        frames, params = self._model.generate(request, **kwargs)
        rng = np.random.default_rng(0)
        still = (rng.random(frames.shape[1:3]) > 0.5).astype(np.uint8) * 255
        return np.repeat(np.repeat(still[None, :, :, None], 3, axis=3), len(frames), axis=0), params
