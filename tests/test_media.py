"""Video and image I/O: encode/decode round trips, streaming decode, probing, bad inputs, safe writes."""

from __future__ import annotations

import errno
import os
import tracemalloc
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import BBB, natural_frames
from PIL import Image

from gen4sdk import media
from gen4sdk.errors import InvalidRequestError, MediaError, OutputError


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255.0**2 / mse) if mse else float("inf")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return natural_frames(n=17, height=144, width=256)


# -- encode / decode --------------------------------------------------------------------------------------------------


def test_round_trip_quality_and_probe(clip: np.ndarray, tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    media.encode_video(clip, out, fps=16)
    info = media.probe(out)
    assert (info.width, info.height, info.frames, info.codec) == (256, 144, 17, "h264")
    assert info.fps == pytest.approx(16.0)
    assert info.duration == pytest.approx(17 / 16, abs=0.07)
    back = media.read_frames(out)
    assert back.shape == clip.shape and back.dtype == np.uint8
    assert psnr(back, clip) > 35.0
    # a lower quality setting really is lower quality (crf reaches the encoder)
    media.encode_video(clip, tmp_path / "low.mp4", fps=16, crf=40, preset="veryfast")
    assert psnr(media.read_frames(tmp_path / "low.mp4"), clip) < psnr(back, clip) - 3
    assert leftovers(tmp_path) == []


def test_stream_is_yuv420p_bt601_tagged(clip: np.ndarray, tmp_path: Path) -> None:
    out = tmp_path / "c.mp4"
    media.encode_video(clip[:3], out, fps=16)
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert cc.pix_fmt == "yuv420p"
        assert cc.colorspace == 6 and cc.color_range == 1


def test_ntsc_rate_is_kept_exact(clip: np.ndarray, tmp_path: Path) -> None:
    out = tmp_path / "ntsc.mp4"
    media.encode_video(clip[:6], out, fps=30000 / 1001)
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001)
    media.encode_video(clip[:6], out, fps=Fraction(24000, 1001))  # overwrites an existing file
    assert media.probe(out).fps == pytest.approx(23.976, abs=1e-3)


def test_iterable_input_matches_array_input(clip: np.ndarray, tmp_path: Path) -> None:
    media.encode_video(clip, tmp_path / "a.mp4", fps=16, preset="veryfast")
    media.encode_video((f for f in clip), tmp_path / "b.mp4", fps=16, preset="veryfast")
    np.testing.assert_array_equal(
        media.read_frames(tmp_path / "a.mp4"), media.read_frames(tmp_path / "b.mp4")
    )


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (np.zeros((3, 145, 256, 3), np.uint8), "even"),
        (np.zeros((3, 144, 255, 3), np.uint8), "even"),
        (np.zeros((3, 144, 256, 3), np.float32), "uint8"),
        (np.zeros((3, 144, 256, 4), np.uint8), "uint8"),
        (np.zeros((144, 256, 3), np.uint8), r"\(T, H, W, 3\)"),
        (np.zeros((0, 144, 256, 3), np.uint8), "no frames"),
        ([np.zeros((144, 256, 3), np.uint8), np.zeros((128, 256, 3), np.uint8)], "clip is 256x144"),
    ],
)
def test_bad_frames_rejected_nothing_written(frames, match: str, tmp_path: Path) -> None:
    out = tmp_path / "bad.mp4"
    with pytest.raises(MediaError, match=match):
        media.encode_video(frames, out, fps=16)
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_keeps_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"previous content")
    frames = [np.zeros((32, 32, 3), np.uint8)] * 3 + [np.zeros((32, 32, 3), np.float64)]
    with pytest.raises(MediaError, match="frame 3"):
        media.encode_video(iter(frames), out, fps=8)
    assert out.read_bytes() == b"previous content"
    assert leftovers(tmp_path) == []


def test_bad_parameters(tmp_path: Path) -> None:
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    for fps in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InvalidRequestError) as ei:
            media.encode_video(frames, tmp_path / "x.mp4", fps=fps)
        assert ei.value.field == "fps"
    with pytest.raises(InvalidRequestError):
        media.encode_video(frames, tmp_path / "x.mp4", fps=8, crf=99)
    with pytest.raises(MediaError, match="not available"):
        media.encode_video(frames, tmp_path / "x.mp4", fps=8, codec="no-such-codec")
    with pytest.raises(MediaError):
        media.encode_video(frames, tmp_path / "x.mp4", fps=8, preset="warp-speed")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destinations(tmp_path: Path) -> None:
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(OutputError, match="does not exist"):
        media.encode_video(frames, tmp_path / "missing" / "x.mp4", fps=8)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        media.encode_video(frames, tmp_path / "afile" / "x.mp4", fps=8)
    (tmp_path / "adir.mp4").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        media.encode_video(frames, tmp_path / "adir.mp4", fps=8)


