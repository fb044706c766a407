"""Face detection and identity embeddings for the likeness guard: dlib on the CPU, offline, no downloads.

:class:`DlibFaceEncoder` finds faces with dlib's HOG frontal face detector (built into dlib, no weights file),
aligns each with the 5-point landmark model and embeds it with dlib's ResNet face recognition model v1
(``dlib_face_recognition_resnet_model_v1.dat``, public domain / CC0). Both model files come from the
``face_recognition_models`` package. The 68-point landmark model that package also ships is never used: its
training data (iBUG 300-W) forbids commercial use.

Embeddings are dlib's 128-d descriptors scaled to unit length, compared by cosine. dlib's descriptors have a
norm of about 1.40, so dlib's documented rule "same person when the Euclidean distance is below 0.6" (99.38%
on LFW) becomes a cosine of about 1 - 0.6**2 / (2 * 1.40**2) = 0.91 between unit vectors:
:data:`DLIB_COSINE_THRESHOLD`. benchmarks/faces.py checks both figures on photos.

Limits of the detector, which bound what the likeness guard can see:

- frontal and near-frontal faces only: profiles (yaw beyond about 45 degrees), faces seen from above or below,
  and heavily occluded faces are missed;
- faces narrower than about 80 px in the image the detector scans are missed. Images up to
  :data:`AUTO_UPSAMPLE_MAX_PIXELS` are scanned at twice their size (faces down to about 40 px); larger ones at
  their own size; images with a side above ``max_side`` are scanned on a downscaled copy (faces below
  80 * side / max_side px are missed there);
- in-plane rotation: dlib's detector has filters for faces tilted by about 30 degrees; beyond that faces are
  missed unless ``rotations`` asks for extra passes on rotated copies (only when nothing was found);
- cartoons, paintings and strong stylisation may not be detected, or embed far from the real person.

Time on one core (benchmarks/faces.py): detection 40-60 ms per 832x480 frame scanned at its own size, 4x that
with upsample=1; plus about 100 ms per face found (landmarks and the ResNet on a 150x150 chip), whatever
the image size. Loading both models takes about 0.5 s.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gen4sdk.errors import InvalidRequestError, MissingDependencyError, ModelLoadError

__all__ = [
    "AUTO_UPSAMPLE_MAX_PIXELS",
    "DLIB_COSINE_THRESHOLD",
    "DlibFaceEncoder",
    "Face",
    "FaceEncoder",
    "face_models_dir",
    "shared_face_encoder",
]

logger = logging.getLogger(__name__)

# cosine between unit embeddings that matches dlib's Euclidean threshold 0.6 on its raw descriptors (module doc)
DLIB_COSINE_THRESHOLD = 0.91
# Images up to this many pixels get upsample=1 by default: reference photos and thumbnails, where faces may be
# 40-80 px and one 4x-cost scan is affordable. 832x480 frames (399,360 px) stay at upsample=0 (about 40 ms).
AUTO_UPSAMPLE_MAX_PIXELS = 640 * 480
_LANDMARKS = "shape_predictor_5_face_landmarks.dat"
_RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"


@dataclass(frozen=True)
class Face:
    """One face found in an image."""

    box: tuple[int, int, int, int]  # left, top, right, bottom in the given image's pixels, clipped to it
    embedding: np.ndarray  # unit-norm float32 vector
    detection_score: float  # the detector's margin; higher is surer, 0 is dlib's default cut-off


@runtime_checkable
class FaceEncoder(Protocol):
    """Finds faces in RGB uint8 images (H, W, 3) and embeds each as a unit vector, compared by cosine.

    ``id`` tags the stored embeddings: vectors of encoders with different ids are not comparable.
    Implementations must be safe to call from several threads.
    """

    @property
    def id(self) -> str: ...

    def faces(self, image: np.ndarray) -> list[Face]: ...

    def warm_up(self) -> None: ...


def face_models_dir() -> Path:
    """The ``models`` folder of the installed ``face_recognition_models`` package.

    Found through the import system without importing the package: its ``__init__`` imports
    ``pkg_resources``, which current setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the built-in face encoder", extra="generate", missing=["face_recognition_models"]
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not path.is_dir():
        raise ModelLoadError(f"face model folder not found: {path}")
    return path


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """A contiguous RGB uint8 (H, W, 3) array; greyscale (H, W) and RGBA are converted."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InvalidRequestError("a face image must be a uint8 numpy array", field="image")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise InvalidRequestError(f"a face image must have shape (H, W, 3), got {image.shape}", field="image")
    return np.ascontiguousarray(image[:, :, :3])


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


class DlibFaceEncoder:
    """dlib HOG detector + 5-point alignment + ResNet v1 embeddings (id ``dlib-resnet-v1``), CPU only.

    ``models_dir``: folder holding the two model files; default :func:`face_models_dir`.
    ``upsample``: how many times the detector doubles the image before scanning (each doubling halves the
    smallest face found, from about 80 px, and costs about 4x the time). ``None`` (default): 1 for images up
    to :data:`AUTO_UPSAMPLE_MAX_PIXELS` (after any downscale), else 0.
    ``max_side``: images with a longer side are scanned on a copy downscaled to it, for speed; boxes are
    mapped back and faces are embedded from the full-resolution image. ``None`` scans every image whole.
    ``min_score``: detections below this detector margin are dropped (dlib's default 0.0).
    ``rotations``: angles in degrees (counter-clockwise) of extra scans on rotated copies, tried in order only
    while nothing has been found. Off by default: the detector covers about +-30 degrees of tilt by itself,
    and the extra scans would double or triple the time of every face-free frame.
    ``jitters``: dlib's ``num_jitters``; n > 0 averages n+1 randomly jittered crops, n+1 times slower. For
    reference images only, if at all.

    Loads the models on first use or :meth:`warm_up`. One instance may be shared by threads: dlib objects
    are not safe for concurrent calls, so calls on one instance run one at a time.
    """

    id = "dlib-resnet-v1"

    def __init__(
        self,
        models_dir: str | Path | None = None,
        *,
        upsample: int | None = None,
        max_side: int | None = 1280,
        min_score: float = 0.0,
        rotations: Sequence[float] = (),
        jitters: int = 0,
    ) -> None:
        if upsample is not None and not 0 <= upsample <= 3:
            raise InvalidRequestError("upsample must be 0-3 or None", field="upsample")
        if max_side is not None and max_side < 160:
            raise InvalidRequestError("max_side must be at least 160 or None", field="max_side")
        if jitters < 0:
            raise InvalidRequestError("jitters must be >= 0", field="jitters")
        self._models_dir = Path(models_dir) if models_dir is not None else None
        self.upsample = upsample
        self.max_side = max_side
        self.min_score = float(min_score)
        self.rotations = tuple(float(a) for a in rotations)
        self.jitters = int(jitters)
        self._lock = threading.Lock()  # guards loading and every call into dlib
        self._detector: Any = None
        self._landmarks: Any = None
        self._recognizer: Any = None
        self._dlib: Any = None

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        """Load the models; the caller holds the lock."""
        if self._recognizer is not None:
            return
        t0 = time.perf_counter()
        try:
            import dlib
        except ImportError as exc:
            raise MissingDependencyError(
                "the built-in face encoder", extra="generate", missing=["dlib-bin"]
            ) from exc
        folder = self._models_dir if self._models_dir is not None else face_models_dir()
        paths = {name: folder / name for name in (_LANDMARKS, _RECOGNITION)}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise ModelLoadError(f"face model files not found: {', '.join(missing)}")
        try:
            detector = dlib.get_frontal_face_detector()
            landmarks = dlib.shape_predictor(str(paths[_LANDMARKS]))
            recognizer = dlib.face_recognition_model_v1(str(paths[_RECOGNITION]))
        except Exception as exc:  # dlib raises RuntimeError on truncated or foreign files
            raise ModelLoadError(f"cannot load the dlib face models from {folder}: {exc}") from exc
        self._dlib, self._detector, self._landmarks = dlib, detector, landmarks
        self._recognizer = recognizer
        logger.info("dlib face models loaded from %s in %.2f s", folder, time.perf_counter() - t0)

    def warm_up(self) -> None:
        """Load the models and run the network once, so the first real call pays no set-up."""
        with self._lock:
            self._load()
            # the first forward pass allocates the network's buffers; a 150x150 chip is its input size
            self._recognizer.compute_face_descriptor(np.zeros((150, 150, 3), np.uint8))

    # ------------------------------------------------------------------ inference
    def faces(self, image: np.ndarray) -> list[Face]:
        """Every face found in ``image`` (RGB uint8, (H, W, 3); greyscale and RGBA are accepted too)."""
        rgb = _as_rgb(image)
        with self._lock:
            self._load()
            found = self._embed(rgb, *self._find(rgb), 0.0)
            for angle in self.rotations:
                if found:
                    break
                work = _rotated(rgb, angle)
                found = self._embed(rgb, *self._find(work), angle, work)
        logger.debug("faces: %d in a %dx%d image", len(found), rgb.shape[1], rgb.shape[0])
        return found

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Boxes of the faces in ``image`` without embedding them (no rotated passes): with :meth:`embed`, lets
        a caller that checks many frames of one scene embed a face once rather than in every frame."""
        rgb = _as_rgb(image)
        with self._lock:
            self._load()
            return self._find(rgb)[0]

    def embed(self, image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> list[Face]:
        """The faces at ``boxes`` (from :meth:`detect` on the same image), embedded."""
        rgb = _as_rgb(image)
        with self._lock:
            self._load()
            return self._embed(rgb, list(boxes), [0.0] * len(boxes), 0.0)

    def _find(self, work: np.ndarray) -> tuple[list[tuple[int, int, int, int]], list[float]]:
        """Face boxes in ``work``'s pixels and their detector margins."""
        scan, scale = work, 1.0
        side = max(work.shape[:2])
        if self.max_side is not None and side > self.max_side:
            scale = self.max_side / side
            scan = _resize(work, max(1, round(work.shape[1] * scale)), max(1, round(work.shape[0] * scale)))
        upsample = self.upsample
        if upsample is None:
            upsample = 1 if scan.shape[0] * scan.shape[1] <= AUTO_UPSAMPLE_MAX_PIXELS else 0
        rects, scores, _ = self._detector.run(scan, upsample, self.min_score)
        boxes = [
            (
                round(r.left() / scale),
                round(r.top() / scale),
                round(r.right() / scale),
                round(r.bottom() / scale),
            )
            for r in rects
        ]
        return boxes, [float(v) for v in scores]

    def _embed(
        self,
        rgb: np.ndarray,
        boxes: list[tuple[int, int, int, int]],
        scores: list[float],
        angle: float,
        work: np.ndarray | None = None,
    ) -> list[Face]:
        """Embed the faces at ``boxes`` of ``work`` (``rgb`` rotated by ``angle``); boxes returned in ``rgb``'s
        pixels. Landmarks and embeddings come from the full-resolution image, not the scanned copy."""
        if not boxes:
            return []
        dlib = self._dlib
        work = rgb if work is None else work
        height, width = rgb.shape[:2]
        shapes = dlib.full_object_detections()
        for x0, y0, x1, y1 in boxes:
            shapes.append(self._landmarks(work, dlib.rectangle(x0, y0, x1, y1)))
        vectors = self._recognizer.compute_face_descriptor(work, shapes, self.jitters)
        out = []
        for (x0, y0, x1, y1), score, vec in zip(boxes, scores, vectors):
            corners: list[tuple[float, float]] = [(x0, y0), (x1, y0), (x0, y1), (x1, y1)]
            if angle:
                corners = [_unrotate(x, y, angle, work.shape, rgb.shape) for x, y in corners]
            xs, ys = [c[0] for c in corners], [c[1] for c in corners]
            box = (
                max(0, round(min(xs))),
                max(0, round(min(ys))),
                min(width, round(max(xs))),
                min(height, round(max(ys))),
            )
            emb = np.asarray(vec, dtype=np.float32)
            emb /= max(float(np.linalg.norm(emb)), 1e-12)
            out.append(Face(box=box, embedding=emb, detection_score=score))
        return out


def _rotated(rgb: np.ndarray, angle: float) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).rotate(angle, Image.Resampling.BILINEAR, expand=True))


def _unrotate(
    x: float, y: float, angle: float, rotated_shape: tuple[int, ...], shape: tuple[int, ...]
) -> tuple[float, float]:
    """Map a point of an image PIL rotated by ``angle`` degrees (expand=True) back to the original image."""
    a = math.radians(angle)
    dx, dy = x - rotated_shape[1] / 2, y - rotated_shape[0] / 2
    # PIL turns the picture counter-clockwise on screen (y down); undo it by turning clockwise
    ox = dx * math.cos(a) - dy * math.sin(a)
    oy = dx * math.sin(a) + dy * math.cos(a)
    return ox + shape[1] / 2, oy + shape[0] / 2


_shared: DlibFaceEncoder | None = None
_shared_lock = threading.Lock()


def shared_face_encoder() -> DlibFaceEncoder:
    """The process's one :class:`DlibFaceEncoder` with default settings; its models load on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = DlibFaceEncoder()
        return _shared
