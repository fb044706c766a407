"""Reference-image and output-frame checks with a tiny random open_clip model; behaviour without an encoder.

A random model's embeddings carry no meaning, so what these tests establish is the machinery: sampling,
embedding, comparison with registered faces and concept texts, thresholds per encoder, grants, fail-closed.
Whether real CLIP weights recognise nudity or a face is not measured here (no weights are available offline).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gen4sdk.errors import InvalidRequestError, MediaError
from gen4sdk.policy import LikenessRegistry, OpenClipEncoder, Policy, PolicyPack, tiny_open_clip
from gen4sdk.types import GenerationRequest

TINY = "open_clip:tiny-random"


@pytest.fixture(scope="module")
def encoder() -> OpenClipEncoder:
    return tiny_open_clip(seed=0)


def _image(seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth random colour fields: distinct images whose embeddings differ under a random CLIP
    small = rng.integers(0, 256, size=(4, 4, 3)).astype(np.float32)
    big = np.kron(small, np.ones((size // 4, size // 4, 1), np.float32))
    return np.clip(big + rng.normal(0, 4, big.shape), 0, 255).astype(np.uint8)


def _with_thresholds(pack: PolicyPack, *, face: float | None, concept: float | None) -> PolicyPack:
    cats = []
    for c in pack.categories:
        if c.concepts is not None and concept is not None:
            c = c.model_copy(
                update={"concepts": c.concepts.model_copy(update={"threshold": {TINY: concept}})}
            )
        cats.append(c)
    likeness = pack.likeness.model_copy(update={"image_threshold": {TINY: face} if face is not None else {}})
    return pack.model_copy(update={"categories": cats, "likeness": likeness})


def test_no_encoder_default_warns_strict_fails_closed() -> None:
    frames = np.stack([_image(i) for i in range(4)])
    d = Policy.default(semantic=False).check_frames(frames)
    assert d.allowed and d.stage == "output" and "frames.unchecked" in d.warnings
    assert d.summary().outcome == "allowed"
    s = Policy.load("strict", semantic=False).check_frames(frames)
    assert not s.allowed and s.code == "SAFETY.OUTPUT.FRAMES" and "frames.unchecked" in s.warnings
    img = _image(9)
    assert "image.unchecked" in Policy.default(semantic=False).check_image(img).warnings
    si = Policy.load("strict", semantic=False).check_image(img)
    assert not si.allowed and si.code == "SAFETY.INPUT.IMAGE"


def test_encoder_without_calibration_follows_the_unchecked_rule(encoder: OpenClipEncoder) -> None:
    frames = np.stack([_image(i) for i in range(3)])
    d = Policy.default(semantic=False, image_encoder=encoder).check_frames(frames)
    assert d.allowed and f"frames.untuned:{TINY}" in d.warnings
    s = Policy.load("strict", semantic=False, image_encoder=encoder).check_frames(frames)
    assert not s.allowed and s.code == "SAFETY.OUTPUT.FRAMES"


def test_registered_face_in_frames_is_refused_unless_granted(
    tmp_path: Path, encoder: OpenClipEncoder
) -> None:
    base = Policy.default(semantic=False).pack
    # the random model puts unrelated images at cosine ~0.9; a near-copy of the reference at > 0.99
    policy = Policy(_with_thresholds(base, face=0.995, concept=None), semantic=False, image_encoder=encoder)
    reg = LikenessRegistry(tmp_path / "store.db")
    ident = reg.add_identity("Registered Person")
    face = _image(42)
    reg.add_face(ident.id, face, encoder=encoder)

    others = np.stack([_image(i) for i in range(6)])
    ok = policy.check_frames(others, likeness=reg)
    assert ok.allowed, ok.scores
    assert ok.scores["likeness"] < 0.995

    noisy = np.clip(face.astype(int) + np.random.default_rng(1).integers(-3, 4, face.shape), 0, 255).astype(
        np.uint8
    )
    clip = np.concatenate([others[:3], noisy[None], others[3:]])
    bad = policy.check_frames(clip, likeness=reg, user="alice")
    assert not bad.allowed and bad.code == "SAFETY.OUTPUT.FRAMES" and bad.stage == "output"
    assert bad.categories == ["likeness"] and bad.scores["likeness"] >= 0.995
    assert [s.rule for s in bad.spans] == [f"face:{ident.id}"]

    # reference image: refused as likeness on input
    d = policy.check_image(noisy, likeness=reg, user="alice")
    assert not d.allowed and d.code == "SAFETY.INPUT.LIKENESS"
    req = GenerationRequest(prompt="a person walking in a park", user="alice", request_id="r")
    assert policy.check_request(req, image=noisy, likeness=reg).code == "SAFETY.INPUT.LIKENESS"

    g = reg.grant(ident.id, "alice")
    assert policy.check_frames(clip, likeness=reg, user="alice").grant_id == g.id
    d = policy.check_request(req, image=noisy, likeness=reg)
    assert d.allowed and d.grant_id == g.id and "image:likeness" in d.scores
    assert not policy.check_frames(clip, likeness=reg, user="bob").allowed


def test_concept_scores_and_thresholds(encoder: OpenClipEncoder) -> None:
    base = Policy.default(semantic=False).pack
    frames = np.stack([_image(i) for i in range(5)])
    scored = Policy(_with_thresholds(base, face=None, concept=1.5), semantic=False, image_encoder=encoder)
    d = scored.check_frames(frames)
    # every category with concepts is scored with the encoder's thresholds; none reaches an impossible 1.5
    assert d.allowed and {"sexual", "violence", "sexual_minors"} <= set(d.scores)
    assert all(-2.0 <= v <= 2.0 for v in d.scores.values())
    strict_thr = max(d.scores.values()) - 1e-3
    blocking = Policy(
        _with_thresholds(base, face=None, concept=strict_thr), semantic=False, image_encoder=encoder
    )
    b = blocking.check_frames(frames)
    assert not b.allowed and b.code == "SAFETY.OUTPUT.FRAMES" and b.categories


def test_frames_are_sampled(encoder: OpenClipEncoder) -> None:
    calls: list[int] = []

    class Counting:
        id = encoder.id

        def encode_images(self, images: list[np.ndarray]) -> np.ndarray:
            calls.append(len(images))
            return encoder.encode_images(images)

        def encode_texts(self, texts: list[str]) -> np.ndarray:
            return encoder.encode_texts(texts)

    p = Policy.default(semantic=False, image_encoder=Counting())
    p.check_frames(np.zeros((100, 32, 32, 3), np.uint8))
    assert calls == [8]  # pack default: frames.sample_frames = 8


def test_bad_images_and_frames(tmp_path: Path) -> None:
    p = Policy.default(semantic=False)
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
    from PIL import Image

    good = tmp_path / "ok.png"
    Image.fromarray(_image(3)).save(good)
    assert p.check_image(good).allowed
    req = GenerationRequest(prompt="a cat", image=junk, request_id="r")
    with pytest.raises(MediaError):
        p.check_request(req)


def test_fail_closed_when_image_encoder_breaks() -> None:
    class Broken:
        id = "open_clip:broken"

        def encode_images(self, images: list[np.ndarray]) -> np.ndarray:
            raise RuntimeError("cuda went away")

        def encode_texts(self, texts: list[str]) -> np.ndarray:
            raise RuntimeError("cuda went away")

    p = Policy.default(semantic=False, image_encoder=Broken())
    d = p.check_frames(np.zeros((2, 32, 32, 3), np.uint8))
    assert not d.allowed and d.code == "SAFETY.INTERNAL" and d.stage == "output"
    assert p.check_image(np.zeros((32, 32, 3), np.uint8)).code == "SAFETY.INTERNAL"


def test_registered_faces_that_cannot_be_compared_fail_closed_in_strict(
    tmp_path: Path, encoder: OpenClipEncoder
) -> None:
    reg = LikenessRegistry(tmp_path / "store.db")
    ident = reg.add_identity("Registered Person")
    reg.add_face(ident.id, _image(42), encoder=encoder)
    frames = np.stack([_image(i) for i in range(3)])
    # neither shipped pack has a likeness threshold for the tiny encoder
    d = Policy.default(semantic=False, image_encoder=encoder).check_frames(frames, likeness=reg)
    assert d.allowed and f"likeness.frames_untuned:{TINY}" in d.warnings
    strict = Policy.load("strict", semantic=False, image_encoder=encoder)
    strict = Policy(_with_thresholds(strict.pack, face=None, concept=1.5), semantic=False, image_encoder=encoder)
    s = strict.check_frames(frames, likeness=reg)
    assert not s.allowed and s.code == "SAFETY.OUTPUT.FRAMES" and "likeness.frames_unchecked" in s.warnings
    # without registered faces there is nothing to compare, and the calibrated concepts decide alone
    assert strict.check_frames(frames, likeness=LikenessRegistry(tmp_path / "empty.db")).allowed
