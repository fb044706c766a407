"""Adapter from any diffusers video pipeline to :class:`~gen4sdk.models.VideoModel`."""

from __future__ import annotations

import contextlib
import inspect
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
from gen4sdk.models._devices import (
    MEMORY_MODES,
    check_memory_mode,
    dtype_kwarg,
    dtype_name,
    parse_device,
    parse_dtype,
)
from gen4sdk.models._families import REFUSED, Family, family_for
from gen4sdk.models._folder import check_components, read_folder
from gen4sdk.models._frames import one_video_thwc, output_frames, to_uint8_frames
from gen4sdk.models._rules import FrameRules, check_shape, derive_rules
from gen4sdk.models._steps import Cancelled, step_hooks
from gen4sdk.models._weights import directory_weights_sha256, pipeline_weights_sha256
from gen4sdk.types import GenerationParams, GenerationRequest, MemoryMode, ModelInfo

logger = logging.getLogger(__name__)

__all__ = ["DiffusersVideoModel"]

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


def _call_parameters(pipeline: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(pipeline.__call__).parameters)


def _is_video_pipeline_class(cls: type) -> bool:
    try:
        return "num_frames" in inspect.signature(cls.__call__).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def _refuse_listed(cls: type) -> None:
    if family_for(tuple(c.__name__ for c in cls.__mro__)) is None and cls.__name__ in REFUSED:
        raise ModelLoadError(f"{cls.__name__} is not supported: {REFUSED[cls.__name__]}")


def _family_of(cls: type) -> Family:
    """The table's family of a pipeline class (or of a base class: a user's subclass keeps its family's rules)."""
    names = tuple(c.__name__ for c in cls.__mro__)
    family = family_for(names)
    if family is not None:
        return family
    reason = next((REFUSED[n] for n in names if n in REFUSED), None)
    if reason is None:
        reason = (
            "it is not among the families gen4sdk has verified end to end, so its frame and size rules are "
            "unknown (see docs/model-families.md)"
        )
    raise ModelLoadError(f"{cls.__name__} is not supported: {reason}")


