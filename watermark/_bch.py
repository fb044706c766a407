"""Binary BCH(192, 108) code, t = 11, a shortened narrow-sense BCH(255, 171) over GF(2^8).

The field arithmetic, the generator construction and the Berlekamp-Massey step come from ``reedsolo`` (a
binary BCH word is an RS word whose symbols are 0 or 1); what is here is only the glue: the generator as the
product over the conjugacy classes of alpha^1..alpha^2t, and numpy versions of the syndrome and Chien steps
so that Chase decoding (many flip patterns per word) stays fast. (bchlib would do the same job but is GPLv2.)
"""

from __future__ import annotations

import threading

import numpy as np
import reedsolo

T = 11
N = 192  # shortened from 255
PARITY = 84  # degree of the generator for t = 11 over GF(2^8)
K = N - PARITY  # 108 message bits
_NSYM = 2 * T
_PRIM = 0x11D

# reedsolo keeps its field tables in module globals; ours are (re)installed under a lock whenever another
# user of reedsolo in the process has replaced them (building them costs ~0.1 ms, too much per Chase attempt).
_LOCK = threading.Lock()


def _install_tables() -> tuple[np.ndarray, np.ndarray]:
    log, exp, _ = reedsolo.init_tables(prim=_PRIM, generator=2, c_exp=8)
    return np.asarray(log, dtype=np.int64), np.asarray(exp, dtype=np.int64)


def _ensure_tables() -> None:
    """Call with _LOCK held."""
    if reedsolo.gf_exp is not _RS_EXP:
        _install_tables()
        globals()["_RS_EXP"] = reedsolo.gf_exp


def _generator() -> np.ndarray:
    roots: set[int] = set()
    for j in range(1, _NSYM + 1):
        c = j
        while c not in roots:
            roots.add(c)
            c = (2 * c) % 255
    g: list[int] = [1]
    for r in sorted(roots):
        g = list(reedsolo.gf_poly_mul(g, [1, int(_EXP[r])]))
    assert len(g) - 1 == PARITY and set(g) <= {0, 1}, "not a binary generator"
    return np.array(g, dtype=np.uint8)


with _LOCK:
    _LOG, _EXP = _install_tables()
    _RS_EXP = reedsolo.gf_exp
    _GEN = _generator()

# Exponent of x carried by each codeword position (position 0 = highest degree), and alpha^(i * e) tables.
_DEG = np.arange(N - 1, -1, -1, dtype=np.int64)
_SYN_EXP = (np.arange(1, _NSYM + 1, dtype=np.int64)[:, None] * _DEG[None, :]) % 255  # (2t, N)


def encode(message: np.ndarray) -> np.ndarray:
    """108 message bits -> 192-bit systematic codeword (message first, then 84 parity bits)."""
    if message.shape != (K,):
        raise ValueError(f"BCH message must be {K} bits")
    # Remainder of m(x) x^84 divided by g(x), long division over GF(2).
    rem = np.concatenate([message.astype(np.uint8), np.zeros(PARITY, np.uint8)])
    for i in range(K):
        if rem[i]:
            rem[i : i + PARITY + 1] ^= _GEN
    return np.concatenate([message.astype(np.uint8), rem[K:]])


def syndromes(word: np.ndarray) -> np.ndarray:
    """S_1..S_2t of a binary word (GF(2^8) elements as ints). Linear in the word."""
    e = _SYN_EXP[:, word.astype(bool)]
    return np.bitwise_xor.reduce(_EXP[e], axis=1) if e.shape[1] else np.zeros(_NSYM, np.int64)


def position_syndromes(positions: np.ndarray) -> np.ndarray:
    """Syndromes of single-bit words, one column per position (for cheap Chase flips)."""
    return _EXP[_SYN_EXP[:, positions]]


def correct(word: np.ndarray, synd: np.ndarray) -> np.ndarray | None:
    """Bounded-distance decoding: the codeword within 11 flips of ``word`` (given its syndromes), or None."""
    if not synd.any():
        return word.copy()
    with _LOCK:
        _ensure_tables()
        try:
            loc = reedsolo.rs_find_error_locator([0, *(int(s) for s in synd)], _NSYM)
        except reedsolo.ReedSolomonError:
            return None
    loc = [int(c) for c in loc]
    nerr = len(loc) - 1
    if nerr == 0 or nerr > T:
        return None
    # Chien search: the bit with exponent e is wrong iff Lambda(alpha^-e) = 0; Lambda(x) = sum loc[-1-k] x^k.
    acc = np.zeros(N, np.int64)
    for k, c in enumerate(reversed(loc)):
        if c:
            acc ^= _EXP[(_LOG[c] - k * _DEG) % 255]
    errs = np.flatnonzero(acc == 0)
    if len(errs) != nerr:
        return None
    out = word.copy()
    out[errs] ^= 1
    return out
