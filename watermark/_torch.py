"""Embedding on torch tensors (e.g. on the GPU, before frames leave it); same mark as the numpy path.

Imported only when a torch tensor is passed, so the codec does not depend on torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import _embed
from ._filters import LUMA
from ._pattern import Layout, embed_scale, render


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, h, w) mean over a (2r+1)^2 window with replicated edges, like _filters.box."""
    k = 2 * radius + 1
    p = F.pad(x[:, None], (radius, radius, radius, radius), mode="replicate")
    return F.avg_pool2d(p, k, stride=1)[:, 0]


class TorchPattern:
    def __init__(self, layout: Layout, bits: np.ndarray, height: int, width: int, device: Any) -> None:
        self.height, self.width = height, width
        tile = render(layout.chip_grid(bits), embed_scale(height, width))
        reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]))
        full = np.tile(tile, reps)[:height, :width]
        self.pattern = torch.from_numpy(np.ascontiguousarray(full)).to(device)
        self.luma = torch.from_numpy(LUMA).to(device)

    def strength(self, frames: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        """(T, hb, wb) per-block strength, the same rule as FramePattern.strength, for a batch with one
        key-frame gain per frame."""
        b = _embed._BLOCK
        sub = frames[:, ::b, ::b].float() @ self.luma
        mean = _box(sub, 2)
        std = (_box(sub * sub, 2) - mean * mean).clamp_min(0).sqrt()
        g = gains[:, None, None]
        f = _embed._FLOOR
        t = _box(torch.minimum(_embed._SLOPE * std, g * _embed._CEIL - f), 1)
        cap, boost = _embed._MEAN_SQ_CAP * gains * gains, _embed._BOOST * gains
        m1, m2 = t.mean(dim=(1, 2)), (t * t).mean(dim=(1, 2))
        disc = (f**2 * m1**2 - m2 * (f**2 - cap)).clamp_min(0)
        k = torch.where(m2 > 0, (-f * m1 + disc.sqrt()) / m2.clamp_min(1e-12), boost)
        k = torch.minimum(k, boost)
        return f + k[:, None, None] * t

    def apply(self, frames: torch.Tensor, first_gain: float = 1.0) -> torch.Tensor:
        """Mark a batch; its first frame gets the key-frame gain ``first_gain``."""
        b = _embed._BLOCK
        gains = torch.ones(int(frames.shape[0]), device=frames.device)
        gains[0] = first_gain
        a = self.strength(frames, gains)
        a = a.repeat_interleave(b, dim=1).repeat_interleave(b, dim=2)[:, : self.height, : self.width]
        delta = torch.round(a * self.pattern).to(torch.int16)
        out = frames.to(torch.int16) + delta[..., None]
        return out.clamp_(0, 255).to(torch.uint8)


def embed(
    layout: Layout, bits: np.ndarray, frames: torch.Tensor, *, clip_start: bool, batch: int = 16
) -> torch.Tensor:
    """Mark uint8 (T, H, W, 3) RGB frames on their own device; returns a new tensor there. When
    ``clip_start``, frame 0 is the clip's first and gets the key-frame gain, as in the numpy path."""
    h, w = int(frames.shape[1]), int(frames.shape[2])
    pattern = TorchPattern(layout, bits, h, w, frames.device)
    gain = _embed.KEY_FRAME_GAIN if clip_start else 1.0
    with torch.no_grad():
        return torch.cat(
            [
                pattern.apply(frames[i : i + batch], gain if i == 0 else 1.0)
                for i in range(0, int(frames.shape[0]), batch)
            ]
        )
