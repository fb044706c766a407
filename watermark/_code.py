"""Payload coding: keyed check, BCH parity, keyed scrambling, and soft-decision (Chase) decoding.

Codeword layout (bits): payload (64) || check (44) || BCH parity (84) = 192 bits. The check is
HMAC-SHA256(key-derived, payload) truncated to 44 bits. The parity is a binary BCH code correcting t = 11 bit
errors (see ``_bch``): the channel flips bits independently, which a bit-level code corrects better than a
byte-level Reed-Solomon code of the same size. The bits are XORed with a key stream so that an unmarked or
foreign clip decodes to noise rather than to a structured codeword.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np

from . import _bch

PAYLOAD_BYTES = 8
PAYLOAD_BITS = 8 * PAYLOAD_BYTES
CHECK_BITS = _bch.K - PAYLOAD_BITS  # 44
CODEWORD_BITS = _bch.N  # 192

# Chase-II decoding: every pattern of flips of the CHASE_BITS least reliable bits is one decode attempt in
# the false-positive bound (see the package docstring).
CHASE_BITS = 8
ATTEMPTS_PER_ALIGNMENT = 2**CHASE_BITS


def derive(key: bytes, label: str, n: int = 32) -> bytes:
    """Independent key material per purpose, so one leaked sub-key reveals nothing about the others."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hmac.new(key, f"gen4sdk.wm.v1/{label}/{counter}".encode(), hashlib.sha256).digest()
        counter += 1
    return out[:n]


def rng(key: bytes, label: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(int.from_bytes(derive(key, label), "big")))


@dataclass(frozen=True)
class PayloadCode:
    key: bytes

    def _check(self, payload: bytes) -> np.ndarray:
        mac = hmac.new(derive(self.key, "check"), payload, hashlib.sha256).digest()
        return np.unpackbits(np.frombuffer(mac[:6], dtype=np.uint8))[:CHECK_BITS]

    def _scramble(self) -> np.ndarray:
        return rng(self.key, "scramble").integers(0, 2, CODEWORD_BITS, dtype=np.uint8)

    def encode(self, payload: bytes) -> np.ndarray:
        """Payload -> 192 codeword bits (uint8 0/1), scrambled."""
        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
        return _bch.encode(np.concatenate([bits, self._check(payload)])) ^ self._scramble()

    def decode(self, soft: np.ndarray, max_attempts: int) -> tuple[bytes | None, int, float]:
        """Soft bits (positive = 1) -> (payload or None, attempts used, raw bit agreement).

        Chase-II: hard decisions, then every flip pattern of the least reliable bits, each BCH-decoded; a
        candidate counts only if its keyed check matches. Never tries more than ``max_attempts`` candidates.
        """
        soft = np.asarray(soft, dtype=np.float64)
        s = np.where(self._scramble() == 1, -soft, soft)
        hard = (s > 0).astype(np.uint8)
        weakest = np.argsort(np.abs(s))[:CHASE_BITS]
        base = _bch.syndromes(hard)
        flips = _bch.position_syndromes(weakest)
        attempts = 0
        for pattern in range(ATTEMPTS_PER_ALIGNMENT):
            if attempts >= max_attempts:
                break
            attempts += 1
            chosen = [j for j in range(CHASE_BITS) if pattern >> j & 1]
            trial = hard.copy()
            trial[weakest[chosen]] ^= 1
            synd = base ^ np.bitwise_xor.reduce(flips[:, chosen], axis=1) if chosen else base
            word = _bch.correct(trial, synd)
            if word is None:
                continue
            payload = np.packbits(word[:PAYLOAD_BITS]).tobytes()
            if np.array_equal(word[PAYLOAD_BITS : _bch.K], self._check(payload)):
                agree = float(np.mean(self.encode(payload) == (soft > 0)))
                return payload, attempts, agree
        return None, attempts, 0.0
