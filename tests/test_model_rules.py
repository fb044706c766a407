"""The frame and size rules of each family, derived from the numbers a pipeline's components carry (fake pipeline
objects with those attributes, so the published checkpoints' configs can be checked without their weights)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gen4sdk.errors import InvalidRequestError, ModelLoadError
from gen4sdk.models import DiffusersVideoModel, tiny_model
from gen4sdk.models._families import FAMILIES, Family
from gen4sdk.models._rules import check_shape, derive_rules


@pytest.fixture(scope="module")
def t2v() -> DiffusersVideoModel:
    return tiny_model()


def _fake(class_name: str, **attrs) -> object:
    return type(class_name, (), attrs)()


def _family(cls: str) -> Family:
    return next(f for f in FAMILIES if cls in f.classes)


def _ok(rules, **shape) -> bool:
    try:
        check_shape(rules, **shape)
    except InvalidRequestError:
        return False
    return True


def _transformer(**cfg) -> SimpleNamespace:
    return SimpleNamespace(config=SimpleNamespace(**cfg))


def test_rules_wan_from_pipeline_object(t2v: DiffusersVideoModel) -> None:
    r = t2v.rules
    assert (r.family.name, r.temporal, r.height_multiple, r.width_multiple) == (
        "Wan 2.1 / 2.2 text-to-video",
        4,
        16,
        16,
    )
    # a Wan 2.2 TI2V-like pipeline (16x spatial VAE) needs multiples of 32: the numbers come from the components
    r22 = derive_rules(
        _fake(
            "WanPipeline",
            vae_scale_factor_temporal=4,
            vae_scale_factor_spatial=16,
            transformer=_transformer(patch_size=(1, 2, 2)),
        ),
        _family("WanPipeline"),
    )
    assert (r22.height_multiple, r22.width_multiple) == (32, 32)
    assert not _ok(r22, num_frames=17, height=144, width=256)
    assert _ok(r22, num_frames=17, height=160, width=256)


def test_rules_ltx_mochi_hunyuan() -> None:
    ltx = derive_rules(
        _fake(
            "LTXPipeline",
            vae_temporal_compression_ratio=8,
            vae_spatial_compression_ratio=32,
            transformer=_transformer(patch_size=1, patch_size_t=1),
        ),
        _family("LTXPipeline"),
    )
    assert _ok(ltx, num_frames=17, height=160, width=256)
    assert not _ok(ltx, num_frames=13, height=160, width=256)  # 8k+1
    assert not _ok(ltx, num_frames=17, height=144, width=256)  # multiple of 32
    mochi = derive_rules(
        _fake(
            "MochiPipeline",
            vae_temporal_scale_factor=6,
            vae_spatial_scale_factor=8,
            transformer=_transformer(patch_size=2),
        ),
        _family("MochiPipeline"),
    )
    assert [n for n in range(1, 30) if mochi.frames_ok(n)] == [1, 7, 13, 19, 25]
    assert mochi.height_multiple == 16
    hy = derive_rules(
        _fake(
            "HunyuanVideoPipeline",
            vae_scale_factor_temporal=4,
            vae_scale_factor_spatial=8,
            transformer=_transformer(patch_size=2, patch_size_t=1),
        ),
        _family("HunyuanVideoPipeline"),
    )
    assert (hy.temporal, hy.height_multiple) == (4, 16)
    assert not _ok(hy, num_frames=16, height=144, width=256)


def test_rules_cogvideox_frames_decode_in_pairs() -> None:
    # L = (n-1)//4 + 1 latent frames decode to 4L frames when L is even and 4L-3 when odd: 8k and 8k+1 exactly
    cfg = {"vae_scale_factor_temporal": 4, "vae_scale_factor_spatial": 8}
    cog10 = derive_rules(
        _fake("CogVideoXPipeline", **cfg, transformer=_transformer(patch_size=2, patch_size_t=None)),
        _family("CogVideoXPipeline"),
    )
    assert [n for n in range(1, 26) if cog10.frames_ok(n)] == [1, 8, 9, 16, 17, 24, 25]
    assert cog10.frames_ok(49) and not cog10.frames_ok(13) and not cog10.frames_ok(21)
    assert cog10.sample_size is None and _ok(cog10, num_frames=49, height=480, width=720)
    # 1.5 pads to whole latent pairs and crops again, so the same counts, including its default of 81
    cog15 = derive_rules(
        _fake(
            "CogVideoXPipeline",
            **cfg,
            transformer=_transformer(
                patch_size=2,
                patch_size_t=2,
                use_rotary_positional_embeddings=True,
                use_learned_positional_embeddings=False,
                sample_height=300,
                sample_width=300,
            ),
        ),
        _family("CogVideoXPipeline"),
    )
    assert cog15.frames_ok(81) and cog15.frames_ok(9) and cog15.frames_ok(16) and not cog15.frames_ok(13)
    assert _ok(cog15, num_frames=81, height=768, width=1360)
    assert not _ok(cog15, num_frames=81, height=768, width=2416)  # past the rotary grid of its sample size
    # 5b-I2V's learned positional embeddings exist for its sample size only
    i2v = derive_rules(
        _fake(
            "CogVideoXImageToVideoPipeline",
            **cfg,
            transformer=_transformer(
                patch_size=2,
                use_rotary_positional_embeddings=True,
                use_learned_positional_embeddings=True,
                sample_height=60,
                sample_width=90,
            ),
        ),
        _family("CogVideoXImageToVideoPipeline"),
    )
    assert _ok(i2v, num_frames=49, height=480, width=720)
    with pytest.raises(InvalidRequestError, match=r"exactly 720x480") as ei:
        check_shape(i2v, num_frames=49, height=464, width=720)
    assert ei.value.field == "height" and "nearest valid: 480" in str(ei.value)


def test_unverified_pipeline_classes_are_refused() -> None:
    class SomeFutureVideoPipeline:
        def __init__(self) -> None:
            self.components: dict = {}

        def __call__(self, prompt: str, num_frames: int = 17) -> None: ...

    with pytest.raises(
        ModelLoadError, match="SomeFutureVideoPipeline is not supported: .*not among the families"
    ):
        DiffusersVideoModel(SomeFutureVideoPipeline(), model_id="future")
