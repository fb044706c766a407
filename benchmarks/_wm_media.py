"""Clips and attacks for the watermark benchmark: natural content, real PyAV encodes, geometry, colour."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data as skdata

BBB = Path(__file__).resolve().parents[2] / "shared" / "media" / "big_buck_bunny.mp4"
PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "cat",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
)

Attack = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def photo(name: str) -> np.ndarray:
    img = getattr(skdata, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def pan_zoom_clip(
    img: np.ndarray, height: int, width: int, frames: int, rng: np.random.Generator
) -> np.ndarray:
    """A slow pan and zoom over a photo: real texture, real motion, sub-pixel resampling every frame."""
    ih, iw = img.shape[:2]
    aspect = width / height
    out = np.empty((frames, height, width, 3), np.uint8)
    z0, z1 = rng.uniform(0.55, 0.9, 2)
    c0 = rng.uniform(0.35, 0.65, 2)
    c1 = c0 + rng.uniform(-0.08, 0.08, 2)
    for t in range(frames):
        a = t / max(frames - 1, 1)
        z = z0 + (z1 - z0) * a
        cy, cx = c0 + (c1 - c0) * a
        ch = min(ih, iw / aspect) * z
        cw = ch * aspect
        y0 = np.clip(cy * ih - ch / 2, 0, ih - ch)
        x0 = np.clip(cx * iw - cw / 2, 0, iw - cw)
        m = np.array([[width / cw, 0, -x0 * width / cw], [0, height / ch, -y0 * height / ch]], np.float64)
        out[t] = cv2.warpAffine(img, m, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return out


def read_video(path: str | Path, start: int = 0, count: int | None = None) -> np.ndarray:
    frames = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i < start:
                continue
            if count is not None and len(frames) >= count:
                break
            frames.append(f.to_ndarray(format="rgb24"))
    return np.stack(frames)


def bbb_excerpt(rng: np.random.Generator, frames: int, cache: dict[str, np.ndarray]) -> np.ndarray:
    """``frames`` consecutive frames from a random start; only those are kept (the whole film is ~1 GB)."""
    if "bbb_frames" not in cache:
        with av.open(str(BBB)) as c:
            cache["bbb_frames"] = np.array(c.streams.video[0].frames or 1440)
    total = int(cache["bbb_frames"])
    s = int(rng.integers(0, max(1, total - frames - 1)))
    return read_video(BBB, start=s, count=frames)


@functools.lru_cache(maxsize=1)
def bbb_cuts(level: float = 30.0) -> tuple[int, ...]:
    """The film's scene cuts: frames whose coarse luma (16 x 16 block means of the decoder's Y plane) differs
    from the previous frame's by more than ``level`` on average. The codec measures cuts the same way on luma
    computed from RGB; both find the same six cuts, each a change of 58.9 or more, and x264 made each a key frame."""
    cuts, prev = [], None
    with av.open(str(BBB)) as c:
        for i, f in enumerate(c.decode(video=0)):
            y = f.to_ndarray(format="gray").astype(np.float32)
            h, w = y.shape[0] // 16 * 16, y.shape[1] // 16 * 16
            v = y[:h, :w].reshape(h // 16, 16, w // 16, 16).mean(axis=(1, 3))
            if prev is not None and float(np.abs(v - prev).mean()) > level:
                cuts.append(i)
            prev = v
    return tuple(cuts)


def bbb_cut_excerpt(rng: np.random.Generator, frames: int) -> np.ndarray:
    """``frames`` consecutive frames that contain one of the film's scene cuts, at a random position."""
    cuts = bbb_cuts()
    cut = cuts[int(rng.integers(0, len(cuts)))]
    start = max(0, cut - int(rng.integers(1, frames)))
    return read_video(BBB, start=start, count=frames)


