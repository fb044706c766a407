"""Which output frames the checks look at: by time, plus the first frame of every scene.

A fixed count of evenly spaced frames sees a long clip less densely than a short one, and a face shown for
half a second between two samples goes unseen. Sampling by time keeps the density fixed (``per_second``
frames a second, two by default: nothing on screen for half a second or more is missed), and the frame after
each scene cut is added, because a cut can bring in new content between two samples. A clip longer than
``max_samples`` allows is spread evenly over that many frames, scene starts first.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sample_indices", "scene_cuts"]

# Mean absolute difference of the coarse luma (0-255) between consecutive frames above which a frame starts a
# new scene. Camera motion in generated clips moves coarse luma by a few levels; a cut by tens.
_CUT_LEVEL = 24.0
_GRID = 16  # pixels between luma samples: the cut test needs the picture's layout, not its detail


def scene_cuts(frames: np.ndarray) -> list[int]:
    """Indices of frames that start a new scene (never 0)."""
    if len(frames) < 2:
        return []
    coarse = frames[:, ::_GRID, ::_GRID, :].astype(np.float32)
    luma = coarse @ np.array([0.299, 0.587, 0.114], np.float32)
    diff = np.abs(np.diff(luma, axis=0)).mean(axis=(1, 2))
    return [int(i) + 1 for i in np.nonzero(diff > _CUT_LEVEL)[0]]


def sample_indices(
    frames: np.ndarray,
    *,
    fps: float | None,
    per_second: float,
    max_samples: int,
    fallback: int,
    cuts: list[int] | None = None,
) -> list[int]:
    """Sorted frame indices to check. ``fps`` None (unknown timing): ``fallback`` evenly spaced frames.
    ``cuts``: the clip's :func:`scene_cuts`, when the caller has them already."""
    n = len(frames)
    if fps is None or fps <= 0:
        return sorted({int(i) for i in np.linspace(0, n - 1, min(fallback, n)).round()})
    step = max(1.0, fps / per_second)
    timed = {round(k * step) for k in range(int((n - 1) / step) + 1)}
    timed.add(n - 1)  # the clip's last frame, which the step may skip
    starts = set(scene_cuts(frames) if cuts is None else cuts)
    chosen = sorted(timed | starts)
    if len(chosen) <= max_samples:
        return chosen

    # Too many for the budget (a strobing or fast-cut clip): half of it for scene starts and half for time,
    # each spread evenly over the whole clip, so no stretch of it goes unseen; the first and last frames always.
    def spread(items: list[int], k: int) -> list[int]:
        if k <= 0 or not items:
            return []
        return [items[int(i)] for i in np.linspace(0, len(items) - 1, min(k, len(items))).round()]

    keep = {0, n - 1}
    keep.update(spread(sorted(starts), max_samples // 2))
    keep.update(spread(sorted(timed - keep), max_samples - len(keep)))
    return sorted(keep)[:max_samples] if len(keep) > max_samples else sorted(keep)
