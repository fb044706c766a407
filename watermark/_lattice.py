"""The tile lattice of a rotated or warped residual, from its 2-D autocorrelation, and the warp that undoes it.

The mark's tile repeats over the frame, so the residual's autocorrelation has peaks on the tile's lattice
whatever the content; a rotation, a rescale, or (to first order) a mild perspective turns that lattice with the
frame. ``find_lattice`` fits it; ``warp`` resamples the residual so that the lattice is square and upright again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._filters import box

# Largest rotation looked for (beyond it, the lattice's diagonal peaks come near the search window).
_MAX_ANGLE = np.deg2rad(20.0)
# An autocorrelation peak counts as the lattice only at this many noise deviations or more.
_LATTICE_MIN_SCORE = 5.0
# Shortest tile period looked for in the autocorrelation (a downscale to 44%): at shorter lags the whitened
# content's own autocorrelation still rises towards lag 0 and the strongest "peak" was the window's inner edge.
_LATTICE_P_MIN = 56.0
# Autocorrelation peaks tried as the lattice's first vector, strongest first (find_lattice).
_LATTICE_TRIES = 6
# Radius of the local mean subtracted from the autocorrelation score (find_lattice), in pixels of lag.
_ACF_BACKGROUND = 4


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
    # Peaks are looked for only within lag `hi` (a crop of the score, with a margin for the neighbourhood below).
    m = min(int(hi) + 3, h - 1, w - 1)
    crop = s[h - m : h + m + 1, w - m : w + m + 1]
    yy, xx = np.mgrid[-m : m + 1, -m : m + 1]
    r = np.hypot(yy, xx)
    phi = np.arctan2(yy, xx)
    near_axis = np.abs((phi + np.pi / 4) % (np.pi / 2) - np.pi / 4) <= _MAX_ANGLE
    # Only true local maxima count: a pan's displaced copies of the content make ridges along the motion, whose
    # highest point inside the window is its inner edge, not a peak. (5 x 5 maximum, separable.)
    hood = crop.copy()
    for axis in (0, 1):
        base = hood.copy()
        for d in (-2, -1, 1, 2):
            np.maximum(hood, np.roll(base, d, axis), out=hood)
    ok = (r >= p_min) & (r <= hi) & near_axis & (crop >= hood) & (crop >= _LATTICE_MIN_SCORE)
    iy, ix = np.nonzero(ok)
    if iy.size == 0:
        return None
    order = np.argsort(-crop[iy, ix])[:_LATTICE_TRIES]
    peaks = [(int(iy[o]) - m + h, int(ix[o]) - m + w) for o in order]
    # Of the strongest peaks, the one whose square lattice is best supported by the other lattice points it
    # predicts gives the first basis vector.
    best: tuple[float, Basis, float] | None = None
    for py, px in peaks:
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
            best = (support, cand, float(s[py, px]))
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
