"""The geometry search: a mirrored, turned or slightly rotated clip, tried only when the plain pass fails.

The plain pass (``_detect.search``) looks for the tile as it was embedded: scaled and shifted, never mirrored or
rotated. A platform that mirrors a clip, a phone that records it upright or slightly askew, moves the tile onto
another orientation; the sync correlation then finds nothing. When (and only when) the plain pass fails, this
module tries the other views of the accumulated residual:

- the eight symmetries of the square (identity, three quarter turns, and the mirror images of each): the tile is
  square, so a flip or a quarter turn of the frame is a flip or a quarter turn of the tile. Each is ranked by
  the sync score of the folded tile transformed the same way (eight 128 x 128 correlations per scale, next to
  nothing), never decoded unless it ranks among the best;
- a small rotation: the tile repeats, so the residual's 2-D autocorrelation has peaks on the rotated tile
  lattice, whatever the content; fitting that lattice gives the angle (and the period), and the residual is
  rotated back before the same eight-view ranking. A rotation is only known up to a quarter turn this way,
  which the eight views cover.

Every view and scale is only ranked by its sync score; the best GEOMETRY_ALIGNMENTS of them, over all views and
both sources (the whole clip, its first part), are decoded, each with at most ATTEMPTS_PER_ALIGNMENT list
candidates. So the search adds GEOMETRY_ATTEMPTS decode attempts to the plain pass's, whatever it ranks, and
the false-positive bound (package docstring) counts them: MAX_DECODE_ATTEMPTS is the sum.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from ._code import ATTEMPTS_PER_ALIGNMENT, PayloadCode
from ._detect import (
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
)
from ._filters import box
from ._pattern import COARSE, TILE_PX, Layout

logger = logging.getLogger(__name__)

# Decoded views in the geometry search (the best by sync score over every view, scale and source). 5 x 64 = 320
# attempts on top of the plain pass's 768 keep the total at 1088 <= 1e-9 * 2^40 = 1099.5 (package docstring).
GEOMETRY_ALIGNMENTS = 5
GEOMETRY_ATTEMPTS = GEOMETRY_ALIGNMENTS * ATTEMPTS_PER_ALIGNMENT
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
# Largest rotation looked for (beyond it, the lattice's diagonal peaks come near the search window).
_MAX_ANGLE = np.deg2rad(20.0)
# An autocorrelation peak counts as the lattice only at this many noise deviations or more.
_LATTICE_MIN_SCORE = 5.0
# Shortest tile period looked for in the autocorrelation (a downscale to 44%): at shorter lags the whitened
# content's own autocorrelation still rises towards lag 0 and the strongest "peak" was the window's inner edge.
_LATTICE_P_MIN = 56.0
# Period candidates ranked per view (from the autocorrelation; plus the embedder's own period).
_PERIODS = 6
# Autocorrelation peaks tried as the lattice's first vector, strongest first (find_lattice).
_LATTICE_TRIES = 6
# Radius of the local mean subtracted from the autocorrelation score (find_lattice), in pixels of lag.
_ACF_BACKGROUND = 4
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


# -- the lattice of a rotated tile ----------------------------------------------------------------------


Basis = tuple[float, float, float, float]


@dataclass(frozen=True)
class Lattice:
    """The tile lattice seen in a residual: ``basis`` = (a, b, c, d), its two generating vectors (a, b) (the
    tile's x axis) and (c, d) (its y axis) in detection pixels (x, y; y down), an affine fit (rotation, scale,
    and the aspect change and shear that a mild perspective adds, to first order); ``period`` the square root
    of its area, ``angle`` its rotation (radians, in [-45, 45] degrees: the eight views resolve the
    rest), ``score`` the autocorrelation score of its strongest peak."""

    basis: Basis
    score: float

    @property
    def period(self) -> float:
        a, b, c, d = self.basis
        return float(np.sqrt(abs(a * d - b * c)))

    @property
    def angle(self) -> float:
        """The rotation nearest the affine basis (its similarity part: both axes' angles, averaged)."""
        a, b, c, d = self.basis
        return float(np.arctan2(b - c, a + d))

    @property
    def skew(self) -> float:
        """How far the lattice is from a rotated square one: the largest difference between the basis (divided by
        the period) and the rotation of the same angle; 0.01 moves the tile a pixel every 100."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        rot = np.array([cos, sin, -sin, cos])
        return float(np.max(np.abs(np.array(self.basis) / self.period - rot)))


def _acf_score(acc: np.ndarray) -> np.ndarray:
    """2-D autocorrelation of ``acc``, centred (lag 0 at the middle), each lag divided by the square root of its
    overlap: the mark's peaks grow with the overlap, the content's noise with its square root, so this is a
    signal-to-noise ratio that does not favour short lags."""
    h, w = acc.shape
    f = np.fft.rfft2(acc, s=(2 * h, 2 * w))
    ac = np.fft.fftshift(np.fft.irfft2(np.abs(f) ** 2, s=(2 * h, 2 * w)))
    ny = h - np.abs(np.arange(2 * h) - h)
    nx = w - np.abs(np.arange(2 * w) - w)
    overlap = np.maximum(ny[:, None] * nx[None, :], 1).astype(np.float64)
    return ac / np.sqrt(overlap)


def _subpixel(s: np.ndarray, y: int, x: int) -> tuple[float, float]:
    def off(l: float, c: float, r: float) -> float:
        den = l - 2 * c + r
        return float(np.clip(0.5 * (l - r) / den, -0.5, 0.5)) if den < 0 else 0.0

    return y + off(s[y - 1, x], s[y, x], s[y + 1, x]), x + off(s[y, x - 1], s[y, x], s[y, x + 1])


def _lattice_points(s: np.ndarray, basis: Basis) -> tuple[list[tuple[int, int, float, float, float]], int]:
    """(m, n, x, y, score) of each lattice point m (a, b) + n (c, d) inside the well-overlapped lags (3/4 of
    each side), located to sub-pixel precision within 2 pixels of where ``basis`` predicts it, weak ones left
    out; and how many points were predicted."""
    h, w = s.shape[0] // 2, s.shape[1] // 2
    a, b, c, d = basis
    reach = int(np.ceil(0.75 * max(h, w) / np.sqrt(abs(a * d - b * c)))) + 1
    out = []
    predicted = 0
    for m in range(-reach, reach + 1):
        for n in range(-reach, reach + 1):
            dx, dy = m * a + n * c, m * b + n * d
            if (m, n) == (0, 0) or abs(dy) > 0.75 * h or abs(dx) > 0.75 * w:
                continue
            predicted += 1
            y0, x0 = round(h + dy), round(w + dx)
            y1, x1 = max(y0 - 2, 1), max(x0 - 2, 1)
            sub = s[y1 : min(y0 + 3, 2 * h - 1), x1 : min(x0 + 3, 2 * w - 1)]
            if sub.size == 0:
                continue
            j = int(np.argmax(sub))
            yj, xj = y1 + j // sub.shape[1], x1 + j % sub.shape[1]
            if s[yj, xj] < 4.0:
                continue
            my, mx = _subpixel(s, yj, xj)
            out.append((m, n, mx - w, my - h, float(s[yj, xj])))
    return out, predicted


def find_lattice(acc: np.ndarray, p_min: float = _LATTICE_P_MIN, p_max: float = 440.0) -> Lattice | None:
    """The tile lattice in a residual, from its autocorrelation: the strongest peak within _MAX_ANGLE of an axis
    gives a first basis vector (its quarter turn the second); every lattice point predicted from them inside the
    well-overlapped lags is then located to sub-pixel precision and the basis refitted to all of them (weighted
    least squares): twice as a rotated square, then once as a general affine lattice. The angle comes from the
    longest lags available (one pixel at 300 px is 0.2 degrees)."""
    h, w = acc.shape
    hi = min(p_max, 0.7 * min(h, w))
    if hi <= p_min + 4:
        return None
    s = _acf_score(acc)
    # The content's own autocorrelation is smooth and falls with the lag (on a textured photo it beat the mark's
    # peaks at the window's inner edge); the mark's peaks are a few pixels wide: keep what stands above the
    # local mean.
    s = s - box(s.astype(np.float32), _ACF_BACKGROUND)
    noise = float(np.median(np.abs(s - np.median(s)))) * 1.4826 + 1e-12
    s = (s - float(np.median(s))) / noise
    yy, xx = np.mgrid[-h:h, -w:w]
    r = np.hypot(yy, xx)
    phi = np.arctan2(yy, xx)
    near_axis = np.abs((phi + np.pi / 4) % (np.pi / 2) - np.pi / 4) <= _MAX_ANGLE
    # Only true local maxima count: a pan's displaced copies of the content make ridges along the motion, whose
    # highest point inside the window is its inner edge, not a peak.
    hood = np.max(
        [np.roll(s, (dy, dx), (0, 1)) for dy in (-2, -1, 0, 1, 2) for dx in (-2, -1, 0, 1, 2)], axis=0
    )
    ok = (r >= p_min) & (r <= hi) & near_axis & (s >= hood) & (s >= _LATTICE_MIN_SCORE)
    peaks = np.flatnonzero(ok)
    if peaks.size == 0:
        return None
    peaks = peaks[np.argsort(-s.flat[peaks])][:_LATTICE_TRIES]
    # Of the strongest peaks, the one whose square lattice is best supported by the other lattice points it
    # predicts gives the first basis vector.
    best: tuple[float, Basis, float] | None = None
    for i in peaks:
        py, px = divmod(int(i), 2 * w)
        fy, fx = _subpixel(s, py, px)
        # (p, q) = period * (cos, sin) of the rotation, reduced to |angle| <= 45 degrees.
        v = (fx - w, fy - h)
        for _ in range(4):
            if abs(np.arctan2(v[1], v[0])) <= np.pi / 4 + 1e-9:
                break
            v = (v[1], -v[0])  # a quarter turn of a lattice vector is another lattice vector
        cand: Basis = (v[0], v[1], -v[1], v[0])
        pts, predicted = _lattice_points(s, cand)
        # summed scores times the fraction found: a sub-lattice (half the period) predicts four times the points,
        # three in four of them missing; a super-lattice finds a quarter of the points
        support = sum(p[4] for p in pts) * len(pts) / max(predicted, 1)
        if best is None or support > best[0]:
            best = (support, cand, float(s.flat[i]))
    assert best is not None
    _, basis, peak = best
    for general in (False, False, True):
        pts, _ = _lattice_points(s, basis)
        if len(pts) < 3:
            break
        wts = np.sqrt(np.array([p[4] for p in pts]))
        if general:  # x = m a + n c, y = m b + n d: two independent fits
            mn = np.array([[p[0], p[1]] for p in pts], float) * wts[:, None]
            (a, c), *_ = np.linalg.lstsq(mn, np.array([p[2] for p in pts]) * wts, rcond=None)
            (b, d), *_ = np.linalg.lstsq(mn, np.array([p[3] for p in pts]) * wts, rcond=None)
            basis = (float(a), float(b), float(c), float(d))
        else:  # a rotated square: (a, b, c, d) = (p, q, -q, p)
            rows = np.array([r for m, n, *_ in pts for r in ([m, -n], [n, m])], float)
            rhs = np.array([v for *_, x, y, _ in pts for v in (x, y)])
            ww = np.repeat(wts, 2)
            (p, q), *_ = np.linalg.lstsq(rows * ww[:, None], rhs * ww, rcond=None)
            basis = (float(p), float(q), float(-q), float(p))
    lattice = Lattice(basis, peak)
    if (
        not (np.isfinite(lattice.period) and np.isfinite(lattice.angle))
        or not p_min <= lattice.period <= p_max
    ):
        return None  # a degenerate fit (points nearly collinear): no lattice
    return lattice


def warp(a: np.ndarray, basis: Basis, centre: tuple[float, float]) -> np.ndarray:
    """Resample ``a`` so that the lattice ``basis`` (see Lattice) is square and upright again, at the same area:
    output pixel c + (ux, uy) samples input c + (ux (a, b) + uy (c, d)) / period, bilinear, zero outside."""
    h, w = a.shape
    ba, bb, bc, bd = np.array(basis) / np.sqrt(abs(basis[0] * basis[3] - basis[1] * basis[2]))
    uy = np.arange(h, dtype=np.float64)[:, None] - centre[0]
    ux = np.arange(w, dtype=np.float64)[None, :] - centre[1]
    sx = centre[1] + ba * ux + bc * uy
    sy = centre[0] + bb * ux + bd * uy
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = (sx - x0).astype(np.float32), (sy - y0).astype(np.float32)
    out = np.zeros((h, w), np.float32)
    for dy, dx, wt in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        yi, xi = y0 + dy, x0 + dx
        ok = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        out += np.where(ok, a[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], 0.0).astype(np.float32) * wt
    return out


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
) -> tuple[SearchResult | None, str]:
    """Rank every view of both sources by sync score, decode the best GEOMETRY_ALIGNMENTS; (result, view label)."""
    parts = _crop_to_coarse(parts, coarse)
    sources = _sources(parts, coarse)
    cands: list[_Candidate] = []
    for si, (ps, _) in enumerate(sources):
        acc = _centred_sum(ps)
        if acc is None:
            continue
        views: list[tuple[Lattice | None, np.ndarray, list[float]]] = [(None, acc, period_candidates(acc))]
        lat = find_lattice(acc)
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
    best_z = cands[0].z if cands else 0.0
    return SearchResult(None, min(0.49, best_z / 20.0), budget.attempts, best_z), ""


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
    attempts = plain.attempts + (geo.attempts if geo else 0)
    if geo is not None and geo.payload is not None:
        return SearchResult(geo.payload, geo.confidence, attempts, geo.z), label
    z = max(plain.z, geo.z if geo else 0.0)
    return SearchResult(None, min(0.49, z / 20.0), attempts, z), ""
