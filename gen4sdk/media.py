"""Video and image I/O with PyAV and Pillow: encode H.264 MP4, decode as a bounded-memory stream, probe.

Frames are always uint8 RGB arrays, (H, W, 3) one at a time or (T, H, W, 3) as a clip.

Two rules hold for every writer here: the picture size is never changed silently (H.264 in yuv420p needs even
dimensions, so odd sizes are rejected rather than padded or cropped), and nothing half-written is ever left at the
destination (the file is written next to it under a temporary name and moved into place with ``os.replace`` only
once it is complete).
"""

from __future__ import annotations

import errno
import logging
import math
import os
import secrets
from collections.abc import Generator, Iterable, Iterator, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gen4sdk.errors import InvalidRequestError, MediaError, OutputError

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_EXAMINED_PIXELS",
    "MAX_FRAME_PIXELS",
    "MAX_IMAGE_PIXELS",
    "VideoInfo",
    "analysis_frames",
    "encode_video",
    "iter_frames",
    "load_image",
    "probe",
    "read_frames",
]

PathLike = str | os.PathLike[str]

# swscale converts RGB <-> YUV with the BT.601 matrix in limited range; tagging the stream the same way makes other
# players decode our colours as we encoded them.
_BT601 = 6  # AVCOL_SPC_SMPTE170M == AVCOL_PRI_SMPTE170M == AVCOL_TRC_SMPTE170M
_MPEG_RANGE = 1  # AVCOL_RANGE_MPEG (limited)
# swscale's default RGB <-> yuv420p path rounds fast and interpolates chroma coarsely: about -1 level of bias on
# every channel and ~35 dB round trip on natural images. Accurate rounding with full chroma interpolation on both
# sides is unbiased and ~2 dB better, which the watermark's margin feels.
_SWS_FLAGS = int(
    av.video.reformatter.Interpolation.BICUBIC
    | av.video.reformatter.Interpolation.ACCURATE_RND
    | av.video.reformatter.Interpolation.FULL_CHR_H_INT
    | av.video.reformatter.Interpolation.FULL_CHR_H_INP
)
# swscale produces chroma sited at the centre of each 2x2 block, while H.264/HEVC assume left siting unless told;
# signalling centre siting makes every decoder (ours included) upsample chroma where we put it (+1-2 dB).
_CHROMA_LOC_OPTION = {"libx264": {"x264-params": "chromaloc=1"}, "libx265": {"x265-params": "chromaloc=1"}}


