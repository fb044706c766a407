"""Payload coding: keyed check, BCH parity, keyed scrambling, and soft-decision (Chase) decoding.

Codeword layout (bytes): payload (8) || check (5) || BCH parity (11) = 24 bytes = 192 bits. The check is
HMAC-SHA256(key, payload) truncated to 40 bits. The parity is a binary BCH code over GF(2^8) correcting
t = 11 bit errors (``bchlib``, the Linux kernel's BCH library): the channel flips bits independently, which a
bit-level code corrects better than a byte-level Reed-Solomon code of the same size. The bits are XORed
with a key stream so that an unmarked or foreign clip decodes to noise rather than to a structured codeword.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import bchlib
import numpy as np

PAYLOAD_BYTES = 8
CHECK_BYTES = 5
BCH_T = 11
_BCH = bchlib.BCH(t=BCH_T, m=8)
PARITY_BYTES = _BCH.ecc_bytes  # 84 parity bits in 11 bytes
MESSAGE_BYTES = PAYLOAD_BYTES + CHECK_BYTES
CODEWORD_BYTES = MESSAGE_BYTES + PARITY_BYTES
CODEWORD_BITS = 8 * CODEWORD_BYTES
assert CODEWORD_BYTES == 24

# Chase-II decoding: every pattern of flips of the CHASE_BITS least reliable bits is one decode attempt in
# the false-positive bound (see the package docstring).
CHASE_BITS = 6
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

    def _check(self, payload: bytes) -> bytes:
        return hmac.new(derive(self.key, "check"), payload, hashlib.sha256).digest()[:CHECK_BYTES]

    def _scramble(self) -> np.ndarray:
        return rng(self.key, "scramble").integers(0, 2, CODEWORD_BITS, dtype=np.uint8)

    def encode(self, payload: bytes) -> np.ndarray:
        """Payload -> 192 codeword bits (uint8 0/1), scrambled."""
        msg = bytearray(payload + self._check(payload))
        cw = bytes(msg) + bytes(_BCH.encode(msg))
        bits = np.unpackbits(np.frombuffer(cw, dtype=np.uint8))
        return bits ^ self._scramble()

    def decode(self, soft: np.ndarray, max_attempts: int) -> tuple[bytes | None, int, float]:
        """Soft bits (positive = 1) -> (payload or None, attempts used, raw bit agreement).

        Chase-II: hard decisions, then every flip pattern of the least reliable bits, each BCH-decoded; a
        candidate counts only if its keyed check matches. Never tries more than ``max_attempts`` candidates.
        """
        soft = np.asarray(soft, dtype=np.float64)
        s = np.where(self._scramble() == 1, -soft, soft)
        hard = (s > 0).astype(np.uint8)
        weakest = np.argsort(np.abs(s))[:CHASE_BITS]
        attempts = 0
        for pattern in range(ATTEMPTS_PER_ALIGNMENT):
            if attempts >= max_attempts:
                break
            attempts += 1
            trial = hard.copy()
            for j, pos in enumerate(weakest):
                if pattern >> j & 1:
                    trial[pos] ^= 1
            cw = np.packbits(trial).tobytes()
            data, ecc = bytearray(cw[:MESSAGE_BYTES]), bytearray(cw[MESSAGE_BYTES:])
            if _BCH.decode(data, ecc) < 0:
                continue
            _BCH.correct(data, ecc)
            payload, check = bytes(data[:PAYLOAD_BYTES]), bytes(data[PAYLOAD_BYTES:])
            if hmac.compare_digest(check, self._check(payload)):
                ref = self.encode(payload)
                agree = float(np.mean(ref == (soft > 0).astype(np.uint8)))
                return payload, attempts, agree
        return None, attempts, 0.0