def encode(
    frames: np.ndarray, *, codec: str = "libx264", crf: int = 23, fps: int = 24, preset: str = "medium"
) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = "yuv420p"
        opts = {"crf": str(crf), "preset": preset}
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"
        s.options = opts
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def decode(blob: bytes) -> np.ndarray:
    with av.open(io.BytesIO(blob)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def reencode(frames: np.ndarray, **kw: object) -> np.ndarray:
    return decode(encode(frames, **kw))  # type: ignore[arg-type]


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


def resize(frames: np.ndarray, factor: float) -> np.ndarray:
    h, w = frames.shape[1:3]
    size = (_even(w * factor), _even(h * factor))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, size, interpolation=interp) for f in frames])


def crop(frames: np.ndarray, area: float, rng: np.random.Generator) -> np.ndarray:
    h, w = frames.shape[1:3]
    side = np.sqrt(area)
    ch, cw = int(h * side), int(w * side)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return frames[:, y : y + ch, x : x + cw].copy()


def brightness(frames: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(frames.astype(np.float32) * factor, 0, 255).round().astype(np.uint8)


def contrast(frames: np.ndarray, factor: float) -> np.ndarray:
    f = frames.astype(np.float32)
    mean = f.mean(axis=(1, 2, 3), keepdims=True)
    return np.clip((f - mean) * factor + mean, 0, 255).round().astype(np.uint8)


def gamma(frames: np.ndarray, g: float) -> np.ndarray:
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** g, 0, 255).round().astype(np.uint8)
    return lut[frames]


def change_fps(frames: np.ndarray, src: float, dst: float) -> np.ndarray:
    """Nearest-frame resampling, as ffmpeg's fps filter does (duplicates or drops)."""
    n = int(len(frames) * dst / src)
    idx = np.minimum((np.arange(n) * src / dst + 0.5).astype(int), len(frames) - 1)
    return frames[idx]


