"""The geometry search: a mirrored, turned, slightly rotated or warped clip, tried only when the plain pass fails.

The plain pass (``_detect.search``) looks for the tile as it was embedded: scaled and shifted, never mirrored or
rotated. A platform that mirrors a clip, a phone that records it upright or slightly askew, moves the tile onto
another orientation; the sync correlation then finds nothing. When (and only when) the plain pass fails, this
module tries the other views of the accumulated residual:

- the eight symmetries of the square (identity, three quarter turns, and the mirror images of each): the tile is
  square, so a flip or a quarter turn of the frame is a flip or a quarter turn of the tile. Each is ranked by
  the sync score of the folded tile transformed the same way (eight 128 x 128 correlations per scale, next to
  nothing), never decoded unless it ranks among the best;
- a small rotation: the tile repeats, so the residual's 2-D autocorrelation has peaks on the rotated tile
  lattice, whatever the content; fitting that lattice (``_lattice``) gives the angle, the period and, to first
  order, a perspective's shear, and the residual is warped back before the same eight-view ranking. A rotation
  is only known up to a quarter turn this way, which the eight views cover;
- a perspective: it bends the lattice across the frame, so no single warp folds it; last, the clip is read in
  overlapping pieces, each aligned on its own, their tiles summed at one shift (piecewise_tile).

Every view and scale is only ranked by its sync score; the best GEOMETRY_ALIGNMENTS of them, over all views and
both sources (the whole clip, its first part), are decoded, and then the best piecewise tile, each with at most
ATTEMPTS_PER_ALIGNMENT list candidates. So the search adds GEOMETRY_ATTEMPTS decode attempts to the plain
pass's, whatever it ranks, and the false-positive bound (package docstring) counts them: MAX_DECODE_ATTEMPTS is
the sum.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from ._code import ATTEMPTS_PER_ALIGNMENT, PayloadCode
from ._detect import (
    MIN_SIDE,
    PLAIN_DECODE_ATTEMPTS,
    Alignment,
    SearchResult,
    _Budget,
    _centred_sum,
    _sync_correlation,
    combined_soft_bits,
    fold,
    period_candidates,
    search,
    soft_bits,
)
from ._lattice import Basis, Lattice, find_lattice, warp
from ._pattern import COARSE, TILE_PX, Layout

logger = logging.getLogger(__name__)

# Decoded views in the geometry search: the best GEOMETRY_ALIGNMENTS by sync score over every view, scale and
# source, then one piecewise read (see piecewise_tile). 5 x 64 = 320 attempts on top of the plain pass's 768 keep
# the total at 1088 <= 1e-9 * 2^40 = 1099.5 (package docstring).
GEOMETRY_ALIGNMENTS = 4
PIECEWISE_READS = 1
GEOMETRY_ATTEMPTS = (GEOMETRY_ALIGNMENTS + PIECEWISE_READS) * ATTEMPTS_PER_ALIGNMENT
MAX_DECODE_ATTEMPTS = PLAIN_DECODE_ATTEMPTS + GEOMETRY_ATTEMPTS

# The eight symmetries of the square, as (quarter turns counter-clockwise, then mirror left-right), applied to a
# (rows, cols) array by _d4. Index 0 is the plain view.
_D4 = tuple((turns, mirror) for mirror in (False, True) for turns in range(4))
# Rotations smaller than this are left to the fold: over a 640-px-wide frame 0.15 degrees moves the tile by under
# a pixel at the edges.
_MIN_ANGLE = np.deg2rad(0.15)
# A lattice this far from a rotated square one (Lattice.skew) is warped back even when it is not rotated: 0.003
# moves the tile by a pixel over 330.
_MIN_SKEW = 0.003
# A view is labelled skewed from this much on.
_SKEWED = 0.01
# Period candidates ranked per view (from the autocorrelation; plus the embedder's own period).
_PERIODS = 6
# Rotated views: the parts are merged into at most this many groups first (rotating each part is the expensive
# step; the groups keep enough of the per-part weighting of _detect.part_weights).
_ROTATED_GROUPS = 8


def _d4(a: np.ndarray, t: int) -> np.ndarray:
    turns, mirror = _D4[t]
    out = np.rot90(a, turns)
    return out[:, ::-1] if mirror else out


def describe(t: int, lattice: Lattice | None) -> str:
    """What the clip is, relative to the embedded frame, when view ``t`` after warping ``lattice`` back read it.

    The view undoes the clip's transform: the clip is its inverse applied to the embedded frame. A view of k
    counter-clockwise quarter turns undoes a turn of 4 - k; a mirrored view (turn k, then mirror) undoes "turn k,
    then mirror" (a mirror is its own inverse and reverses the turn's sense). A lattice's angle is in image
    coordinates (y down), so a negative one is a counter-clockwise rotation as the clip is seen.
    """
    turns, mirror = _D4[t]
    words = []
    if mirror:
        words.append("mirrored")
    quarter = turns if mirror else (4 - turns) % 4
    if quarter:
        words.append(f"turned {90 * quarter} degrees counter-clockwise")
    if lattice is not None and abs(lattice.angle) >= _MIN_ANGLE:
        sense = "counter-clockwise" if lattice.angle < 0 else "clockwise"
        words.append(f"rotated {abs(np.rad2deg(lattice.angle)):.1f} degrees {sense}")
    if lattice is not None and lattice.skew >= _SKEWED:
        words.append("skewed")
    return ", ".join(words) or "as embedded"


# -- views and their ranking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    z: float
    source: int
    lattice: Lattice | None  # None: the residual as found; else warped back from this lattice
    transform: int
    k: float


def _align_views(acc: np.ndarray, layout: Layout, k: float) -> list[tuple[float, int]]:
    """(sync z, view) for each of the eight views, from one fold: folding commutes with the symmetries of the
    square up to a shift, which the correlation finds anyway, so the folded tile is transformed, not the frame."""
    tile = fold(acc, k, k)
    out = []
    for t in range(len(_D4)):
        c = _sync_correlation(np.ascontiguousarray(_d4(tile, t)), layout)
        sd = float(c.std())
        out.append(((float(c.max()) - float(c.mean())) / sd if sd > 0 else 0.0, t))
    return out


def _rank_views(acc: np.ndarray, layout: Layout, periods: list[float]) -> dict[int, tuple[float, float]]:
    """Best (z, k) per view over the candidate periods, each refined over +-1% in 9 steps."""
    best: dict[int, tuple[float, float]] = {}
    for period in periods:
        for e in np.linspace(-0.01, 0.01, 9):
            k = TILE_PX / (period * (1.0 + e))
            for z, t in _align_views(acc, layout, k):
                if t not in best or z > best[t][0]:
                    best[t] = (z, k)
    return best


def _crop_to_coarse(parts: list[np.ndarray], coarse: list[np.ndarray]) -> list[np.ndarray]:
    """Fine parts cut to COARSE times the coarse parts' size, so that a flip or a rotation about the centre maps
    both grids onto each other as the embedder drew them (fine pixel COARSE * i + 1 is coarse pixel i)."""
    if not coarse:
        return parts
    hc, wc = coarse[0].shape
    return [p[: COARSE * hc, : COARSE * wc] for p in parts]


def _groups(parts: list[np.ndarray]) -> list[np.ndarray]:
    n = len(parts)
    if n <= _ROTATED_GROUPS:
        return parts
    edges = np.linspace(0, n, _ROTATED_GROUPS + 1).round().astype(int)
    return [np.sum(parts[a:b], axis=0) for a, b in itertools.pairwise(edges)]


def _view(parts: list[np.ndarray], basis: Basis | None, transform: int) -> list[np.ndarray]:
    """The parts as seen under (warp of lattice ``basis`` back to square, then symmetry ``transform``). Fine and
    coarse parts are warped about their own centres, which are the same point of the frame once _crop_to_coarse
    has cut the fine ones (fine pixel (COARSE * hc - 1) / 2 is coarse pixel (hc - 1) / 2)."""
    out = parts
    if basis is not None:
        out = [warp(p, basis, ((p.shape[0] - 1) / 2.0, (p.shape[1] - 1) / 2.0)) for p in _groups(parts)]
    return [np.ascontiguousarray(_d4(p, transform)) for p in out]


def _sources(
    parts: list[np.ndarray], coarse: list[np.ndarray]
) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    out = [(parts, coarse)]
    if len(parts) > 1:
        out.append((parts[:1], coarse[:1]))
    return out


def geometry_search(
    parts: list[np.ndarray], coarse: list[np.ndarray], layout: Layout, code: PayloadCode
) -> tuple[SearchResult, str]:
    """Rank every view of both sources by sync score, decode the best GEOMETRY_ALIGNMENTS; (result, view label)."""
    parts = _crop_to_coarse(parts, coarse)
    sources = _sources(parts, coarse)
    cands: list[_Candidate] = []
    lattices: dict[int, Lattice | None] = {}
    for si, (ps, _) in enumerate(sources):
        acc = _centred_sum(ps)
        if acc is None:
            continue
        views: list[tuple[Lattice | None, np.ndarray, list[float]]] = [(None, acc, period_candidates(acc))]
        lat = lattices[si] = find_lattice(acc)
        if lat is not None and (abs(lat.angle) >= _MIN_ANGLE or lat.skew >= _MIN_SKEW):
            h, w = acc.shape
            wacc = warp(acc, lat.basis, ((h - 1) / 2.0, (w - 1) / 2.0))
            views.append((lat, wacc, [lat.period, *period_candidates(wacc)]))
        elif lat is not None:
            views[0][2].insert(0, lat.period)
        logger.debug("source %d lattice %s", si, lat)
        for seen, a, periods in views:
            # The embedder's own period is always tried: a clip mirrored or turned but not rescaled needs no
            # autocorrelation peak to be read (the plain pass has a log-grid search for that; eight views of it
            # would cost seconds).
            for t, (z, k) in _rank_views(a, layout, [*periods[:_PERIODS], float(TILE_PX)]).items():
                if seen is None and t == 0:
                    continue  # the plain pass has decoded this view already
                cands.append(_Candidate(z, si, seen, t, k))
    cands.sort(key=lambda c: -c.z)
    budget = _Budget(limit=GEOMETRY_ATTEMPTS)
    for c in cands[:GEOMETRY_ALIGNMENTS]:
        ps, cs = sources[c.source]
        basis = c.lattice.basis if c.lattice is not None else None
        vp = _view(ps, basis, c.transform)
        vc = _view(cs, basis, c.transform) if cs else []
        hit = _decode_view(vp, vc, layout, code, budget, c.k)
        logger.debug("view %s z=%.1f -> %s", describe(c.transform, c.lattice), c.z, hit is not None)
        if hit is not None:
            return hit, describe(c.transform, c.lattice)
    # Last, the whole clip read in pieces, upright (after the lattice's warp, if one was found): a perspective
    # bends the lattice across the frame, which no single warp undoes.
    # Which source (the whole clip, its first part), which residual (warped by the lattice, or as found) and
    # which scale: the one whose pieces add up to the strongest sync peak (ranking only: one decode). On a photo
    # pan after a perspective and CRF 26 the whole clip's lattice was the content's (period 139 for 123) and only
    # the key frame's pieces read.
    tries: list[tuple[Lattice | None, np.ndarray, float]] = []
    for si, (ps, _) in enumerate(sources):
        acc = _centred_sum(ps)
        if acc is None or min(acc.shape) < 2 * MIN_SIDE:
            continue
        lat = lattices.get(si)
        if lat is not None:
            h, w = acc.shape
            tries.append((lat, warp(acc, lat.basis, ((h - 1) / 2.0, (w - 1) / 2.0)), lat.period))
        tries.append((None, acc, TILE_PX * _PIECE_PERIOD))
    if tries:
        scored = [(piecewise_tile(a, layout, TILE_PX / p), seen, p) for seen, a, p in tries]
        (tile, z), seen, period = max(scored, key=lambda x: x[0][1])
        hit = _decode_piecewise(tile, z, layout, code, budget, TILE_PX / period)
        if hit is not None:
            return hit, ", ".join(w for w in (describe(0, seen), "warped") if w != "as embedded")
    best_z = cands[0].z if cands else 0.0
    return SearchResult(None, min(0.49, best_z / 20.0), budget.attempts, best_z), ""


# The piecewise read: PIECES x PIECES overlapping windows, each half the frame's side, each aligned on its own
# (scale within +-_PIECE_SCALE of the lattice's or _PIECE_PERIOD's, in _PIECE_STEPS steps, and shift); their folded tiles are moved to
# one shift and summed, weighted by their squared sync scores. On a 720p photo pan whose corners a perspective
# moved inwards by up to 5% of the side, then CRF 26, the lattice's warp alone gave no sync peak (z 4.9), the
# pieces read at z 4.6 to 8.3 each and 10.5 together, and the payload read.
_PIECES = 3
_PIECE_SCALE = 0.05
_PIECE_STEPS = 21
# Without a lattice, the pieces' scales are searched about 0.96 of the embedded period (a perspective that moves
# the corners inwards by 0 to 8% of the side shrinks the frame by about that much).
_PIECE_PERIOD = 0.96


def piecewise_tile(acc: np.ndarray, layout: Layout, k: float) -> tuple[np.ndarray, float]:
    """The sync-weighted sum of the windows' folded tiles, each moved so that its sync peak is at shift (0, 0), and
    the sum's sync z-score there."""
    h, w = acc.shape
    bh, bw = h // 2, w // 2
    total = np.zeros((TILE_PX, TILE_PX))
    for i in range(_PIECES):
        for j in range(_PIECES):
            y0, x0 = (h - bh) * i // (_PIECES - 1), (w - bw) * j // (_PIECES - 1)
            block = acc[y0 : y0 + bh, x0 : x0 + bw]
            block = block - block.mean()
            best: tuple[float, np.ndarray] | None = None
            for e in np.linspace(-_PIECE_SCALE, _PIECE_SCALE, _PIECE_STEPS):
                tile = fold(block, k * (1.0 + e), k * (1.0 + e))
                c = _sync_correlation(tile, layout)
                m = int(np.argmax(c))
                sd = float(c.std())
                z = (float(c.flat[m]) - float(c.mean())) / sd if sd > 0 else 0.0
                if best is None or z > best[0]:
                    best = (z, np.roll(tile, (-(m // TILE_PX), -(m % TILE_PX)), (0, 1)))
            assert best is not None
            total += max(best[0], 0.0) ** 2 * best[1]
    c = _sync_correlation(total, layout)
    sd = float(c.std())
    return total, (float(c[0, 0]) - float(c.mean())) / sd if sd > 0 else 0.0


def _decode_piecewise(
    tile: np.ndarray, z: float, layout: Layout, code: PayloadCode, budget: _Budget, k: float
) -> SearchResult | None:
    """One decode of a piecewise tile (the fine layer only: the coarse layer's tile spans three fine ones)."""
    left = budget.limit - budget.attempts
    if left <= 0:
        return None
    soft = soft_bits(tile, layout, Alignment(z, k, k, (0, 0)))
    payload, used, agree = code.decode(soft.values, left)
    budget.attempts += used
    logger.debug("piecewise z=%.1f -> %s", z, payload is not None)
    return SearchResult(payload, agree, budget.attempts, z) if payload is not None else None


def _decode_view(
    parts: list[np.ndarray],
    coarse: list[np.ndarray],
    layout: Layout,
    code: PayloadCode,
    budget: _Budget,
    k: float,
) -> SearchResult | None:
    """One decode of a view, at the best shift for scale ``k`` refined on the view itself (the ranking's fold
    of the transformed tile is exact only up to a pixel of rounding)."""
    acc = _centred_sum(parts)
    left = budget.limit - budget.attempts
    if acc is None or left <= 0:
        return None
    best: Alignment | None = None
    for e in np.linspace(-0.003, 0.003, 5):
        kk = k * (1.0 + e)
        c = _sync_correlation(fold(acc, kk, kk), layout)
        i = int(np.argmax(c))
        sd = float(c.std())
        z = float((c.flat[i] - c.mean()) / sd) if sd > 0 else 0.0
        if best is None or z > best.z:
            best = Alignment(z, kk, kk, (i // TILE_PX, i % TILE_PX))
    assert best is not None
    soft = combined_soft_bits(parts, coarse, _centred_sum(coarse), layout, best)
    payload, used, agree = code.decode(soft, left)
    budget.attempts += used
    budget.best_z = max(budget.best_z, best.z)
    return SearchResult(payload, agree, budget.attempts, best.z) if payload is not None else None


def search_all(
    parts: list[np.ndarray], coarse: list[np.ndarray], layout: Layout, code: PayloadCode
) -> tuple[SearchResult, str]:
    """The plain pass; the geometry search only if it found nothing. (result, view label: "" when not found,
    "as embedded" for the plain pass). Attempts add up to at most MAX_DECODE_ATTEMPTS."""
    plain = search(parts, coarse, layout, code)
    if plain.payload is not None:
        return plain, "as embedded"
    geo, label = geometry_search(parts, coarse, layout, code)
    attempts = plain.attempts + geo.attempts
    if geo.payload is not None:
        return SearchResult(geo.payload, geo.confidence, attempts, geo.z), label
    z = max(plain.z, geo.z)
    return SearchResult(None, min(0.49, z / 20.0), attempts, z), ""
