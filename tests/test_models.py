"""The diffusers backend, on the tiny random Wan pipeline built in code (no downloads)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gen4sdk.errors import (
    GenerationCancelled,
    GenerationFailed,
    InvalidRequestError,
    ModelLoadError,
)
from gen4sdk.models import DiffusersVideoModel, VideoModel, _weights, tiny_model, tiny_pipeline
from gen4sdk.types import GenerationRequest

# small shapes keep the suite fast; the demo size (256x144x17) is exercised once
SMALL = {"num_frames": 5, "height": 32, "width": 48, "steps": 2}


def req(**kw) -> GenerationRequest:
    base = {"prompt": "a lighthouse at dusk", "request_id": "req-1", **SMALL}
    base.update(kw)
    return GenerationRequest(**base)


@pytest.fixture(scope="module")
def t2v() -> DiffusersVideoModel:
    return tiny_model()


@pytest.fixture(scope="module")
def i2v() -> DiffusersVideoModel:
    return tiny_model(image_to_video=True)


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tiny-wan")
    tiny_pipeline(seed=0).save_pretrained(d)
    return d


@pytest.fixture
def weights_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "gen4sdk" / "weights-sha256.json"


# -- generation ---------------------------------------------------------------------------------------------------


def test_demo_size_shape_params_and_texture(t2v: DiffusersVideoModel) -> None:
    steps: list[tuple[int, int]] = []
    frames, params = t2v.generate(
        req(num_frames=17, height=144, width=256, steps=4, seed=7), on_step=lambda i, n: steps.append((i, n))
    )
    assert frames.shape == (17, 144, 256, 3) and frames.dtype == np.uint8
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert (params.num_frames, params.height, params.width, params.steps, params.seed) == (17, 144, 256, 4, 7)
    assert params.pipeline_class == "WanPipeline"
    assert params.scheduler == "FlowMatchEulerDiscreteScheduler"
    assert (params.device, params.dtype, params.memory_mode, params.image_to_video) == (
        "cpu",
        "float32",
        "none",
        False,
    )
    # the watermark and the output checks need texture, not the flat grey a random VAE usually decodes to
    per_frame_std = frames.reshape(17, -1).std(axis=1)
    assert np.median(per_frame_std) > 20
    assert (frames == 0).mean() < 0.05 and (frames == 255).mean() < 0.05
    assert isinstance(t2v, VideoModel)


def test_same_seed_same_frames_other_seed_differs(t2v: DiffusersVideoModel) -> None:
    a, _ = t2v.generate(req(seed=1))
    b, _ = t2v.generate(req(seed=1))
    c, _ = t2v.generate(req(seed=2))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1.0


def test_fresh_pipelines_with_same_seed_agree() -> None:
    # weights depend only on the construction seed, so two processes build the same model and weights digest
    m1, m2 = tiny_model(seed=3), tiny_model(seed=3)
    assert m1.info.weights_sha256 == m2.info.weights_sha256
    assert m1.info.weights_sha256 != tiny_model(seed=4).info.weights_sha256
    np.testing.assert_array_equal(m1.generate(req())[0], m2.generate(req())[0])


def test_prompt_and_negative_prompt_reach_the_model(t2v: DiffusersVideoModel) -> None:
    a, _ = t2v.generate(req(prompt="a cat"))
    b, _ = t2v.generate(req(prompt="a submarine"))
    c, _ = t2v.generate(req(prompt="a cat", negative_prompt="blurry, low quality"))
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"num_frames": 16}, "num_frames"),
        ({"num_frames": 2}, "num_frames"),
        ({"height": 40}, "height"),
        ({"width": 250}, "width"),
    ],
)
def test_invalid_shapes_rejected_before_any_step(t2v: DiffusersVideoModel, change: dict, field: str) -> None:
    steps: list[int] = []
    with pytest.raises(InvalidRequestError) as ei:
        t2v.generate(req(**change), on_step=lambda i, n: steps.append(i))
    assert ei.value.field == field
    assert "nearest valid" in str(ei.value)
    assert steps == []


def test_error_message_suggests_valid_values(t2v: DiffusersVideoModel) -> None:
    with pytest.raises(InvalidRequestError, match=r"13 or 17"):
        t2v.generate(req(num_frames=16))
    with pytest.raises(InvalidRequestError, match=r"144 or 160"):
        t2v.generate(req(height=150))


def test_cpu_threads_apply_only_during_generation(t2v: DiffusersVideoModel) -> None:
    import torch

    before = torch.get_num_threads()
    inside: list[int] = []
    t2v.generate(req(), on_step=lambda i, n: inside.append(torch.get_num_threads()))
    assert inside == [1, 1] and torch.get_num_threads() == before
    with pytest.raises(InvalidRequestError) as ei:
        DiffusersVideoModel(t2v.pipeline, model_id="x", cpu_threads=0)
    assert ei.value.field == "cpu_threads"


def test_cancel_stops_at_next_step_and_discards(t2v: DiffusersVideoModel) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def on_step(i: int, n: int) -> None:
        seen.append(i)
        if i == 2:
            cancel.set()

    with pytest.raises(GenerationCancelled):
        t2v.generate(req(steps=6), on_step=on_step, cancel=cancel)
    assert seen == [1, 2]


def test_on_step_may_cancel_by_raising(t2v: DiffusersVideoModel) -> None:
    def stop(i: int, n: int) -> None:
        raise GenerationCancelled("user closed the tab")

    with pytest.raises(GenerationCancelled, match="closed the tab"):
        t2v.generate(req(), on_step=stop)


def test_cancel_before_start(t2v: DiffusersVideoModel) -> None:
    cancel = threading.Event()
    cancel.set()
    seen: list[int] = []
    with pytest.raises(GenerationCancelled):
        t2v.generate(req(), on_step=lambda i, n: seen.append(i), cancel=cancel)
    assert seen == []


def test_cancel_from_another_thread(t2v: DiffusersVideoModel) -> None:
    cancel = threading.Event()
    started = threading.Event()

    def on_step(i: int, n: int) -> None:
        started.set()
        time.sleep(0.05)  # give the other thread time to cancel between steps

    outcome: list[BaseException] = []

    def run() -> None:
        try:
            t2v.generate(req(steps=50), on_step=on_step, cancel=cancel)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            outcome.append(e)

    th = threading.Thread(target=run)
    th.start()
    assert started.wait(60)
    cancel.set()
    th.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], GenerationCancelled)


def test_model_exception_becomes_generation_failed(
    t2v: DiffusersVideoModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*a, **k):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(t2v.pipeline.transformer, "forward", boom)
    with pytest.raises(GenerationFailed, match="out of memory") as ei:
        t2v.generate(req())
    assert isinstance(ei.value.__cause__, RuntimeError)


def test_on_step_error_is_a_generation_failure(t2v: DiffusersVideoModel) -> None:
    def bad(i: int, n: int) -> None:
        raise KeyError("progress sink gone")

    with pytest.raises(GenerationFailed) as ei:
        t2v.generate(req(), on_step=bad)
    assert isinstance(ei.value.__cause__, KeyError)


# -- image-to-video -----------------------------------------------------------------------------------------------


def test_image_to_video(i2v: DiffusersVideoModel) -> None:
    rng = np.random.default_rng(0)
    img_a = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    img_b = np.full((48, 64, 3), 200, dtype=np.uint8)
    a, params = i2v.generate(req(), image=img_a)
    b, _ = i2v.generate(req(), image=img_b)
    a2, _ = i2v.generate(req(), image=img_a)
    assert a.shape == (5, 32, 48, 3) and a.dtype == np.uint8
    assert params.image_to_video and params.pipeline_class == "WanImageToVideoPipeline"
    np.testing.assert_array_equal(a, a2)
    assert not np.array_equal(a, b)  # the reference image conditions the output


def test_image_to_video_from_request_path(i2v: DiffusersVideoModel, tmp_path: Path) -> None:
    from PIL import Image

    img = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "ref.png")
    a, _ = i2v.generate(req(image=tmp_path / "ref.png"))
    b, _ = i2v.generate(req(), image=img)
    np.testing.assert_array_equal(a, b)


def test_image_rules(t2v: DiffusersVideoModel, i2v: DiffusersVideoModel) -> None:
    img = np.zeros((32, 48, 3), np.uint8)
    with pytest.raises(InvalidRequestError) as ei:
        t2v.generate(req(), image=img)
    assert ei.value.field == "image"
    with pytest.raises(InvalidRequestError) as ei:
        i2v.generate(req())
    assert ei.value.field == "image"
    with pytest.raises(InvalidRequestError) as ei:
        i2v.generate(req(), image=img.astype(np.float32))
    assert ei.value.field == "image"
    with pytest.raises(InvalidRequestError) as ei:
        i2v.generate(req(), image=img[..., 0])
    assert ei.value.field == "image"


# -- devices, dtypes, memory modes ----------------------------------------------------------------------------------


def test_cpu_offload_needs_an_accelerator(saved_dir: Path) -> None:
    with pytest.raises(InvalidRequestError, match="accelerator") as ei:
        DiffusersVideoModel(tiny_pipeline(), model_id="x", device="cpu", memory_mode="cpu_offload")
    assert ei.value.field == "memory_mode"
    with pytest.raises(InvalidRequestError) as ei:
        DiffusersVideoModel.from_pretrained(saved_dir, memory_mode="cpu_offload")
    assert ei.value.field == "memory_mode"


def test_vae_tiling_mode() -> None:
    m = DiffusersVideoModel(tiny_pipeline(), model_id="x", memory_mode="vae_tiling", cpu_threads=1)
    assert m.pipeline.vae.use_tiling
    frames, params = m.generate(req())
    assert frames.shape == (5, 32, 48, 3) and params.memory_mode == "vae_tiling"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"device": "cuda:99"}, "device"),
        ({"device": "not-a-device"}, "device"),
        ({"dtype": "float64"}, "dtype"),
        ({"memory_mode": "turbo"}, "memory_mode"),
    ],
)
def test_bad_device_dtype_memory_mode(saved_dir: Path, kw: dict, field: str) -> None:
    with pytest.raises(InvalidRequestError) as ei:
        DiffusersVideoModel.from_pretrained(saved_dir, **kw)
    assert ei.value.field == field


def test_not_a_video_pipeline_object() -> None:
    class ImagePipeline:
        def __init__(self) -> None:
            self.components: dict = {}

        def __call__(self, prompt: str, height: int = 512, width: int = 512) -> None: ...

    with pytest.raises(ModelLoadError, match="not a video pipeline"):
        DiffusersVideoModel(ImagePipeline(), model_id="img")
    with pytest.raises(ModelLoadError):
        DiffusersVideoModel(object(), model_id="nothing")

    class VideoEditPipeline:
        def __init__(self) -> None:
            self.components: dict = {}

        def __call__(self, video: list, prompt: str, num_frames: int = 17) -> None: ...

    with pytest.raises(ModelLoadError, match="requires inputs this SDK does not supply: video"):
        DiffusersVideoModel(VideoEditPipeline(), model_id="v2v")


# -- loading from a directory ---------------------------------------------------------------------------------------


def test_from_pretrained_round_trip_and_weights_hash(
    saved_dir: Path, t2v: DiffusersVideoModel, weights_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = _weights._compute

    def counting(p):
        calls["n"] += 1
        return real(p)

    monkeypatch.setattr(_weights, "_compute", counting)
    loaded = DiffusersVideoModel.from_pretrained(saved_dir, model_id="tiny-from-disk", cpu_threads=1)
    assert calls["n"] == 1 and weights_cache.is_file()
    info = loaded.info
    assert info.model_id == "tiny-from-disk" and info.pipeline_class == "WanPipeline"
    # the digest is over tensors, so the in-memory object and its saved copy agree
    assert info.weights_sha256 == t2v.info.weights_sha256
    assert len(info.weights_sha256) == 64 and int(info.weights_sha256, 16) >= 0
    a, pa = loaded.generate(req(seed=5))
    b, pb = t2v.generate(req(seed=5))
    np.testing.assert_array_equal(a, b)
    assert pa == pb

    # second load: digest from the JSON cache, no rehash
    again = DiffusersVideoModel.from_pretrained(saved_dir)
    assert calls["n"] == 1 and again.info.weights_sha256 == info.weights_sha256
    assert again.info.model_id == saved_dir.name
    # a changed file (new mtime) invalidates the cache entry
    weight_file = next(saved_dir.glob("transformer/*.safetensors"))
    st = weight_file.stat()
    os.utime(weight_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    DiffusersVideoModel.from_pretrained(saved_dir)
    assert calls["n"] == 2
    # another dtype is another set of effective weights
    half = DiffusersVideoModel.from_pretrained(saved_dir, dtype="bfloat16")
    assert calls["n"] == 3 and half.info.weights_sha256 != info.weights_sha256
    assert len(json.loads(weights_cache.read_text())) == 3


def test_unwritable_cache_does_not_stop_loading(
    saved_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    m = DiffusersVideoModel.from_pretrained(saved_dir)
    assert len(m.info.weights_sha256) == 64


def test_missing_and_malformed_model_dirs(tmp_path: Path, saved_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        DiffusersVideoModel.from_pretrained(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelLoadError, match="not a directory"):
        DiffusersVideoModel.from_pretrained(tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="model_index.json"):
        DiffusersVideoModel.from_pretrained(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model_index.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        DiffusersVideoModel.from_pretrained(bad)
    (bad / "model_index.json").write_text(json.dumps({"tokenizer": ["transformers", "CLIPTokenizer"]}))
    with pytest.raises(ModelLoadError, match="_class_name"):
        DiffusersVideoModel.from_pretrained(bad)
    (bad / "model_index.json").write_text(json.dumps({"_class_name": "NoSuchPipeline"}))
    with pytest.raises(ModelLoadError, match="does not have"):
        DiffusersVideoModel.from_pretrained(bad)
    (bad / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ModelLoadError, match="not a video pipeline"):
        DiffusersVideoModel.from_pretrained(bad)
    # a valid index whose component folders are missing: refused before diffusers runs, naming the component
    (bad / "model_index.json").write_text((saved_dir / "model_index.json").read_text())
    with pytest.raises(ModelLoadError, match="component 'scheduler' is missing"):
        DiffusersVideoModel.from_pretrained(bad)


def test_loading_and_generating_never_touch_the_network(
    saved_dir: Path, weights_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def no_network(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # offline by construction, not by environment
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    m = DiffusersVideoModel.from_pretrained(saved_dir, cpu_threads=1)
    assert m.generate(req())[0].shape == (5, 32, 48, 3)
    assert (
        tiny_model(image_to_video=True).generate(req(), image=np.zeros((32, 48, 3), np.uint8))[0].shape[0]
        == 5
    )
