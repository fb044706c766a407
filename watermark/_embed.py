"""Embedding: one precomputed full-frame pattern per frame size, scaled per pixel by a texture mask."""

from __future__ import annotations

import numpy as np

from ._filters import box, luma
from ._pattern import Layout, embed_scale, render

# Mask block: the strength map is computed on a 1/4-resolution grid (cheap) and applied per 4x4 block.
_BLOCK = 4
# Strength in 8-bit luma levels per unit of the (unit-RMS) pattern: floor in flat areas, slope with the
# local standard deviation (texture hides the mark), ceiling so edges do not carry visible ringing.
_FLOOR = 1.0
_SLOPE = 0.08
_CEIL = 2.2


class FramePattern:
    """The tiled pattern for one (height, width), reshaped for per-block scaling."""

    def __init__(self, layout: Layout, bits: np.ndarray, height: int, width: int) -> None:
        self.height, self.width = height, width
        scale = embed_scale(height, width)
        tile = render(layout.chip_grid(bits), scale)
        self.hb, self.wb = -(-height // _BLOCK), -(-width // _BLOCK)
        reps = (-(-self.hb * _BLOCK // tile.shape[0]), -(-self.wb * _BLOCK // tile.shape[1]))
        full = np.tile(tile, reps)[: self.hb * _BLOCK, : self.wb * _BLOCK]
        self.blocks = np.ascontiguousarray(full).reshape(self.hb, _BLOCK, self.wb, _BLOCK)

    def strength(self, frame: np.ndarray) -> np.ndarray:
        """Per-block strength from the local luma standard deviation, measured on a 1/4 subsample."""
        sub = luma(frame[::_BLOCK, ::_BLOCK])
        mean = box(sub, 2)
        var = box(sub * sub, 2) - mean * mean
        std = np.sqrt(np.maximum(var, 0.0))
        a = np.clip(_FLOOR + _SLOPE * std, _FLOOR, _CEIL)
        return box(a, 1)

    def delta(self, frame: np.ndarray) -> np.ndarray:
        a = self.strength(frame)
        d = self.blocks * a[:, None, :, None]
        d = d.reshape(self.hb * _BLOCK, self.wb * _BLOCK)[: self.height, : self.width]
        return np.rint(d).astype(np.int16)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        # The same delta on R, G and B is a pure luma change: it survives 4:2:0 and any chroma handling.
        out = frame.astype(np.int16)
        out += self.delta(frame)[:, :, None]
        np.clip(out, 0, 255, out=out)
        return out.astype(np.uint8)