class VideoInfo(BaseModel):
    """What ``probe`` finds in a video file (its first video stream)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int
    height: int
    fps: float = Field(description="average frame rate; 0.0 when the container does not say")
    frames: int = Field(description="number of frames (from the header, else counted from packets)")
    duration: float = Field(description="seconds")
    codec: str


# -- reading ----------------------------------------------------------------------------------------------------


def _open_input(path: PathLike) -> tuple[Any, Any]:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: no such file")
    if not p.is_file():
        raise MediaError(f"{p}: not a regular file")
    try:
        container = av.open(str(p), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise MediaError(f"{p}: not a readable media file ({e})") from e
    streams = container.streams.video
    if not streams:
        container.close()
        raise MediaError(f"{p}: has no video stream")
    stream = streams[0]
    if stream.codec_context is None or not stream.codec_context.width or not stream.codec_context.height:
        container.close()
        raise MediaError(f"{p}: the video stream has no picture size (unsupported or corrupt)")
    return container, stream


def probe(path: PathLike) -> VideoInfo:
    """Size, frame rate, frame count, duration and codec of a video file; MediaError if it is not one."""
    container, stream = _open_input(path)
    try:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        frames = int(stream.frames or 0)
        if frames <= 0:
            # Some containers (Matroska, WebM, raw streams) do not store a count; packets are cheap to walk.
            frames = sum(1 for pkt in container.demux(stream) if pkt.size)
        if duration <= 0.0 and fps > 0:
            duration = frames / fps
        return VideoInfo(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=fps,
            frames=frames,
            duration=duration,
            codec=stream.codec_context.name,
        )
    except av.FFmpegError as e:
        raise MediaError(f"{path}: cannot read the video stream ({e})") from e
    finally:
        container.close()


def _check_window(
    max_frames: int | None, step: int, start_seconds: float | None, duration_seconds: float | None
) -> None:
    if max_frames is not None and max_frames < 0:
        raise InvalidRequestError(f"max_frames must be >= 0, got {max_frames}", field="max_frames")
    if step < 1:
        raise InvalidRequestError(f"step must be >= 1, got {step}", field="step")
    if start_seconds is not None and not (math.isfinite(start_seconds) and start_seconds >= 0):
        raise InvalidRequestError(f"start_seconds must be >= 0, got {start_seconds}", field="start_seconds")
    if duration_seconds is not None and not (math.isfinite(duration_seconds) and duration_seconds > 0):
        raise InvalidRequestError(
            f"duration_seconds must be > 0, got {duration_seconds}", field="duration_seconds"
        )


def _timed_frames(
    path: PathLike, container: Any, stream: Any, start: float
) -> Generator[tuple[float | None, Any], None, None]:
    """(seconds since the stream's first frame, frame), from at or before ``start`` on; closes what it opens."""
    # Times are relative to the stream's first timestamp (MPEG-TS and edited MP4s do not start at 0).
    origin = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0

    def rel(frame: Any) -> float | None:
        return frame.time - origin if frame.time is not None else None

    try:
        if start > 0:
            known = (
                float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            )
            if known is not None and start >= known:
                return
            # Seek to the keyframe before `start`, then decode forward (the caller drops what precedes it).
            container.seek(
                int((start + origin) / stream.time_base), stream=stream, backward=True, any_frame=False
            )
            decoded = container.decode(stream)
            first = next(decoded, None)
            t = rel(first) if first is not None else None
            if first is not None and (t is None or t <= start + 1e-6):
                yield t, first
                for frame in decoded:
                    yield rel(frame), frame
                return
            # Some demuxers (MPEG-TS among them) seek by byte position and overshoot: decode from the top instead.
            container.close()
            container, stream = _open_input(path)
            stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield rel(frame), frame
    finally:
        container.close()


# Analysing a received video (verify, the resolution service) costs what its frames' pixels cost, not what its file
# weighs: 54 KB of H.264 can hold 100 frames of 4096x4096, 1.6 MB two of 16000x16000. Frames over an 8K UHD frame are
# not decoded at all, and the frames examined are bounded so their pixels stay within a budget (96 frames of 1080p,
# 11 of 4096x4096: about 10 s of decoding and detection on one core, measured by benchmarks/hostile_inputs.py).
MAX_FRAME_PIXELS = 7680 * 4320
MAX_EXAMINED_PIXELS = 200_000_000


def analysis_frames(info: VideoInfo, wanted: int) -> int:
    """How many of ``wanted`` frames of a video described by ``info`` to decode for analysis.

    Raises MediaError, before anything is decoded, when a frame is over ``MAX_FRAME_PIXELS``.
    """
    pixels = max(1, info.width * info.height)
    if pixels > MAX_FRAME_PIXELS:
        raise MediaError(
            f"frames of {info.width}x{info.height} are over the {MAX_FRAME_PIXELS} pixels this SDK analyses"
        )
    return max(1, min(wanted, MAX_EXAMINED_PIXELS // pixels))


def _frames(
    path: PathLike,
    container: Any,
    stream: Any,
    max_frames: int | None,
    step: int,
    start: float,
    end: float | None,
    max_pixels: int | None = None,
) -> Iterator[np.ndarray]:
    if max_frames == 0:
        container.close()
        return
    timed = _timed_frames(path, container, stream, start)
    try:
        kept = 0
        index = 0  # index among frames inside the window, for `step`
        for t, frame in timed:
            if t is not None and t < start - 1e-6:
                continue
            if end is not None and t is not None and t >= end - 1e-6:
                break
            if max_pixels is not None and frame.width * frame.height > max_pixels:
                # the stream header can understate what the decoder then produces
                raise MediaError(f"{path}: a {frame.width}x{frame.height} frame is over {max_pixels} pixels")
            if index % step == 0:
                yield frame.to_ndarray(format="rgb24", interpolation=_SWS_FLAGS)
                kept += 1
                if max_frames is not None and kept >= max_frames:
                    break
            index += 1
    except av.FFmpegError as e:
        raise MediaError(f"{path}: decoding failed ({e})") from e
    finally:
        timed.close()


def iter_frames(
    path: PathLike,
    *,
    max_frames: int | None = None,
    step: int = 1,
    start_seconds: float | None = None,
    duration_seconds: float | None = None,
    max_pixels: int | None = None,
) -> Iterator[np.ndarray]:
    """Decode a video lazily, one (H, W, 3) uint8 RGB frame at a time; memory stays bounded by one GOP's worth
    of decoder state whatever the length.

    ``start_seconds``/``duration_seconds`` select a window (seeking to the nearest earlier keyframe), ``step``
    keeps every step-th frame of it, ``max_frames`` stops early, ``max_pixels`` raises MediaError at a frame larger
    than that. The file is opened (and MediaError raised for a non-video) at call time, not at the first ``next``.
    """
    _check_window(max_frames, step, start_seconds, duration_seconds)
    container, stream = _open_input(path)
    # Frame-level threads keep a couple of frames in flight: a bounded cost for a ~2x faster decode.
    stream.thread_type = "AUTO"
    start = float(start_seconds or 0.0)
    end = start + duration_seconds if duration_seconds is not None else None
    return _frames(path, container, stream, max_frames, step, start, end, max_pixels)


def read_frames(
    path: PathLike,
    *,
    max_frames: int | None = None,
    step: int = 1,
    start_seconds: float | None = None,
    duration_seconds: float | None = None,
) -> np.ndarray:
    """The frames :func:`iter_frames` yields, stacked into a (T, H, W, 3) uint8 array (T may be 0)."""
    info = probe(path)
    frames = list(
        iter_frames(
            path,
            max_frames=max_frames,
            step=step,
            start_seconds=start_seconds,
            duration_seconds=duration_seconds,
        )
    )
    if not frames:
        return np.zeros((0, info.height, info.width, 3), dtype=np.uint8)
    return np.stack(frames)


# A reference image is one frame's worth of content; 40 megapixels is past any camera a user uploads from, and
# the cap is checked from the header, before a decompression bomb is decoded.
MAX_IMAGE_PIXELS = 40_000_000


def load_image(path: PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB, upright per its EXIF orientation; MediaError if unreadable.

    Images over ``max_pixels`` are refused from their header, before decoding. CMYK, palette and greyscale
    images are converted to RGB, images with transparency composited onto white; 16-bit, 32-bit and float
    images are scaled to 8 bits by their range (a plain conversion would clip them to white or black and hide
    their content from the checks).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise MediaError(f"{p}: {w}x{h} is {w * h} pixels, over the limit of {max_pixels}")
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
                return _scaled_to_8bit(np.asarray(im), im.mode)
            if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
                im.mode == "P" and "transparency" in im.info
            ):
                # composited onto white, as a viewer shows it: dropping alpha would show whatever colour the
                # transparent pixels happen to hold (often black), hiding what the alpha draws
                rgba = im.convert("RGBA")
                rgb = Image.new("RGB", rgba.size, (255, 255, 255))
                rgb.paste(rgba, mask=rgba.getchannel("A"))
            else:
                rgb = im.convert("RGB")
            rgb.load()
    except FileNotFoundError as e:
        raise MediaError(f"{p}: no such file") from e
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise MediaError(f"{p}: not a readable image ({e})") from e
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt data surfaces as any of these
        raise MediaError(f"{p}: cannot decode image ({e})") from e
    return np.asarray(rgb, dtype=np.uint8).copy()


def _scaled_to_8bit(a: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit and float pixels to 8 bits by the range their mode implies: 0-65535 for 16-bit, 0-1 for
    float in that range, else the image's own minimum to maximum (never clipped to white or black)."""
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise MediaError("image has non-finite pixel values")
    lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
    if mode.startswith("I;16") or (mode == "I" and 0.0 <= lo and hi <= 65535.0 and hi > 255.0):
        a = a * (255.0 / 65535.0)
    elif mode == "F" and 0.0 <= lo and hi <= 1.0:
        a = a * 255.0
    elif lo < 0.0 or hi > 255.0:
        a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
    grey = np.clip(np.round(a), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2) if grey.ndim == 2 else grey[..., :3].copy()


# -- writing ----------------------------------------------------------------------------------------------------


def _as_rate(fps: float | Fraction) -> Fraction:
    try:
        value = float(fps)
    except (TypeError, ValueError) as e:
        raise InvalidRequestError(f"fps must be a number, got {fps!r}", field="fps") from e
    if not (math.isfinite(value) and 0 < value <= 1000):
        raise InvalidRequestError(f"fps must be in (0, 1000], got {fps}", field="fps")
    # 29.97 and friends become 30000/1001, not a float's binary expansion.
    return fps if isinstance(fps, Fraction) else Fraction(value).limit_denominator(1001)


def _check_frame(frame: Any, index: int, size: tuple[int, int] | None) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise MediaError(f"frame {index}: expected uint8 (H, W, 3) RGB, got {arr.dtype} {arr.shape}")
    h, w = arr.shape[:2]
    if size is not None and (h, w) != size:
        raise MediaError(f"frame {index} is {w}x{h} but the clip is {size[1]}x{size[0]}")
    if size is None and (h % 2 or w % 2 or h < 2 or w < 2):
        raise MediaError(
            f"frame size {w}x{h}: H.264 in yuv420p needs even width and height; the SDK does not pad or crop "
            "silently, so crop or pad the frames yourself"
        )
    return np.ascontiguousarray(arr)


def _temp_path(path: Path) -> tuple[Path, int]:
    parent = path.parent
    if not parent.exists():
        raise OutputError(f"cannot write {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: {parent} is not a directory")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory")
    for _ in range(16):
        tmp = parent / f".{path.name}.{secrets.token_hex(6)}.partial"
        try:
            # 0o666 & ~umask, like any other new file (mkstemp would make it 0600)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
        return tmp, fd
    raise OutputError(f"cannot create a temporary file next to {path}")


def encode_video(
    frames: np.ndarray | Iterable[np.ndarray],
    path: PathLike,
    *,
    fps: float | Fraction,
    crf: int = 18,
    preset: str = "medium",
    codec: str = "libx264",
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Encode uint8 RGB frames ((T, H, W, 3) array or an iterable of (H, W, 3)) to an MP4 at ``path``.

    yuv420p, BT.601 tagged. Frames from an iterable are encoded as they arrive, so a long clip
    never has to sit in memory. Raises MediaError for bad frames (wrong dtype/shape, odd size, sizes that change,
    none at all) or an encoder failure, OutputError when ``path`` cannot be written; in either case nothing is
    left at ``path`` and an existing file there is untouched. ``metadata``: container tags written as QuickTime
    metadata keys (``moov/udta/meta`` with ``mdta`` keys), e.g. GB 45438's ``AIGC`` block.
    """
    rate = _as_rate(fps)
    if not (isinstance(crf, int) and 0 <= crf <= 63):
        raise InvalidRequestError(f"crf must be an integer in [0, 63], got {crf!r}", field="crf")
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise MediaError(f"expected frames shaped (T, H, W, 3), got {frames.shape}")
        source: Iterable[Any] = iter(frames)
    else:
        source = frames
    try:
        codec_obj = av.codec.Codec(codec, "w")
    except (av.FFmpegError, ValueError) as e:
        raise MediaError(f"video encoder {codec!r} is not available in this FFmpeg build") from e
    if codec_obj.type != "video":
        raise MediaError(f"{codec!r} is not a video encoder")

    dest = Path(path)
    tmp, fd = _temp_path(dest)
    ok = False
    sink: _Sink | None = None
    try:
        with os.fdopen(fd, "wb") as fh:
            sink = _Sink(fh)
            _encode_to(sink, source, rate, crf, preset, codec, dict(metadata or {}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
        ok = True
    except (MediaError, OutputError):
        raise
    except (OSError, av.FFmpegError) as raised:
        # PyAV reports an exception raised in its write callback as "Error in PyAV callback": the disk's own error
        # is the one that says what happened.
        err = sink.error if sink is not None and sink.error is not None else raised
        if err.errno == errno.ENOSPC:
            raise OutputError(f"cannot write {dest}: no space left on device") from err
        if isinstance(err, av.FFmpegError) and err.errno not in (
            errno.EACCES,
            errno.EPERM,
            errno.EROFS,
            errno.EDQUOT,
        ):
            raise MediaError(f"encoding {dest} failed: {err}") from err
        raise OutputError(f"cannot write {dest}: {err.strerror or err}") from err
    finally:
        if not ok:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                logger.warning("could not remove temporary file %s: %s", tmp, e)


class _Sink:
    """The output file as PyAV writes it, keeping the OSError a write raised (PyAV replaces it by its own)."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return int(self._fh.write(data))
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def _encode_to(
    fh: Any,
    source: Iterable[Any],
    rate: Fraction,
    crf: int,
    preset: str,
    codec: str,
    metadata: dict[str, str],
) -> None:
    # No "+faststart": its second pass reopens the output by name, which a file object does not have; C2PA signing
    # rewrites the box layout afterwards anyway. use_metadata_tags: arbitrary keys (not only iTunes' four-letter
    # atoms) go into moov/udta/meta as mdta keys, the form ffmpeg -metadata KEY=... -movflags use_metadata_tags makes.
    options = {"movflags": "use_metadata_tags"} if metadata else {}
    container = av.open(fh, mode="w", format="mp4", options=options)
    try:
        for key, value in metadata.items():
            container.metadata[key] = value
        stream: av.video.stream.VideoStream | None = None
        size: tuple[int, int] | None = None
        n = 0
        for n, frame in enumerate(source, start=1):
            arr = _check_frame(frame, n - 1, size)
            if stream is None:
                size = arr.shape[:2]
                stream = cast(av.video.stream.VideoStream, container.add_stream(codec, rate=rate))
                stream.width, stream.height = size[1], size[0]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.colorspace = _BT601
                stream.codec_context.color_primaries = _BT601
                stream.codec_context.color_trc = _BT601
                stream.codec_context.color_range = _MPEG_RANGE
                stream.options = {"crf": str(crf), "preset": preset, **_CHROMA_LOC_OPTION.get(codec, {})}
            vf = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(
                format="yuv420p", interpolation=_SWS_FLAGS
            )
            for packet in stream.encode(vf):
                container.mux(packet)
        if stream is None:
            raise MediaError("no frames to encode")
        for packet in stream.encode(None):
            container.mux(packet)
        logger.debug("encoded %d frames %dx%d at %s fps", n, stream.width, stream.height, rate)
    finally:
        container.close()


def container_metadata(path: PathLike) -> dict[str, str]:
    """The container-level metadata tags of a media file (QuickTime/MP4 keys, Matroska tags); MediaError if it is
    not a media file."""
    container, _ = _open_input(path)
    try:
        return {str(k): str(v) for k, v in container.metadata.items()}
    finally:
        container.close()