def _denoiser(pipeline: Any) -> torch.nn.Module | None:
    for name in ("transformer", "transformer_2", "unet"):
        m = getattr(pipeline, name, None)
        if isinstance(m, torch.nn.Module):
            return m
    return None


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
        _refuse_listed(type(pipeline))
        if not _is_video_pipeline_class(type(pipeline)):
            raise ModelLoadError(
                f"{type(pipeline).__name__} is not a video pipeline (its __call__ takes no num_frames)"
            )
        if memory_mode not in MEMORY_MODES:
            raise InvalidRequestError(
                f"memory_mode must be one of {list(MEMORY_MODES)}, got {memory_mode!r}", field="memory_mode"
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
        self._family = _family_of(type(pipeline))
        self._rules: FrameRules = derive_rules(pipeline, self._family)

        if dtype is not None:
            pipeline.to(dtype=parse_dtype(dtype))
        for component in pipeline.components.values():
            # Modules built in code start in training mode; dropout there makes a seed meaningless.
            if isinstance(component, torch.nn.Module):
                component.eval()
        dev = parse_device(device) if device is not None else getattr(pipeline, "device", torch.device("cpu"))
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

        torch_dtype = parse_dtype(dtype)
        dev = parse_device(device)
        if memory_mode not in MEMORY_MODES:
            raise InvalidRequestError(
                f"memory_mode must be one of {list(MEMORY_MODES)}, got {memory_mode!r}", field="memory_mode"
            )
        check_memory_mode(memory_mode, dev)
        folder = read_folder(path)
        directory, class_name, index = (
            folder.directory,
            folder.class_name,
            folder.directory / "model_index.json",
        )
        try:
            pipeline_cls: Any = getattr(diffusers, class_name, None)
        except Exception as e:  # diffusers imports lazily; a class missing optional dependencies raises here
            raise ModelLoadError(f"cannot import pipeline class {class_name} named in {index}: {e}") from e
        if not inspect.isclass(pipeline_cls):
            raise ModelLoadError(
                f"{index} names pipeline class {class_name!r}, which diffusers {diffusers.__version__} does not have"
            )
        _refuse_listed(pipeline_cls)  # a refused class's reason beats "not a video pipeline"
        if not _is_video_pipeline_class(pipeline_cls):
            raise ModelLoadError(
                f"{class_name} in {directory} is not a video pipeline (it takes no num_frames)"
            )
        _family_of(pipeline_cls)  # refuse an unverified family before reading any weights
        check_components(folder)
        t0 = time.perf_counter()
        try:
            pipeline = cast(Any, pipeline_cls).from_pretrained(
                str(directory.resolve()), **{dtype_kwarg(): torch_dtype}, local_files_only=True
            )
        except Exception as e:  # diffusers/transformers raise many kinds for a broken folder
            raise ModelLoadError(f"could not load {class_name} from {directory}: {e}") from e
        logger.info("loaded %s from %s in %.1fs", class_name, directory, time.perf_counter() - t0)
        # Hash before placing: offload hooks may move weights around, the digest must not depend on that.
        try:
            digest = directory_weights_sha256(directory, pipeline, dtype_name(torch_dtype))
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
        check_memory_mode(self._memory_mode, device)
        pipe = self._pipeline
        if self._memory_mode == "cpu_offload":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        if self._memory_mode == "vae_tiling" or "vae_tiling" in self._family.quirks:
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
    def rules(self) -> FrameRules:
        """The frame and size rules of this pipeline (its family's, with its own components' numbers)."""
        return self._rules

    @property
    def accepts_image(self) -> bool:
        return self._family.image != "none" and "image" in self._params

    @property
    def requires_image(self) -> bool:
        # from the table, not the signature: LTX image-to-video defaults image=None yet fails without one
        return self._family.image == "required"

    @property
    def device(self) -> str:
        """Where the pipeline runs and decodes its frames (``"cuda:0"``, ``"cpu"``, ...)."""
        return str(self._execution_device())

    def _execution_device(self) -> torch.device:
        dev = getattr(self._pipeline, "_execution_device", None)
        return torch.device(dev) if dev is not None else torch.device("cpu")

    def validate(self, request: GenerationRequest, *, image: np.ndarray | None = None) -> None:
        """Raise InvalidRequestError (with ``field``) for a request this pipeline cannot honour exactly: a frame
        count or size outside its rules, a missing or unwanted reference image, an unsupported negative prompt.
        Cheap (no model call); the Client calls it before the policy stage."""
        self._checked(request, image)

    def _checked(self, request: GenerationRequest, image: np.ndarray | None) -> Any:
        name = type(self._pipeline).__name__
        if image is None and request.image is not None:
            from gen4sdk.media import load_image

            image = load_image(request.image)
        if image is not None and not self.accepts_image:
            raise InvalidRequestError(f"{name} is text-to-video; it takes no reference image", field="image")
        if image is None and self.requires_image:
            raise InvalidRequestError(
                f"{name} is image-to-video; a reference image is required", field="image"
            )
        if request.negative_prompt and "negative_prompt" not in self._params:
            raise InvalidRequestError(f"{name} takes no negative prompt", field="negative_prompt")
        if request.steps < self._family.min_steps:
            raise InvalidRequestError(
                f"{name} needs at least {self._family.min_steps} steps, got steps={request.steps}",
                field="steps",
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
        pil_image = self._checked(request, image)
        with self._lock:
            frames, params = self._generate_locked(request, pil_image, on_step, cancel, on_device=False)
        return cast(np.ndarray, frames), params

    def generate_on_device(
        self,
        request: GenerationRequest,
        *,
        image: np.ndarray | None = None,
        on_step: StepCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[torch.Tensor, GenerationParams]:
        """As :meth:`generate`, but the frames stay where the pipeline decoded them: a uint8 (T, H, W, 3) RGB tensor
        on the execution device (``params.device``). The Client uses it so that the watermark runs on the GPU and
        the frames cross to the CPU already marked; the values are the same as :meth:`generate`'s."""
        pil_image = self._checked(request, image)
        with self._lock:
            frames, params = self._generate_locked(request, pil_image, on_step, cancel, on_device=True)
        return cast(torch.Tensor, frames), params

    def _call_kwargs(
        self, request: GenerationRequest, pil_image: Any, generator: Any, *, on_device: bool = False
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "num_frames": request.num_frames + self._extra_frames(),
            "height": request.height,
            "width": request.width,
            "num_inference_steps": request.steps,
            "generator": generator,
            # "pt" leaves the decoded video a tensor where the VAE ran; "np" copies it to the host as floats
            "output_type": "pt" if on_device else "np",
        }
        # None is left out, not passed: a pipeline's own default applies (Allegro's is "", and None crashes it)
        if "negative_prompt" in self._params and request.negative_prompt is not None:
            kwargs["negative_prompt"] = request.negative_prompt
        if "guidance_scale" in self._params:
            kwargs["guidance_scale"] = request.guidance_scale
        for fps_name in ("frame_rate", "fps"):  # LTX conditions on the frame rate; most pipelines ignore it
            if fps_name in self._params:
                kwargs[fps_name] = request.fps
                break
        if pil_image is not None:
            kwargs["image"] = pil_image
        return kwargs

    def _extra_frames(self) -> int:
        # HunyuanVideo-I2V's "latent_concat" mode decodes an extra leading latent frame and drops its 4 frames
        if "latent_concat_trim" not in self._family.quirks:
            return 0
        cfg = getattr(getattr(self._pipeline, "transformer", None), "config", None)
        return 4 if getattr(cfg, "image_condition_type", None) == "latent_concat" else 0

    def _generate_locked(
        self,
        request: GenerationRequest,
        pil_image: Any,
        on_step: StepCallback | None,
        cancel: threading.Event | None,
        *,
        on_device: bool,
    ) -> tuple[np.ndarray | torch.Tensor, GenerationParams]:
        pipe = self._pipeline
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled(f"request {request.request_id} cancelled before it started")
        device = self._execution_device()
        # The generator lives on the execution device so a seed means the same noise as a run without the SDK.
        generator = torch.Generator(device=device).manual_seed(request.seed)
        kwargs = self._call_kwargs(request, pil_image, generator, on_device=on_device)
        t0 = time.perf_counter()
        hooks = step_hooks(pipe, self._params, steps=request.steps, on_step=on_step, cancel=cancel)
        try:
            with (
                hooks as (extra, counter),
                torch.inference_mode(),
                _torch_threads(self._cpu_threads if device.type == "cpu" else None),
            ):
                output = pipe(**kwargs, **extra)
        except Cancelled:
            raise GenerationCancelled(
                f"request {request.request_id} cancelled after step {counter.done} of {request.steps}"
            ) from None
        except Gen4Error:
            raise  # e.g. on_step raising GenerationCancelled itself
        except Exception as e:
            raise GenerationFailed(f"{type(pipe).__name__} failed: {type(e).__name__}: {e}") from e
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled(f"request {request.request_id} cancelled")
        try:
            raw = output_frames(output)
            frames: np.ndarray | torch.Tensor = (
                _uint8_tensor_frames(raw) if on_device else to_uint8_frames(raw)
            )
        except (ValueError, IndexError, TypeError, RuntimeError) as e:  # RuntimeError: out of device memory
            raise GenerationFailed(f"{type(pipe).__name__} returned unusable frames: {e}") from e
        expected = (request.num_frames, request.height, request.width)
        if tuple(frames.shape[:3]) != expected:
            # The rules should have caught this; never hand back a clip of another shape than requested.
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
            dtype=dtype_name(cast(torch.dtype, denoiser.dtype))
            if denoiser is not None
            else dtype_name(pipe.dtype),
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


def _uint8_tensor_frames(frames: Any) -> torch.Tensor:
    """Pipeline frames asked for with ``output_type="pt"`` -> a uint8 (T, H, W, 3) tensor on the same device, by
    the same arithmetic as :func:`to_uint8_frames` (so both paths give the same values). A pipeline that ignores
    ``"pt"`` (some return PIL images or numpy whatever is asked) gets the host path and a CPU tensor."""
    if not isinstance(frames, torch.Tensor):
        return torch.from_numpy(to_uint8_frames(frames))
    t = one_video_thwc(frames.detach())
    if t.dtype == torch.uint8:
        return t.contiguous()
    # in place, to hold one float copy of the clip at most on the device; the video is ours (and, made under
    # inference_mode, may only be changed there)
    with torch.inference_mode():
        t = t.float()
        if not bool(torch.isfinite(t).all()):
            raise ValueError("the model produced NaN or infinite pixel values (try float32 or another dtype)")
        return t.clamp_(0.0, 1.0).mul_(255.0).add_(0.5).to(torch.uint8).contiguous()
