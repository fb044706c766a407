"""Embedding: one precomputed full-frame pattern per frame size, scaled per pixel by a texture mask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._filters import block_mean, box, luma
from ._pattern import COARSE, Layout, embed_scale, render

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
# The coarse layer (see _pattern.COARSE): _COARSE_LEVEL levels per unit of its unit-RMS pattern where the texture
# part t of the strength (below) is 0, fading linearly to nothing at t = _COARSE_FADE (a local standard deviation
# of about 3 levels), so it lies in flat areas, where the fine pattern's floor does not survive heavy compression,
# and not on texture, where the image's own coarse structure would drown it. Its energy counts against the
# frame's budget; it gets no key-frame gain (flat areas look the same in every frame).
_COARSE_LEVEL = 1.0
_COARSE_FADE = 0.3
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

Strength = Literal["invisible", "balanced", "robust"]


@dataclass(frozen=True)
class Level:
    """What a strength setting changes. ``amplitude`` scales the whole mark (the flat-area floor, the texture
    part, the ceiling, the budget and the coarse layer alike, so luma PSNR moves by -20 log10(amplitude) dB and
    the mark's shape is unchanged); ``key_gain`` is the key frames' gain in place of KEY_FRAME_GAIN (1: no gain,
    no payback). The detector needs neither: it reads every level the same way."""

    amplitude: float
    key_gain: float


# Chosen from ColorVideoVDP (first second and frame 0 as a still) and x264 CRF 35 recovery measured side by side
# in `benchmarks/watermark.py --strength ...`: the table and why "robust" is the default are in
# docs/watermark.md ("Strength settings").
LEVELS: dict[Strength, Level] = {
    "robust": Level(amplitude=1.0, key_gain=KEY_FRAME_GAIN),
    "balanced": Level(amplitude=0.7, key_gain=KEY_FRAME_GAIN),
    "invisible": Level(amplitude=0.5, key_gain=1.41),
}
DEFAULT_STRENGTH: Strength = "robust"


class KeyFrames:
    """Guesses, frame by frame, which frames an encoder will make key frames (a clip's first, scene cuts), gives
    them the key-frame gain and has the frames after them pay it back. Feed it every frame of a clip in order;
    state carries across pieces."""

    def __init__(self, clip_start: bool, key_gain: float = KEY_FRAME_GAIN) -> None:
        self._first = clip_start
        self._key_gain = key_gain
        self._prev: np.ndarray | None = None
        self._since_cut = _CUT_SPACING
        self._debt = 0.0  # key-frame budget not yet paid back, in units of the per-frame cap

    def gain(self, change: float | None) -> float:
        """The gain for the next frame, given its cut measure against the previous frame (None: no previous
        frame in this piece, or a frame of another size): the key gain for a key frame, below 1 while a key
        frame's extra budget is being paid back (see _PAYBACK), else 1."""
        self._since_cut += 1
        key = self._first
        self._first = False
        if not key and change is not None and change > _CUT_LEVEL and self._since_cut >= _CUT_SPACING:
            self._since_cut = 0
            key = True
        extra = self._key_gain**2 - 1.0
        if key:
            self._debt += extra
            return self._key_gain
        if self._debt > 1e-9:
            pay = min(self._debt, extra / _PAYBACK)
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


def full_pattern(layout: Layout, bits: np.ndarray, scale: int, height: int, width: int) -> np.ndarray:
    """The layout's tile at ``scale``, repeated over (height, width) from the frame's top-left corner."""
    tile = render(layout.chip_grid(bits), scale)
    reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]))
    return np.tile(tile, reps)[:height, :width]


