"""Tiny HunyuanVideo pipelines (1.0 text-to-video, SkyReels-V1 image-to-video, 1.5), built offline in code."""

from __future__ import annotations

from typing import Any

from tiny_parts import TEXT_DIM, VOCAB, byte_tokenizer, clip_text, llama, template_tokenizer

# -- HunyuanVideo ---------------------------------------------------------------------------------------------------


def _hunyuan_vae() -> Any:
    from diffusers import AutoencoderKLHunyuanVideo

    return AutoencoderKLHunyuanVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        act_fn="silu",
        norm_num_groups=4,
        scaling_factor=0.476986,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
        mid_block_add_attention=True,
    )


def _hunyuan_transformer(in_channels: int = 4, **kw: Any) -> Any:
    from diffusers import HunyuanVideoTransformer3DModel

    return HunyuanVideoTransformer3DModel(
        in_channels=in_channels,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=10,
        num_layers=1,
        num_single_layers=1,
        num_refiner_layers=1,
        patch_size=1,
        patch_size_t=1,
        text_embed_dim=16,
        pooled_projection_dim=8,
        rope_axes_dim=(2, 4, 4),
        **kw,
    )


def hunyuan_t2v() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, HunyuanVideoPipeline

    return HunyuanVideoPipeline(
        transformer=_hunyuan_transformer(guidance_embeds=True),
        vae=_hunyuan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=llama(),
        tokenizer=byte_tokenizer(),
        text_encoder_2=clip_text(),
        tokenizer_2=byte_tokenizer(77),
    )


def hunyuan_skyreels_i2v() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, HunyuanSkyreelsImageToVideoPipeline

    return HunyuanSkyreelsImageToVideoPipeline(
        transformer=_hunyuan_transformer(in_channels=8, guidance_embeds=False),
        vae=_hunyuan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=llama(),
        tokenizer=byte_tokenizer(),
        text_encoder_2=clip_text(),
        tokenizer_2=byte_tokenizer(77),
    )


def hunyuan15_t2v() -> Any:
    """HunyuanVideo 1.5: a Qwen2.5-VL text model behind a chat template, ByT5 for quoted glyph text, no step callback."""
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        ClassifierFreeGuidance,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15Pipeline,
        HunyuanVideo15Transformer3DModel,
    )
    from transformers import (
        ByT5Tokenizer,
        Qwen2_5_VLTextConfig,
        Qwen2_5_VLTextModel,
        T5Config,
        T5EncoderModel,
    )

    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=9,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        num_refiner_layers=1,
        mlp_ratio=2.0,
        patch_size=1,
        patch_size_t=1,
        text_embed_dim=16,
        text_embed_2_dim=TEXT_DIM,
        image_embed_dim=12,
        rope_axes_dim=(2, 2, 4),
        target_size=16,
        task_type="t2v",
    )
    vae = AutoencoderKLHunyuanVideo15(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(16, 16),
        layers_per_block=1,
        spatial_compression_ratio=4,
        temporal_compression_ratio=2,
        downsample_match_channel=False,
        upsample_match_channel=False,
    )
    qwen = Qwen2_5_VLTextModel(
        Qwen2_5_VLTextConfig(
            hidden_size=16,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            vocab_size=VOCAB,
            bos_token_id=3,
            eos_token_id=1,
            # Qwen2.5-VL's multimodal rotary sections; older config keywords transformers still maps
            rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},  # type: ignore[call-arg]
            rope_theta=1000000.0,
        )
    ).eval()
    tokenizer = byte_tokenizer(2048)
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    byt5 = ByT5Tokenizer()
    glyph_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(byt5),
            d_model=TEXT_DIM,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    ).eval()
    return HunyuanVideo15Pipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=qwen,
        tokenizer=tokenizer,
        text_encoder_2=glyph_encoder,
        tokenizer_2=byt5,
        guider=ClassifierFreeGuidance(guidance_scale=1.0),
    )


def hunyuan_i2v() -> Any:
    """HunyuanVideo-I2V: a Llava text encoder reads the image inside its prompt template (576 image slots from
    position 5), and in "latent_concat" mode the pipeline decodes one extra leading latent and drops its 4 frames."""
    from diffusers import FlowMatchEulerDiscreteScheduler, HunyuanVideoImageToVideoPipeline
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_image2video import DEFAULT_PROMPT_TEMPLATE
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    tokenizer = template_tokenizer(str(DEFAULT_PROMPT_TEMPLATE["template"]))
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    text_config = LlamaConfig(
        bos_token_id=3,
        eos_token_id=1,
        pad_token_id=0,
        hidden_size=16,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(tokenizer),
        hidden_act="gelu",
    )
    # 336 / 14 = 24 patches a side: the 576 image features the template's slots expect
    vision_config = CLIPVisionConfig(
        hidden_size=8,
        intermediate_size=16,
        num_attention_heads=2,
        num_hidden_layers=2,
        image_size=336,
        patch_size=14,
    )
    llava = LlavaConfig(vision_config=vision_config, text_config=text_config, image_token_index=image_token)
    llava.pad_token_id = 0  # the pipeline pads the expanded prompt with the config's pad id
    text_encoder = LlavaForConditionalGeneration(llava).eval()
    return HunyuanVideoImageToVideoPipeline(
        transformer=_hunyuan_transformer(
            in_channels=2 * 4 + 1, guidance_embeds=False, image_condition_type="latent_concat"
        ),
        vae=_hunyuan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=clip_text(),
        tokenizer_2=byte_tokenizer(77),
        image_processor=CLIPImageProcessor(crop_size=336, size=336),
    )
