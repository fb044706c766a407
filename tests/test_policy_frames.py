"""Reference images and output frames with the real built-in models: open_nsfw and dlib's face models.

Explicit images cannot be used here, so refusals for content are exercised through a detector of the test's
own behind the ContentDetector interface (what an operator plugs in); the shipped detector is checked on
natural benign frames and for failing closed. Faces use the public-domain photos in tests/data/faces.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gen4sdk.errors import InvalidRequestError, MediaError
from gen4sdk.policy import DlibFaceEncoder, Face, LikenessRegistry, OpenNsfwDetector, Policy
from gen4sdk.policy._sampling import sample_indices, scene_cuts
from gen4sdk.types import GenerationRequest

FACES = Path(__file__).parent / "data" / "faces"


def _photo(name: str) -> np.ndarray:
    with Image.open(FACES / name) as im:
        return np.asarray(im.convert("RGB"))


def _frame_with(
    face: np.ndarray | None, *, height: int = 480, width: int = 640, level: int = 90
) -> np.ndarray:
    """A flat frame with the head of ``face`` (a portrait photo) pasted at the centre, 60% of the frame high."""
    frame = np.full((height, width, 3), level, np.uint8)
    if face is not None:
        face = face[: int(face.shape[0] * 0.45)]  # the portraits' heads fill their top 45%
        h = int(height * 0.6)
        w = int(face.shape[1] * h / face.shape[0])
        small = np.asarray(Image.fromarray(face).resize((w, h)))
        y, x = (height - h) // 2, (width - w) // 2
        frame[y : y + h, x : x + w] = small
    return frame


class FixedDetector:
    """A content detector that flags exactly the images whose mean level is 255 (white): a stand-in for
    explicit content, which may not be used in this repository."""

    id = "open_nsfw"  # the default pack's threshold for this id applies
    categories = ("sexual",)

    def __init__(self) -> None:
        self.calls = 0

    def scores(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        return {"sexual": np.array([1.0 if im.mean() >= 254.5 else 0.0 for im in images], np.float32)}

    def warm_up(self) -> None:
        pass


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> LikenessRegistry:
    reg = LikenessRegistry(tmp_path_factory.mktemp("reg") / "store.db")
    ident = reg.add_identity("Barack Obama", identity_id="id_obama")
    reg.add_face(ident.id, _photo("obama.jpg"))  # the built-in face encoder: no encoder argument
    return reg


def test_natural_frames_pass_the_shipped_detector_and_scores_are_recorded() -> None:
    from skimage import data

    frames = np.stack(
        [
            np.asarray(Image.fromarray(im).resize((416, 240)))
            for im in (data.astronaut(), data.coffee(), data.chelsea())
        ]
    )
    d = Policy.default(semantic=False).check_frames(frames, fps=2)
    assert d.allowed and d.code is None and "frames.unchecked" not in d.warnings
    assert 0.0 <= d.scores["sexual:open_nsfw"] < 0.8
    assert d.core_sha256 is not None and len(d.core_sha256) == 64


def test_a_flagged_frame_refuses_the_clip_and_a_flagged_image_the_request(tmp_path: Path) -> None:
    p = Policy.default(semantic=False, detectors=[FixedDetector()], faces=False)
    frames = np.full((32, 64, 64, 3), 90, np.uint8)
    assert p.check_frames(frames, fps=16).allowed
    frames[20:26] = 255  # six frames (0.4 s) between two time samples would be missed by a fixed count...
    d = p.check_frames(frames, fps=16)
    # ...but the jump to white is a scene cut, and the first frame of every scene is checked
    assert (
        not d.allowed
        and d.code == "SAFETY.OUTPUT.FRAMES"
        and d.stage == "output"
        and d.categories == ["sexual"]
    )
    white = np.full((64, 64, 3), 255, np.uint8)
    i = p.check_image(white)
    assert not i.allowed and i.code == "SAFETY.INPUT.IMAGE"
    path = tmp_path / "ref.png"
    Image.fromarray(white).save(path)
    r = p.check_request(GenerationRequest(prompt="a calm lake", image=path, request_id="r1"))
    assert not r.allowed and r.code == "SAFETY.INPUT.IMAGE"


def test_without_detectors_default_warns_and_strict_fails_closed() -> None:
    frames = np.full((4, 32, 32, 3), 90, np.uint8)
    d = Policy.default(semantic=False, detectors=False, faces=False).check_frames(frames)
    assert d.allowed and "frames.unchecked" in d.warnings
    s = Policy.load("strict", semantic=False, detectors=False, faces=False).check_frames(frames)
    assert not s.allowed and s.code == "SAFETY.OUTPUT.FRAMES" and "frames.unchecked:sexual" in s.warnings


def test_a_broken_model_file_refuses_with_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "open-nsfw.onnx"
    bad.write_bytes(b"not a model")
    p = Policy.default(semantic=False, detectors=[OpenNsfwDetector(bad)], faces=False)
    d = p.check_frames(np.full((2, 32, 32, 3), 90, np.uint8))
    assert not d.allowed and d.code == "SAFETY.UNAVAILABLE" and d.stage == "output"
    assert p.check_image(np.full((32, 32, 3), 90, np.uint8)).code == "SAFETY.UNAVAILABLE"
    missing = Policy.default(
        semantic=False, detectors=False, faces=DlibFaceEncoder(tmp_path / "nothing-here")
    )
    reg = LikenessRegistry(tmp_path / "r.db")
    reg.add_face_embedding(
        reg.add_identity("Some One").id, np.ones(128, np.float32), encoder_id="dlib-resnet-v1"
    )
    assert (
        missing.check_frames(np.full((2, 32, 32, 3), 90, np.uint8), likeness=reg).code == "SAFETY.UNAVAILABLE"
    )


def test_a_protected_face_in_frames_needs_a_grant_and_revocation_is_immediate(
    registry: LikenessRegistry,
) -> None:
    p = Policy.default(semantic=False, detectors=False)
    obama = _frame_with(_photo("obama_partial_face.jpg"))  # another photo than the registered one
    clip = np.stack([_frame_with(None)] * 8 + [obama] * 8)
    d = p.check_frames(clip, fps=8, likeness=registry, user="u1", use="ad")
    assert not d.allowed and d.code == "SAFETY.OUTPUT.LIKENESS" and "likeness" in d.categories
    assert d.scores["likeness"] >= 0.91 and any(s.rule == "face:id_obama" for s in d.spans)
    grant = registry.grant("id_obama", "u1", uses=["ad"])
    ok = p.check_frames(clip, fps=8, likeness=registry, user="u1", use="ad")
    assert ok.allowed and ok.grant_id == grant.id
    assert not p.check_frames(clip, fps=8, likeness=registry, user="u2", use="ad").allowed  # not their grant
    assert not p.check_frames(clip, fps=8, likeness=registry, user="u1", use="news").allowed  # not this use
    registry.revoke(grant.id)
    assert not p.check_frames(clip, fps=8, likeness=registry, user="u1", use="ad").allowed
    # another person's face is no match
    biden = np.stack([_frame_with(_photo("biden.jpg"))] * 4)
    other = p.check_frames(biden, fps=8, likeness=registry, user="u1")
    assert other.allowed and other.scores["likeness"] < 0.91


def test_a_protected_face_in_a_reference_image(registry: LikenessRegistry, tmp_path: Path) -> None:
    p = Policy.default(semantic=False, detectors=False)
    mirrored = _photo("obama_partial_face2.jpg")[:, ::-1].copy()
    d = p.check_image(mirrored, likeness=registry, user="u9")
    assert not d.allowed and d.code == "SAFETY.INPUT.LIKENESS"
    path = tmp_path / "ref.jpg"
    Image.fromarray(mirrored).convert("L").save(path, quality=40)  # greyscale JPEG of the mirrored photo
    req = GenerationRequest(prompt="a person waving", image=path, user="u9", request_id="r2")
    r = p.check_request(req, likeness=registry)
    assert not r.allowed and r.code == "SAFETY.INPUT.LIKENESS"
    assert p.check_image(_photo("biden.jpg"), likeness=registry, user="u9").allowed


def test_registering_faces(registry: LikenessRegistry, tmp_path: Path) -> None:
    ident = registry.add_identity("Second Person")
    with pytest.raises(InvalidRequestError, match="no face"):
        registry.add_face(ident.id, np.full((200, 200, 3), 90, np.uint8))
    two = np.concatenate([_frame_with(_photo("obama.jpg")), _frame_with(_photo("biden.jpg"))], axis=1)
    with pytest.raises(InvalidRequestError, match="2 faces"):
        registry.add_face(ident.id, two)
    with pytest.raises(InvalidRequestError, match="no identity"):
        registry.add_face("id_nobody", _photo("biden.jpg"))
    registry.add_face(ident.id, FACES / "biden.jpg")  # a path works too; several photos per identity
    registry.add_face(ident.id, _photo("biden.jpg")[:, ::-1].copy())
    assert registry.get(ident.id) is not None and registry.get(ident.id).face_embeddings == 2  # type: ignore[union-attr]


def test_faces_are_sampled_by_time_and_tracked_within_a_scene(registry: LikenessRegistry) -> None:
    class Counting(DlibFaceEncoder):
        embedded = 0

        def embed(self, image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> list[Face]:
            Counting.embedded += len(boxes)
            return super().embed(image, boxes)

    enc = Counting()
    p = Policy.default(semantic=False, detectors=False, faces=enc)
    # an 81-frame clip at 16 fps with a face for half a second (8 frames) in the middle of one long shot:
    # 8 evenly spaced frames could step over it, two samples a second cannot
    blank, face = _frame_with(None, level=120), _frame_with(_photo("obama.jpg"), level=120)
    clip = np.stack([blank] * 36 + [face] * 8 + [blank] * 37)
    assert scene_cuts(clip) == []  # the face comes in without a cut
    assert any(36 <= i < 44 for i in sample_indices(clip, fps=16, per_second=2, max_samples=64, fallback=8))
    assert not p.check_frames(clip, fps=16, likeness=registry, user="x").allowed
    # a face on screen for the whole clip is embedded once per 3 samples, not in every sample
    Counting.embedded = 0
    steady = np.stack([face] * 81)
    d = p.check_frames(steady, fps=16, likeness=registry, user="x")
    assert not d.allowed and Counting.embedded == 4  # samples 0..10 (11) -> embedded at 0, 3, 6, 9


def test_bad_images_and_frames(tmp_path: Path) -> None:
    p = Policy.default(semantic=False, detectors=[FixedDetector()], faces=False)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG not really")
    with pytest.raises(MediaError):
        p.check_image(junk)
    with pytest.raises(MediaError):
        p.check_image(tmp_path / "missing.png")
    with pytest.raises(InvalidRequestError):
        p.check_image(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(InvalidRequestError):
        p.check_image(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InvalidRequestError):
        p.check_frames(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(InvalidRequestError):
        p.check_frames(np.zeros((0, 32, 32, 3), np.uint8))
    with pytest.raises(InvalidRequestError, match="uint8"):
        p.check_frames(np.zeros((2, 32, 32, 3), np.float32))
    # a huge image is refused from its header, before it is decoded
    huge = tmp_path / "huge.png"
    Image.new("L", (8000, 6000)).save(huge)
    with pytest.raises(MediaError, match="over the limit"):
        p.check_image(huge)
    # CMYK, palette and 16-bit images are converted faithfully: a white 16-bit PNG is still white
    white16 = tmp_path / "white16.png"
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(white16)
    assert not p.check_image(white16).allowed
    grey16 = tmp_path / "grey16.png"
    Image.fromarray(np.full((40, 40), 30000, np.uint16)).save(grey16)
    assert p.check_image(grey16).allowed
    cmyk = tmp_path / "white.jpg"
    Image.new("CMYK", (40, 40), (0, 0, 0, 0)).save(cmyk)
    assert not p.check_image(cmyk).allowed
    pal = tmp_path / "pal.png"
    Image.new("RGB", (40, 40), (255, 255, 255)).convert("P").save(pal)
    assert not p.check_image(pal).allowed
    req = GenerationRequest(prompt="a cat", image=junk, request_id="r")
    with pytest.raises(MediaError):
        p.check_request(req)


def test_fail_closed_when_a_detector_breaks() -> None:
    class Broken(FixedDetector):
        def scores(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
            raise RuntimeError("the accelerator went away")

    p = Policy.default(semantic=False, detectors=[Broken()], faces=False)
    d = p.check_frames(np.zeros((2, 32, 32, 3), np.uint8))
    assert not d.allowed and d.code == "SAFETY.INTERNAL" and d.stage == "output"
    assert p.check_image(np.zeros((32, 32, 3), np.uint8)).code == "SAFETY.INTERNAL"


def test_registered_faces_without_a_face_encoder(registry: LikenessRegistry) -> None:
    frames = np.stack([_frame_with(None)] * 3)
    d = Policy.default(semantic=False, detectors=False, faces=False).check_frames(frames, likeness=registry)
    assert d.allowed and "likeness.frames_unchecked:no_face_encoder" in d.warnings
    s = Policy.load("strict", semantic=False, detectors=[FixedDetector()], faces=False).check_frames(
        frames, likeness=registry
    )
    assert not s.allowed and s.code == "SAFETY.OUTPUT.LIKENESS"


def test_a_clip_with_more_scene_starts_than_samples_is_still_seen_end_to_end() -> None:
    # a strobing first half (a cut at every frame) must not use up the budget before the second half is seen
    strobe = [np.full((32, 32, 3), 0 if i % 2 else 250, np.uint8) for i in range(120)]
    calm = [np.full((32, 32, 3), 90, np.uint8)] * 120
    clip = np.stack(strobe + calm)
    idx = sample_indices(clip, fps=24, per_second=2, max_samples=64, fallback=8)
    assert len(idx) <= 64 and idx[0] == 0 and idx[-1] == len(clip) - 1
    gaps = np.diff(idx)
    assert gaps.max() <= 24  # no stretch of more than a second unchecked


def test_faces_enrolled_with_another_encoder_are_reported_unchecked(
    registry: LikenessRegistry, tmp_path: Path
) -> None:
    reg = LikenessRegistry(tmp_path / "mixed.db")
    reg.add_face(reg.add_identity("Barack Obama").id, _photo("obama.jpg"))
    other = reg.add_identity("Enrolled Elsewhere")
    reg.add_face_embedding(other.id, np.ones(64, np.float32), encoder_id="someone-elses-encoder")
    frames = np.stack([_frame_with(_photo("obama_partial_face.jpg"))] * 2)
    d = Policy.default(semantic=False, detectors=False).check_frames(frames, fps=2, likeness=reg, user="u")
    # Obama is still compared and refused; the identity that cannot be compared is named in a warning
    assert not d.allowed and d.code == "SAFETY.OUTPUT.LIKENESS"
    assert "likeness.frames_unchecked:no_embeddings_for:dlib-resnet-v1" in d.warnings
    blank = np.stack([_frame_with(None)] * 2)
    assert Policy.default(semantic=False, detectors=False).check_frames(blank, fps=2, likeness=reg).allowed
    strict = Policy.load("strict", semantic=False, detectors=[FixedDetector()])
    assert strict.check_frames(blank, fps=2, likeness=reg).code == "SAFETY.OUTPUT.LIKENESS"


def test_images_are_decoded_as_a_viewer_sees_them(tmp_path: Path) -> None:
    p = Policy.default(semantic=False, detectors=[FixedDetector()], faces=False)
    # content drawn only by the alpha channel, over transparent black: composited onto white, it is white
    rgba = np.zeros((40, 40, 4), np.uint8)
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    assert not p.check_image(tmp_path / "clear.png").allowed
    # a float image in 0-1 is not read as black
    Image.fromarray(np.full((40, 40), 1.0, np.float32)).save(tmp_path / "white.tif")
    assert not p.check_image(tmp_path / "white.tif").allowed
    with pytest.raises(InvalidRequestError, match="fps"):
        p.check_frames(np.zeros((2, 32, 32, 3), np.uint8), fps=float("inf"))
