"""Every supported diffusers video family, end to end as a user would run it: a tiny random pipeline built in code
(tests/tiny_families.py), saved with ``save_pretrained``, loaded by path through ``gen4sdk.Client``, generated
(text- and/or image-to-video), watermarked, signed and verified ``trusted`` with its model id and weights digest;
per-step progress, cancellation, the shape rules and the refusal of unverified families.
"""

from __future__ import annotations

import inspect
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from family_checks import PINNED, PROMPT, SEED, STEPS, VARIANTS, Variant
from tiny_families import build

import gen4sdk
from gen4sdk.errors import GenerationCancelled, InvalidRequestError, ModelLoadError
from gen4sdk.media import load_image
from gen4sdk.models import DiffusersVideoModel
from gen4sdk.models import _diffusers as diffusers_model
from gen4sdk.models._families import FAMILIES, REFUSED
from gen4sdk.models._weights import pipeline_weights_sha256
from gen4sdk.types import GenerationRequest

IDS = [v.name for v in VARIANTS]


@pytest.fixture(scope="module")
def policy() -> gen4sdk.Policy:
    p = gen4sdk.Policy.default()
    p.warm_up()  # once for the module, not once per Client
    return p


@pytest.fixture(scope="module")
def ref_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    yy, xx = np.mgrid[0:144, 0:256]
    rng = np.random.default_rng(0)
    img = np.stack([xx % 256, yy * 255 // 143, (xx + yy) % 256], axis=-1) + rng.integers(0, 24, (144, 256, 3))
    path = tmp_path_factory.mktemp("ref") / "ref.png"
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


class Loaded:
    """One variant: the in-memory pipeline's digest, its saved folder, and a Client that loaded the folder."""

    def __init__(self, variant: Variant, root: Path, policy: Any, signer: Any) -> None:
        pipe = build(variant.name)
        self.digest = pipeline_weights_sha256(pipe)
        self.folder = root / variant.name
        pipe.save_pretrained(self.folder)
        self.work = root / f"{variant.name}-out"
        self.work.mkdir()
        self.client = gen4sdk.Client(model=self.folder, signer=signer, owner="Acme Studios", policy=policy)
        self.model: DiffusersVideoModel = self.client._model  # type: ignore[assignment]
        self.model._cpu_threads = 1  # tiny matrices: threads only cost on a shared CPU
        self.frames: list[np.ndarray] = []
        real = self.model.generate

        def spy(*args: Any, **kwargs: Any) -> Any:
            out = real(*args, **kwargs)
            self.frames.append(out[0])  # the model's frames, before the watermark
            return out

        self.model.generate = spy  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, policy: gen4sdk.Policy, signer: Any):
    cache: dict[str, Loaded] = {}
    root = tmp_path_factory.mktemp("families")

    def get(variant: Variant) -> Loaded:
        if variant.name not in cache:
            cache[variant.name] = Loaded(variant, root, policy, signer)
        return cache[variant.name]

    return get


def _request(v: Variant, mode: str, ref_image: Path, **extra: Any) -> dict[str, Any]:
    n, h, w = v.shape
    args: dict[str, Any] = {"prompt": PROMPT, "num_frames": n, "height": h, "width": w, "fps": 8.0}
    args.update(steps=STEPS, seed=SEED, image=ref_image if mode == "i2v" else None)
    args.update(extra)
    return args


CASES = [(v, mode) for v in VARIANTS for mode in v.modes]


@pytest.mark.parametrize(("v", "mode"), CASES, ids=[f"{v.name}-{m}" for v, m in CASES])
def test_generates_signs_and_verifies(v: Variant, mode: str, loaded, ref_image: Path, dev_keys) -> None:
    run = loaded(v)
    events: list[gen4sdk.ProgressEvent] = []
    out = run.work / f"{mode}.mp4"
    result = run.client.generate(output=out, on_progress=events.append, **_request(v, mode, ref_image))
    n, h, w = v.shape
    assert (result.params.num_frames, result.params.height, result.params.width) == (n, h, w)
    assert result.params.pipeline_class == v.pipeline_class and result.params.image_to_video == (
        mode == "i2v"
    )
    frames = run.frames[-1]
    assert frames.shape == (n, h, w, 3) and frames.dtype == np.uint8
    # every denoising step reported once, in order, then the later stages; no stray 1/1 generate event
    gen = [(e.step, e.total) for e in events if e.stage == "generate"]
    assert gen == [(i, STEPS) for i in range(1, STEPS + 1)]
    assert [e.stage for e in events][-5:] == ["watermark", "encode", "watermark_check", "sign", "record"]
    report = gen4sdk.verify(out, trust_anchors=dev_keys.root_cert)
    assert report.status == "trusted", report.reason
    assert report.lineage is not None
    assert report.lineage.model_id == v.name == result.model.model_id  # the folder's name
    # the digest of the weights loaded from disk is the digest of the pipeline built in memory
    assert report.lineage.weights_sha256 == result.model.weights_sha256 == run.digest
    flat = frames.reshape(-1)
    got = (*flat[:8].tolist(), *flat[-8:].tolist())
    pinned = PINNED.get((v.name, mode))
    assert pinned is not None, f"no pinned output for {v.name} {mode}: {got}"
    assert np.abs(np.array(got) - np.array(pinned)).max() <= 2, got


@pytest.mark.parametrize(("v", "mode"), CASES, ids=[f"{v.name}-{m}" for v, m in CASES])
def test_frames_kept_on_the_device_are_the_frames_returned_to_the_host(
    v: Variant, mode: str, loaded, ref_image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what the Client watermarks on a GPU (output_type="pt", made uint8 there) is exactly what generate() returns
    run = loaded(v)
    args = _request(v, mode, ref_image)
    request = GenerationRequest(request_id=f"{v.name}-{mode}", **args)
    image = load_image(ref_image) if mode == "i2v" else None
    host, params = run.model.generate(request, image=image)
    raw: list[Any] = []
    convert = diffusers_model._uint8_tensor_frames
    monkeypatch.setattr(diffusers_model, "_uint8_tensor_frames", lambda f: raw.append(f) or convert(f))
    on_device, params_on_device = run.model.generate_on_device(request, image=image)
    assert isinstance(raw[0], torch.Tensor)  # the pipeline honoured output_type="pt", no host round trip
    assert isinstance(on_device, torch.Tensor) and on_device.dtype == torch.uint8
    np.testing.assert_array_equal(on_device.numpy(), host)
    assert params_on_device == params


@pytest.mark.parametrize("v", VARIANTS, ids=IDS)
def test_cancel_stops_between_steps(v: Variant, loaded, ref_image: Path) -> None:
    run = loaded(v)
    cancel = threading.Event()
    steps: list[int] = []

    def on_progress(e: gen4sdk.ProgressEvent) -> None:
        if e.stage == "generate":
            steps.append(e.step)
            cancel.set()

    out = run.work / "cancelled.mp4"
    args = _request(v, v.modes[0], ref_image, steps=3)
    with pytest.raises(GenerationCancelled):
        run.client.generate(output=out, cancel=cancel, on_progress=on_progress, **args)
    assert steps == [1] and not out.exists()
    # the scheduler-step hook (pipelines without callback_on_step_end) is gone once the call ends
    assert "step" not in vars(run.model.pipeline.scheduler)


@pytest.mark.parametrize("v", VARIANTS, ids=IDS)
def test_refuses_what_it_cannot_produce(
    v: Variant, loaded, ref_image: Path, policy: gen4sdk.Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = loaded(v)
    calls = len(run.frames)

    def no_policy(*a: Any, **k: Any) -> None:
        raise AssertionError("the policy stage ran for a request the model refuses")

    monkeypatch.setattr(policy, "check_request", no_policy)
    with pytest.raises(InvalidRequestError) as ei:
        run.client.generate(output=run.work / "bad.mp4", **_request(v, v.modes[0], ref_image, **v.bad))
    assert ei.value.field == v.bad_field
    if v.bad_field in {"num_frames", "height", "width"}:
        assert "nearest valid" in str(ei.value)
    assert len(run.frames) == calls  # refused before the model ran
    if "t2v" not in v.modes:  # an image-to-video pipeline without an image: refused, never run
        with pytest.raises(InvalidRequestError) as ei:
            run.client.generate(output=run.work / "noimg.mp4", **_request(v, "t2v", ref_image))
        assert ei.value.field == "image"
    if "i2v" not in v.modes:
        with pytest.raises(InvalidRequestError) as ei:
            run.client.generate(output=run.work / "img.mp4", **_request(v, "i2v", ref_image))
        assert ei.value.field == "image"
    assert len(run.frames) == calls


# frame counts around the ones the issue found wrong, run through the pipeline itself at a small size
SWEEPS = {
    "cogvideox-t2v": [9, 13, 16],
    "cogvideox1.5-t2v": [12, 16, 17],
    "hunyuan-i2v": [4, 5, 9],
    "mochi": [6, 7, 8],
}


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_the_frame_rules_match_what_the_pipeline_returns(name: str) -> None:
    import torch
    from PIL import Image

    model = DiffusersVideoModel(build(name), model_id=name, cpu_threads=1)
    base: dict[str, Any] = {"prompt": PROMPT, "height": 32, "width": 32, "steps": STEPS, "seed": SEED}
    base["request_id"] = "sweep"
    image = Image.new("RGB", (32, 32), (90, 140, 200)) if model.requires_image else None
    for n in SWEEPS[name]:
        req = GenerationRequest(**base, num_frames=n)
        kwargs = model._call_kwargs(req, image, torch.Generator().manual_seed(SEED))  # the SDK's own call
        with torch.inference_mode():
            returned = model.pipeline(**kwargs).frames[0].shape[0]
        assert model.rules.frames_ok(n) == (returned == n), (n, returned, model.rules.describe())


def test_every_video_pipeline_in_diffusers_is_supported_or_refused_with_a_reason(tmp_path: Path) -> None:
    import diffusers

    supported = {c for f in FAMILIES for c in f.classes}
    video = set()
    for name in dir(diffusers):
        if not name.endswith("Pipeline"):
            continue
        cls = getattr(diffusers, name)
        try:
            if inspect.isclass(cls) and "num_frames" in inspect.signature(cls.__call__).parameters:
                video.add(name)
        except (TypeError, ValueError):
            continue
    assert supported <= video, supported - video
    assert video - supported <= set(REFUSED), sorted(video - supported - set(REFUSED))
    # at load, from a folder naming the class: the reason, before any weights are read
    for name in sorted(video - supported):
        (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": name}))
        with pytest.raises(ModelLoadError, match=f"{name} is not supported: ") as ei:
            DiffusersVideoModel.from_pretrained(tmp_path)
        assert REFUSED[name] in str(ei.value)


def test_the_families_page_is_generated_from_the_table() -> None:
    from gen4sdk.models._family_docs import render

    page = Path(__file__).resolve().parents[1] / "docs" / "model-families.md"
    assert page.read_text(encoding="utf-8") == render(), (
        "docs/model-families.md is stale: python -m gen4sdk.models._family_docs > docs/model-families.md"
    )
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "docs/model-families.md" in readme


def test_a_supported_family_covers_the_readme_families() -> None:
    names = {f.name for f in FAMILIES}
    for family in ("Wan", "LTX-Video", "CogVideoX", "HunyuanVideo", "SkyReels-V2", "Mochi"):
        assert any(n.startswith(family) for n in names), family


def _saved_wan(tmp_path: Path) -> Path:
    folder = tmp_path / "wan"
    build("wan2.1-t2v").save_pretrained(folder)
    return folder


def test_a_corrupt_or_missing_component_is_named_at_load(tmp_path: Path) -> None:
    folder = _saved_wan(tmp_path)
    weights = next((folder / "transformer").glob("*.safetensors"))
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # a truncated download
    with pytest.raises(ModelLoadError, match=r"component 'transformer' is corrupt: .*safetensors"):
        DiffusersVideoModel.from_pretrained(folder)
    weights.write_bytes(b"\xff" * 64)  # overwritten
    with pytest.raises(ModelLoadError, match="component 'transformer' is corrupt"):
        DiffusersVideoModel.from_pretrained(folder)
    weights.write_bytes(data)
    for f in (folder / "vae").iterdir():
        f.unlink()
    (folder / "vae").rmdir()
    with pytest.raises(ModelLoadError, match="component 'vae' is missing"):
        DiffusersVideoModel.from_pretrained(folder)


def test_a_family_whose_optional_dependencies_are_missing_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import diffusers

    lazy = type(diffusers)
    real = lazy.__getattr__

    def getattr_(self: Any, name: str) -> Any:
        if name == "WanPipeline":  # what diffusers' lazy module raises for a backend that is not installed
            raise ImportError(
                "WanPipeline requires the ftfy library but it was not found in your environment"
            )
        return real(self, name)

    folder = _saved_wan(tmp_path)
    monkeypatch.delattr(diffusers, "WanPipeline", raising=False)
    monkeypatch.setattr(lazy, "__getattr__", getattr_)
    with pytest.raises(ModelLoadError, match="cannot import pipeline class WanPipeline .*ftfy"):
        DiffusersVideoModel.from_pretrained(folder)


def test_a_pipeline_needing_inputs_the_sdk_does_not_supply_is_refused(tmp_path: Path) -> None:
    for name in ("WanVideoToVideoPipeline", "WanVACEPipeline", "StableVideoDiffusionPipeline"):
        (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": name}))
        with pytest.raises(ModelLoadError, match=f"{name} is not supported: it "):
            DiffusersVideoModel.from_pretrained(tmp_path)
