"""The perceptual fingerprint: hashing, matching under edits, its index in the store (both backends) and the
resolution service's lookups by content and by fingerprint."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from conftest import BBB, natural_frames
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from gen4sdk import fingerprint as fp
from gen4sdk import media
from gen4sdk.compliance import Store
from gen4sdk.errors import InvalidRequestError, StoreError
from gen4sdk.server import create_app

JUMBF = (Path(__file__).parent / "data" / "golden" / "0.1.0" / "manifest.c2pa").read_bytes()
FPS = 12.0


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return media.read_frames(BBB, max_frames=48)  # 4 s at 12 fps: 16 ticks


@pytest.fixture(scope="module")
def print_of_clip(clip: np.ndarray) -> fp.Fingerprint:
    return fp.fingerprint_frames(clip, FPS)


def _blur(frames: np.ndarray, radius: float) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(radius))) for f in frames])


def _roundtrip(frames: np.ndarray, tmp_path: Path, crf: int = 35) -> np.ndarray:
    path = tmp_path / "re.mp4"
    media.encode_video(frames, path, fps=FPS, crf=crf, preset="veryfast")
    return media.read_frames(path)


def test_a_fingerprint_has_a_hash_per_quarter_second_and_round_trips(print_of_clip: fp.Fingerprint) -> None:
    assert len(print_of_clip.hashes) == 16 and print_of_clip.usable
    data = print_of_clip.to_bytes()
    assert len(data) == 10 + 8 * 16
    assert fp.Fingerprint.from_bytes(data) == print_of_clip
    for bad in (b"", b"G4FP", data[:-1], b"XXXX" + data[4:], data[:4] + b"\x09" + data[5:]):
        with pytest.raises(InvalidRequestError):
            fp.Fingerprint.from_bytes(bad)


def test_frames_of_the_wrong_kind_are_a_typed_error() -> None:
    with pytest.raises(InvalidRequestError, match="uint8"):
        fp.fingerprint_frames(np.zeros((4, 16, 16, 3), np.float32), 8.0)
    with pytest.raises(InvalidRequestError, match="fps"):
        fp.fingerprint_frames(np.zeros((4, 16, 16, 3), np.uint8), 0.0)


def test_flat_frames_say_nothing() -> None:
    black = fp.fingerprint_frames(np.zeros((24, 90, 160, 3), np.uint8), FPS)
    assert len(black.hashes) == 8 and not black.usable
    assert fp.band_keys(black.hashes) == []
    assert fp.match(black, black) is None


@pytest.mark.parametrize(
    ("name", "edit", "view"),
    [
        ("CRF 45", lambda f, t: _roundtrip(f, t, crf=45), "as embedded"),
        ("blur radius 4", lambda f, t: _roundtrip(_blur(f, 4), t), "as embedded"),
        ("a quarter of the size", lambda f, t: _roundtrip(media_resize(f, 0.25), t), "as embedded"),
        ("mirrored", lambda f, t: _roundtrip(f[:, :, ::-1], t), "mirrored"),
        ("turned a quarter", lambda f, t: _roundtrip(np.rot90(f, 1, axes=(1, 2)), t), "turned 270 degrees"),
        ("greyscale", lambda f, t: _roundtrip(np.repeat(f.mean(axis=3, keepdims=True), 3, 3).astype(np.uint8), t), "as embedded"),
    ],
)  # fmt: skip
def test_the_same_clip_matches_after_edits(
    clip: np.ndarray, print_of_clip: fp.Fingerprint, tmp_path: Path, name: str, edit, view: str
) -> None:  # type: ignore[no-untyped-def]
    found = fp.match(fp.query_views(edit(clip, tmp_path), FPS), print_of_clip)
    assert found is not None and found.is_match, (name, found)
    assert found.view == view and found.offset_seconds == 0.0 and found.frames >= 12
    assert found.similarity >= 60


def media_resize(frames: np.ndarray, factor: float) -> np.ndarray:
    h, w = (int(frames.shape[1] * factor) // 2 * 2, int(frames.shape[2] * factor) // 2 * 2)
    return np.stack(
        [np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.BILINEAR)) for f in frames]
    )


def test_an_excerpt_matches_where_it_starts(clip: np.ndarray, print_of_clip: fp.Fingerprint) -> None:
    excerpt = clip[18:42]  # from 1.5 s, 2 s long, another frame rate
    found = fp.match(fp.query_views(excerpt[::2], FPS / 2), print_of_clip)
    assert found is not None and found.is_match and found.offset_seconds == 1.5 and found.frames == 8


def test_other_content_and_stills_do_not_match(print_of_clip: fp.Fingerprint) -> None:
    for seed in range(3):
        other = natural_frames(n=48, height=144, width=256, seed=seed)
        found = fp.match(fp.query_views(other, FPS), print_of_clip)
        assert found is None or not found.is_match, found
    # one frame (a still image) is too little to claim a resemblance with a clip of several seconds
    still = media.read_frames(BBB, max_frames=1)
    assert fp.match(fp.query_views(still, FPS), print_of_clip) is None


def test_the_store_finds_a_manifest_by_content(
    store_location: str, clip: np.ndarray, print_of_clip: fp.Fingerprint, tmp_path: Path
) -> None:
    store = Store(store_location)
    store.put_manifest(
        payload=b"\x01" * 8,
        manifest_id="urn:c2pa:bunny",
        manifest_store=JUMBF,
        asset_sha256="ab" * 32,
        fingerprint=print_of_clip.to_bytes(),
    )
    other = fp.fingerprint_frames(natural_frames(n=48, seed=5), FPS)
    store.put_manifest(
        payload=b"\x02" * 8,
        manifest_id="urn:c2pa:astronaut",
        manifest_store=JUMBF,
        asset_sha256="cd" * 32,
        fingerprint=other.to_bytes(),
    )
    store.put_manifest(
        payload=b"\x03" * 8, manifest_id="urn:c2pa:none", manifest_store=JUMBF, asset_sha256="ef" * 32
    )
    query = fp.query_views(_roundtrip(_blur(clip, 4), tmp_path), FPS)
    ((manifest, how),) = store.find_by_content(query)
    assert manifest.manifest_id == "urn:c2pa:bunny" and how.is_match
    assert store.manifest_store_for_content(query) == (JUMBF, how)
    assert store.find_by_content(fp.query_views(natural_frames(n=48, seed=9, width=320), FPS)) == []
    with pytest.raises(StoreError, match="fingerprint"):
        store.put_manifest(
            payload=b"\x04" * 8, manifest_id="urn:c2pa:bad", manifest_store=JUMBF, asset_sha256="00" * 32,
            fingerprint=b"not a fingerprint",
        )  # fmt: skip
    assert store.get_manifest("urn:c2pa:bad") is None  # nothing of it kept


def test_a_version_3_store_read_as_it_is_has_no_fingerprints(
    tmp_path: Path, print_of_clip: fp.Fingerprint
) -> None:
    import sqlite3

    path = tmp_path / "v3.db"
    Store(path).put_manifest(
        payload=b"\x01" * 8, manifest_id="urn:c2pa:a", manifest_store=JUMBF, asset_sha256="ab" * 32
    )
    with sqlite3.connect(path) as db:  # as gen4sdk wrote it before version 4
        db.execute("DROP TABLE manifests_fingerprints")
        db.execute("DROP TABLE manifests_fingerprint_bands")
        db.execute("UPDATE audit_meta SET value = '3' WHERE key = 'version'")
    assert Store(path, read_only=True).find_by_content(print_of_clip) == []
    upgraded = Store(path)  # a writer upgrades it in place
    upgraded.put_manifest(
        payload=b"\x02" * 8, manifest_id="urn:c2pa:b", manifest_store=JUMBF, asset_sha256="cd" * 32,
        fingerprint=print_of_clip.to_bytes(),
    )  # fmt: skip
    assert [m.manifest_id for m, _ in upgraded.find_by_content(print_of_clip)] == ["urn:c2pa:b"]


def test_the_service_finds_a_clip_by_content_and_by_fingerprint(
    tmp_path: Path, clip: np.ndarray, print_of_clip: fp.Fingerprint
) -> None:
    store = Store(tmp_path / "svc.db")
    store.put_manifest(
        payload=b"\x01" * 8, manifest_id="urn:c2pa:bunny", manifest_store=JUMBF, asset_sha256="ab" * 32,
        fingerprint=print_of_clip.to_bytes(),
    )  # fmt: skip
    client = TestClient(create_app(store, page=False))
    algs = client.get("/services/supportedAlgorithms").json()
    assert algs["fingerprints"] == [{"alg": fp.ALGORITHM}]
    # an upload with no watermark (the bunny was never marked), blurred and re-encoded: found by what it looks like
    upload = tmp_path / "upload.mp4"
    media.encode_video(_blur(clip, 3), upload, fps=FPS, crf=35)
    r = client.post("/matches/byContent", content=upload.read_bytes(), headers={"content-type": "video/mp4"})
    assert r.status_code == 200, r.text
    (match,) = r.json()["matches"]
    assert match["manifestId"] == "urn:c2pa:bunny" and 60 <= match["similarityScore"] <= 100
    # asking for the watermark algorithm only does not fall back to the fingerprint
    watermark_alg = algs["watermarks"][0]["alg"]
    r = client.post(
        "/matches/byContent",
        params={"alg": watermark_alg},
        content=upload.read_bytes(),
        headers={"content-type": "video/mp4"},
    )
    assert r.status_code == 200 and r.json() == {"matches": []}
    # a fingerprint sent as a binding value
    value = base64.b64encode(fp.fingerprint_frames(_roundtrip(clip, tmp_path), FPS).to_bytes()).decode()
    r = client.get("/matches/byBinding", params={"alg": fp.ALGORITHM, "value": value})
    assert r.status_code == 200 and r.json()["matches"][0]["manifestId"] == "urn:c2pa:bunny"
    bad = base64.b64encode(b"not a fingerprint").decode()
    assert client.get("/matches/byBinding", params={"alg": fp.ALGORITHM, "value": bad}).status_code == 400
