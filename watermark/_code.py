"""Payload coding: keyed check, Reed-Solomon parity, keyed scrambling, and soft-decision decoding.

Codeword layout (bytes): payload (8) || check (5) || RS parity (11) = 24 bytes = 192 bits. The check is
HMAC-SHA256(key, payload) truncated to 40 bits; the bits are XORed with a key stream so that an unmarked or
foreign clip decodes to noise rather than to a structured codeword.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np
from reedsolo import ReedSolomonError, RSCodec

PAYLOAD_BYTES = 8
CHECK_BYTES = 5
PARITY_BYTES = 11
MESSAGE_BYTES = PAYLOAD_BYTES + CHECK_BYTES
CODEWORD_BYTES = MESSAGE_BYTES + PARITY_BYTES
CODEWORD_BITS = 8 * CODEWORD_BYTES

# Erasure counts tried, in order, for one alignment hypothesis; each is one decode attempt in the
# false-positive bound (see the package docstring).
ERASURE_LEVELS = (0, 2, 4, 6, 8, 10, 11)

_RS = RSCodec(PARITY_BYTES)


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
        msg = payload + self._check(payload)
        cw = bytes(_RS.encode(msg))
        bits = np.unpackbits(np.frombuffer(cw, dtype=np.uint8))
        return bits ^ self._scramble()

    def decode(self, soft: np.ndarray, max_attempts: int) -> tuple[bytes | None, int, float]:
        """Soft bits (positive = 1) -> (payload or None, attempts used, raw bit agreement).

        Tries erasing the least reliable bytes in growing numbers; a candidate counts only if its keyed
        check matches. Never tries more than ``max_attempts`` candidates.
        """
        soft = np.asarray(soft, dtype=np.float64)
        scr = self._scramble()
        # Undo the scrambling in the soft domain: a scrambled 1 flips the sign.
        s = np.where(scr == 1, -soft, soft)
        hard = (s > 0).astype(np.uint8)
        data = bytearray(np.packbits(hard).tobytes())
        byte_rel = np.abs(s).reshape(CODEWORD_BYTES, 8).min(axis=1)
        order = np.argsort(byte_rel)
        attempts = 0
        for n_erase in ERASURE_LEVELS:
            if attempts >= max_attempts:
                break
            attempts += 1
            erase = sorted(int(i) for i in order[:n_erase])
            try:
                msg, _, _ = _RS.decode(bytearray(data), erase_pos=erase or None)
            except ReedSolomonError:
                continue
            payload, check = bytes(msg[:PAYLOAD_BYTES]), bytes(msg[PAYLOAD_BYTES:MESSAGE_BYTES])
            if hmac.compare_digest(check, self._check(payload)):
                ref = self.encode(payload)
                agree = float(np.mean(ref == ((soft > 0).astype(np.uint8))))
                return payload, attempts, agree
        return None, attempts, 0.0