def test_disk_full_is_an_output_error_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(media.os, "fsync", full)
    with pytest.raises(OutputError, match="no space"):
        media.encode_video(np.zeros((2, 32, 32, 3), np.uint8), tmp_path / "x.mp4", fps=8)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_during_encoding_is_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while PyAV writes (inside its write callback), not at the final fsync."""
    real_fdopen = os.fdopen

    class FillsUp:
        def __init__(self, fh: Any) -> None:
            self.fh, self.written = fh, 0

        def write(self, data: bytes) -> int:
            self.written += len(data)
            if self.written > 2000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return int(self.fh.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

        def __enter__(self) -> FillsUp:  # noqa: PYI034
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    monkeypatch.setattr(media.os, "fdopen", lambda fd, mode: FillsUp(real_fdopen(fd, mode)))
    frames = np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)
    with pytest.raises(OutputError, match="no space"):
        media.encode_video(frames, tmp_path / "x.mp4", fps=8)
    assert list(tmp_path.iterdir()) == []


# -- decoding a third-party clip (tests/data/bbb_excerpt.mp4) ------------------------------------------------------------


def test_probe_big_buck_bunny() -> None:
    info = media.probe(BBB)
    assert (info.width, info.height, info.codec) == (640, 360, "h264")
    assert info.fps == pytest.approx(24.0)
    assert info.frames == 175 and info.duration == pytest.approx(175 / 24, abs=0.01)


def test_window_step_and_max_frames_select_the_right_frames() -> None:
    ref = media.read_frames(BBB, max_frames=60)  # frames 0..59 = 0 s .. 2.46 s
    win = media.read_frames(BBB, start_seconds=1.0, duration_seconds=1.0)
    assert win.shape == (24, 360, 640, 3)
    # the excerpt is one group of pictures: its only key frame is frame 0, so this seek must decode forward
    np.testing.assert_array_equal(win, ref[24:48])  # seeking lands on the exact frame, not the keyframe
    stepped = media.read_frames(BBB, step=5, max_frames=4)
    np.testing.assert_array_equal(stepped, ref[[0, 5, 10, 15]])
    assert media.read_frames(BBB, max_frames=0).shape == (0, 360, 640, 3)
    assert media.read_frames(BBB, start_seconds=60.0).shape == (0, 360, 640, 3)  # past the end


def test_streaming_decode_has_bounded_memory() -> None:
    # 6 s of 640x360 is ~100 MB of RGB frames; streaming must hold only a few at a time
    tracemalloc.start()
    try:
        n = 0
        checksum = 0
        for frame in media.iter_frames(BBB, start_seconds=1.0, duration_seconds=6.0):
            assert frame.shape == (360, 640, 3) and frame.dtype == np.uint8
            checksum += int(frame[::64, ::64].sum())
            n += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 144 and checksum > 0
    assert peak < 16 * 640 * 360 * 3  # fewer than 16 frames alive at once


def test_iter_frames_fails_at_call_time_and_validates_arguments(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        media.iter_frames(tmp_path / "missing.mp4")  # no next() needed
    for kw, field in (
        ({"step": 0}, "step"),
        ({"max_frames": -1}, "max_frames"),
        ({"start_seconds": -2.0}, "start_seconds"),
        ({"duration_seconds": 0.0}, "duration_seconds"),
    ):
        with pytest.raises(InvalidRequestError) as ei:
            media.iter_frames(BBB, **kw)
        assert ei.value.field == field


# -- bad files -----------------------------------------------------------------------------------------------------------


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def test_bad_video_files(tmp_path: Path, clip: np.ndarray) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    wav = tmp_path / "sound.wav"
    _audio_only(wav)
    good = tmp_path / "good.mp4"
    media.encode_video(clip, good, fps=16)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[:600])
    for bad, match in (
        (text, "not a readable media file"),
        (empty, "not a readable media file"),
        (wav, "no video stream"),
        (truncated, "truncated|not a readable|no video|cannot read|picture size"),
        (tmp_path / "missing.mp4", "no such file"),
        (tmp_path, "not a regular file"),
    ):
        with pytest.raises(MediaError, match=match):
            media.probe(bad)
        with pytest.raises(MediaError):
            media.read_frames(bad)


# -- images ---------------------------------------------------------------------------------------------------------------


def test_load_image_formats(tmp_path: Path) -> None:
    rgb = natural_frames(n=1, height=40, width=60)[0]
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(media.load_image(tmp_path / "a.png"), rgb)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "b.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "c.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "d.gif")
    for name in ("b.png", "c.png", "d.gif"):
        out = media.load_image(tmp_path / name)
        assert out.shape == (40, 60, 3) and out.dtype == np.uint8


def test_load_image_respects_exif_orientation(tmp_path: Path) -> None:
    im = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert media.load_image(tmp_path / "rot.jpg").shape == (40, 20, 3)


def test_load_image_errors(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_text("not an image")
    rgb = np.zeros((64, 64, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "full.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:60])
    for bad in (tmp_path / "x.png", tmp_path / "cut.png", tmp_path / "missing.png", tmp_path):
        with pytest.raises(MediaError):
            media.load_image(bad)


def test_window_is_relative_to_the_stream_start(tmp_path: Path) -> None:
    # MPEG-TS timestamps start at ~1.4 s; start_seconds counts from the first frame, not from pts 0
    path = tmp_path / "clip.ts"
    with av.open(str(path), "w", format="mpegts") as c:
        s = c.add_stream("libx264", rate=16)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(16):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 + 12 * i, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with av.open(str(path)) as c:
        assert c.streams.video[0].start_time > 0
    window = media.read_frames(path, start_seconds=0.5, duration_seconds=0.25)
    assert len(window) == 4
    assert [round((float(f.mean()) - 10) / 12) for f in window] == [8, 9, 10, 11]
    assert len(media.read_frames(path)) == 16
