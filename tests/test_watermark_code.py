"""The watermark's payload code: BCH correction radius, Chase decoding, and the false-positive budget."""

from __future__ import annotations

import numpy as np

import watermark
from watermark import _bch, _code, _detect


def test_bch_corrects_up_to_eleven_bit_errors() -> None:
    rng = np.random.default_rng(11)
    for errors in range(_bch.T + 1):
        msg = rng.integers(0, 2, _bch.K).astype(np.uint8)
        cw = _bch.encode(msg)
        assert cw.shape == (_bch.N,) and np.array_equal(cw[: _bch.K], msg)
        assert not _bch.syndromes(cw).any()
        word = cw.copy()
        word[rng.choice(_bch.N, errors, replace=False)] ^= 1
        assert np.array_equal(_bch.correct(word, _bch.syndromes(word)), cw)


def test_bch_never_returns_a_non_codeword() -> None:
    rng = np.random.default_rng(12)
    for _ in range(50):
        word = rng.integers(0, 2, _bch.N).astype(np.uint8)
        out = _bch.correct(word, _bch.syndromes(word))
        if out is not None:
            assert not _bch.syndromes(out).any()
            assert int((out != word).sum()) <= _bch.T


def test_chase_decoding_beyond_hard_radius() -> None:
    code = _code.PayloadCode(b"k")
    payload = b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"
    bits = code.encode(payload)
    soft = np.where(bits == 1, 1.0, -1.0)
    # 14 wrong hard decisions: beyond t = 11, but 4 of them are the least reliable bits, so a Chase flip
    # pattern brings the word back inside the correction radius.
    wrong = np.arange(0, 140, 10)
    soft[wrong] *= -1
    soft[wrong[:4]] *= 0.05
    got, attempts, agree = code.decode(soft, _code.ATTEMPTS_PER_ALIGNMENT)
    assert got == payload and 1 < attempts <= _code.ATTEMPTS_PER_ALIGNMENT
    assert agree == 1 - 14 / 192
    # Under another key the same soft bits decode to nothing.
    assert _code.PayloadCode(b"other").decode(soft, 64)[0] is None


def test_false_positive_budget_is_enforced() -> None:
    assert watermark.MAX_DECODE_ATTEMPTS * 2.0**-_code.CHECK_BITS <= 1e-9
    layout, code = watermark.Watermarker(b"k")._layout, watermark.Watermarker(b"k")._code
    rng = np.random.default_rng(3)
    for _ in range(3):
        noise = rng.standard_normal((180, 320)).astype(np.float32)
        result = _detect.search(noise, 1, layout, code)
        assert result.payload is None
        assert result.attempts <= watermark.MAX_DECODE_ATTEMPTS


def test_decoding_survives_another_reedsolo_user_changing_its_field() -> None:
    import reedsolo

    code = _code.PayloadCode(b"k")
    soft = code.encode(b"12345678").astype(float) * 2 - 1
    soft[[3, 50, 70, 100, 150]] *= -1
    try:
        reedsolo.init_tables(prim=0x187, generator=3, c_exp=8)  # a different GF(2^8) in reedsolo's globals
        assert code.decode(soft, 256)[0] == b"12345678"
    finally:
        reedsolo.init_tables(prim=0x11D, generator=2, c_exp=8)
