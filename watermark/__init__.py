"""gen4sdk's invisible video watermark: a keyed, static, periodic luma pattern that survives compression,
resizing, cropping, colour changes, frame-rate changes and excerpts, and carries 64 bits.

Usage::

    from watermark import Watermarker
    wm = Watermarker(key=b"operator secret")      # or Watermarker.public()
    marked = wm.embed(frames, payload)            # uint8 (T, H, W, 3) RGB, payload of wm.payload_bytes
    det = wm.detect(marked)                       # Detection(found=True, payload=..., confidence=...)

Design. A tile of 32 x 32 smooth chips (Gaussian blobs, 4 px apart at 360p, 8 px at 720p, ...), derived
from the key, is repeated over the whole frame and over every frame. 256 chips carry a known sync pattern,
the other 768 carry the 336-bit codeword (2 or 3 chips per bit, spread over the tile). The same delta is added to
R, G and B, i.e. only luma changes, scaled by a texture mask: a floor of 1 level in flat areas, more in
texture, and each frame's texture part scaled to spend, but never exceed, a budget that keeps every frame's
luma PSNR at about 42.3 dB or more; a clip's first frame and the first frame after a scene cut, which encoders
make the key frames that later frames copy, have four times that budget for their texture part (flat areas
and edges unchanged; about 36.4 dB; at most one cut per 24 frames), paid back by the 24 frames after them, so
a clip of 25 frames or more stays at about 42.3 dB or more. Flat areas also carry a coarse layer: the same
codeword on a second keyed tile whose chips are three times as far apart (12 px at 360p), 1 level where the image
is flat and fading out as texture rises, its energy counted in the frame's budget; heavy compression keeps
several times more of it than of the fine pattern there (x264 CRF 35: ~55% against ~8% of the amplitude in a
flat sky). The detector
high-passes and locally normalises each frame's luma, sums the residual over frames (a static mark adds up,
moving content does not; at most 48 partial sums of
consecutive frames are kept), estimates the tile period from the residual's autocorrelation (else a
log-grid search), folds the residual into one tile, finds the shift by FFT cross-correlation with the sync
chips, re-sums the partial sums weighted by their own sync score (compression leaves the mark in some
frames more than others), reads the chips (with an equaliser for the crosstalk between neighbouring
blobs), sums them into soft bits, adds the coarse layer's soft bits (read the same way on luma decimated three
times further, at the shift the fine alignment implies, each layer weighted by its own sync-estimated SNR, and
only when the coarse sync stands out), and decodes; if the whole clip does not read, the same again on its first
part alone (after heavy compression the key frame's mark can be buried under the displaced copies that later
frames make of it). Only if neither reads, the geometry search (``_geometry``) tries the clip mirrored, turned
by quarter turns and warped back by the tile lattice its residual's 2-D autocorrelation shows (rotation, and a
perspective to first order), and last reads it in pieces aligned on their own (perspective).
Torch tensors passed to ``embed`` are marked on their device (``_torch``).

Strength (``Watermarker(key, strength=...)``): "robust" (the default) is the mark as described above; "balanced"
is the same mark at 0.7 of its amplitude everywhere (+3.1 dB), "invisible" at 0.5 (+6 dB) with a key-frame gain
of 1.41 instead of 2. The detector reads every strength alike. What each costs the eye and buys against
compression is measured in docs/watermark.md ("Strength settings").

Codeword (336 bits): payload (64) || check (40 bits of HMAC-SHA256(key-derived, payload)), encoded with a
rate-1/3 convolutional code of constraint length 9 (``_conv``), XORed with a key stream, and decoded with a
soft-input Viterbi decoder, which uses every chip's reliability (about 2 dB better than the hard-decision
BCH code with Chase decoding that it replaced); when the best path fails its check, a list Viterbi decoder
offers the next most likely messages, up to 64 in all.

False-positive bound. ``detect`` reports found only if, for one of its decode attempts, the 40-bit keyed check
of the decoded payload matches. For a clip not marked with this key, the candidate payload of each attempt is a
function of the content alone; modelling HMAC-SHA256 as a pseudo-random function whose key the content does
not depend on, each attempt's check matches with probability 2^-40, however the attempt was chosen. One detect
call makes at most ``MAX_DECODE_ATTEMPTS`` = 1088 attempts, enforced by counters:

- the plain pass, 768: 2 sources (the whole clip, then its first part alone) x 2 search stages x 3 alignments
  (scale + shift hypotheses; every other scale/shift hypothesis is only ranked by its sync score, never decoded)
  x 64 list candidates;
- the geometry search (``_geometry``), only when the plain pass found nothing, 320: of every view it ranks (the 8
  symmetries of the square, i.e. mirror and quarter turns, each as found and warped back by the tile lattice its
  autocorrelation shows, at several scales, on both sources), only the 4 with the best sync scores are decoded,
  and one piecewise tile (for perspective), x 64 list candidates. Ranking compares no check, so it is free;
  each decoded view is a hypothesis and counts.

The coarse layer adds no attempt: its soft bits join the fine layer's before the one decode of an alignment. By
the union bound,

    P(found | clip unmarked, or marked under another key) <= 1088 * 2^-40 ~= 9.9e-10  (<= 1e-9),

and the same bound covers "found with a wrong payload" on a marked clip (a wrong payload would need a
matching check). It holds for any content, clip length, scale/shift search size and number of views ranked.
(Before the geometry search: 768 * 2^-40 ~= 7.0e-10. The budget left under 1e-9 is 1e-9 * 2^40 = 1099 attempts,
so the search can decode at most 5 views at the full list size.)

Keys: ``Watermarker.public()`` uses a published key, so anyone can detect "made with gen4sdk" (and anyone
can forge that mark); operator keys are secret bytes, and only their holder can embed or detect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._code import PAYLOAD_BYTES, PayloadCode
from ._detect import Accumulator
from ._embed import DEFAULT_STRENGTH, LEVELS, FramePattern, KeyFrames, Strength
from ._geometry import MAX_DECODE_ATTEMPTS, search_all
from ._pattern import Layout

__all__ = [
    "ALGORITHM",
    "DEFAULT_STRENGTH",
    "MAX_DECODE_ATTEMPTS",
    "STRENGTHS",
    "Detection",
    "Strength",
    "WatermarkError",
    "Watermarker",
]

ALGORITHM = "com.gen4sdk.wm.v2"
PUBLIC_KEY = b"gen4sdk public watermark key v1"
MIN_SHORT_SIDE = 144
MIN_LONG_SIDE = 256
#: The strength settings, weakest first (see :class:`Watermarker`).
STRENGTHS: tuple[Strength, ...] = ("invisible", "balanced", "robust")


class WatermarkError(ValueError):
    """Bad input to the codec: wrong dtype or shape, frames too small, wrong payload length or key type."""


@dataclass(frozen=True)
class Detection:
    """Result of :meth:`Watermarker.detect`.

    ``confidence``: when found, the fraction of the 336 raw codeword bits read correctly before error
    correction (1.0 = clean copy; ~0.8 = near the limit). When not found, a hint in [0, 0.5) from the best
    sync score; it is never a reason to trust a payload.
    """

    found: bool
    payload: bytes | None
    confidence: float
    frames: int = 0
    #: How the clip carried the mark relative to the embedded frame: "as embedded" when the plain pass read it,
    #: else what the geometry search found (e.g. "mirrored", "turned 90 degrees counter-clockwise", "rotated
    #: 5.0 degrees clockwise");
    #: "" when not found.
    view: str = ""


class Watermarker:
    """Embeds and detects the gen4sdk video watermark under one key."""

    algorithm: str = ALGORITHM
    payload_bytes: int = PAYLOAD_BYTES

    def __init__(self, key: bytes, *, strength: Strength = DEFAULT_STRENGTH) -> None:
        if isinstance(key, (bytearray, memoryview)):
            key = bytes(key)
        if not isinstance(key, bytes):
            raise WatermarkError(f"key must be bytes, got {type(key).__name__}")
        if not key:
            raise WatermarkError("key must not be empty")
        if strength not in LEVELS:
            raise WatermarkError(f"strength must be one of {', '.join(STRENGTHS)}, got {strength!r}")
        self._key = key
        self._strength: Strength = strength
        self._level = LEVELS[strength]
        self._layout = Layout(key)
        self._code = PayloadCode(key)

    @classmethod
    def public(cls, *, strength: Strength = DEFAULT_STRENGTH) -> Watermarker:
        """The default public-key instance: any receiver can detect "made with gen4sdk"."""
        return cls(PUBLIC_KEY, strength=strength)

    @property
    def strength(self) -> Strength:
        """How strongly :meth:`embed` marks: "invisible", "balanced" or "robust" (the default). Detection reads
        every strength; a stronger mark survives heavier compression and is easier to see."""
        return self._strength

    def with_strength(self, strength: Strength) -> Watermarker:
        """The same key at another strength."""
        return Watermarker(self._key, strength=strength)

    @property
    def is_public(self) -> bool:
        return self._key == PUBLIC_KEY

    def __repr__(self) -> str:
        who = "public" if self.is_public else "operator key"
        return f"Watermarker({who}, strength={self._strength!r}, algorithm={self.algorithm!r})"

    # -- embedding ---------------------------------------------------------------------------------

    def _bits(self, payload: bytes) -> np.ndarray:
        if isinstance(payload, (bytearray, memoryview)):
            payload = bytes(payload)
        if not isinstance(payload, bytes):
            raise WatermarkError(f"payload must be bytes, got {type(payload).__name__}")
        if len(payload) != self.payload_bytes:
            raise WatermarkError(f"payload must be exactly {self.payload_bytes} bytes, got {len(payload)}")
        return self._code.encode(payload)

    def embed(self, frames: np.ndarray, payload: bytes, *, clip_start: bool = True) -> np.ndarray:
        """Return a marked copy of ``frames`` (uint8 (T, H, W, 3) RGB).

        ``frames`` may also be a torch uint8 tensor, on any device: it is then marked there (on the GPU
        before the frames leave it) and a tensor is returned; the mark is the same as the numpy path's.

        The first frame of a clip, and the first after a scene cut, carry a stronger mark in their texture (up
        to +6 dB; flat areas and edges as in every frame), paid back by the next 24 frames (about -0.6 dB
        each): encoders make those frames the key frames that later frames copy, so they are what
        survives heavy compression. To mark a clip in pieces, use :meth:`embed_iter` over the whole clip, which
        carries the scene-cut and payback state across pieces; or pass ``clip_start=False`` for every piece but
        the first (its first frame then gets no gain, but a payback or a cut at a piece boundary goes unseen).
        """
        if type(frames).__module__.startswith("torch"):
            return self._embed_torch(frames, payload, clip_start)
        _check_frames(frames, batch=True, embed=True)
        out = np.empty_like(frames)
        for i, frame in enumerate(self.embed_iter(iter(frames), payload, clip_start=clip_start)):
            out[i] = frame
        return out

    def _embed_torch(self, frames: Any, payload: bytes, clip_start: bool) -> Any:
        import torch

        from . import _torch

        if frames.dtype != torch.uint8:
            raise WatermarkError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
        if frames.ndim != 4 or frames.shape[0] == 0:
            raise WatermarkError(
                f"frames must have shape (T, H, W, 3) RGB, at least one frame, got {tuple(frames.shape)}"
            )
        _check_frames(np.empty((1, *frames.shape[1:]), np.uint8), batch=True, embed=True)  # size and channels
        return _torch.embed(
            self._layout, self._bits(payload), frames, clip_start=clip_start, level=self._level
        )

    def embed_iter(
        self, frames: Iterable[np.ndarray], payload: bytes, *, clip_start: bool = True
    ) -> Iterator[np.ndarray]:
        """Mark frames one by one ((H, W, 3) uint8 RGB each); memory stays bounded for any clip length.
        The first frame pulled gets the key-frame gain unless ``clip_start`` is False, and so does the first
        frame after each scene cut (see :meth:`embed`)."""
        bits = self._bits(payload)  # fail on a bad payload before the first frame is pulled
        return self._embed_gen(frames, bits, KeyFrames(clip_start, self._level.key_gain))

    def _embed_gen(
        self, frames: Iterable[np.ndarray], bits: np.ndarray, keys: KeyFrames
    ) -> Iterator[np.ndarray]:
        pattern: FramePattern | None = None
        for frame in frames:
            _check_frames(frame, batch=False, embed=True)
            h, w = frame.shape[:2]
            if pattern is None or (pattern.height, pattern.width) != (h, w):
                pattern = FramePattern(self._layout, bits, h, w, self._level.amplitude)
            yield pattern.apply(frame, keys)

    # -- detection ---------------------------------------------------------------------------------

    def detect(self, frames: np.ndarray) -> Detection:
        """Look for this key's mark in uint8 RGB frames ((T, H, W, 3), or one (H, W, 3) frame)."""
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            frames = frames[None]
        _check_frames(frames, batch=True, embed=False)
        return self.detect_iter(iter(frames))

    def detect_iter(self, frames: Iterable[np.ndarray], max_frames: int | None = None) -> Detection:
        """Streaming detection over (H, W, 3) uint8 RGB frames; reads at most ``max_frames`` frames."""
        if isinstance(max_frames, np.integer):
            max_frames = int(max_frames)
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise WatermarkError(f"max_frames must be a positive int or None, got {max_frames!r}")
        acc = Accumulator()
        for n, frame in enumerate(frames):
            if max_frames is not None and n >= max_frames:
                break
            _check_frames(frame, batch=False, embed=False)
            acc.add(frame)
        result, view = search_all(acc.parts, acc.coarse, self._layout, self._code)
        return Detection(
            found=result.payload is not None,
            payload=result.payload,
            confidence=float(result.confidence),
            frames=acc.frames,
            view=view,
        )


def _check_frames(frames: object, *, batch: bool, embed: bool) -> None:
    what = "frames" if batch else "frame"
    want = "(T, H, W, 3)" if batch else "(H, W, 3)"
    if not isinstance(frames, np.ndarray):
        raise WatermarkError(f"{what} must be a numpy array {want} of uint8 RGB, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise WatermarkError(f"{what} must be uint8 RGB, got dtype {frames.dtype}")
    if frames.ndim != (4 if batch else 3) or frames.shape[-1] != 3:
        raise WatermarkError(f"{what} must have shape {want} RGB, got {frames.shape}")
    if batch and embed and frames.shape[0] == 0:
        raise WatermarkError("frames must contain at least one frame")
    if embed:
        h, w = frames.shape[-3], frames.shape[-2]
        if min(h, w) < MIN_SHORT_SIDE or max(h, w) < MIN_LONG_SIDE:
            raise WatermarkError(
                f"frames of {w}x{h} are too small to carry the watermark: need at least "
                f"{MIN_LONG_SIDE}x{MIN_SHORT_SIDE} (or {MIN_SHORT_SIDE}x{MIN_LONG_SIDE} portrait)"
            )