def excerpt(frames: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    s = int(rng.integers(0, len(frames) - count + 1))
    return frames[s : s + count]


def rotate(frames: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation about the frame's centre, same frame size, black corners (as Video Seal's rotate attack, and a
    phone filming a screen slightly askew); positive is counter-clockwise as seen."""
    h, w = frames.shape[1:3]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    return np.stack([cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR) for f in frames])


def perspective(frames: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A mild perspective warp: each corner moved inwards by up to ``strength`` of the side, at random (a screen
    filmed a little off-axis), same frame size, black outside."""
    h, w = frames.shape[1:3]
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)
    dst = src + inward * rng.uniform(0.0, strength, (4, 2)).astype(np.float32) * np.array([w, h], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    return np.stack([cv2.warpPerspective(f, m, (w, h), flags=cv2.INTER_LINEAR) for f in frames])


def crop_side(frames: np.ndarray, side: float, rng: np.random.Generator) -> np.ndarray:
    """Crop to ``side`` of each side (even sizes, for 4:2:0) at a random position (0.55: 30% of the area)."""
    h, w = frames.shape[1:3]
    ch, cw = _even(h * side), _even(w * side)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return frames[:, y : y + ch, x : x + cw].copy()


# The H.264 re-encode after each geometric attack (the issue's: a flip or a 4-degree rotation, then CRF 26).
GEOMETRY_CRF = 26


def attacks(fps: int = 24) -> dict[str, Attack]:
    return {
        "none": lambda v, r: v,
        "H.264 CRF 18": lambda v, r: reencode(v, crf=18, fps=fps),
        "H.264 CRF 23": lambda v, r: reencode(v, crf=23, fps=fps),
        "H.264 CRF 28": lambda v, r: reencode(v, crf=28, fps=fps),
        "H.264 CRF 35": lambda v, r: reencode(v, crf=35, fps=fps),
        "H.265 CRF 28": lambda v, r: reencode(v, codec="libx265", crf=28, fps=fps, preset="fast"),
        "downscale 50%": lambda v, r: resize(v, 0.5),
        "downscale 75%": lambda v, r: resize(v, 0.75),
        "upscale 150%": lambda v, r: resize(v, 1.5),
        "crop 70% area": lambda v, r: crop(v, 0.7, r),
        "brightness +30%": lambda v, r: brightness(v, 1.3),
        "brightness -30%": lambda v, r: brightness(v, 0.7),
        "contrast 0.7": lambda v, r: contrast(v, 0.7),
        "contrast 1.3": lambda v, r: contrast(v, 1.3),
        "gamma 0.8": lambda v, r: gamma(v, 0.8),
        "gamma 1.2": lambda v, r: gamma(v, 1.2),
        "fps 24->30": lambda v, r: change_fps(v, 24, 30),
        "fps 24->15": lambda v, r: change_fps(v, 24, 15),
        "1 s excerpt": lambda v, r: excerpt(v, fps, r),
        "crop 80%+down 75%+bright +20%+CRF 28": lambda v, r: reencode(
            brightness(resize(crop(v, 0.8, r), 0.75), 1.2), crf=28, fps=fps
        ),
        # Geometry, each followed by a real re-encode: read by the detector's geometry search (watermark/_geometry).
        # Rotations draw their sense at random.
        "flip H+CRF 26": lambda v, r: reencode(v[:, :, ::-1], crf=GEOMETRY_CRF, fps=fps),
        "rotate 2°+CRF 26": lambda v, r: reencode(
            rotate(v, 2.0 * r.choice([-1, 1])), crf=GEOMETRY_CRF, fps=fps
        ),
        "rotate 5°+CRF 26": lambda v, r: reencode(
            rotate(v, 5.0 * r.choice([-1, 1])), crf=GEOMETRY_CRF, fps=fps
        ),
        "rotate 10°+CRF 26": lambda v, r: reencode(
            rotate(v, 10.0 * r.choice([-1, 1])), crf=GEOMETRY_CRF, fps=fps
        ),
        "rotate 90°+CRF 26": lambda v, r: reencode(
            np.ascontiguousarray(np.rot90(v, int(r.choice([1, 3])), axes=(1, 2))), crf=GEOMETRY_CRF, fps=fps
        ),
        "perspective 5%+CRF 26": lambda v, r: reencode(perspective(v, 0.05, r), crf=GEOMETRY_CRF, fps=fps),
        "crop 55% side+CRF 26": lambda v, r: reencode(crop_side(v, 0.55, r), crf=GEOMETRY_CRF, fps=fps),
    }


def jod(reference: np.ndarray, test: np.ndarray, fps: int = 24) -> float:
    """ColorVideoVDP (Mantiuk et al., SIGGRAPH 2024): how visible the difference between two uint8 RGB clips
    (T, H, W, 3) is, in just-objectionable differences; 10 = indistinguishable, 9 = one JOD (75% of observers
    would pick the reference). A standard full-HD 24" monitor at 60 cm, the clip shown at its own pixels.
    Unlike PSNR it models contrast masking and time: a static pattern over moving content, a flash in one frame."""
    import pycvvdp
    import torch

    metric = pycvvdp.cvvdp(display_name="standard_fhd", device=torch.device("cpu"), quiet=True)
    if len(test) == 1:  # a still picture
        q, _ = metric.predict(test[0], reference[0], dim_order="HWC")
    else:
        q, _ = metric.predict(test, reference, dim_order="FHWC", frames_per_second=fps)
    return float(q)


def psnr_luma(a: np.ndarray, b: np.ndarray) -> float:
    w = np.array([0.299, 0.587, 0.114], np.float32)
    d = (a.astype(np.float32) @ w) - (b.astype(np.float32) @ w)
    mse = float(np.mean(d * d))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def encode_threads(frames: np.ndarray, *, crf: int, fps: int, preset: str, threads: int) -> bytes:
    """Like encode(), with the encoder's thread count fixed (for one-core speed figures)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = "yuv420p"
        s.options = {"crf": str(crf), "preset": preset, "threads": str(threads)}
        s.thread_count = threads
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()
