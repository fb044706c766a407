"""Images and frames as the checks take them: RGB uint8 arrays, validated, never guessed at.

A file is decoded by :func:`gen4sdk.media.load_image` (pixel cap before decoding; CMYK, palette, 16-bit
converted faithfully). An array must already be uint8: a float or 16-bit array is a typed error rather than a
silent conversion, because a wrong guess about its range would hand the detectors a blank image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gen4sdk.errors import InvalidRequestError
from gen4sdk.media import load_image

__all__ = ["as_frames", "as_image"]

_MIN_SIDE = 8


def as_image(image: Any, *, field: str = "image") -> np.ndarray:
    """An RGB uint8 (H, W, 3) array from an array or an image file path; typed errors on anything else."""
    if isinstance(image, (str, Path)):
        return load_image(image)
    if not isinstance(image, np.ndarray):
        raise InvalidRequestError(
            f"{field} must be a numpy array or a path, not {type(image).__name__}", field=field
        )
    arr = image
    if arr.dtype != np.uint8:
        raise InvalidRequestError(f"{field} must be uint8 RGB, got dtype {arr.dtype}", field=field)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InvalidRequestError(f"{field} must have shape (H, W, 3), got {image.shape}", field=field)
    if arr.shape[0] < _MIN_SIDE or arr.shape[1] < _MIN_SIDE:
        raise InvalidRequestError(
            f"{field} is too small to check: {arr.shape[1]}x{arr.shape[0]}", field=field
        )
    return np.ascontiguousarray(arr[:, :, :3])


def as_frames(frames: Any) -> np.ndarray:
    """A (T, H, W, 3) uint8 array, as the model stage returns it; InvalidRequestError on anything else."""
    shape = getattr(frames, "shape", None)
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise InvalidRequestError(f"frames must be a (T, H, W, 3) uint8 array, got {shape}", field="frames")
    if frames.dtype != np.uint8:
        raise InvalidRequestError(f"frames must be uint8, got dtype {frames.dtype}", field="frames")
    if frames.shape[1] < _MIN_SIDE or frames.shape[2] < _MIN_SIDE:
        raise InvalidRequestError(f"frames are too small to check: {shape}", field="frames")
    return frames
