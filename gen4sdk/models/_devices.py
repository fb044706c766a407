"""Devices, dtypes and memory modes for a diffusers pipeline: parsed and checked before any weights move."""

from __future__ import annotations

import torch

from gen4sdk.errors import InvalidRequestError

__all__ = ["MEMORY_MODES", "check_memory_mode", "dtype_kwarg", "dtype_name", "parse_device", "parse_dtype"]

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
MEMORY_MODES: tuple[str, ...] = ("none", "cpu_offload", "vae_tiling")


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype in _DTYPES.values():
            return dtype
    elif dtype in _DTYPES:
        return _DTYPES[dtype]
    raise InvalidRequestError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}", field="dtype")


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def parse_device(device: str | torch.device) -> torch.device:
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


def dtype_kwarg() -> str:
    # diffusers renamed torch_dtype to dtype (the old name warns, and goes in 1.0); older releases know only torch_dtype
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def check_memory_mode(memory_mode: str, device: torch.device) -> None:
    if memory_mode == "cpu_offload" and device.type == "cpu":
        raise InvalidRequestError(
            "memory_mode='cpu_offload' keeps weights in CPU memory and moves each model to an accelerator when it "
            "runs; the device here is the CPU, so there is nothing to offload to. Use memory_mode='none' on CPU, "
            "or device='cuda' with an accelerator.",
            field="memory_mode",
        )
