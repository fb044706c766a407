"""Adapter from any diffusers video pipeline to :class:`~gen4sdk.models.VideoModel`."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from gen4sdk.errors import (
    Gen4Error,
    GenerationCancelled,
    GenerationFailed,
    InvalidRequestError,
    ModelLoadError,
)
from gen4sdk.models._base import StepCallback
from gen4sdk.models._rules import FrameRules, check_shape, rules_for
from gen4sdk.models._weights import directory_weights_sha256, pipeline_weights_sha256
from gen4sdk.types import GenerationParams, GenerationRequest, MemoryMode, ModelInfo

logger = logging.getLogger(__name__)

__all__ = ["DiffusersVideoModel"]

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
_MEMORY_MODES: tuple[str, ...] = ("none", "cpu_offload", "vae_tiling")
# __call__ parameters generate() can fill in; a pipeline that requires anything else (a source video, a mask, a
# pose sequence) is not a text/image-to-video pipeline and is refused at construction.
_SUPPLIED = frozenset(
    {
        "prompt",
        "image",
        "negative_prompt",
        "num_frames",
        "height",
        "width",
        "num_inference_steps",
        "guidance_scale",
        "generator",
        "output_type",
        "callback_on_step_end",
        "frame_rate",
        "fps",
    }
)


class _Cancelled(Exception):
    """Raised from the step callback to leave the denoising loop at once (skipping the VAE decode)."""


def _parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype in _DTYPES.values():
            return dtype
    elif dtype in _DTYPES:
        return _DTYPES[dtype]
    raise InvalidRequestError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}", field="dtype")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _parse_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InvalidRequestError(f"not a torch device: {device!r}", field="device") from e
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidRequestError(
                f"device {device!r} requested but CUDA is not available here", field="device"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidRequestError(
                f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist",
                field="device",
            )
        return dev
    backend = getattr(torch.backends, dev.type, None) or getattr(torch, dev.type, None)
    available = getattr(backend, "is_available", None)
    if available is None or not available():
        raise InvalidRequestError(f"device {device!r} is not available on this machine", field="device")
    return dev


def _dtype_kwarg() -> str:
    # diffusers renamed torch_dtype to dtype (the old name warns, and goes in 1.0); older releases know only torch_dtype
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def _call_parameters(pipeline: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(pipeline.__call__).parameters)


def _is_video_pipeline_class(cls: type) -> bool:
    try:
        return "num_frames" in inspect.signature(cls.__call__).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def _denoiser(pipeline: Any) -> torch.nn.Module | None:
    for name in ("transformer", "transformer_2", "unet"):
        m = getattr(pipeline, name, None)
        if isinstance(m, torch.nn.Module):
            return m
    return None


def _to_uint8_frames(frames: Any) -> np.ndarray:
    """Pipeline output (np float in [0, 1], tensors or PIL lists; batch of one) -> uint8 (T, H, W, 3)."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().float().cpu().numpy()
    if isinstance(frames, (list, tuple)):
        first = frames[0] if len(frames) else frames
        if isinstance(first, (list, tuple)):  # [[PIL, ...]] per batch item
            frames = np.stack([np.asarray(im.convert("RGB")) for im in first])
        elif hasattr(first, "convert"):
            frames = np.stack([np.asarray(im.convert("RGB")) for im in frames])
        else:
            frames = np.asarray(first if isinstance(first, np.ndarray) and first.ndim == 4 else frames)
    arr = np.asarray(frames)
    if arr.ndim == 5:
        if arr.shape[0] != 1:
            raise ValueError(f"expected one video, got a batch of {arr.shape[0]}")
        arr = arr[0]
    if arr.ndim != 4:
        raise ValueError(f"unexpected frame array shape {arr.shape}")
    if arr.shape[-1] != 3 and arr.shape[1] == 3:  # (T, C, H, W)
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] != 3:
        raise ValueError(f"expected RGB frames, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError("the model produced NaN or infinite pixel values (try float32 or another dtype)")
    return np.ascontiguousarray((np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def _check_image(image: np.ndarray) -> Any:
    from PIL import Image

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise InvalidRequestError(
            f"image must be a uint8 (H, W, 3) RGB array, got {dtype} {shape}", field="image"
        )
    if min(image.shape[:2]) < 2:
        raise InvalidRequestError(f"image is too small: {image.shape[1]}x{image.shape[0]}", field="image")
    return Image.fromarray(np.ascontiguousarray(image))


class DiffusersVideoModel:
    """A diffusers text-to-video or image-to-video pipeline behind the :class:`VideoModel` interface.

    ``DiffusersVideoModel(pipeline, model_id=..., device=..., dtype=..., memory_mode=...)`` wraps a pipeline object
    (moved to ``device`` and cast to ``dtype`` when given); :meth:`from_pretrained` loads one from a local
    directory, never from a hub. Calls to :meth:`generate` are serialised: a pipeline is not thread-safe.

    ``cpu_threads`` caps torch's intra-op threads while a CPU generation runs (process-wide for its duration): on a
    shared or small machine one thread is several times faster for small models than oversubscribed threads.
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        model_id: str | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        memory_mode: MemoryMode = "none",
        cpu_threads: int | None = None,
        _weights_sha256: str | None = None,
    ) -> None:
        if not isinstance(getattr(pipeline, "components", None), dict) or not callable(pipeline):
            raise ModelLoadError(f"{type(pipeline).__name__} is not a diffusers pipeline")
        if not _is_video_pipeline_class(type(pipeline)):
            raise ModelLoadError(
                f"{type(pipeline).__name__} is not a video pipeline (its __call__ takes no num_frames)"
            )
        if memory_mode not in _MEMORY_MODES:
            raise InvalidRequestError(
                f"memory_mode must be one of {list(_MEMORY_MODES)}, got {memory_mode!r}", field="memory_mode"
            )
        self._pipeline = pipeline
        self._memory_mode: MemoryMode = memory_mode
        if cpu_threads is not None and (not isinstance(cpu_threads, int) or cpu_threads < 1):
            raise InvalidRequestError(
                f"cpu_threads must be a positive integer, got {cpu_threads!r}", field="cpu_threads"
            )
        self._cpu_threads = cpu_threads
        self._lock = threading.Lock()
        self._weights_sha256 = _weights_sha256
        self._params = _call_parameters(pipeline)
        missing = [
            name
            for name, p in self._params.items()
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            and name not in _SUPPLIED
        ]
        if missing:
            raise ModelLoadError(
                f"{type(pipeline).__name__} requires inputs this SDK does not supply: {', '.join(missing)}"
            )
        self._rules: FrameRules = rules_for(pipeline)

        if dtype is not None:
            pipeline.to(dtype=_parse_dtype(dtype))
        for component in pipeline.components.values():
            # Modules built in code start in training mode; dropout there makes a seed meaningless.
            if isinstance(component, torch.nn.Module):
                component.eval()
        dev = (
            _parse_device(device) if device is not None else getattr(pipeline, "device", torch.device("cpu"))
        )
        self._place(torch.device(dev))
        if hasattr(pipeline, "set_progress_bar_config"):
            pipeline.set_progress_bar_config(disable=True)  # progress goes to on_step, not to stderr
        name_or_path = getattr(getattr(pipeline, "config", None), "_name_or_path", None)
        self._model_id = model_id or name_or_path or type(pipeline).__name__
        logger.debug("model %s: %s", self._model_id, self._rules.describe())

    # -- construction -----------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        memory_mode: MemoryMode = "none",
        model_id: str | None = None,
        cpu_threads: int | None = None,
    ) -> DiffusersVideoModel:
        """Load a diffusers video pipeline saved in a local directory (``save_pretrained`` layout).

        Only files under ``path`` are read (``local_files_only``). Raises ModelLoadError for a missing or malformed
        directory or a pipeline that does not make videos, InvalidRequestError for a bad device/dtype/memory mode.
        """
        import diffusers

        torch_dtype = _parse_dtype(dtype)
        dev = _parse_device(device)
        if memory_mode not in _MEMORY_MODES:
            raise InvalidRequestError(
                f"memory_mode must be one of {list(_MEMORY_MODES)}, got {memory_mode!r}", field="memory_mode"
            )
        _check_memory_mode(memory_mode, dev)
        directory = Path(path).expanduser()
        if not directory.exists():
            raise ModelLoadError(f"model directory {directory} does not exist")
        if not directory.is_dir():
            raise ModelLoadError(
                f"{directory} is not a directory (expected a diffusers save_pretrained folder)"
            )
        index = directory / "model_index.json"
        if not index.is_file():
            raise ModelLoadError(f"{directory} has no model_index.json; not a diffusers pipeline folder")
        try:
            meta = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ModelLoadError(f"{index} is not valid JSON: {e}") from e
        class_name = meta.get("_class_name") if isinstance(meta, dict) else None
        if not isinstance(class_name, str):
            raise ModelLoadError(f"{index} has no _class_name; not a diffusers pipeline folder")
        try:
            pipeline_cls: Any = getattr(diffusers, class_name, None)
        except (
            Exception
        ) as e:  # diffusers imports lazily; a class with missing optional dependencies raises here
            raise ModelLoadError(f"cannot import pipeline class {class_name} named in {index}: {e}") from e
        if not inspect.isclass(pipeline_cls):
            raise ModelLoadError(
                f"{index} names pipeline class {class_name!r}, which diffusers {diffusers.__version__} does not have"
            )
        if not _is_video_pipeline_class(pipeline_cls):
            raise ModelLoadError(
                f"{class_name} in {directory} is not a video pipeline (it takes no num_frames)"
            )
        t0 = time.perf_counter()
        try:
            pipeline = cast(Any, pipeline_cls).from_pretrained(
                str(directory.resolve()), **{_dtype_kwarg(): torch_dtype}, local_files_only=True
            )
        except Exception as e:  # diffusers/transformers raise many kinds for a broken folder
            raise ModelLoadError(f"could not load {class_name} from {directory}: {e}") from e
        logger.info("loaded %s from %s in %.1fs", class_name, directory, time.perf_counter() - t0)
        # Hash before placing: offload hooks may move weights around, the digest must not depend on that.
        try:
            digest = directory_weights_sha256(directory, pipeline, _dtype_name(torch_dtype))
        except (TypeError, ValueError) as e:
            raise ModelLoadError(f"could not hash the weights in {directory}: {e}") from e
        return cls(
            pipeline,
            model_id=model_id or directory.resolve().name,
            device=dev,
            memory_mode=memory_mode,
            cpu_threads=cpu_threads,
            _weights_sha256=digest,
        )

    def _place(self, device: torch.device) -> None:
        _check_memory_mode(self._memory_mode, device)
        pipe = self._pipeline
        if self._memory_mode == "cpu_offload":
            pipe.enable_model_cpu_offload(device=device)
            return
        pipe.to(device)
        if self._memory_mode == "vae_tiling":
            vae = getattr(pipe, "vae", None)
            if vae is None or not hasattr(vae, "enable_tiling"):
                raise InvalidRequestError(
                    f"memory_mode='vae_tiling' needs a VAE with enable_tiling(); {type(pipe).__name__} has none",
                    field="memory_mode",
                )
            vae.enable_tiling()

    # -- VideoModel -------------------------------------------------------------------------------------------

    @property
    def pipeline(self) -> Any:
        return self._pipeline

    @property
    def info(self) -> ModelInfo:
        if self._weights_sha256 is None:
            self._weights_sha256 = pipeline_weights_sha256(self._pipeline)
        return ModelInfo(
            model_id=self._model_id,
            pipeline_class=type(self._pipeline).__name__,
            weights_sha256=self._weights_sha256,
        )

    @property
    def accepts_image(self) -> bool:
        return "image" in self._params

    @property
    def requires_image(self) -> bool:
        p = self._params.get("image")
        return p is not None and p.default is inspect.Parameter.empty

    def _execution_device(self) -> torch.device:
        dev = getattr(self._pipeline, "_execution_device", None)
        return torch.device(dev) if dev is not None else torch.device("cpu")

    def _validate(self, request: GenerationRequest, image: np.ndarray | None) -> Any:
        if image is None and request.image is not None:
            from gen4sdk.media import load_image

            image = load_image(request.image)
        if image is not None and not self.accepts_image:
            raise InvalidRequestError(
                f"{type(self._pipeline).__name__} is text-to-video; it takes no reference image",
                field="image",
            )
        if image is None and self.requires_image:
            raise InvalidRequestError(
                f"{type(self._pipeline).__name__} is image-to-video; a reference image is required",
                field="image",
            )
        if request.negative_prompt and "negative_prompt" not in self._params:
            raise InvalidRequestError(
                f"{type(self._pipeline).__name__} takes no negative prompt", field="negative_prompt"
            )
        check_shape(self._rules, num_frames=request.num_frames, height=request.height, width=request.width)
        return _check_image(image) if image is not None else None

    def generate(
        self,
        request: GenerationRequest,
        *,
        image: np.ndarray | None = None,
        on_step: StepCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[np.ndarray, GenerationParams]:
        """Run the pipeline; return uint8 (T, H, W, 3) RGB frames and the parameters it ran with."""
        pil_image = self._validate(request, image)
        with self._lock:
            return self._generate_locked(request, pil_image, on_step, cancel)

    def _generate_locked(
        self,
        request: GenerationRequest,
        pil_image: Any,
        on_step: StepCallback | None,
        cancel: threading.Event | None,
    ) -> tuple[np.ndarray, GenerationParams]:
        pipe = self._pipeline
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled(f"request {request.request_id} cancelled before it started")
        device = self._execution_device()
        # The generator lives on the execution device so a seed means the same noise as a run without the SDK.
        generator = torch.Generator(device=device).manual_seed(request.seed)
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "num_frames": request.num_frames,
            "height": request.height,
            "width": request.width,
            "num_inference_steps": request.steps,
            "generator": generator,
            "output_type": "np",
        }
        if "negative_prompt" in self._params:
            kwargs["negative_prompt"] = request.negative_prompt
        if "guidance_scale" in self._params:
            kwargs["guidance_scale"] = request.guidance_scale
        for fps_name in ("frame_rate", "fps"):  # LTX conditions on the frame rate; most pipelines ignore it
            if fps_name in self._params:
                kwargs[fps_name] = request.fps
                break
        if pil_image is not None:
            kwargs["image"] = pil_image

        state = {"steps": 0}

        def _step_end(p: Any, i: int, t: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
            state["steps"] = i + 1
            total = getattr(p, "num_timesteps", None) or request.steps
            if on_step is not None:
                on_step(i + 1, int(total))
            if cancel is not None and cancel.is_set():
                raise _Cancelled
            return callback_kwargs

        if "callback_on_step_end" in self._params:
            kwargs["callback_on_step_end"] = _step_end
        elif on_step is not None or cancel is not None:
            logger.warning(
                "%s has no callback_on_step_end: no per-step progress or cancellation", type(pipe).__name__
            )

        t0 = time.perf_counter()
        try:
            with torch.inference_mode(), _torch_threads(self._cpu_threads if device.type == "cpu" else None):
                output = pipe(**kwargs)
        except _Cancelled:
            raise GenerationCancelled(
                f"request {request.request_id} cancelled after step {state['steps']} of {request.steps}"
            ) from None
        except Gen4Error:
            raise  # e.g. on_step raising GenerationCancelled itself
        except Exception as e:
            raise GenerationFailed(f"{type(pipe).__name__} failed: {type(e).__name__}: {e}") from e
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled(f"request {request.request_id} cancelled")
        try:
            frames = _to_uint8_frames(
                getattr(output, "frames", output[0] if isinstance(output, tuple) else output)
            )
        except (ValueError, IndexError, TypeError) as e:
            raise GenerationFailed(f"{type(pipe).__name__} returned unusable frames: {e}") from e
        expected = (request.num_frames, request.height, request.width)
        if frames.shape[:3] != expected:
            # The rules table should have caught this; never hand back a clip of another shape than requested.
            raise GenerationFailed(
                f"{type(pipe).__name__} returned {frames.shape[:3]} (T,H,W) instead of the requested {expected}"
            )
        logger.info(
            "generated %dx%dx%d in %.2fs (%d steps)",
            request.num_frames,
            request.width,
            request.height,
            time.perf_counter() - t0,
            request.steps,
        )
        denoiser = _denoiser(pipe)
        params = GenerationParams(
            num_frames=request.num_frames,
            height=request.height,
            width=request.width,
            fps=request.fps,
            steps=request.steps,
            guidance_scale=request.guidance_scale,
            seed=request.seed,
            device=str(device),
            dtype=_dtype_name(cast(torch.dtype, denoiser.dtype))
            if denoiser is not None
            else _dtype_name(pipe.dtype),
            memory_mode=self._memory_mode,
            scheduler=type(getattr(pipe, "scheduler", None)).__name__,
            pipeline_class=type(pipe).__name__,
            image_to_video=pil_image is not None,
        )
        return frames, params


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    # torch's thread count is process-wide, so it is only changed for the duration of one (locked) generation.
    if n is None or n == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_memory_mode(memory_mode: str, device: torch.device) -> None:
    if memory_mode == "cpu_offload" and device.type == "cpu":
        raise InvalidRequestError(
            "memory_mode='cpu_offload' keeps weights in CPU memory and moves each model to an accelerator when it "
            "runs; the device here is the CPU, so there is nothing to offload to. Use memory_mode='none' on CPU, "
            "or device='cuda' with an accelerator.",
            field="memory_mode",
        )