def strengths(sub: np.ndarray, gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-block strengths (fine, coarse) from the local standard deviation of ``sub``, the frame's luma on a 1/4
    subsample; ``gain`` scales the texture part's budget (cap x gain^2) and boost, never the floor, the ceiling
    or the coarse layer."""
    mean = box(sub, 2)
    var = box(sub * sub, 2) - mean * mean
    std = np.sqrt(np.maximum(var, 0.0))
    t = box(np.minimum(_SLOPE * std, _CEIL - _FLOOR), 1)
    coarse = np.maximum(np.float32(1.0) - t * np.float32(1.0 / _COARSE_FADE), np.float32(0.0))
    coarse *= np.float32(_COARSE_LEVEL)
    # Spend the frame's whole PSNR budget: scale the texture part (never the flat-area floor) by k so
    # that mean((floor + k t)^2) + mean(coarse^2) = cap, k <= boost; solves the quadratic in k.
    cap, boost = _MEAN_SQ_CAP * gain * gain - float((coarse * coarse).mean()), _BOOST * gain
    m1, m2 = float(t.mean()), float((t * t).mean())
    k = boost
    if m2 > 0:
        disc = _FLOOR**2 * m1**2 - m2 * (_FLOOR**2 - cap)
        k = min(boost, (-_FLOOR * m1 + np.sqrt(max(disc, 0.0))) / m2)
    return _FLOOR + np.float32(k) * t, coarse


class FramePattern:
    """The tiled patterns (fine and coarse layer) for one (height, width), reshaped for per-block scaling."""

    def __init__(
        self, layout: Layout, bits: np.ndarray, height: int, width: int, amplitude: float = 1.0
    ) -> None:
        self.height, self.width = height, width
        self.amplitude = np.float32(amplitude)
        scale = embed_scale(height, width)
        self.hb, self.wb = -(-height // _BLOCK), -(-width // _BLOCK)
        shape = (self.hb, _BLOCK, self.wb * _BLOCK)
        fine = full_pattern(layout, bits, scale, self.hb * _BLOCK, self.wb * _BLOCK)
        self.rows = np.ascontiguousarray(fine).reshape(shape)
        coarse = full_pattern(layout.coarse, bits, COARSE * scale, self.hb * _BLOCK, self.wb * _BLOCK)
        self.coarse_rows = np.ascontiguousarray(coarse).reshape(shape)
        # Scratch for the per-frame float work, reused: fresh multi-megabyte arrays cost page faults every frame.
        self._d = np.empty(shape, np.float32)
        self._c = np.empty(shape, np.float32)
        self._up = np.empty((height, width, 3), np.uint8)
        self._down = np.empty((height, width, 3), np.uint8)
        self._limit = np.empty((height, width * 3), np.uint8)

    def delta(self, sub: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """Rounded luma delta: int8 (H, W) (|delta| <= 20 at the key-frame gain)."""
        fine, coarse = strengths(sub, gain)
        # strengths() is homogeneous in every constant it uses, so scaling its output scales them all
        if self.amplitude != 1:
            fine, coarse = fine * self.amplitude, coarse * self.amplitude
        d, c = self._d, self._c
        np.multiply(self.rows, np.repeat(fine, _BLOCK, axis=1)[:, None, :], out=d)
        np.multiply(self.coarse_rows, np.repeat(coarse, _BLOCK, axis=1)[:, None, :], out=c)
        np.add(d, c, out=d)
        np.rint(d, out=d)
        return d.reshape(self.hb * _BLOCK, -1)[: self.height, : self.width].astype(np.int8)

    def apply(self, frame: np.ndarray, keys: KeyFrames) -> np.ndarray:
        """Mark one frame, the next of the clip that ``keys`` follows."""
        # One subsample serves both the cut check and the strength map.
        sub = luma(frame[::_BLOCK, ::_BLOCK])
        d = self.delta(sub, keys.gain_for(sub))
        # The same delta on R, G and B is a pure luma change: it survives 4:2:0 and any chroma handling. Its
        # parts are built at luma size, then copied for R, G and B interleaved along the row (three strided
        # copies into reused buffers: half the time of np.repeat), so the uint8 operations run on long rows.
        up = _interleave(np.maximum(d, 0).view(np.uint8), self._up)
        down = _interleave(np.maximum(-d, 0).view(np.uint8), self._down)
        limit = np.subtract(np.uint8(255), up, out=self._limit)
        # Saturating uint8 add then subtract, without widening the frame: min(x, 255-u) + u, max(x, v) - v.
        flat = np.ascontiguousarray(frame).reshape(self.height, self.width * 3)
        out = np.minimum(flat, limit)
        out += up
        np.maximum(out, down, out=out)
        out -= down
        return out.reshape(self.height, self.width, 3)


def _interleave(plane: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, 3W): each value three times, as R, G and B of one pixel, written into ``buf`` (H, W, 3)."""
    for ch in range(3):
        buf[..., ch] = plane
    return buf.reshape(buf.shape[0], -1)
