"""Embedding: one precomputed full-frame pattern per frame size, scaled per pixel by a texture mask."""

from __future__ import annotations

import numpy as np

from ._filters import block_mean, box, luma
from ._pattern import Layout, embed_scale, render

# Mask block: the strength map is computed on a 1/4-resolution grid (cheap) and applied per 4x4 block.
_BLOCK = 4
# Strength in 8-bit luma levels per unit of the (unit-RMS) pattern: floor in flat areas, slope with the
# local standard deviation (texture hides the mark), ceiling so edges do not carry visible ringing.
_FLOOR = 1.0
_SLOPE = 0.1
_CEIL = 2.8
# Per-frame cap on the mean squared strength: with a unit-RMS pattern and rounding (+1/12), every frame's
# luma PSNR stays >= ~42.3 dB however textured the frame is (a clip's first frame: see KEY_FRAME_GAIN).
_MEAN_SQ_CAP = 3.7
_BOOST = 1.6
# The first frame of a clip may carry a stronger mark in its texture: its budget is KEY_FRAME_GAIN^2 times
# larger (+6 dB) and its boost KEY_FRAME_GAIN times; its flat-area floor and its ceiling are not (flat areas and
# edges look as in every other frame, so the extra goes to texture, which hides it best). Encoders make that
# frame the key frame and code most later frames as copies of it, so after heavy compression it holds most of
# what the clip carries: after x264 CRF 35, frame 0 alone read at a soft-bit SNR of 0.82 and all 48 frames at
# 0.90 (20 clips). A key frame stays above about 36.4 dB.
KEY_FRAME_GAIN = 2.0
# The key frame's extra budget is paid back by the _PAYBACK frames after it, each spending
# 1 - (KEY_FRAME_GAIN^2 - 1) / _PAYBACK of the cap (-0.58 dB), so a key frame and its payback together spend
# no more than as many plain frames: a clip of 25 frames or more keeps its luma PSNR at ~42.3 dB or more, one of
# 15 frames or more at 42 dB or more. Measured against the previous gain of 1.41 without payback (one run of
# `benchmarks/watermark.py` each on --seed 1000 and --seed 2000, 70 clips): see the README's watermark section.
_PAYBACK = 24
# Scene cuts: an encoder starts a new key frame at a cut (x264's scenecut) and the frames after it copy that
# frame, not frame 0, so a cut frame gets the key-frame gain too. A cut is a mean absolute difference from the
# previous frame above _CUT_LEVEL (8-bit levels) on a 1/16-resolution luma, coarse so that motion barely
# registers: on 120 two-second Big Buck Bunny excerpts x264 put each of its 28 mid-clip key frames at a
# difference >= 58.9, and no frame without a key frame exceeded 16.5. At most one cut per _CUT_SPACING frames
# gets the gain, and its payback is over before the next one can, so however a clip flashes it spends no more.
# `benchmarks/watermark.py --content bbb-cuts --clips 28` against `--without-cut-gain`: after x264 CRF 35 26
# instead of 24 of 28 excerpts read, after the combination 28 instead of 27, mean PSNR 42.6 dB either way.
_CUT_LEVEL = 30.0
_CUT_SPACING = 24


class KeyFrames:
    """Guesses, frame by frame, which frames an encoder will make key frames (a clip's first, scene cuts), gives
    them the key-frame gain and has the frames after them pay it back. Feed it every frame of a clip in order;
    state carries across pieces."""

    def __init__(self, clip_start: bool) -> None:
        self._first = clip_start
        self._prev: np.ndarray | None = None
        self._since_cut = _CUT_SPACING
        self._debt = 0.0  # key-frame budget not yet paid back, in units of the per-frame cap

    def gain(self, change: float | None) -> float:
        """The gain for the next frame, given its cut measure against the previous frame (None: no previous
        frame in this piece, or a frame of another size): KEY_FRAME_GAIN for a key frame, below 1 while a key
        frame's extra budget is being paid back (see _PAYBACK), else 1."""
        self._since_cut += 1
        key = self._first
        self._first = False
        if not key and change is not None and change > _CUT_LEVEL and self._since_cut >= _CUT_SPACING:
            self._since_cut = 0
            key = True
        if key:
            self._debt += KEY_FRAME_GAIN**2 - 1.0
            return KEY_FRAME_GAIN
        if self._debt > 1e-9:
            pay = min(self._debt, (KEY_FRAME_GAIN**2 - 1.0) / _PAYBACK)
            self._debt -= pay
            return float(np.sqrt(1.0 - pay))
        return 1.0

    def gain_for(self, sub: np.ndarray) -> float:
        """The gain for the next frame, from its 1/4-subsampled luma (the strength map's input); cuts are
        measured on its 4 x 4 block means (1/16 resolution)."""
        view, prev = block_mean(sub, _BLOCK), self._prev
        self._prev = view
        change = None if prev is None or prev.shape != view.shape else float(np.abs(view - prev).mean())
        return self.gain(change)


