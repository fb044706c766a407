"""The key-derived tile: a grid of smooth chips, some carrying a known sync pattern, the rest the codeword.

The tile is CHIPS x CHIPS chips of CHIP_PX * scale pixels each (period TILE_PX * scale pixels), rendered
as Gaussian blobs so the pattern's energy sits in the low-mid frequencies that survive H.264 and resizing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._code import CODEWORD_BITS, rng

CHIPS = 32
CHIP_PX = 4
# Frame side (the shorter one) at which the pattern is drawn at scale 1.
BASE_SIDE = 360
TILE_PX = CHIPS * CHIP_PX  # 128: period at scale 1, also the canonical detection grid
SYNC_CHIPS = 256
DATA_CHIPS = CHIPS * CHIPS - SYNC_CHIPS
# The coarse layer: the same codeword again, on its own keyed layout, with chips COARSE times as far apart (12 px
# at 360p), added in flat areas only (see _embed). x264 at CRF 35 keeps ~8% of the 4-px pattern's amplitude in a
# flat sky and ~55% of a 12-px one's, and ColorVideoVDP rates the 12-px pattern no more visible at the same RMS.
COARSE = 3
# Peaks above this are clipped so that no single pixel carries an outsized change.
_PEAK = 2.5


# Width of the subtracted surround, in chip pitches.
_SURROUND = 1.5


def chip_transfer(period: int, pitch: float) -> np.ndarray:
    """rfft2-shaped transfer function of the chip shape: a Gaussian blob minus its wide surround, so the
    pattern's energy sits in the band the detector keeps (below it the image itself drowns the mark)."""
    t = gaussian_transfer(period, pitch / 2.0)
    return t * (1.0 - gaussian_transfer(period, _SURROUND * pitch))


def gaussian_transfer(period: int, sigma: float) -> np.ndarray:
    """rfft2-shaped transfer function of a cyclic Gaussian blur on a period x period torus."""
    f0 = np.fft.fftfreq(period)
    f1 = np.fft.rfftfreq(period)
    return np.exp(-2.0 * np.pi**2 * sigma**2 * (f0[:, None] ** 2 + f1[None, :] ** 2))


@dataclass(frozen=True)
class Layout:
    key: bytes
    layer: str = ""  # "" for the fine layer (labels unchanged since v2), "coarse" for the coarse one

    def _label(self, name: str) -> str:
        return f"{self.layer}/{name}" if self.layer else name

    @cached_property
    def coarse(self) -> Layout:
        """The coarse layer's layout under the same key: independent chip positions, sync and signs."""
        return Layout(self.key, "coarse")

    @cached_property
    def _perm(self) -> np.ndarray:
        return rng(self.key, self._label("layout")).permutation(CHIPS * CHIPS)

    @cached_property
    def sync_index(self) -> np.ndarray:
        return np.sort(self._perm[:SYNC_CHIPS])

    @cached_property
    def sync_values(self) -> np.ndarray:
        return rng(self.key, self._label("sync")).choice(np.array([-1.0, 1.0]), SYNC_CHIPS)

    @cached_property
    def data_index(self) -> np.ndarray:
        """Flat indices of the DATA_CHIPS data chips; a random permutation spreads each bit's chips over
        the whole tile, so a crop that loses part of the tile costs every bit a little, none all."""
        return self._perm[SYNC_CHIPS:]

    @cached_property
    def data_owner(self) -> np.ndarray:
        """Codeword bit carried by each data chip: every chip is used, so bits get 2 or 3 chips each."""
        return np.arange(DATA_CHIPS) % CODEWORD_BITS

    @cached_property
    def data_signs(self) -> np.ndarray:
        return rng(self.key, self._label("signs")).choice(np.array([-1.0, 1.0]), DATA_CHIPS)

    def chip_grid(self, bits: np.ndarray | None) -> np.ndarray:
        """Chip values (CHIPS, CHIPS) in {-1, 0, +1}; bits=None gives the sync chips alone."""
        grid = np.zeros(CHIPS * CHIPS)
        grid[self.sync_index] = self.sync_values
        if bits is not None:
            bipolar = 2.0 * bits.astype(np.float64) - 1.0
            grid[self.data_index] = self.data_signs * bipolar[self.data_owner]
        return grid.reshape(CHIPS, CHIPS)

    @cached_property
    def sync_template_spectrum(self) -> np.ndarray:
        """rfft2 of the sync chips rendered on the canonical 128 x 128 grid, for FFT cross-correlation."""
        return np.fft.rfft2(render(self.chip_grid(None), 1, normalise=False))


def render(grid: np.ndarray, scale: int, *, normalise: bool = True) -> np.ndarray:
    """Chip grid -> one tile of (TILE_PX*scale)^2 float32 pixels, unit RMS when normalise."""
    period = TILE_PX * scale
    pitch = CHIP_PX * scale
    impulses = np.zeros((period, period))
    impulses[pitch // 2 :: pitch, pitch // 2 :: pitch] = grid
    tile = np.fft.irfft2(np.fft.rfft2(impulses) * chip_transfer(period, pitch), s=(period, period))
    if normalise:
        tile /= np.sqrt(np.mean(tile**2)) + 1e-12
        np.clip(tile, -_PEAK, _PEAK, out=tile)
    return tile.astype(np.float32)


def embed_scale(height: int, width: int) -> int:
    """Pattern scale for a frame size: chips of ~4 px at 360p, 8 px at 720p, 12 px at 1080p, so the
    mark looks the same, and survives the same downscales, at every resolution."""
    return max(1, int(min(height, width) / BASE_SIDE + 0.5))
