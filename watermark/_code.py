"""Payload coding: keyed check, convolutional code, keyed scrambling, soft-decision (Viterbi) decoding.

Message layout (bits): payload (64) || check (40) = 104 bits, the check being HMAC-SHA256(key-derived, payload)
truncated to 40 bits; encoded with the rate-1/3 convolutional code of ``_conv`` into 336 bits and decoded with
list Viterbi. The coded bits are XORed with a key stream so that an unmarked or foreign clip decodes to noise
rather than to a structured word.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from dataclasses import dataclass

import numpy as np

from . import _conv

PAYLOAD_BYTES = 8
PAYLOAD_BITS = 8 * PAYLOAD_BYTES
CHECK_BITS = 40
MESSAGE_BITS = PAYLOAD_BITS + CHECK_BITS
CODEWORD_BITS = _conv.coded_length(MESSAGE_BITS)  # 336

# Candidates per alignment: the best path, then the rest of the LIST_SIZE best (list Viterbi). Every candidate
# whose check is compared is one decode attempt in the false-positive bound (see the package docstring).
LIST_SIZE = 64
ATTEMPTS_PER_ALIGNMENT = LIST_SIZE


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
        return np.unpackbits(np.frombuffer(mac[: CHECK_BITS // 8], dtype=np.uint8))

    def _scramble(self) -> np.ndarray:
        return rng(self.key, "scramble").integers(0, 2, CODEWORD_BITS, dtype=np.uint8)

    def encode(self, payload: bytes) -> np.ndarray:
        """Payload -> CODEWORD_BITS coded bits (uint8 0/1), scrambled."""
        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
        return _conv.encode(np.concatenate([bits, self._check(payload)])) ^ self._scramble()

    def decode(self, soft: np.ndarray, max_attempts: int) -> tuple[bytes | None, int, float]:
        """Soft bits (positive = 1) -> (payload or None, attempts used, raw bit agreement).

        Candidates in order of likelihood, the first whose keyed check matches the payload it carries wins;
        never more than ``max_attempts`` candidates are compared.
        """
        soft = np.asarray(soft, dtype=np.float64)
        descrambled = np.where(self._scramble() == 1, -soft, soft)
        best = _conv.decode(descrambled)
        # The single best path costs a twentieth of the list and is the answer whenever the signal is clear.
        rest = (m for m in _conv.decode_list(descrambled, LIST_SIZE) if not np.array_equal(m, best))
        attempts = 0
        for message in itertools.chain([best], rest):
            if attempts >= max_attempts:
                break
            attempts += 1
            payload = np.packbits(message[:PAYLOAD_BITS]).tobytes()
            if np.array_equal(message[PAYLOAD_BITS:], self._check(payload)):
                agree = float(np.mean(self.encode(payload) == (soft > 0)))
                return payload, attempts, agree
        return None, attempts, 0.0
