"""Rate-1/3 convolutional code, constraint length 9 (generators 557, 663, 711 octal; free distance 18), with
soft-input Viterbi decoding.

Why this and not a block code from a library: the watermark channel hands the decoder a real-valued
reliability for every bit, and a Viterbi decoder uses all of it (maximum likelihood under Gaussian noise),
where a hard-decision BCH decoder (reedsolo, galois, bchlib) throws it away. Measured on the watermark's
own chip budget (768 chips, 104 information bits, Gaussian chip noise), this code decodes 86 % of words at
a noise level where BCH(192, 108) with Chase-II decoding decodes 8 %: about 2 dB of signal. No maintained
Python package offers a vectorised soft Viterbi decoder (scikit-commpy, last released in 2022, loops in
Python and pulls matplotlib and sympy), and the algorithm is textbook (Viterbi 1967; Proakis, Digital
Communications, ch. 8, for the generators), so it is written here, with numpy doing the per-step work.

The encoder is terminated: MEMORY zero bits follow the message, so the decoder starts and ends in state 0.

``decode_list`` is the parallel list Viterbi decoder (Seshadri and Sundberg, IEEE Trans. Commun. 1994): it
keeps the ``size`` best paths into every state and so returns the ``size`` most likely messages. With the
keyed check as the judge (the first candidate whose check matches wins), 64 candidates decoded 85 % of
words at a chip noise where the single best path decoded 57 % (simulated, Gaussian chip noise).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

CONSTRAINT = 9
MEMORY = CONSTRAINT - 1
GENERATORS = (0o557, 0o663, 0o711)
RATE = len(GENERATORS)
_STATES = 1 << MEMORY


def coded_length(message_bits: int) -> int:
    return RATE * (message_bits + MEMORY)


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    for shift in (8, 4, 2, 1):
        x ^= x >> shift
    return x & 1


def _branch_signs() -> np.ndarray:
    """(STATES, 2, RATE) output signs (+1 for bit 1) of the branch into state n from its predecessor
    ((n << 1) & mask) | x: the register holds the input bit (n's top bit) above the predecessor state."""
    n = np.arange(_STATES)
    out = np.zeros((_STATES, 2, RATE))
    for x in (0, 1):
        prev = ((n << 1) & (_STATES - 1)) | x
        reg = ((n >> (MEMORY - 1)) << MEMORY) | prev
        for r, g in enumerate(GENERATORS):
            out[:, x, r] = 2.0 * _parity(reg & g) - 1.0
    return out


_SIGNS = _branch_signs()
_PRED = ((np.arange(_STATES) << 1) & (_STATES - 1))[:, None] | np.array([0, 1])[None, :]  # (STATES, 2)


def encode(message: np.ndarray) -> np.ndarray:
    """Message bits (0/1) -> RATE * (len + MEMORY) coded bits."""
    bits = np.concatenate([np.asarray(message, dtype=np.int64), np.zeros(MEMORY, np.int64)])
    state = 0
    out = np.empty((len(bits), RATE), np.uint8)
    gens = np.array(GENERATORS, dtype=np.int64)
    for t, b in enumerate(bits):
        reg = (int(b) << MEMORY) | state
        out[t] = _parity(reg & gens)
        state = reg >> 1
    return out.ravel()


def _steps(soft: np.ndarray) -> np.ndarray:
    soft = np.asarray(soft, dtype=np.float64)
    if soft.ndim != 1 or len(soft) % RATE or len(soft) // RATE <= MEMORY:
        raise ValueError(f"soft input must be a multiple of {RATE} longer than {RATE * MEMORY}")
    return soft.reshape(-1, RATE)


def decode(soft: np.ndarray) -> np.ndarray:
    """Soft coded bits (positive = 1, magnitude = reliability) -> the most likely message bits.

    Maximises the correlation between the soft values and the code's +-1 outputs over all terminated paths,
    which is maximum likelihood when the noise is Gaussian and the soft values are scaled alike.
    """
    return next(decode_list(soft, 1))


def decode_list(soft: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """The ``size`` most likely messages, most likely first; each is traced back only when asked for."""
    per_step = _steps(soft)
    steps = len(per_step)
    metric = np.full((_STATES, size), -np.inf)
    metric[0, 0] = 0.0
    # back[t, n, r]: which of the 2 * size candidates into state n became its r-th path at step t
    back = np.empty((steps, _STATES, size), np.int32)
    for t in range(steps):
        branch = _SIGNS @ per_step[t]  # (STATES, 2)
        cand = np.concatenate(
            [metric[_PRED[:, 0]] + branch[:, :1], metric[_PRED[:, 1]] + branch[:, 1:]], axis=1
        )
        # the best `size` of each row, in no particular order: only the final ranking needs sorting
        keep = np.argpartition(-cand, size - 1, axis=1)[:, :size]
        metric = np.take_along_axis(cand, keep, axis=1)
        back[t] = keep
    for rank in np.argsort(-metric[0], kind="stable"):
        if not np.isfinite(metric[0, rank]):
            break
        state, r = 0, int(rank)
        bits = np.empty(steps, np.uint8)
        for t in range(steps - 1, -1, -1):
            bits[t] = state >> (MEMORY - 1)
            x, r = divmod(int(back[t, state, r]), size)
            state = int(_PRED[state, x])
        yield bits[: steps - MEMORY]
