"""What frame counts and picture sizes a diffusers video pipeline accepts.

Diffusers pipelines quietly round a frame count or a size they cannot use (Wan warns and rounds down, CogVideoX
pads extra frames), so the clip a user gets would not be the clip they asked for, nor the one the credentials
describe. We check the request up front instead and reject it with the field name and the nearest valid values.

The rules come from the pipeline object itself (VAE compression factors, transformer patch sizes); the table below
only says which of those numbers matter for each family and what each family's ``check_inputs`` additionally
demands. Families we do not know fall back to the same derivation with conservative defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gen4sdk.errors import InvalidRequestError

__all__ = ["FrameRules", "check_shape", "rules_for"]


@dataclass(frozen=True)
class FrameRules:
    """Constraints on (num_frames, height, width) for one pipeline object."""

    family: str
    pipeline_class: str
    # num_frames must be temporal * k + 1 (the causal video VAEs keep the first frame on its own); 1 = any count.
    temporal: int
    height_multiple: int
    width_multiple: int
    # CogVideoX 1.5 patchifies latent frames in pairs; otherwise 1.
    latent_frames_multiple: int = 1

    def describe(self) -> str:
        frames = "any" if self.temporal <= 1 else f"{self.temporal}*k+1"
        if self.latent_frames_multiple > 1:
            frames += f" with k+1 divisible by {self.latent_frames_multiple}"
        return (
            f"{self.pipeline_class} ({self.family}): num_frames {frames}, height multiple of "
            f"{self.height_multiple}, width multiple of {self.width_multiple}"
        )

    def frames_ok(self, n: int) -> bool:
        if n < 1:
            return False
        if self.temporal > 1 and (n - 1) % self.temporal != 0:
            return False
        latent = (n - 1) // max(self.temporal, 1) + 1
        return latent % self.latent_frames_multiple == 0


def _first_int(*candidates: Any) -> int | None:
    for c in candidates:
        if isinstance(c, bool):
            continue
        if isinstance(c, int) and c > 0:
            return c
    return None


def _config(obj: Any) -> Any:
    return getattr(obj, "config", None) if obj is not None else None


def _temporal(pipe: Any, default: int) -> int:
    vae = getattr(pipe, "vae", None)
    return (
        _first_int(
            getattr(pipe, "vae_scale_factor_temporal", None),
            getattr(pipe, "vae_temporal_compression_ratio", None),
            getattr(pipe, "vae_temporal_scale_factor", None),  # Mochi
            getattr(vae, "temporal_compression_ratio", None),
            getattr(_config(vae), "scale_factor_temporal", None),
            getattr(_config(vae), "temporal_compression_ratio", None),
        )
        or default
    )


def _spatial(pipe: Any, default: int) -> int:
    vae = getattr(pipe, "vae", None)
    return (
        _first_int(
            getattr(pipe, "vae_scale_factor_spatial", None),
            getattr(pipe, "vae_spatial_compression_ratio", None),
            getattr(pipe, "vae_spatial_scale_factor", None),  # Mochi
            getattr(vae, "spatial_compression_ratio", None),
            getattr(_config(vae), "scale_factor_spatial", None),
            getattr(_config(vae), "spatial_compression_ratio", None),
        )
        or default
    )


def _transformer_config(pipe: Any) -> Any:
    for name in ("transformer", "transformer_2", "unet"):
        cfg = _config(getattr(pipe, name, None))
        if cfg is not None:
            return cfg
    return None


def _patch_hw(pipe: Any) -> tuple[int, int]:
    cfg = _transformer_config(pipe)
    p = getattr(cfg, "patch_size", None) if cfg is not None else None
    if isinstance(p, (list, tuple)) and len(p) == 3:  # Wan: (t, h, w)
        return int(p[1]), int(p[2])
    if isinstance(p, (list, tuple)) and len(p) == 2:
        return int(p[0]), int(p[1])
    if isinstance(p, int) and p > 0:
        return p, p
    return 1, 1


def _patch_t(pipe: Any) -> int:
    cfg = _transformer_config(pipe)
    p = getattr(cfg, "patch_size_t", None) if cfg is not None else None
    return p if isinstance(p, int) and p > 0 else 1


def _derive(
    pipe: Any,
    family: str,
    *,
    temporal_default: int,
    spatial_default: int,
    check_inputs_multiple: int,
    use_patch_t: bool = False,
) -> FrameRules:
    s = _spatial(pipe, spatial_default)
    ph, pw = _patch_hw(pipe)
    return FrameRules(
        family=family,
        pipeline_class=type(pipe).__name__,
        temporal=_temporal(pipe, temporal_default),
        height_multiple=math.lcm(check_inputs_multiple, s * ph),
        width_multiple=math.lcm(check_inputs_multiple, s * pw),
        latent_frames_multiple=_patch_t(pipe) if use_patch_t else 1,
    )


# family prefix of the pipeline class name -> how to derive its rules. check_inputs_multiple is what the family's
# own check_inputs insists on beyond patchification (Wan and HunyuanVideo: 16, LTX: 32, CogVideoX: 8).
_FAMILIES: tuple[tuple[str, Callable[[Any], FrameRules]], ...] = (
    ("Wan", lambda p: _derive(p, "wan", temporal_default=4, spatial_default=8, check_inputs_multiple=16)),
    ("LTX", lambda p: _derive(p, "ltx", temporal_default=8, spatial_default=32, check_inputs_multiple=32)),
    (
        "CogVideoX",
        lambda p: _derive(
            p, "cogvideox", temporal_default=4, spatial_default=8, check_inputs_multiple=8, use_patch_t=True
        ),
    ),
    (
        "HunyuanVideo",
        lambda p: _derive(p, "hunyuanvideo", temporal_default=4, spatial_default=8, check_inputs_multiple=16),
    ),
)


def _generic(pipe: Any) -> FrameRules:
    # Unknown family: if the VAE compresses time, assume the usual causal n*k+1 rule; otherwise any count.
    vae = getattr(pipe, "vae", None)
    has_temporal = any(
        x is not None
        for x in (
            getattr(pipe, "vae_scale_factor_temporal", None),
            getattr(pipe, "vae_temporal_compression_ratio", None),
            getattr(pipe, "vae_temporal_scale_factor", None),
            getattr(vae, "temporal_compression_ratio", None),
            getattr(_config(vae), "scale_factor_temporal", None),
        )
    )
    return (
        _derive(
            pipe,
            "generic",
            temporal_default=1,
            spatial_default=8,
            check_inputs_multiple=8,
        )
        if has_temporal
        else FrameRules(
            family="generic",
            pipeline_class=type(pipe).__name__,
            temporal=1,
            height_multiple=math.lcm(8, _spatial(pipe, 8) * _patch_hw(pipe)[0]),
            width_multiple=math.lcm(8, _spatial(pipe, 8) * _patch_hw(pipe)[1]),
        )
    )


def rules_for(pipe: Any) -> FrameRules:
    name = type(pipe).__name__
    for prefix, derive in _FAMILIES:
        if name.startswith(prefix):
            return derive(pipe)
    return _generic(pipe)


def _nearest(value: int, ok: Callable[[int], bool], lo: int = 1) -> list[int]:
    below = next((v for v in range(value - 1, lo - 1, -1) if ok(v)), None)
    above = next((v for v in range(value + 1, value + 4097) if ok(v)), None)
    return [v for v in (below, above) if v is not None]


def _multiple_of(m: int) -> Callable[[int], bool]:
    return lambda v: v % m == 0


def check_shape(rules: FrameRules, *, num_frames: int, height: int, width: int) -> None:
    """Raise InvalidRequestError(field=...) unless the pipeline would produce exactly this shape."""
    if not rules.frames_ok(num_frames):
        near = " or ".join(str(v) for v in _nearest(num_frames, rules.frames_ok))
        raise InvalidRequestError(
            f"num_frames={num_frames} is not valid for {rules.describe()}; nearest valid: {near}",
            field="num_frames",
        )
    for field, value, multiple in (
        ("height", height, rules.height_multiple),
        ("width", width, rules.width_multiple),
    ):
        if value % multiple != 0:
            near = " or ".join(str(v) for v in _nearest(value, _multiple_of(multiple), lo=multiple))
            raise InvalidRequestError(
                f"{field}={value} is not valid for {rules.describe()}; nearest valid: {near}",
                field=field,
            )
