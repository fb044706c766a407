"""Tiny, randomly initialised pipelines of every diffusers video family gen4sdk supports, built in code.

Modelled on the ``get_dummy_components`` of diffusers' own pipeline tests, but offline: those tests download tiny
tokenizers and text encoders from the hub; here every tokenizer is a byte-level BPE with no merges (260 tokens,
built with ``tokenizers``) and every text encoder is configured in code with a matching vocabulary. Weights depend
only on the seed. Sizes are the smallest that still let each VAE decode a 256x144-ish clip quickly on one core.

``BUILDERS`` maps a variant name (the family table's variant names) to a function returning the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from tiny_hunyuan import hunyuan15_t2v, hunyuan_i2v, hunyuan_skyreels_i2v, hunyuan_t2v
from tiny_parts import TEXT_DIM, byte_tokenizer, clip_text, clip_vision, t5

# -- Wan 2.1 / 2.2 and SkyReels-V2 (Wan's VAE and a Wan-like transformer) -----------------------------------------


def _wan_vae(wan22_5b: bool = False) -> Any:
    from diffusers import AutoencoderKLWan

    if wan22_5b:  # 16x spatial: a 2x2 pixel patchifier in front of the 8x VAE
        return AutoencoderKLWan(
            base_dim=3,
            z_dim=48,
            in_channels=12,
            out_channels=12,
            is_residual=True,
            patch_size=2,
            latents_mean=[0.0] * 48,
            latents_std=[1.0] * 48,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            scale_factor_spatial=16,
            scale_factor_temporal=4,
            temperal_downsample=[False, True, True],
        )
    return AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )


def _wan_transformer(
    cls: Any, in_channels: int = 16, out_channels: int = 16, image_dim: int | None = None
) -> Any:
    return cls(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=out_channels,
        text_dim=TEXT_DIM,
        freq_dim=32,
        ffn_dim=32,
        num_layers=1,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=image_dim,
    )


def wan21_t2v() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    return WanPipeline(
        tokenizer=byte_tokenizer(),
        text_encoder=t5(umt5=True),
        vae=_wan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=_wan_transformer(WanTransformer3DModel),
    )


def wan21_i2v() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanTransformer3DModel

    enc, proc = clip_vision()
    return WanImageToVideoPipeline(
        tokenizer=byte_tokenizer(),
        text_encoder=t5(umt5=True),
        vae=_wan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=_wan_transformer(WanTransformer3DModel, in_channels=36, image_dim=4),
        image_encoder=enc,
        image_processor=proc,
    )


def wan22_i2v_a14b() -> Any:
    """Wan2.2-I2V-A14B: two experts and no image encoder (the image enters as latents only)."""
    from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel

    return WanImageToVideoPipeline(
        tokenizer=byte_tokenizer(),
        text_encoder=t5(umt5=True),
        vae=_wan_vae(),
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        ),
        transformer=_wan_transformer(WanTransformer3DModel, in_channels=36),
        transformer_2=_wan_transformer(WanTransformer3DModel, in_channels=36),
        image_encoder=None,
        image_processor=None,
        boundary_ratio=0.875,
    )


def wan22_a14b() -> Any:
    """Two experts (high noise, low noise) switched at ``boundary_ratio``, as in Wan2.2-T2V-A14B."""
    from diffusers import UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

    return WanPipeline(
        tokenizer=byte_tokenizer(),
        text_encoder=t5(umt5=True),
        vae=_wan_vae(),
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        ),
        transformer=_wan_transformer(WanTransformer3DModel),
        transformer_2=_wan_transformer(WanTransformer3DModel),
        boundary_ratio=0.875,
    )


def wan22_ti2v_5b() -> Any:
    """Wan2.2-TI2V-5B: the 16x-compressing VAE and per-token timesteps (``expand_timesteps``)."""
    from diffusers import UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

    return WanPipeline(
        tokenizer=byte_tokenizer(),
        text_encoder=t5(umt5=True),
        vae=_wan_vae(wan22_5b=True),
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        ),
        transformer=_wan_transformer(WanTransformer3DModel, in_channels=48, out_channels=48),
        expand_timesteps=True,
    )


def _skyreels(cls_name: str, i2v: bool) -> Any:
    import diffusers
    from diffusers import SkyReelsV2Transformer3DModel, UniPCMultistepScheduler

    parts: dict[str, Any] = {
        "tokenizer": byte_tokenizer(),
        "text_encoder": t5(umt5=True),
        "vae": _wan_vae(),
        "scheduler": UniPCMultistepScheduler(
            flow_shift=8.0, use_flow_sigmas=True, prediction_type="flow_prediction"
        ),
    }
    if cls_name == "SkyReelsV2ImageToVideoPipeline":
        enc, proc = clip_vision()
        parts.update(
            transformer=_wan_transformer(SkyReelsV2Transformer3DModel, in_channels=36, image_dim=4),
            image_encoder=enc,
            image_processor=proc,
        )
    else:
        parts["transformer"] = _wan_transformer(SkyReelsV2Transformer3DModel)
    return getattr(diffusers, cls_name)(**parts)


def skyreels_v2_t2v() -> Any:
    return _skyreels("SkyReelsV2Pipeline", False)


def skyreels_v2_i2v() -> Any:
    return _skyreels("SkyReelsV2ImageToVideoPipeline", True)


def skyreels_v2_df() -> Any:
    return _skyreels("SkyReelsV2DiffusionForcingPipeline", False)


def skyreels_v2_df_i2v() -> Any:
    return _skyreels("SkyReelsV2DiffusionForcingImageToVideoPipeline", True)


# -- LTX-Video ------------------------------------------------------------------------------------------------------


def _ltx(cls_name: str) -> Any:
    import diffusers
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXVideoTransformer3DModel

    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=TEXT_DIM,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    return getattr(diffusers, cls_name)(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=t5(),
        tokenizer=byte_tokenizer(),
    )


def ltx_t2v() -> Any:
    return _ltx("LTXPipeline")


def ltx_i2v() -> Any:
    return _ltx("LTXImageToVideoPipeline")


def ltx_condition() -> Any:
    return _ltx("LTXConditionPipeline")


# -- CogVideoX 1.0 / 1.5 -------------------------------------------------------------------------------------------


def _cog(i2v: bool, v15: bool) -> Any:
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    extra: dict[str, Any] = {}
    if v15:  # CogVideoX 1.5: latent frames patchified in pairs, rotary positions, no learned ones
        extra = {
            "patch_size_t": 2,
            "use_rotary_positional_embeddings": True,
            "use_learned_positional_embeddings": False,
        }
    elif i2v:  # CogVideoX-5b-I2V: learned positional embeddings fix the size to the sample size
        extra = {"use_rotary_positional_embeddings": True, "use_learned_positional_embeddings": True}
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=8 if i2v else 4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=TEXT_DIM,
        num_layers=1,
        # 1.0 I2V runs at exactly its sample size (learned positions); 1.5 up to it (rotary positions sliced from
        # that grid); 1.0 text-to-video at any size
        sample_width=32,  # latent 32 -> 256 pixels
        sample_height=20 if v15 else 18,  # latent 18 -> 144 pixels
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,  # the pipeline's default max_sequence_length
        **extra,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    cls = CogVideoXImageToVideoPipeline if i2v else CogVideoXPipeline
    return cls(
        transformer=transformer,
        vae=vae,
        scheduler=CogVideoXDDIMScheduler(),
        text_encoder=t5(),
        tokenizer=byte_tokenizer(),
    )


def cogvideox_t2v() -> Any:
    return _cog(i2v=False, v15=False)


def cogvideox15_t2v() -> Any:
    return _cog(i2v=False, v15=True)


def cogvideox_i2v() -> Any:
    return _cog(i2v=True, v15=False)


def cogvideox15_i2v() -> Any:
    return _cog(i2v=True, v15=True)


# -- Mochi, Allegro ------------------------------------------------------------------------------------------------


def mochi() -> Any:
    from diffusers import (
        AutoencoderKLMochi,
        FlowMatchEulerDiscreteScheduler,
        MochiPipeline,
        MochiTransformer3DModel,
    )

    transformer = MochiTransformer3DModel(
        patch_size=2,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        pooled_projection_dim=16,
        in_channels=12,
        out_channels=None,
        qk_norm="rms_norm",
        text_embed_dim=TEXT_DIM,
        time_embed_dim=4,
        activation_fn="swiglu",
        max_sequence_length=16,
    )
    vae = AutoencoderKLMochi(
        latent_channels=12,
        out_channels=3,
        encoder_block_out_channels=(32, 32, 32, 32),  # its group norms have 32 groups
        decoder_block_out_channels=(32, 32, 32, 32),
        layers_per_block=(1, 1, 1, 1, 1),
    )
    return MochiPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=t5(),
        tokenizer=byte_tokenizer(),
    )


def allegro() -> Any:
    from diffusers import AllegroPipeline, AllegroTransformer3DModel, AutoencoderKLAllegro, DDIMScheduler

    transformer = AllegroTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        cross_attention_dim=24,
        sample_width=8,
        sample_height=8,
        sample_frames=8,
        caption_channels=24,
    )
    vae = AutoencoderKLAllegro(
        in_channels=3,
        out_channels=3,
        down_block_types=("AllegroDownBlock3D",) * 4,
        up_block_types=("AllegroUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
        sample_size=256,  # its decode tile: 256x256 pixels (stride 136 down, 176 across), 24 frames (stride 16)
    )
    return AllegroPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=DDIMScheduler(),
        text_encoder=t5(d_model=24),
        tokenizer=byte_tokenizer(),
    )


def modelscope_t2v() -> Any:
    """ModelScope text-to-video (TextToVideoSDPipeline): a 3D UNet, a per-frame image VAE, no step callback."""
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    unet = UNet3DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=8,
        attention_head_dim=4,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=2,
    )
    return TextToVideoSDPipeline(
        vae=vae,
        text_encoder=clip_text(hidden=8),
        tokenizer=byte_tokenizer(77),
        unet=unet,
        scheduler=DDIMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            set_alpha_to_one=False,
        ),
    )


BUILDERS: dict[str, Callable[[], Any]] = {
    "wan2.1-t2v": wan21_t2v,
    "wan2.1-i2v": wan21_i2v,
    "wan2.2-a14b": wan22_a14b,
    "wan2.2-ti2v-5b": wan22_ti2v_5b,
    "wan2.2-i2v-a14b": wan22_i2v_a14b,
    "skyreels-v2-t2v": skyreels_v2_t2v,
    "skyreels-v2-i2v": skyreels_v2_i2v,
    "skyreels-v2-df": skyreels_v2_df,
    "skyreels-v2-df-i2v": skyreels_v2_df_i2v,
    "ltx-t2v": ltx_t2v,
    "ltx-i2v": ltx_i2v,
    "ltx-condition": ltx_condition,
    "cogvideox-t2v": cogvideox_t2v,
    "cogvideox1.5-t2v": cogvideox15_t2v,
    "cogvideox-i2v": cogvideox_i2v,
    "cogvideox1.5-i2v": cogvideox15_i2v,
    "mochi": mochi,
    "allegro": allegro,
    "hunyuan-t2v": hunyuan_t2v,
    "hunyuan-i2v": hunyuan_i2v,
    "hunyuan-skyreels-i2v": hunyuan_skyreels_i2v,
    "hunyuan1.5-t2v": hunyuan15_t2v,
    "modelscope-t2v": modelscope_t2v,
}


def build(variant: str, seed: int = 0) -> Any:
    """The variant's pipeline, with weights depending only on ``seed``, every module in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe = BUILDERS[variant]()
    for c in pipe.components.values():
        if isinstance(c, torch.nn.Module):
            c.eval()
    # as a checkpoint is stored: CogVideoX builds its positional table in float64, a float32 load casts it
    modules = [c for c in pipe.components.values() if isinstance(c, torch.nn.Module)]
    if any(t.dtype == torch.float64 for m in modules for t in m.state_dict().values()):
        pipe.to(dtype=torch.float32)
    return pipe
