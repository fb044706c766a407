"""The watermark codec on real content: round trips, real H.264, geometry, keys, bad input, streaming."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from watermark import DEFAULT_STRENGTH, STRENGTHS, Detection, Strength, Watermarker, WatermarkError

KEY = b"operator test key"
H, W, T = 360, 640, 16


def _pan(img: np.ndarray, frames: int, h: int, w: int, step: tuple[int, int]) -> np.ndarray:
    """A camera pan over a photo: real texture and real motion, whole-pixel steps."""
    return np.stack(
        [img[t * step[0] : t * step[0] + h, t * step[1] : t * step[1] + w] for t in range(frames)]
    )


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    img = np.asarray(Image.fromarray(skdata.astronaut()).resize((768, 768), Image.BICUBIC))
    return np.ascontiguousarray(_pan(img, T, H, W, (3, 5)))


@pytest.fixture(scope="module")
def other_clip() -> np.ndarray:
    img = np.asarray(Image.fromarray(skdata.coffee()).resize((720, 480), Image.BICUBIC))[::-1]
    return np.ascontiguousarray(_pan(img, T, H, W, (2, 4)))


@pytest.fixture(scope="module")
def wm() -> Watermarker:
    # The design's limits (budget, key-frame gain, coarse layer) are tested at full strength, the default; the
    # other strengths scale the same mark (test_strengths_scale_the_same_mark).
    return Watermarker(key=KEY, strength="robust")


@pytest.fixture(scope="module")
def payload() -> bytes:
    return bytes.fromhex("8badf00ddeadbeef")


@pytest.fixture(scope="module")
def marked(wm: Watermarker, clip: np.ndarray, payload: bytes) -> np.ndarray:
    return wm.embed(clip, payload)


def _luma_psnr(a: np.ndarray, b: np.ndarray) -> float:
    w = np.array([0.299, 0.587, 0.114])
    d = a.astype(np.float64) @ w - b.astype(np.float64) @ w
    return float(10 * np.log10(255.0**2 / np.mean(d * d)))


def _h264(frames: np.ndarray, crf: int) -> np.ndarray:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(io.BytesIO(buf.getvalue())) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_round_trip_is_invisible_and_exact(
    wm: Watermarker, clip: np.ndarray, marked: np.ndarray, payload: bytes
) -> None:
    assert marked.shape == clip.shape and marked.dtype == np.uint8
    assert not np.array_equal(marked, clip)
    assert _luma_psnr(clip, marked) >= 42.0
    # Chroma is untouched: the same delta went to R, G and B (|delta| <= 17: pixels that far from 0 and 255).
    diff = marked.astype(np.int16) - clip.astype(np.int16)
    assert np.abs(diff).max() <= 17
    unclipped = (clip >= 17).all(axis=-1) & (clip <= 238).all(axis=-1)
    assert np.array_equal(diff[..., 0][unclipped], diff[..., 1][unclipped])
    det = wm.detect(marked)
    assert det == Detection(
        found=True, payload=payload, confidence=det.confidence, frames=T, view="as embedded"
    )
    assert det.confidence > 0.9


def _mean_square(marked: np.ndarray, frames: np.ndarray) -> np.ndarray:
    d = marked.astype(float) - frames
    return np.mean(d**2, axis=(1, 2, 3))


def test_a_clip_s_first_frame_carries_the_stronger_mark(
    wm: Watermarker, clip: np.ndarray, payload: bytes
) -> None:
    """Frame 0 (the encoder's key frame) gets KEY_FRAME_GAIN^2 x the budget of the same textured content later
    in the clip and the same mark in flat areas; the next _PAYBACK frames pay the extra back, so the key frame
    and its payback spend no more than as many plain frames. clip_start=False marks a later piece of a clip
    without the gain; embed_iter marks in pieces exactly as embed marks whole."""
    from watermark._embed import _PAYBACK, KEY_FRAME_GAIN

    n = _PAYBACK + 3
    still = np.repeat(clip[:1], n, axis=0)  # the same picture again and again: the same strength map
    ms = _mean_square(wm.embed(still, payload), still)
    plain = ms[-1]
    assert np.array_equal(ms[-2:], [plain, plain])  # paid back: plain frames again
    assert abs(ms[0] / plain - KEY_FRAME_GAIN**2) < 0.1 * KEY_FRAME_GAIN**2
    paying = 1 - (KEY_FRAME_GAIN**2 - 1) / _PAYBACK
    assert np.allclose(ms[1 : _PAYBACK + 1], ms[1]) and abs(ms[1] / plain - paying) < 0.03
    assert ms[: _PAYBACK + 1].mean() <= 1.01 * plain  # the clip's PSNR budget holds
    flat = np.full((3, H, W, 3), 128, np.uint8)
    f = wm.embed(flat, payload)
    assert np.array_equal(f[0], f[1]) and np.array_equal(f[1], f[2]) and not np.array_equal(f[0], flat[0])
    later = wm.embed(still[:3], payload, clip_start=False)
    assert np.array_equal(_mean_square(later, still[:3]), [plain] * 3)
    pieces = np.concatenate([wm.embed(clip[:5], payload), wm.embed(clip[5:], payload, clip_start=False)])
    assert _mean_square(pieces[5:6], clip[5:6])[0] < _mean_square(pieces[:1], clip[:1])[0] / 2
    streamed = np.stack(list(wm.embed_iter((f for f in clip), payload)))
    assert np.array_equal(streamed, wm.embed(clip, payload))


def test_scene_cuts_get_the_key_frame_mark(
    wm: Watermarker, clip: np.ndarray, other_clip: np.ndarray, payload: bytes
) -> None:
    """Encoders start a new key frame at a scene cut, so the first frame after a cut is marked like frame 0 and
    paid back like it; a second cut within _CUT_SPACING frames is not (a flashing clip cannot spend more). The
    numpy path, the streaming path and the torch path (cut across its batch boundary) make the same decisions."""
    import torch

    from watermark._embed import _CUT_SPACING, _PAYBACK, KEY_FRAME_GAIN

    a, b = clip[0], other_clip[0]
    cuts = np.stack([a] * 16 + [b] * 8 + [a] * 24)  # cuts at 16 and at 24 (8 < _CUT_SPACING frames later)
    assert _CUT_SPACING > 8
    ms = _mean_square(wm.embed(cuts, payload), cuts)
    # frame 17 shows the same picture as 16 and pays back at the plain rate
    paying = 1 - (KEY_FRAME_GAIN**2 - 1) / _PAYBACK
    assert abs(ms[16] / ms[17] - KEY_FRAME_GAIN**2 / paying) < 0.1 * KEY_FRAME_GAIN**2
    assert ms[24] == ms[25] and ms[1] == ms[2]  # no gain at the second cut
    streamed = np.stack(list(wm.embed_iter(iter(cuts), payload)))
    assert np.array_equal(streamed, wm.embed(cuts, payload))
    on_torch = wm.embed(torch.from_numpy(cuts), payload).numpy()  # batches of 16: the cut opens the second
    assert np.mean(on_torch != streamed) < 1e-3
    # A pan has no cut: no frame after the first gets the gain.
    pan = _mean_square(wm.embed(clip, payload), clip)
    assert all(pan[i] < 1.2 * pan[1] for i in range(2, T))


def test_survives_real_h264(wm: Watermarker, marked: np.ndarray, payload: bytes) -> None:
    decoded = _h264(marked, crf=23)
    assert decoded.shape == marked.shape
    det = wm.detect(decoded)
    assert det.found and det.payload == payload


def test_survives_crop_and_resize(wm: Watermarker, marked: np.ndarray, payload: bytes) -> None:
    # Keep ~72% of the area at an offset that is not a multiple of any block size, then shrink by 20%.
    y, x, h, w = 23, 61, 305, 542
    out = np.stack(
        [
            np.asarray(Image.fromarray(f[y : y + h, x : x + w]).resize((434, 244), Image.BICUBIC))
            for f in marked
        ]
    )
    det = wm.detect(out)
    assert det.found and det.payload == payload


def test_colour_and_frame_changes(wm: Watermarker, marked: np.ndarray, payload: bytes) -> None:
    brighter = np.clip(marked.astype(np.float32) * 1.25, 0, 255).astype(np.uint8)
    assert wm.detect(brighter).payload == payload
    excerpt = marked[5:11]
    assert wm.detect(excerpt).payload == payload


def test_wrong_key_and_public_key_do_not_find(marked: np.ndarray) -> None:
    assert Watermarker(key=b"another operator").detect(marked) == Detection(
        False, None, pytest.approx(0.0, abs=0.5), T
    )
    assert not Watermarker.public().detect(marked).found


def test_public_key_round_trip(other_clip: np.ndarray, payload: bytes) -> None:
    pub = Watermarker.public()
    assert pub.is_public and not Watermarker(key=KEY).is_public
    det = pub.detect(pub.embed(other_clip, payload))
    assert det.found and det.payload == payload


def test_unmarked_content_is_not_found(wm: Watermarker, clip: np.ndarray, other_clip: np.ndarray) -> None:
    for frames in (clip, other_clip, _h264(clip, crf=28)):
        det = wm.detect(frames)
        assert not det.found and det.payload is None and 0.0 <= det.confidence < 0.5


def test_degenerate_content_returns_not_found(wm: Watermarker, marked: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    cases = {
        "noise": rng.integers(0, 256, (8, H, W, 3), dtype=np.uint8),
        "black": np.zeros((4, H, W, 3), np.uint8),
        "white": np.full((4, H, W, 3), 255, np.uint8),
        "one unmarked frame": rng.integers(0, 256, (1, H, W, 3), dtype=np.uint8),
        "tiny": np.zeros((3, 20, 30, 3), np.uint8),
        "empty": np.zeros((0, H, W, 3), np.uint8),
    }
    for name, frames in cases.items():
        det = wm.detect(frames)
        assert det.found is False and det.payload is None, name
    # A single (H, W, 3) frame is accepted as a one-frame clip.
    assert wm.detect(marked[0]).frames == 1


def test_bad_input_raises_clear_errors(wm: Watermarker, clip: np.ndarray, payload: bytes) -> None:
    with pytest.raises(WatermarkError, match="uint8"):
        wm.embed(clip.astype(np.float32), payload)
    with pytest.raises(WatermarkError, match="shape"):
        wm.embed(clip[..., 0], payload)
    with pytest.raises(WatermarkError, match="too small"):
        wm.embed(np.zeros((2, 100, 200, 3), np.uint8), payload)
    with pytest.raises(WatermarkError, match="exactly 8 bytes"):
        wm.embed(clip, payload[:7])
    with pytest.raises(WatermarkError, match="bytes"):
        wm.embed(clip, "8badf00d")  # type: ignore[arg-type]
    with pytest.raises(WatermarkError, match="key must be bytes"):
        Watermarker(key="secret")  # type: ignore[arg-type]
    with pytest.raises(WatermarkError, match="empty"):
        Watermarker(key=b"")
    with pytest.raises(WatermarkError, match="uint8"):
        wm.detect(clip.astype(np.int32))
    with pytest.raises(WatermarkError, match="numpy array"):
        wm.detect([clip[0]])  # type: ignore[arg-type]
    with pytest.raises(WatermarkError, match="max_frames"):
        wm.detect_iter(iter(clip), max_frames=0)
    assert isinstance(WatermarkError("x"), ValueError)
    # A bad payload fails before any frame is consumed.
    pulled: list[int] = []

    def frames():  # type: ignore[no-untyped-def]
        for i, f in enumerate(clip):
            pulled.append(i)
            yield f

    with pytest.raises(WatermarkError):
        wm.embed_iter(frames(), b"short")
    assert pulled == []


def test_portrait_frames(payload: bytes) -> None:
    img = skdata.astronaut()
    frames = np.ascontiguousarray(_pan(img, 12, 256, 144, (2, 3)))
    wm = Watermarker(key=KEY)
    det = wm.detect(wm.embed(frames, payload))
    assert det.found and det.payload == payload


def test_streaming_equals_batch(
    wm: Watermarker, clip: np.ndarray, marked: np.ndarray, payload: bytes
) -> None:
    streamed = np.stack(list(wm.embed_iter(iter(clip), payload)))
    assert np.array_equal(streamed, marked)
    assert wm.detect_iter(iter(marked)) == wm.detect(marked)
    det = wm.detect_iter(iter(marked), max_frames=8)
    assert det.frames == 8 and det.payload == payload


def test_public_surface() -> None:
    import watermark

    assert sorted(watermark.__all__) == [
        "ALGORITHM", "DEFAULT_STRENGTH", "Detection", "MAX_DECODE_ATTEMPTS", "STRENGTHS", "Strength",
        "WatermarkError", "Watermarker",
    ]  # fmt: skip
    assert all(hasattr(watermark, name) for name in watermark.__all__)
    assert watermark.STRENGTHS == ("invisible", "balanced", "robust")
    wm = Watermarker(key=KEY)
    assert wm.payload_bytes == 8
    assert wm.algorithm == "com.gen4sdk.wm.v2"
    assert wm.strength == DEFAULT_STRENGTH == "robust"
    assert Watermarker.public(strength="robust").strength == "robust"
    assert wm.with_strength("invisible").strength == "invisible"
    with pytest.raises(WatermarkError, match="strength must be one of invisible, balanced, robust"):
        Watermarker(key=KEY, strength="max")  # type: ignore[arg-type]


def test_strengths_scale_the_same_mark(clip: np.ndarray, payload: bytes) -> None:
    """Every strength is the robust mark times its amplitude, with its own key-frame gain; all read back, after
    H.264 too, with the one detector, and a weaker one changes the picture less."""
    from watermark._embed import LEVELS

    robust = Watermarker(key=KEY, strength="robust").embed(clip, payload).astype(np.float64) - clip
    previous = np.inf
    for strength in STRENGTHS:  # weakest first
        wm = Watermarker(key=KEY, strength=strength)
        marked = wm.embed(clip, payload)
        delta = marked.astype(np.float64) - clip
        level = LEVELS[strength]
        # after the key frame: amplitude x robust (within the payback of a smaller key-frame gain, and rounding)
        ratio = np.sqrt(np.mean(delta[1:] ** 2) / np.mean(robust[1:] ** 2))
        assert abs(ratio - level.amplitude) < 0.06, (strength, ratio)
        psnr = _luma_psnr(clip, marked)
        assert psnr < previous
        previous = psnr
        for frames in (marked, _h264(marked, crf=23)):
            det = wm.detect(frames)
            assert det.found and det.payload == payload, strength


@pytest.mark.parametrize("strength", STRENGTHS)
def test_torch_path_marks_like_numpy(
    wm: Watermarker, clip: np.ndarray, payload: bytes, strength: Strength
) -> None:
    import torch

    wm = wm.with_strength(strength)
    out = wm.embed(torch.from_numpy(clip[:8]), payload)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and tuple(out.shape) == clip[:8].shape
    # Same mark as the numpy path up to float rounding at a few pixels.
    assert np.mean(out.numpy() != wm.embed(clip[:8], payload)) < 1e-3
    assert wm.detect(out.numpy()).payload == payload
    with pytest.raises(WatermarkError, match="uint8"):
        wm.embed(torch.from_numpy(clip[:2]).float(), payload)


def test_frames_that_lost_the_mark_are_outweighed(
    wm: Watermarker, clip: np.ndarray, other_clip: np.ndarray, payload: bytes
) -> None:
    """A clip whose first frames carry the mark and whose other frames do not (as after heavy compression of
    a pan): the per-part sync weights single out the marked frames, and the payload is read."""
    from watermark import _detect

    mixed = np.concatenate([wm.embed(clip[:4], payload), other_clip, clip[4:]])
    acc = _detect.Accumulator()
    for frame in mixed:
        acc.add(frame)
    assert len(acc.parts) == len(mixed)  # short clip: one part per frame
    found = wm.detect(mixed)
    assert found.found and found.payload == payload
    align = _detect.brute_force(acc.total - acc.total.mean(), wm._layout)[0]
    weights = _detect.part_weights(_detect.fold_parts(acc.parts, align), wm._layout, align)
    assert weights[:4].min() > 10 * weights[4:].max()


def test_a_key_frame_buried_under_its_displaced_copies_is_read_alone(
    wm: Watermarker, clip: np.ndarray, payload: bytes
) -> None:
    """After heavy compression of a pan, the frames after the key frame are copies of it, displaced along with the
    content: summed, they blur the sync peak and bury the key frame's mark. The whole clip does not read, so the
    detector reads its first part alone, within the one decode-attempt budget."""
    from watermark import _detect

    noisy = wm.embed(clip[:1], payload)[0] + np.random.default_rng(7).normal(0.0, 30.0, clip[0].shape)
    pan = np.stack([np.roll(noisy, 2 * t, axis=1) for t in range(24)])
    frames = np.clip(pan, 0, 255).round().astype(np.uint8)
    acc = _detect.Accumulator()
    for frame in frames:
        acc.add(frame)
    budget = _detect._Budget()
    assert _detect._search_source(acc.parts, acc.coarse, wm._layout, wm._code, budget) is None
    assert 0 < budget.attempts < _detect.PLAIN_DECODE_ATTEMPTS
    det = wm.detect(frames)
    assert det.found and det.payload == payload
    assert not Watermarker(key=b"another key").detect(frames).found


def test_accumulator_memory_is_bounded_and_keeps_the_sum(clip: np.ndarray) -> None:
    from watermark import _detect

    acc = _detect.Accumulator()
    frames = [clip[i % len(clip)] for i in range(_detect.MAX_PARTS * 3 + 5)]
    for frame in frames:
        acc.add(frame)
    assert len(acc.parts) <= _detect.MAX_PARTS
    sampled = [f for i, f in enumerate(frames) if _detect.wanted(i)]
    assert acc.frames == len(sampled) > _detect.MAX_PARTS  # parts had to merge
    direct = np.sum(
        [_detect.whiten(_detect.block_mean(_detect.luma(f), _detect.decimation(H, W))) for f in sampled],
        axis=0,
    )
    assert acc.total is not None and np.allclose(acc.total, direct, atol=1e-3)


@pytest.fixture(scope="module")
def sky() -> np.ndarray:
    """A pan over a photograph that is mostly dusk sky (the content x264 CRF 35 strips of the fine mark)."""
    img = np.asarray(Image.fromarray(skdata.rocket()).resize((960, 640), Image.BICUBIC))
    return np.ascontiguousarray(_pan(img, T, H, W, (2, 3)))


def test_the_coarse_layer_lies_in_flat_areas_within_the_frame_budget() -> None:
    from watermark import _embed

    rng = np.random.default_rng(11)
    flat = np.full((90, 160), 120.0, np.float32)
    textured = 120.0 + rng.normal(0, 25.0, (90, 160)).astype(np.float32)
    fine, coarse = _embed.strengths(flat)
    assert np.allclose(coarse, _embed._COARSE_LEVEL, atol=0.05) and np.allclose(
        fine, _embed._FLOOR, atol=0.05
    )
    fine, coarse = _embed.strengths(textured)
    assert coarse.max() == 0.0 and fine.mean() > 1.5 * _embed._FLOOR
    # Half flat, half textured: both layers' energy counts against the frame's budget, which is spent exactly.
    half = np.concatenate([flat[:, :80], textured[:, 80:]], axis=1)
    fine, coarse = _embed.strengths(half)
    assert coarse[:, :70].min() > 0.9 and coarse[:, 90:].max() == 0.0
    assert float(np.mean(fine**2) + np.mean(coarse**2)) == pytest.approx(_embed._MEAN_SQ_CAP, rel=1e-3)


def test_heavy_compression_of_a_sky_is_read_through_the_coarse_layer(
    wm: Watermarker, sky: np.ndarray, payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """x264 at CRF 34 keeps too little of the fine pattern in the sky to read it; the coarse layer's soft bits,
    combined with the fine ones, read the payload."""
    from watermark import _detect

    decoded = _h264(wm.embed(sky, payload), crf=34)
    det = wm.detect(decoded)
    assert det.found and det.payload == payload
    monkeypatch.setattr(_detect, "_COARSE_MIN_Z", float("inf"))  # the fine layer alone
    assert not wm.detect(decoded).found


def test_the_coarse_layer_is_aligned_after_crop_and_resize(
    wm: Watermarker, sky: np.ndarray, payload: bytes
) -> None:
    """Its shift follows from the fine layer's, up to which of three fine tiles a crop starts in."""
    from watermark import _detect

    y, x, h, w = 23, 161, 305, 442  # an offset that is not a multiple of a chip, a block or a fine tile
    out = [
        np.asarray(Image.fromarray(f[y : y + h, x : x + w]).resize((353, 244), Image.BICUBIC))
        for f in wm.embed(sky, payload)
    ]
    acc = _detect.Accumulator()
    for frame in out:
        acc.add(frame)
    total = acc.total
    assert total is not None
    fine = _detect.brute_force(total - total.mean(), wm._layout)[0]
    coarse = np.sum(acc.coarse, axis=0)
    a = _detect.coarse_alignment(coarse - coarse.mean(), wm._layout, fine)
    assert a.z > 8
    bits = wm._code.encode(payload).astype(bool)
    soft = _detect.soft_bits(_detect.weighted_tile(acc.coarse, wm._layout.coarse, a), wm._layout.coarse, a)
    # Unattacked, the coarse layer alone reads ~88% of the coded bits here (the image's own coarse structure is
    # its noise): it is there to add to the fine layer's soft bits, not to replace them.
    assert np.mean((soft.values > 0) == bits) > 0.8 and soft.snr > 0.9
    # One fine tile further along is another candidate, and does not read.
    off = _detect.Alignment(a.z, a.ky, a.kx, ((a.shift[0] + 43) % 128, a.shift[1]))
    wrong = _detect.soft_bits(
        _detect.weighted_tile(acc.coarse, wm._layout.coarse, off), wm._layout.coarse, off
    )
    assert np.mean((wrong.values > 0) == bits) < 0.65


def test_a_mark_without_the_coarse_layer_still_reads(
    clip: np.ndarray, payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clips marked before the coarse layer existed (or whose coarse layer is gone) read on the fine layer alone:
    a coarse layer whose sync does not stand out joins no decode."""
    from watermark import _embed

    wm = Watermarker(key=KEY)
    with monkeypatch.context() as m:
        m.setattr(_embed, "_COARSE_LEVEL", 0.0)
        old = wm.embed(clip, payload)
    assert not np.array_equal(old, wm.embed(clip, payload))
    det = wm.detect(_h264(old, crf=28))
    assert det.found and det.payload == payload
