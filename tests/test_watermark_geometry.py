"""The geometry search: mirrored, turned and slightly rotated clips read their exact payload; unmarked clips
searched over every view never read; an unattacked clip never pays for the search."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

import watermark
from watermark import Watermarker, _code, _detect, _geometry

KEY = b"operator test key"
H, W, T = 360, 640, 12


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """A camera pan over a photo: real texture and real motion."""
    img = np.asarray(Image.fromarray(skdata.astronaut()).resize((768, 768), Image.BICUBIC))
    return np.ascontiguousarray(np.stack([img[3 * t : 3 * t + H, 5 * t : 5 * t + W] for t in range(T)]))


@pytest.fixture(scope="module")
def other_clip() -> np.ndarray:
    img = np.asarray(Image.fromarray(skdata.coffee()).resize((720, 480), Image.BICUBIC))[::-1]
    return np.ascontiguousarray(np.stack([img[2 * t : 2 * t + H, 4 * t : 4 * t + W] for t in range(T)]))


@pytest.fixture(scope="module")
def wm() -> Watermarker:
    return Watermarker(key=KEY)


@pytest.fixture(scope="module")
def payload() -> bytes:
    return bytes.fromhex("0123456789abcdef")


@pytest.fixture(scope="module")
def marked(wm: Watermarker, clip: np.ndarray, payload: bytes) -> np.ndarray:
    return wm.embed(clip, payload)


def _h264(frames: np.ndarray, crf: int) -> np.ndarray:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(io.BytesIO(buf.getvalue())) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _rotate(frames: np.ndarray, degrees: float) -> np.ndarray:
    """Counter-clockwise as seen, about the centre, same size, black corners."""
    return np.stack([np.asarray(Image.fromarray(f).rotate(degrees, Image.BILINEAR)) for f in frames])


def test_a_mirrored_clip_reads_after_h264(wm: Watermarker, marked: np.ndarray, payload: bytes) -> None:
    flipped = _h264(marked[:, :, ::-1], crf=26)
    assert not _detect.search(*_parts(flipped), wm._layout, wm._code).payload  # the plain pass alone: lost
    det = wm.detect(flipped)
    assert det.found and det.payload == payload
    assert det.view == "mirrored"


@pytest.mark.parametrize(
    ("turns", "label"),
    [(1, "turned 90 degrees counter-clockwise"), (2, "turned 180 degrees counter-clockwise")],
)
def test_a_turned_clip_reads(
    wm: Watermarker, marked: np.ndarray, payload: bytes, turns: int, label: str
) -> None:
    det = wm.detect(np.ascontiguousarray(np.rot90(marked[:4], turns, axes=(1, 2))))
    assert det.found and det.payload == payload
    assert det.view == label


def test_a_turned_and_mirrored_clip_reads(wm: Watermarker, marked: np.ndarray, payload: bytes) -> None:
    # turned a quarter counter-clockwise, then mirrored (i.e. transposed): the label names that order
    det = wm.detect(np.ascontiguousarray(np.rot90(marked[:4], 1, axes=(1, 2))[:, :, ::-1]))
    assert det.found and det.payload == payload
    assert det.view == "mirrored, turned 90 degrees counter-clockwise"


@pytest.mark.parametrize("degrees", [-2.0, 5.0, 10.0])
def test_a_slightly_rotated_clip_reads_after_h264(
    wm: Watermarker, marked: np.ndarray, payload: bytes, degrees: float
) -> None:
    det = wm.detect(_h264(_rotate(marked, degrees), crf=26))
    assert det.found and det.payload == payload
    sense = "counter-clockwise" if degrees > 0 else "clockwise"
    words = det.view.split()  # "rotated 5.0 degrees counter-clockwise"
    assert words[0] == "rotated" and words[2:] == ["degrees", sense]
    assert abs(float(words[1]) - abs(degrees)) <= 0.15


def _perspective(frames: np.ndarray, inward: list[tuple[float, float]]) -> np.ndarray:
    """Each corner (top-left, top-right, bottom-right, bottom-left) moved inwards by the given fractions of the
    width and height: a screen filmed a little off-axis. Same size, black outside."""
    h, w = frames.shape[1:3]
    src = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
    signs = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
    dst = [(x + sx * fx * w, y + sy * fy * h) for (x, y), (sx, sy), (fx, fy) in zip(src, signs, inward)]
    # PIL maps each output pixel to an input one: solve the homography from dst (output) to src (input)
    rows, rhs = [], []
    for (u, v), (x, y) in zip(dst, src):
        rows += [[u, v, 1, 0, 0, 0, -x * u, -x * v], [0, 0, 0, u, v, 1, -y * u, -y * v]]
        rhs += [x, y]
    coeffs = tuple(np.linalg.solve(np.array(rows, float), np.array(rhs, float)))
    return np.stack(
        [
            np.asarray(Image.fromarray(f).transform((w, h), Image.PERSPECTIVE, coeffs, Image.BILINEAR))
            for f in frames
        ]
    )


def test_a_clip_under_a_mild_perspective_reads_in_pieces(
    wm: Watermarker, marked: np.ndarray, payload: bytes
) -> None:
    """A perspective bends the tile lattice across the frame: no single scale, rotation or warp folds it, the
    piecewise read (windows aligned on their own) does."""
    # two opposite corners 2% inwards, the other two in place: the scale changes across the frame
    warped = _h264(_perspective(marked, [(0.02, 0.02), (0.0, 0.0), (0.02, 0.02), (0.0, 0.0)]), crf=26)
    assert not _detect.search(*_parts(warped), wm._layout, wm._code).payload  # the plain pass alone: lost
    det = wm.detect(warped)
    assert det.found and det.payload == payload
    assert det.view.endswith("warped")


def test_the_lattice_gives_the_rotation_angle(wm: Watermarker, marked: np.ndarray) -> None:
    for degrees in (0.0, 3.0, -7.0, 12.0):
        acc = _detect._centred_sum(_parts(_rotate(marked[:4], degrees))[0])
        assert acc is not None
        lattice = _geometry.find_lattice(acc)
        assert lattice is not None
        # image coordinates have y down: a counter-clockwise turn as seen is a negative angle there
        assert abs(np.rad2deg(lattice.angle) + degrees) < 0.1
        assert abs(lattice.period - 128.0) < 1.0  # 360p: the tile repeats every 128 pixels


def test_an_unattacked_clip_does_not_run_the_search(
    wm: Watermarker, marked: np.ndarray, payload: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> object:
        raise AssertionError("the geometry search ran on a clip the plain pass reads")

    monkeypatch.setattr(_geometry, "geometry_search", refuse)
    det = wm.detect(_h264(marked, crf=28))
    assert det.found and det.payload == payload and det.view == "as embedded"


def test_the_search_runs_when_the_plain_pass_fails(
    wm: Watermarker, clip: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = _geometry.geometry_search

    def counted(*args: object) -> object:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_geometry, "geometry_search", counted)
    assert not wm.detect(clip[:2]).found and calls == [1]


def _parts(frames: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    acc = _detect.Accumulator()
    for f in frames:
        acc.add(f)
    return acc.parts, acc.coarse


def test_the_false_positive_bound_counts_every_view() -> None:
    """Each decode attempt passes the 40-bit check with probability 2^-40 on a clip without this key's mark; the
    plain pass and the geometry search together make at most MAX_DECODE_ATTEMPTS of them."""
    assert watermark.MAX_DECODE_ATTEMPTS == _detect.PLAIN_DECODE_ATTEMPTS + _geometry.GEOMETRY_ATTEMPTS
    assert watermark.MAX_DECODE_ATTEMPTS * 2.0**-_code.CHECK_BITS <= 1e-9
    # the geometry search decodes views beyond the plain pass's (else the bound would not need to count them)
    assert _geometry.GEOMETRY_ATTEMPTS >= 4 * _code.ATTEMPTS_PER_ALIGNMENT


def test_unmarked_clips_searched_over_every_view_never_read(
    wm: Watermarker, clip: np.ndarray, other_clip: np.ndarray, marked: np.ndarray
) -> None:
    rng = np.random.default_rng(11)
    cases = {
        "photo pan": clip,
        "photo pan, mirrored": clip[:, :, ::-1],
        "another pan, rotated 5 degrees": _rotate(other_clip, 5.0),
        "another pan after H.264": _h264(other_clip, crf=28),
        "noise": rng.integers(0, 256, (3, H, W, 3), dtype=np.uint8),
    }
    foreign = Watermarker(key=b"another operator")
    for name, frames in cases.items():
        parts, coarse = _parts(frames)
        geo, view = _geometry.geometry_search(parts, coarse, wm._layout, wm._code)
        assert geo.payload is None and view == "", name
        # it decoded views (the list decoder ran to its end on each), within the budget the bound counts
        assert _code.ATTEMPTS_PER_ALIGNMENT < geo.attempts <= _geometry.GEOMETRY_ATTEMPTS, name
    result, view = _geometry.search_all(*_parts(cases["noise"]), wm._layout, wm._code)
    assert result.payload is None and view == ""
    assert _geometry.GEOMETRY_ATTEMPTS < result.attempts <= watermark.MAX_DECODE_ATTEMPTS
    # a mirrored clip marked under another key is not this key's mark, in any view
    assert not foreign.detect(marked[:4, :, ::-1]).found
