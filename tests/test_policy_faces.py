"""Face detection and embeddings (dlib) on real public-domain photos: identities, robustness, errors."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gen4sdk.errors import InvalidRequestError, ModelLoadError
from gen4sdk.policy._faces import (
    DLIB_COSINE_THRESHOLD,
    DlibFaceEncoder,
    Face,
    FaceEncoder,
    face_models_dir,
    shared_face_encoder,
)

FACES = Path(__file__).resolve().parent / "data" / "faces"
T = DLIB_COSINE_THRESHOLD


def _load(name: str) -> np.ndarray:
    return np.asarray(Image.open(FACES / name).convert("RGB"))


@pytest.fixture(scope="module")
def enc() -> DlibFaceEncoder:
    e = DlibFaceEncoder()
    e.warm_up()
    return e


@pytest.fixture(scope="module")
def obama(enc: DlibFaceEncoder) -> Face:
    (face,) = enc.faces(_load("obama.jpg"))
    return face


@pytest.fixture(scope="module")
def biden(enc: DlibFaceEncoder) -> Face:
    (face,) = enc.faces(_load("biden.jpg"))
    return face


def _cos(a: Face, b: Face) -> float:
    return float(a.embedding @ b.embedding)


def test_embeddings_are_unit_float32(obama: Face) -> None:
    assert obama.embedding.dtype == np.float32 and obama.embedding.shape == (128,)
    assert abs(float(np.linalg.norm(obama.embedding)) - 1.0) < 1e-5
    left, top, right, bottom = obama.box
    assert 150 <= right - left <= 220 and 150 <= bottom - top <= 220  # the face is about 180 px wide
    assert obama.detection_score > 0


def test_same_person_matches_other_person_does_not(enc: DlibFaceEncoder, obama: Face, biden: Face) -> None:
    for name in ("obama_partial_face.jpg", "obama_partial_face2.jpg"):
        (face,) = enc.faces(_load(name))
        assert _cos(face, obama) >= T, name
        assert _cos(face, biden) < T, name
    assert _cos(obama, biden) < T


def _crop(im: np.ndarray) -> np.ndarray:
    return im[40:360, 130:440]  # tight head crop: face box (194, 94, 373, 273)


def _rescale_to_40px_face(im: np.ndarray) -> np.ndarray:
    size = (round(im.shape[1] * 40 / 180), round(im.shape[0] * 40 / 180))
    return np.asarray(Image.fromarray(im).resize(size, Image.Resampling.LANCZOS))


def _jpeg30(im: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(im).save(buf, "JPEG", quality=30)
    return np.asarray(Image.open(buf).convert("RGB"))


AUGMENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mirrored": lambda im: np.ascontiguousarray(im[:, ::-1]),
    "cropped": _crop,
    "rescaled_40px_face": _rescale_to_40px_face,
    "jpeg_q30": _jpeg30,
    "greyscale_2d": lambda im: np.asarray(Image.fromarray(im).convert("L")),
    "greyscale_rgb": lambda im: np.asarray(Image.fromarray(im).convert("L").convert("RGB")),
    "rotated_10": lambda im: np.asarray(
        Image.fromarray(im).rotate(10, Image.Resampling.BILINEAR, expand=True)
    ),
    "rotated_-10": lambda im: np.asarray(
        Image.fromarray(im).rotate(-10, Image.Resampling.BILINEAR, expand=True)
    ),
}


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_altered_photo_still_matches(enc: DlibFaceEncoder, obama: Face, biden: Face, name: str) -> None:
    image = AUGMENTATIONS[name](_load("obama.jpg"))
    found = enc.faces(image)
    assert len(found) == 1, name
    assert _cos(found[0], obama) >= T and _cos(found[0], biden) < T
    left, top, right, bottom = found[0].box
    assert 0 <= left < right <= image.shape[1] and 0 <= top < bottom <= image.shape[0]


def test_two_faces_in_one_image(enc: DlibFaceEncoder, obama: Face, biden: Face) -> None:
    a, b = _load("obama.jpg"), _load("biden.jpg")
    canvas = np.full((max(a.shape[0], b.shape[0]), a.shape[1] + b.shape[1], 3), 128, np.uint8)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] :] = b
    found = sorted(enc.faces(canvas), key=lambda f: f.box[0])
    assert len(found) == 2
    assert found[0].box[2] <= a.shape[1] <= found[1].box[0]  # one face on each side of the seam
    assert _cos(found[0], obama) >= T > _cos(found[0], biden)
    assert _cos(found[1], biden) >= T > _cos(found[1], obama)


def test_boxes_map_back_from_downscaled_scan(obama: Face) -> None:
    # a 2x copy (1040x1400) is scanned at max_side 700, i.e. at its original size: the box must double
    big = np.asarray(Image.fromarray(_load("obama.jpg")).resize((1040, 1400), Image.Resampling.BILINEAR))
    (face,) = DlibFaceEncoder(max_side=700).faces(big)
    assert all(abs(got - 2 * want) <= 12 for got, want in zip(face.box, obama.box))
    assert _cos(face, obama) >= T


def test_rotation_fallback_maps_the_box_back(obama: Face) -> None:
    # the fallback runs only when the upright scan finds nothing: a face turned 60 degrees, found at -60
    turned = np.asarray(
        Image.fromarray(_load("obama.jpg")).rotate(60, Image.Resampling.BILINEAR, expand=False)
    )
    assert DlibFaceEncoder().faces(turned) == []
    (face,) = DlibFaceEncoder(rotations=(-60,)).faces(turned)
    assert _cos(face, obama) >= T
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    # where the face centre (283.5, 183.5) lands after PIL's 60-degree turn about the image centre (260, 350)
    a = np.radians(60)
    want = (260 + 23.5 * np.cos(a) - 166.5 * np.sin(a), 350 - 23.5 * np.sin(a) - 166.5 * np.cos(a))
    assert abs(cx - want[0]) < 25 and abs(cy - want[1]) < 25


def test_face_free_images_give_nothing(enc: DlibFaceEncoder) -> None:
    from skimage import data

    assert enc.faces(data.coffee()) == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 832, 3), dtype=np.uint8)
    assert enc.faces(noise) == []
    assert enc.faces(np.zeros((480, 832, 3), np.uint8)) == []


def test_bad_images_are_refused(enc: DlibFaceEncoder) -> None:
    with pytest.raises(InvalidRequestError):
        enc.faces(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(InvalidRequestError):
        enc.faces(np.zeros((64, 64, 2), np.uint8))


def test_missing_or_corrupt_models_raise_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        DlibFaceEncoder(tmp_path / "nowhere").warm_up()
    (tmp_path / "shape_predictor_5_face_landmarks.dat").write_bytes(b"not a model" * 100)
    (tmp_path / "dlib_face_recognition_resnet_model_v1.dat").write_bytes(b"not a model" * 100)
    with pytest.raises(ModelLoadError, match="cannot load"):
        DlibFaceEncoder(tmp_path).faces(np.zeros((32, 32, 3), np.uint8))


def test_models_dir_and_protocol() -> None:
    folder = face_models_dir()
    assert (folder / "dlib_face_recognition_resnet_model_v1.dat").is_file()
    assert isinstance(DlibFaceEncoder(), FaceEncoder)
    assert DlibFaceEncoder.id == "dlib-resnet-v1"


def test_shared_encoder_is_one_per_process() -> None:
    got: list[DlibFaceEncoder] = []
    threads = [threading.Thread(target=lambda: got.append(shared_face_encoder())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(e is got[0] for e in got)


def test_concurrent_calls_agree(enc: DlibFaceEncoder, obama: Face) -> None:
    image = _rescale_to_40px_face(_load("obama.jpg"))
    results: list[list[Face]] = []
    threads = [threading.Thread(target=lambda: results.append(enc.faces(image))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    first = results[0][0].embedding
    assert all(len(r) == 1 and np.allclose(r[0].embedding, first) for r in results)