class FramePattern:
    """The tiled pattern for one (height, width), reshaped for per-block scaling."""

    def __init__(self, layout: Layout, bits: np.ndarray, height: int, width: int) -> None:
        self.height, self.width = height, width
        scale = embed_scale(height, width)
        tile = render(layout.chip_grid(bits), scale)
        self.hb, self.wb = -(-height // _BLOCK), -(-width // _BLOCK)
        reps = (-(-self.hb * _BLOCK // tile.shape[0]), -(-self.wb * _BLOCK // tile.shape[1]))
        full = np.tile(tile, reps)[: self.hb * _BLOCK, : self.wb * _BLOCK]
        # R, G and B interleaved along the row, so every per-frame operation runs on long contiguous rows.
        rgb = np.repeat(full, 3, axis=1)
        self.rows = np.ascontiguousarray(rgb).reshape(self.hb, _BLOCK, self.wb * _BLOCK * 3)

    def strength(self, sub: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """Per-block strength from the local standard deviation of ``sub``, the frame's luma on a 1/4
        subsample; ``gain`` scales the texture part's budget (cap x gain^2) and boost, never the floor or the
        ceiling."""
        mean = box(sub, 2)
        var = box(sub * sub, 2) - mean * mean
        std = np.sqrt(np.maximum(var, 0.0))
        t = box(np.minimum(_SLOPE * std, _CEIL - _FLOOR), 1)
        # Spend the frame's whole PSNR budget: scale the texture part (never the flat-area floor) by k so
        # that mean((floor + k t)^2) = cap, k <= boost; solves the quadratic in k.
        cap, boost = _MEAN_SQ_CAP * gain * gain, _BOOST * gain
        m1, m2 = float(t.mean()), float((t * t).mean())
        k = boost
        if m2 > 0:
            disc = _FLOOR**2 * m1**2 - m2 * (_FLOOR**2 - cap)
            k = min(boost, (-_FLOOR * m1 + np.sqrt(max(disc, 0.0))) / m2)
        return _FLOOR + np.float32(k) * t

    def delta(self, sub: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """Rounded luma delta, repeated for R, G, B: int8 (H, 3W) (|delta| <= 17 at the key-frame gain)."""
        a = np.repeat(self.strength(sub, gain), _BLOCK * 3, axis=1)
        d = self.rows * a[:, None, :]
        np.rint(d, out=d)
        d = d.reshape(self.hb * _BLOCK, -1)[: self.height, : self.width * 3]
        return d.astype(np.int8)

    def apply(self, frame: np.ndarray, keys: KeyFrames) -> np.ndarray:
        """Mark one frame, the next of the clip that ``keys`` follows."""
        # One subsample serves both the cut check and the strength map.
        sub = luma(frame[::_BLOCK, ::_BLOCK])
        # The same delta on R, G and B is a pure luma change: it survives 4:2:0 and any chroma handling.
        d = self.delta(sub, keys.gain_for(sub))
        up = np.maximum(d, 0).view(np.uint8)
        down = np.maximum(-d, 0).view(np.uint8)
        # Saturating uint8 add then subtract, without widening the frame: min(x, 255-u) + u, max(x, v) - v.
        flat = np.ascontiguousarray(frame).reshape(self.height, self.width * 3)
        out = np.minimum(flat, 255 - up)
        out += up
        np.maximum(out, down, out=out)
        out -= down
        return out.reshape(self.height, self.width, 3)
