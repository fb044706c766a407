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
from ._pattern import COARSE, Layout, embed_scale


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, h, w) mean over a (2r+1)^2 window with replicated edges, like _filters.box."""
    k = 2 * radius + 1
    p = F.pad(x[:, None], (radius, radius, radius, radius), mode="replicate")
    return F.avg_pool2d(p, k, stride=1)[:, 0]


class TorchPattern:
    def __init__(
        self, layout: Layout, bits: np.ndarray, height: int, width: int, device: Any, amplitude: float = 1.0
    ) -> None:
        self.height, self.width = height, width
        self.amplitude = float(amplitude)
        scale = embed_scale(height, width)
        fine = _embed.full_pattern(layout, bits, scale, height, width)
        coarse = _embed.full_pattern(layout.coarse, bits, COARSE * scale, height, width)
        self.pattern = torch.from_numpy(np.ascontiguousarray(fine)).to(device)
        self.coarse = torch.from_numpy(np.ascontiguousarray(coarse)).to(device)
        self.luma = torch.from_numpy(LUMA).to(device)
        self.prev_view: torch.Tensor | None = None  # the last frame's cut view, across batches

    def strengths(self, sub: torch.Tensor, gains: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, hb, wb) per-block strengths (fine, coarse) from the 1/4-subsampled luma ``sub``, the same rule
        as _embed.strengths, with one key-frame gain per frame."""
        mean = _box(sub, 2)
        std = (_box(sub * sub, 2) - mean * mean).clamp_min(0).sqrt()
        f = _embed._FLOOR
        t = _box((_embed._SLOPE * std).clamp_max(_embed._CEIL - f), 1)
        coarse = (1.0 - t * (1.0 / _embed._COARSE_FADE)).clamp_min(0) * _embed._COARSE_LEVEL
        cap = _embed._MEAN_SQ_CAP * gains * gains - (coarse * coarse).mean(dim=(1, 2))
        boost = _embed._BOOST * gains
        m1, m2 = t.mean(dim=(1, 2)), (t * t).mean(dim=(1, 2))
        disc = (f**2 * m1**2 - m2 * (f**2 - cap)).clamp_min(0)
        k = torch.where(m2 > 0, (-f * m1 + disc.sqrt()) / m2.clamp_min(1e-12), boost)
        k = torch.minimum(k, boost)
        a = self.amplitude  # as in _embed.FramePattern.delta: the rule is homogeneous in its constants
        return a * (f + k[:, None, None] * t), a * coarse

    def apply(self, frames: torch.Tensor, keys: _embed.KeyFrames) -> torch.Tensor:
        """Mark a batch, the next frames of the clip that ``keys`` follows."""
        b = _embed._BLOCK
        sub = frames[:, ::b, ::b].float() @ self.luma
        # Scene cuts on the same 4 x 4 block means of ``sub`` as KeyFrames.gain_for; the changes are computed
        # here, on the device, and copied to the CPU once per batch for the sequential spacing rule.
        view = F.avg_pool2d(sub[:, None], b)[:, 0]
        if self.prev_view is not None:
            view = torch.cat([self.prev_view, view])
        changes = (view[1:] - view[:-1]).abs().mean(dim=(1, 2)).tolist()
        if self.prev_view is None:
            changes = [None, *changes]
        self.prev_view = view[-1:]
        gains = torch.tensor([keys.gain(c) for c in changes], device=frames.device)
        fine, coarse = self.strengths(sub, gains)

        def per_pixel(s: torch.Tensor) -> torch.Tensor:
            return s.repeat_interleave(b, dim=1).repeat_interleave(b, dim=2)[:, : self.height, : self.width]

        delta = torch.round(per_pixel(fine) * self.pattern + per_pixel(coarse) * self.coarse).to(torch.int16)
        out = frames.to(torch.int16) + delta[..., None]
        return out.clamp_(0, 255).to(torch.uint8)


def embed(
    layout: Layout,
    bits: np.ndarray,
    frames: torch.Tensor,
    *,
    clip_start: bool,
    level: _embed.Level = _embed.LEVELS["robust"],
    batch: int = 16,
) -> torch.Tensor:
    """Mark uint8 (T, H, W, 3) RGB frames on their own device; returns a new tensor there. Key frames (frame 0
    when ``clip_start``, scene cuts) get the level's key-frame gain, as in the numpy path."""
    h, w = int(frames.shape[1]), int(frames.shape[2])
    pattern = TorchPattern(layout, bits, h, w, frames.device, level.amplitude)
    keys = _embed.KeyFrames(clip_start, level.key_gain)
    with torch.no_grad():
        return torch.cat(
            [pattern.apply(frames[i : i + batch], keys) for i in range(0, int(frames.shape[0]), batch)]
        )
