"""Frames that stay on the accelerator: a model that runs off the CPU hands the Client its frames as a tensor where
it decoded them (``generate_on_device``), the watermark marks them there (its torch path) and they reach the host
marked. This machine has no GPU, so a test double claims one and hands over CPU tensors: every step of that path
runs, only the device is the host."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

import gen4sdk
from gen4sdk.client import _frames_stay_on_device
from gen4sdk.models import tiny_model
from gen4sdk.types import GenerationRequest
from watermark import Watermarker

SMALL = {"num_frames": 17, "height": 144, "width": 256, "fps": 8.0, "steps": 2}


class _ClaimsAccelerator:
    """The tiny model, saying it runs on ``cuda:0``; records which of its two generate methods the Client called."""

    device = "cuda:0"

    def __init__(self) -> None:
        self._model = tiny_model()
        self.calls: list[str] = []
        self.frames: list[np.ndarray] = []

    @property
    def info(self) -> gen4sdk.ModelInfo:
        return self._model.info

    def generate(self, request: GenerationRequest, **kwargs: Any) -> Any:
        self.calls.append("generate")
        return self._model.generate(request, **kwargs)

    def generate_on_device(self, request: GenerationRequest, **kwargs: Any) -> Any:
        self.calls.append("generate_on_device")
        frames, params = self._model.generate_on_device(request, **kwargs)
        self.frames.append(frames.numpy().copy())
        return frames, params


class _RecordingWatermarker(Watermarker):
    """The gen4sdk watermark, keeping a host copy of what each embed call was given."""

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.inputs: list[Any] = []

    def embed(self, frames, payload, *, clip_start=True):  # type: ignore[no-untyped-def]
        self.inputs.append(frames)
        return super().embed(frames, payload, clip_start=clip_start)


def test_generate_on_device_gives_the_frames_generate_gives() -> None:
    model = tiny_model()
    req = GenerationRequest(
        request_id="r", prompt="a paper boat", num_frames=9, height=64, width=64, steps=2, seed=5
    )
    host, params = model.generate(req)
    tensor, params_on_device = model.generate_on_device(req)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.uint8 and tensor.shape == (9, 64, 64, 3)
    assert str(tensor.device) == model.device == "cpu"
    np.testing.assert_array_equal(tensor.numpy(), host)  # the same arithmetic on either side
    assert params_on_device == params


def test_the_watermark_runs_on_the_device_and_the_clip_verifies(tmp_path, signer, dev_keys, caplog) -> None:
    model = _ClaimsAccelerator()
    codec = _RecordingWatermarker(b"operator key")
    client = gen4sdk.Client(
        model=model, signer=signer, owner="Acme", store=tmp_path / "s.db", watermarker=codec
    )
    with caplog.at_level(logging.WARNING, logger="gen4sdk.client"):
        result = client.generate(prompt="a lighthouse at dusk", output=tmp_path / "a.mp4", seed=3, **SMALL)
    assert not caplog.records  # read back at once: no second embedding, no fallback to the host
    assert result.watermark_payload is not None

    assert model.calls == ["generate_on_device"]
    assert len(codec.inputs) == 1 and isinstance(codec.inputs[0], torch.Tensor)  # marked where it was decoded
    np.testing.assert_array_equal(codec.inputs[0].numpy(), model.frames[0])
    assert {"frames_policy", "watermark", "watermark_check"} <= set(result.timings)
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert, watermark_keys=[b"operator key"])
    assert report.status == "trusted"
    assert report.watermark is not None and report.watermark.payload == result.watermark_payload


def test_a_burnt_in_label_goes_back_to_the_device_before_the_mark(tmp_path, signer, dev_keys) -> None:
    model = _ClaimsAccelerator()
    codec = _RecordingWatermarker(b"operator key")
    label = gen4sdk.VisibleLabel(text="AI-generated", position="top-left", height=0.2, duration=10.0)
    client = gen4sdk.Client(model=model, signer=signer, owner="Acme", watermarker=codec, label=label)
    result = client.generate(prompt="a lighthouse at dusk", output=tmp_path / "a.mp4", seed=3, **SMALL)

    marked_input = codec.inputs[0]
    assert isinstance(marked_input, torch.Tensor)
    changed = np.any(marked_input.numpy() != model.frames[0], axis=(0, 3))  # pixels the label covers
    assert changed.any()
    rows, cols = np.nonzero(changed)
    assert rows.max() < SMALL["height"] // 2 and cols.min() < 16  # a band at the top left, nowhere else
    assert result.watermark_payload is not None


def test_only_an_accelerator_model_with_the_gen4sdk_watermark_keeps_frames_on_the_device() -> None:
    on_gpu, on_cpu = _ClaimsAccelerator(), tiny_model()
    assert _frames_stay_on_device(on_gpu, Watermarker.public())
    assert not _frames_stay_on_device(on_cpu, Watermarker.public())  # numpy is the CPU's faster path

    class _OtherCodec:  # any SoftBindingCodec takes numpy frames
        algorithm = "com.example.mark"
        payload_bytes = 8

        def embed(self, frames: np.ndarray, payload: bytes) -> np.ndarray:
            return frames

        def detect(self, frames: np.ndarray) -> Any:
            raise NotImplementedError

    assert not _frames_stay_on_device(on_gpu, _OtherCodec())  # type: ignore[arg-type]


def test_a_weaker_strength_is_marked_on_the_device_too(tmp_path, signer, dev_keys, caplog) -> None:
    model = _ClaimsAccelerator()
    client = gen4sdk.Client(model=model, signer=signer, owner="Acme", watermark_strength="balanced")
    with caplog.at_level(logging.WARNING, logger="gen4sdk.client"):
        result = client.generate(prompt="a lighthouse at dusk", output=tmp_path / "a.mp4", seed=3, **SMALL)
    assert model.calls == ["generate_on_device"]
    assert not caplog.records and result.watermark_payload is not None  # the balanced mark itself read back
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert)
    assert report.watermark is not None and report.watermark.payload == result.watermark_payload


class _DeviceOutOfMemory(Watermarker):
    """The gen4sdk watermark whose device path fails as a full GPU does (torch.OutOfMemoryError is a
    RuntimeError)."""

    def embed(self, frames, payload, *, clip_start=True):  # type: ignore[no-untyped-def]
        if isinstance(frames, torch.Tensor):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 388.00 MiB")
        return super().embed(frames, payload, clip_start=clip_start)


def test_a_device_that_cannot_mark_falls_back_to_the_host(tmp_path, signer, dev_keys, caplog) -> None:
    client = gen4sdk.Client(
        model=_ClaimsAccelerator(),
        signer=signer,
        owner="Acme",
        watermarker=_DeviceOutOfMemory(b"operator key"),
    )
    with caplog.at_level(logging.WARNING, logger="gen4sdk.client"):
        result = client.generate(prompt="a lighthouse at dusk", output=tmp_path / "a.mp4", seed=3, **SMALL)
    assert any("marking on the CPU" in r.getMessage() for r in caplog.records)
    assert result.watermark_payload is not None
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert, watermark_keys=[b"operator key"])
    assert report.watermark is not None and report.watermark.payload == result.watermark_payload
