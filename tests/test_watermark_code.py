"""The watermark's payload code: convolutional encoding, Viterbi correction, the keyed check, and the
false-positive budget."""

from __future__ import annotations

import numpy as np
import pytest

import watermark
from watermark import _code, _conv, _detect


def test_encoder_is_the_stated_code() -> None:
    # A single 1 bit produces the generators' impulse response: RATE outputs per step, read MSB first.
    coded = _conv.encode(np.array([1] + [0] * 20)).reshape(-1, _conv.RATE)
    for r, g in enumerate(_conv.GENERATORS):
        taps = [(g >> (_conv.MEMORY - t)) & 1 for t in range(_conv.CONSTRAINT)]
        assert coded[: _conv.CONSTRAINT, r].tolist() == taps
    assert not coded[_conv.CONSTRAINT :].any()
    # Linear: the code of a sum is the sum of the codes.
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
    assert np.array_equal(_conv.encode(a ^ b), _conv.encode(a) ^ _conv.encode(b))


def test_viterbi_corrects_hard_errors_within_half_the_free_distance() -> None:
    # Free distance 18: any 8 flipped bits spaced apart are corrected even with no reliability information.
    rng = np.random.default_rng(11)
    for _ in range(10):
        msg = rng.integers(0, 2, _code.MESSAGE_BITS).astype(np.uint8)
        soft = 2.0 * _conv.encode(msg) - 1.0
        soft[rng.choice(len(soft), 8, replace=False)] *= -1
        assert np.array_equal(_conv.decode(soft), msg)


def test_viterbi_uses_reliabilities() -> None:
    # One wrong bit in three is far past any hard-decision radius; marked unreliable, they cost little.
    rng = np.random.default_rng(5)
    msg = rng.integers(0, 2, _code.MESSAGE_BITS).astype(np.uint8)
    soft = 2.0 * _conv.encode(msg) - 1.0
    soft[np.arange(0, 300, 3)] *= -0.05
    assert np.array_equal(_conv.decode(soft), msg)
    hard = np.sign(soft)
    assert not np.array_equal(_conv.decode(hard), msg)


def test_decoder_rejects_malformed_input() -> None:
    with pytest.raises(ValueError):
        _conv.decode(np.zeros(10))
    with pytest.raises(ValueError):
        _conv.decode(np.zeros((3, 3 * 20)))


def test_payload_code_round_trip_and_key_separation() -> None:
    code = _code.PayloadCode(b"k")
    payload = b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"
    bits = code.encode(payload)
    assert bits.shape == (_code.CODEWORD_BITS,)
    rng = np.random.default_rng(2)
    soft = np.where(bits == 1, 1.0, -1.0) + rng.normal(0, 0.7, bits.shape)
    got, attempts, agree = code.decode(soft, _code.ATTEMPTS_PER_ALIGNMENT)
    assert got == payload and attempts == 1  # the best path: no list needed
    assert agree == float(np.mean(bits == (soft > 0))) and 0.8 < agree < 1.0
    # Under another key the same soft bits decode to nothing (the scrambling and the check are keyed), after
    # the whole list.
    assert _code.PayloadCode(b"other").decode(soft, 1000) == (None, _code.LIST_SIZE, 0.0)
    assert _code.PayloadCode(b"other").decode(soft, 5)[1] == 5


def test_list_decoding_beyond_the_best_path() -> None:
    code = _code.PayloadCode(b"k")
    rng = np.random.default_rng(0)
    rescued = 0
    for trial in range(40):
        payload = rng.bytes(8)
        bits = code.encode(payload)
        soft = np.where(bits == 1, 1.0, -1.0) + rng.normal(0, 1.15, bits.shape)
        got, attempts, _ = code.decode(soft, _code.ATTEMPTS_PER_ALIGNMENT)
        assert got in (payload, None)  # never a wrong payload
        rescued += int(got == payload and attempts > 1)
    assert rescued >= 1  # some words only the list recovers


def test_list_viterbi_is_ranked_and_starts_with_the_best_path() -> None:
    rng = np.random.default_rng(4)
    msg = rng.integers(0, 2, _code.MESSAGE_BITS).astype(np.uint8)
    soft = 2.0 * _conv.encode(msg) - 1.0 + rng.normal(0, 1.0, _code.CODEWORD_BITS)
    found = list(_conv.decode_list(soft, 16))
    assert len(found) == 16 and len({m.tobytes() for m in found}) == 16
    assert np.array_equal(found[0], _conv.decode(soft))
    # ranked by correlation with the soft input, i.e. by likelihood
    scores = [float(soft @ (2.0 * _conv.encode(m) - 1.0)) for m in found]
    assert scores == sorted(scores, reverse=True)


def test_noise_never_passes_the_check() -> None:
    code = _code.PayloadCode(b"k")
    rng = np.random.default_rng(9)
    assert all(code.decode(rng.standard_normal(_code.CODEWORD_BITS), 64)[0] is None for _ in range(50))


def test_false_positive_budget_is_enforced() -> None:
    assert watermark.MAX_DECODE_ATTEMPTS * 2.0**-_code.CHECK_BITS <= 1e-9
    layout, code = watermark.Watermarker(b"k")._layout, watermark.Watermarker(b"k")._code
    rng = np.random.default_rng(3)
    for _ in range(3):
        noise = rng.standard_normal((180, 320)).astype(np.float32)
        coarse = rng.standard_normal((60, 106)).astype(
            np.float32
        )  # the coarse layer's noise joins every decode
        result = _detect.search([noise], [coarse], layout, code)
        assert result.payload is None
        # the plain pass's share; with the geometry search on top: tests/test_watermark_geometry.py
        assert 0 < result.attempts <= _detect.PLAIN_DECODE_ATTEMPTS
