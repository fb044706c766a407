"""A pipeline's output, whatever its form, as the (T, H, W, 3) uint8 RGB frames every later stage expects.

Pipelines differ in what ``output_type="np"`` gives back: a float array (batch, T, H, W, C) in [0, 1] (most), a
list of PIL images per video (some older ones ignore ``np``), a tensor, or frames channel-first. One function
accepts them all, so no family needs a branch of its own for this.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["one_video_thwc", "output_frames", "to_uint8_frames"]


def output_frames(output: Any) -> Any:
    """The frames field of a pipeline's return value (an output dataclass, or a tuple with ``return_dict=False``)."""
    frames = getattr(output, "frames", None)
    if frames is None and isinstance(output, tuple) and output:
        frames = output[0]
    if frames is None:
        raise ValueError(f"the pipeline returned {type(output).__name__} without frames")
    return frames


def one_video_thwc(arr: Any) -> Any:
    """A batch of one video or one video, (T, H, W, 3) or channel-first (T, 3, H, W), as a (T, H, W, 3) view; a
    numpy array or a torch tensor (which stays on its device)."""
    if arr.ndim == 5:
        if arr.shape[0] != 1:
            raise ValueError(f"expected one video, got a batch of {arr.shape[0]}")
        arr = arr[0]
    if arr.ndim != 4:
        raise ValueError(f"unexpected frame array shape {tuple(arr.shape)}")
    if arr.shape[-1] != 3 and arr.shape[1] == 3:  # (T, C, H, W), as diffusers' "pt" videos are
        arr = arr.permute(0, 2, 3, 1) if hasattr(arr, "permute") else arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] != 3:
        raise ValueError(f"expected RGB frames, got shape {tuple(arr.shape)}")
    return arr


def to_uint8_frames(frames: Any) -> np.ndarray:
    """Pipeline frames (numpy floats in [0, 1], tensors or PIL lists; a batch of one) -> uint8 (T, H, W, 3)."""
    if hasattr(frames, "detach") and hasattr(frames, "cpu"):  # a torch tensor, without importing torch here
        frames = frames.detach().float().cpu().numpy()
    if isinstance(frames, (list, tuple)):
        first = frames[0] if len(frames) else frames
        if isinstance(first, (list, tuple)):  # [[PIL, ...]] per batch item
            frames = np.stack([np.asarray(im.convert("RGB")) for im in first])
        elif hasattr(first, "convert"):
            frames = np.stack([np.asarray(im.convert("RGB")) for im in frames])
        else:
            frames = np.asarray(first if isinstance(first, np.ndarray) and first.ndim == 4 else frames)
    arr = one_video_thwc(np.asarray(frames))
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError("the model produced NaN or infinite pixel values (try float32 or another dtype)")
    return np.ascontiguousarray((np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
