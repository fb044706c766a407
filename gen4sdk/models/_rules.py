"""What frame counts and picture sizes a diffusers video pipeline produces exactly.

Diffusers pipelines quietly round a frame count or a size they cannot use (Wan warns and rounds, CogVideoX pads and
decodes latent frames in pairs, HunyuanVideo-I2V trims), so the clip a user gets would not be the clip they asked
for, nor the one the credentials describe. We check the request up front instead and reject it with the field name
and the nearest valid values, before the policy stage and any GPU work.

The family table (``_families``) says how each family's output follows from its numbers; the numbers themselves
(VAE temporal and spatial compression, transformer patch and sample sizes) come from the loaded pipeline's
components, so a checkpoint with another VAE (Wan 2.2's 16x one) gets its own rule without a table entry.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gen4sdk.errors import InvalidRequestError
from gen4sdk.models._families import Family

__all__ = ["FrameRules", "check_shape", "derive_rules", "output_frame_count"]


@dataclass(frozen=True)
class FrameRules:
    """Constraints on (num_frames, height, width) for one loaded pipeline."""

    family: Family
    pipeline_class: str
    temporal: int
    height_multiple: int
    width_multiple: int
    # (height, width) bounds from the transformer's sample size; exact when sample_exact
    sample_size: tuple[int, int] | None = None
    sample_exact: bool = False
    # (kernel, stride) in pixels/frames of a VAE that decodes whole tiles only, per axis (frames, height, width)
    tiles: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None = None
    spatial: int = 8

    def frames_ok(self, n: int) -> bool:
        if n < 1 or (self.family.max_frames is not None and n > self.family.max_frames):
            return False
        if self.family.frames == "tiled":
            return self.tiles is not None and n <= _tiled_frames(n, self.temporal, *self.tiles[0])
        return output_frame_count(self.family.frames, self.temporal, n) == n

    def size_ok(self, field: str, value: int) -> bool:
        multiple = self.height_multiple if field == "height" else self.width_multiple
        if value < multiple or value % multiple:
            return False
        if self.family.size == "tiled":
            if self.tiles is None:
                return False
            kernel, stride = self.tiles[1 if field == "height" else 2]
            return value <= _tiled_pixels(value, self.spatial, kernel, stride)
        if self.sample_size is None:
            return True
        bound = self.sample_size[0 if field == "height" else 1]
        return value == bound if self.sample_exact else value <= bound

    def describe_frames(self) -> str:
        t = self.temporal
        text = {
            "causal": f"{t}k+1" if t > 1 else "any",
            "cogvideox": f"{2 * t}k or {2 * t}k+1",
            "any": "any",
            "tiled": "one of " + ", ".join(str(n) for n in range(1, 101) if self.frames_ok(n)) + ", ...",
        }[self.family.frames]
        return text + (f", at most {self.family.max_frames}" if self.family.max_frames else "")

    def describe_size(self) -> str:
        if self.family.size == "tiled":
            sizes = {f: [v for v in range(16, 1025) if self.size_ok(f, v)][:4] for f in ("width", "height")}
            return f"widths {sizes['width']}..., heights {sizes['height']}... (whole VAE tiles)"
        if self.height_multiple == self.width_multiple:
            text = f"multiples of {self.height_multiple}"
        else:
            text = f"height a multiple of {self.height_multiple}, width of {self.width_multiple}"
        if self.sample_size is not None:
            h, w = self.sample_size
            text = f"exactly {w}x{h}" if self.sample_exact else f"{text}, at most {w}x{h}"
        return text

    def describe(self) -> str:
        return (
            f"{self.pipeline_class} ({self.family.name}): num_frames {self.describe_frames()}; "
            f"width and height {self.describe_size()}"
        )


def output_frame_count(kind: str, temporal: int, n: int) -> int:
    """How many frames a pipeline of this kind returns when asked for ``n``."""
    if kind == "any" or temporal <= 1:
        return n
    latent = (n - 1) // temporal + 1
    if kind == "causal":
        return (latent - 1) * temporal + 1
    if kind == "cogvideox":
        return temporal * latent if latent % 2 == 0 else temporal * (latent - 1) + 1
    raise ValueError(f"unknown frame rule {kind!r}")


def _tiled_frames(n: int, temporal: int, kernel: int, stride: int) -> int:
    # Allegro's prepare_latents: an even n gives ceil(n/t) latent frames, an odd one ceil((n-1)/t) + 1; its tiled
    # decode covers whole kernels only, so this many frames are real pictures (the rest stay zero)
    latent = -(-n // temporal) if n % 2 == 0 else -(-(n - 1) // temporal) + 1
    return _covered(latent, temporal, kernel, stride)


def _tiled_pixels(value: int, spatial: int, kernel: int, stride: int) -> int:
    return _covered(value // spatial, spatial, kernel, stride)


def _covered(latent: int, scale: int, kernel: int, stride: int) -> int:
    if kernel % scale or stride % scale or stride <= 0:
        return 0  # tiles that do not align with latent cells cannot be decoded exactly
    lk, ls = kernel // scale, stride // scale
    tiles = (latent - lk) // ls + 1 if latent >= lk else 0
    return kernel + (tiles - 1) * stride if tiles else 0


# -- numbers from the pipeline's components ------------------------------------------------------------------------


def _first_int(*candidates: tuple[Any, str]) -> int | None:
    # looked up lazily, in order: reading a config value as a module attribute warns in diffusers (deprecated)
    for obj, name in candidates:
        value = getattr(obj, name, None) if obj is not None else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _config(obj: Any) -> Any:
    return getattr(obj, "config", None) if obj is not None else None


def _temporal(pipe: Any) -> int:
    vae = getattr(pipe, "vae", None)
    return (
        _first_int(
            (pipe, "vae_scale_factor_temporal"),
            (pipe, "vae_temporal_compression_ratio"),
            (pipe, "vae_temporal_scale_factor"),  # Mochi
            (_config(vae), "scale_factor_temporal"),
            (_config(vae), "temporal_compression_ratio"),
            (vae, "temporal_compression_ratio"),
        )
        or 1
    )


def _spatial(pipe: Any) -> int:
    vae = getattr(pipe, "vae", None)
    return (
        _first_int(
            (pipe, "vae_scale_factor_spatial"),
            (pipe, "vae_spatial_compression_ratio"),
            (pipe, "vae_spatial_scale_factor"),  # Mochi
            (_config(vae), "scale_factor_spatial"),
            (_config(vae), "spatial_compression_ratio"),
            (vae, "spatial_compression_ratio"),
            (pipe, "vae_scale_factor"),
        )
        or 8
    )


def _transformer_config(pipe: Any) -> Any:
    for name in ("transformer", "transformer_2", "unet"):
        cfg = _config(getattr(pipe, name, None))
        if cfg is not None:
            return cfg
    return None


def _patch_hw(cfg: Any) -> tuple[int, int]:
    p = getattr(cfg, "patch_size", None) if cfg is not None else None
    if isinstance(p, (list, tuple)) and len(p) == 3:  # Wan: (t, h, w)
        return int(p[1]), int(p[2])
    if isinstance(p, (list, tuple)) and len(p) == 2:
        return int(p[0]), int(p[1])
    if isinstance(p, int) and p > 0:
        return p, p
    return 1, 1


def _sample_bound(cfg: Any, spatial: int) -> tuple[tuple[int, int] | None, bool]:
    # CogVideoX's patch embedding: learned positions exist for the sample size only; rotary positions with
    # patch_size_t (1.5) are sliced from a sample-size grid, so larger pictures fail; otherwise no bound.
    if cfg is None:
        return None, False
    p = _patch_hw(cfg)[0]
    h, w = getattr(cfg, "sample_height", None), getattr(cfg, "sample_width", None)
    if not isinstance(h, int) or not isinstance(w, int):
        return None, False
    if getattr(cfg, "use_learned_positional_embeddings", False):
        return (h * spatial, w * spatial), True
    if getattr(cfg, "use_rotary_positional_embeddings", False) and getattr(cfg, "patch_size_t", None):
        return ((h // p) * p * spatial, (w // p) * p * spatial), False
    return None, False


def _vae_tiles(pipe: Any) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    vae = getattr(pipe, "vae", None)
    kernel, stride = getattr(vae, "kernel", None), getattr(vae, "stride", None)
    if not (isinstance(kernel, tuple) and isinstance(stride, tuple) and len(kernel) == len(stride) == 3):
        return None
    k, st = tuple(int(x) for x in kernel), tuple(int(x) for x in stride)
    return (k[0], st[0]), (k[1], st[1]), (k[2], st[2])


def derive_rules(pipe: Any, family: Family) -> FrameRules:
    cfg = _transformer_config(pipe)
    s = _spatial(pipe)
    ph, pw = _patch_hw(cfg)
    bound, exact = _sample_bound(cfg, s) if family.size == "sample" else (None, False)
    return FrameRules(
        tiles=_vae_tiles(pipe) if "tiled" in (family.frames, family.size) else None,
        spatial=s,
        family=family,
        pipeline_class=type(pipe).__name__,
        temporal=_temporal(pipe),
        height_multiple=math.lcm(family.size_multiple, s * ph),
        width_multiple=math.lcm(family.size_multiple, s * pw),
        sample_size=bound,
        sample_exact=exact,
    )


# -- checking a request ---------------------------------------------------------------------------------------------


def _nearest(value: int, ok: Callable[[int], bool], limit: int = 4096) -> list[int]:
    below = next((v for v in range(value - 1, 0, -1) if ok(v)), None)
    above = next((v for v in range(value + 1, limit + 1) if ok(v)), None)
    return [v for v in (below, above) if v is not None]


def check_shape(rules: FrameRules, *, num_frames: int, height: int, width: int) -> None:
    """Raise InvalidRequestError(field=...) unless the pipeline would produce exactly this shape."""
    if not rules.frames_ok(num_frames):
        near = " or ".join(str(v) for v in _nearest(num_frames, rules.frames_ok, 1025))
        raise InvalidRequestError(
            f"num_frames={num_frames} is not valid for {rules.describe()}; nearest valid: {near}",
            field="num_frames",
        )
    for field, value in (("height", height), ("width", width)):
        if not rules.size_ok(field, value):
            near = " or ".join(str(v) for v in _nearest(value, functools.partial(rules.size_ok, field)))
            raise InvalidRequestError(
                f"{field}={value} is not valid for {rules.describe()}; nearest valid: {near}",
                field=field,
            )
