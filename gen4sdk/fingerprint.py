"""A clip's perceptual fingerprint: what finds its credentials by content once the watermark is gone.

The watermark carries an exact payload but can be destroyed (very low bit rates, heavy blur, a strong crop, a
screen recording). The fingerprint is the second soft binding C2PA allows beside it: a compact description of how
the clip *looks*, kept with its manifest in the store, so that ``verify --store`` and the resolution service's
``/matches/byContent`` can still name the manifest of a clip whose mark was not found.

What it is: four frames a second (the frame nearest each quarter-second tick), each reduced to a 63-bit DCT
perceptual hash (luma, box-filtered to 32 x 32, the 8 x 8 lowest frequencies but the mean, each bit whether a
coefficient is above their median; Zauner's pHash). That survives re-encoding, rescaling, brightness, contrast,
gamma, colour changes and blur; it does not survive a strong crop or a rotation past a few degrees, which the
watermark does. Flat frames (a black or white screen) say nothing about a clip and are kept only as placeholders.

Matching aligns two fingerprints on their ticks (a clip can be an excerpt of the other, or start later) and under
the eight symmetries of the square (a mirrored or quarter-turned clip), and takes the median Hamming distance of
the aligned frames. :data:`MATCH_DISTANCE` is where a match starts; its source is ``benchmarks/fingerprint.py``
(docs/watermark.md, "Fingerprint"). Written here rather than taken from ``imagehash``: one 32 x 32 DCT does not
justify adding scipy and PyWavelets to the light install, and the symmetries and the sequence alignment are ours
either way.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from gen4sdk.errors import InvalidRequestError

__all__ = [
    "ALGORITHM",
    "MATCH_DISTANCE",
    "TICKS_PER_SECOND",
    "Fingerprint",
    "FingerprintMatch",
    "band_keys",
    "fingerprint_frames",
    "match",
]

# The soft-binding algorithm name, as the resolution service lists it (not in C2PA's registry: our own).
ALGORITHM = "io.gen4sdk.phash-video.1"
TICKS_PER_SECOND = 4
# A stored fingerprint covers at most this much of a clip (4 ticks a second: 19 KB at most).
MAX_TICKS = 600 * TICKS_PER_SECOND
# A match: the aligned frames' median Hamming distance at most this, of 63 bits (benchmarks/fingerprint.py: the
# same clip after the attacks measured stays below 8 but for blur and CRF 50; other clips sit above 20).
MATCH_DISTANCE = 12
# At least this many aligned, non-flat frames (or all of the stored clip's, if it has fewer).
MIN_ALIGNED = 4

_BITS = 63
_NO_FRAME = np.uint64(0xFFFF_FFFF_FFFF_FFFF)  # no frame at this tick (a variable frame rate, a dropped frame)
_FLAT = np.uint64(1 << 63)  # a flat frame: its hash means nothing
_FLAT_STD = 2.0  # luma standard deviation (0-255) of the 32 x 32 thumbnail under which a frame is flat
_SIDE = 32
_LOW = 8
_MAGIC = b"G4FP"
_VERSION = 1


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(_SIDE)[:_LOW]  # only the low rows are ever used
_WEIGHTS = (np.uint64(1) << np.arange(_BITS, dtype=np.uint64)).astype(np.uint64)
# the eight symmetries of the square, applied to a thumbnail; resizing commutes with them, so the thumbnail of a
# mirrored or turned frame is the mirrored or turned thumbnail
_VIEWS: dict[str, tuple[int, bool]] = {
    "as embedded": (0, False),
    "mirrored": (0, True),
    "turned 90 degrees": (1, False),
    "turned 180 degrees": (2, False),
    "turned 270 degrees": (3, False),
    "mirrored, turned 90 degrees": (1, True),
    "mirrored, turned 180 degrees": (2, True),
    "mirrored, turned 270 degrees": (3, True),
}


@dataclass(frozen=True)
class FingerprintMatch:
    """How well a query clip matches a stored one: ``distance`` in bits (of 63) at the best alignment."""

    distance: float
    frames: int
    offset_seconds: float
    view: str

    @property
    def similarity(self) -> int:
        """0-100, as C2PA's resolution API scores a match: 100 at distance 0, 0 at 32 (chance)."""
        return max(0, min(100, round(100 * (1 - self.distance / 32))))

    @property
    def is_match(self) -> bool:
        return self.distance <= MATCH_DISTANCE


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """Per-tick frame hashes of one clip (``hashes``: uint64, one per quarter second)."""

    hashes: np.ndarray

    def __post_init__(self) -> None:
        if self.hashes.dtype != np.uint64 or self.hashes.ndim != 1:
            raise InvalidRequestError("a fingerprint's hashes are a 1-D uint64 array")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fingerprint) and np.array_equal(self.hashes, other.hashes)

    def __hash__(self) -> int:
        return hash(self.hashes.tobytes())

    @property
    def usable(self) -> bool:
        """Whether any frame says something about the clip (not all flat or missing)."""
        return bool(_informative(self.hashes).any())

    def to_bytes(self) -> bytes:
        return (
            _MAGIC
            + struct.pack("<BBI", _VERSION, TICKS_PER_SECOND, len(self.hashes))
            + self.hashes.astype("<u8").tobytes()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """The fingerprint :meth:`to_bytes` wrote; InvalidRequestError for anything else."""
        head = 4 + struct.calcsize("<BBI")
        if len(data) < head or data[:4] != _MAGIC:
            raise InvalidRequestError("not a gen4sdk fingerprint")
        version, ticks, count = struct.unpack("<BBI", data[4:head])
        if version != _VERSION or ticks != TICKS_PER_SECOND:
            raise InvalidRequestError(f"unsupported fingerprint version {version} ({ticks} ticks a second)")
        if count > MAX_TICKS or len(data) != head + 8 * count:
            raise InvalidRequestError("a fingerprint of the wrong length")
        return cls(np.frombuffer(data, dtype="<u8", offset=head, count=count).astype(np.uint64))


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise InvalidRequestError(f"frames must be (H, W, 3) uint8 RGB, got {frame.dtype} {frame.shape}")
    luma = Image.fromarray(frame).convert("L")  # ITU-R 601 luma, as the codec's Y plane
    return np.asarray(luma.resize((_SIDE, _SIDE), Image.Resampling.BOX), dtype=np.float64)


def _hash(thumb: np.ndarray) -> np.uint64:
    if thumb.std() < _FLAT_STD:
        return _FLAT
    coeffs = (_DCT @ thumb @ _DCT.T).ravel()[1:]  # the 63 lowest frequencies but the mean
    bits = coeffs > np.median(coeffs)
    return np.uint64(np.sum(_WEIGHTS[bits], dtype=np.uint64))


def _view(thumb: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    return np.rot90(thumb[:, ::-1] if mirror else thumb, turns)


def _sampled(frames: Iterable[np.ndarray], fps: float, max_ticks: int) -> Iterator[tuple[int, np.ndarray]]:
    """(tick, frame) for the first frame at or after each quarter-second tick."""
    if not fps > 0:
        raise InvalidRequestError(f"fps must be positive, got {fps}")
    last = -1
    for i, frame in enumerate(frames):
        tick = int(np.floor(i * TICKS_PER_SECOND / fps + 1e-6))
        if tick >= max_ticks:
            return
        if tick > last:
            last = tick
            yield tick, frame


def fingerprint_frames(
    frames: Iterable[np.ndarray], fps: float, *, max_seconds: float | None = None
) -> Fingerprint:
    """The fingerprint of a clip's frames ((T, H, W, 3) uint8 RGB, or any iterable of such frames) at ``fps``."""
    max_ticks = MAX_TICKS if max_seconds is None else min(MAX_TICKS, int(max_seconds * TICKS_PER_SECOND))
    hashes = np.full(0, _NO_FRAME, dtype=np.uint64)
    found: dict[int, np.uint64] = {}
    for tick, frame in _sampled(frames, fps, max_ticks):
        found[tick] = _hash(_thumbnail(np.asarray(frame)))
    if found:
        hashes = np.full(max(found) + 1, _NO_FRAME, dtype=np.uint64)
        for tick, h in found.items():
            hashes[tick] = h
    return Fingerprint(hashes)


def query_views(
    frames: Iterable[np.ndarray], fps: float, *, max_seconds: float = 60.0
) -> dict[str, Fingerprint]:
    """A query clip's fingerprint under each of the eight symmetries (what :func:`match` compares)."""
    max_ticks = min(MAX_TICKS, int(max_seconds * TICKS_PER_SECOND))
    thumbs = {tick: _thumbnail(np.asarray(frame)) for tick, frame in _sampled(frames, fps, max_ticks)}
    length = max(thumbs) + 1 if thumbs else 0
    views: dict[str, Fingerprint] = {}
    for name, (turns, mirror) in _VIEWS.items():
        hashes = np.full(length, _NO_FRAME, dtype=np.uint64)
        for tick, thumb in thumbs.items():
            hashes[tick] = _hash(_view(thumb, turns, mirror))
        views[name] = Fingerprint(hashes)
    return views


def _informative(h: np.ndarray) -> np.ndarray:
    return (h != _NO_FRAME) & ((h & _FLAT) == 0)


def _popcount(x: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(x, dtype="<u8").reshape(-1)
    return np.unpackbits(flat.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def match(query: Fingerprint | dict[str, Fingerprint], reference: Fingerprint) -> FingerprintMatch | None:
    """The best alignment of ``query`` (one fingerprint, or :func:`query_views`' eight) on ``reference``.

    None when no offset aligns enough informative frames (:data:`MIN_ALIGNED`, or all the stored clip has).
    """
    views = query if isinstance(query, dict) else {"as embedded": query}
    ref = reference.hashes
    ref_ok = _informative(ref)
    best: FingerprintMatch | None = None
    for name, fp in views.items():
        q = fp.hashes
        q_ok = _informative(q)
        # the query must show MIN_ALIGNED informative frames (fewer only when the stored clip has fewer): a still
        # image or a fraction of a second is too little to claim a resemblance
        need = max(1, min(MIN_ALIGNED, int(ref_ok.sum())))
        if not q_ok.any() or not ref_ok.any():
            continue
        # distances of every query tick to every reference tick; offset d (query tick i meets reference tick
        # i + d) reads the d-th diagonal: all offsets at once, as rows of (offsets, query ticks)
        dist = _popcount(q[:, None] ^ ref[None, :]).reshape(len(q), len(ref)).astype(np.float64)
        valid = q_ok[:, None] & ref_ok[None, :]
        offsets = np.arange(-len(q) + 1, len(ref))
        rows = np.arange(len(q))[None, :]
        cols = rows + offsets[:, None]
        inside = (cols >= 0) & (cols < len(ref))
        cols = np.clip(cols, 0, len(ref) - 1)
        ok = inside & valid[rows, cols]
        counts = ok.sum(axis=1)
        usable = counts >= need
        if not usable.any():
            continue
        aligned = np.where(ok, dist[rows, cols], np.nan)[usable]
        medians = np.nanmedian(aligned, axis=1)
        # the smallest median; among equal medians the alignment with the most frames
        k = int(np.lexsort((-counts[usable], medians))[0])
        candidate = FingerprintMatch(
            distance=float(medians[k]),
            frames=int(counts[usable][k]),
            offset_seconds=int(offsets[usable][k]) / TICKS_PER_SECOND,
            view=name,
        )
        if best is None or (candidate.distance, -candidate.frames) < (best.distance, -best.frames):
            best = candidate
    return best


def band_keys(hashes: np.ndarray) -> list[int]:
    """The index keys of informative frame hashes: each hash's four 16-bit bands, tagged with the band's number.

    A stored clip is a candidate for a query when one of its frames shares a band with one of the query's
    (pigeonhole: a hash within 3 bits shares at least one band; over the dozens of frames of a clip, far more
    distant ones do too), and is then scored by :func:`match`.
    """
    h = hashes[_informative(hashes)]
    keys: set[int] = set()
    for band in range(4):
        values = (h >> np.uint64(16 * band)) & np.uint64(0xFFFF)
        keys.update(band << 16 | int(v) for v in np.unique(values))
    return sorted(keys)
