"""Small numpy image filters (the codec depends on numpy alone)."""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of uint8 RGB (..., 3) as float32."""
    out = rgb[..., 0] * np.float32(LUMA[0])
    out += rgb[..., 1] * np.float32(LUMA[1])
    out += rgb[..., 2] * np.float32(LUMA[2])
    return out


def box(img: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges replicated; O(1) per pixel via cumulative sums (float32 is
    precise enough here: sums of at most a few thousand 8-bit-scale values)."""
    if radius <= 0:
        return img.astype(np.float32, copy=True)
    k = 2 * radius + 1
    p = np.pad(img.astype(np.float32, copy=False), ((radius + 1, radius), (radius + 1, radius)), mode="edge")
    p[0, :] = 0.0
    p[:, 0] = 0.0
    c = np.cumsum(p, axis=0, dtype=np.float32)
    c = c[k:] - c[:-k]
    c = np.cumsum(c, axis=1, dtype=np.float32)
    c = c[:, k:] - c[:, :-k]
    c *= np.float32(1.0 / (k * k))
    return c


def block_mean(img: np.ndarray, f: int) -> np.ndarray:
    """Average f x f blocks (trailing rows/columns that do not fill a block are dropped)."""
    if f == 1:
        return img.astype(np.float32, copy=False)
    h, w = img.shape[0] // f * f, img.shape[1] // f * f
    out = np.zeros((h // f, w // f), np.float32)
    for dy in range(f):
        for dx in range(f):
            out += img[dy:h:f, dx:w:f]
    out *= np.float32(1.0 / (f * f))
    return out
