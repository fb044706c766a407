"""A tiny, randomly initialised Wan pipeline built entirely in code: no download, no hub, a few seconds on a CPU.

It exercises the real diffusers code path (text encoder, transformer, scheduler, causal video VAE) so tests and the
demo run the SDK end to end, but its pictures are random: a fine blue-violet grain texture (per-frame pixel std
~35-70 of 255, the first frame flatter at ~20-30), different for every seed and prompt, that depicts nothing. The tokenizer is CLIP's BPE vocabulary, which ships inside open_clip, so prompts are tokenised the way
a real model would tokenise them.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path
from typing import Any, cast

import torch

from gen4sdk.errors import ModelLoadError
from gen4sdk.models._diffusers import DiffusersVideoModel

__all__ = ["TINY_MODEL_ID", "tiny_model", "tiny_pipeline"]

TINY_MODEL_ID = "gen4sdk/tiny-wan-random"

_TEXT_DIM = 32
# A random VAE decodes to nearly flat grey (std ~0.06 of full range); with 8 base channels (3 is flatter still) and
# its last convolution scaled up, the latent noise comes out as visible texture without clipping, which the
# watermark (it skips flat areas) and the output checks need to be exercised realistically.
_DECODER_GAIN = 2.0


@functools.lru_cache(maxsize=1)
def _clip_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "open_clip is not installed; the tiny pipeline takes its tokenizer vocabulary from it"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise ModelLoadError(f"cannot read CLIP's BPE vocabulary {path}: {e}") from e
    # Same layout as CLIP's vocabulary: 256 byte symbols, the same with an end-of-word mark, the first 48894
    # merges, two special tokens: 49408 entries.
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    from tokenizers import pre_tokenizers

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, [(a, b) for a, b in merges]


def _tokenizer() -> Any:
    from transformers import CLIPTokenizer

    vocab, merges = _clip_bpe()
    merge_list: list[Any] = list(merges)
    return CLIPTokenizer(vocab=dict(vocab), merges=merge_list, model_max_length=77)


def tiny_pipeline(image_to_video: bool = False, seed: int = 0) -> Any:
    """A randomly initialised WanPipeline (or WanImageToVideoPipeline) small enough for a CPU.

    Weights depend only on ``seed``, so two calls with the same seed give identical pipelines (and weight
    digests). Accepts num_frames = 4k+1 and sizes that are multiples of 16; 256x144x17 takes ~2.5-3.5 s of CPU on
    one core at 4-10 steps (the VAE decode dominates).
    """
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
        UMT5Config,
        UMT5EncoderModel,
    )

    tokenizer = _tokenizer()
    with torch.random.fork_rng(devices=[]):  # do not disturb the caller's global RNG
        torch.manual_seed(seed)
        vae = AutoencoderKLWan(
            base_dim=8,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        )
        with torch.no_grad():
            conv_out = cast(torch.nn.Module, vae).get_submodule("decoder.conv_out")
            cast(torch.Tensor, conv_out.weight).mul_(_DECODER_GAIN)
        text_encoder = UMT5EncoderModel(
            UMT5Config(
                vocab_size=len(tokenizer),
                d_model=_TEXT_DIM,
                d_kv=8,
                d_ff=64,
                num_layers=2,
                num_heads=4,
                relative_attention_num_buckets=8,
                feed_forward_proj="gated-gelu",
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                decoder_start_token_id=tokenizer.pad_token_id,
            )
        )
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=12,
            # image-to-video concatenates 16 noise channels, 16 image-latent channels and a 4-channel mask
            in_channels=36 if image_to_video else 16,
            out_channels=16,
            text_dim=_TEXT_DIM,
            freq_dim=32,
            ffn_dim=48,
            num_layers=2,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=64,
            image_dim=8 if image_to_video else None,
        )
        scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
        for module in (vae, text_encoder, transformer):
            cast(torch.nn.Module, module).eval()  # built in code, so still in training mode (dropout on)
        if not image_to_video:
            return WanPipeline(
                tokenizer=tokenizer,
                text_encoder=text_encoder,
                vae=vae,
                scheduler=scheduler,
                transformer=transformer,
            )
        image_encoder = CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=8,
                projection_dim=8,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=32,
                intermediate_size=16,
                patch_size=4,
            )
        ).eval()
        image_processor = CLIPImageProcessor(crop_size=32, size=32)
        return WanImageToVideoPipeline(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            vae=vae,
            scheduler=scheduler,
            transformer=transformer,
            image_encoder=image_encoder,
            image_processor=image_processor,
        )


def tiny_model(image_to_video: bool = False, seed: int = 0) -> DiffusersVideoModel:
    """:func:`tiny_pipeline` wrapped as a model with id ``gen4sdk/tiny-wan-random`` (``-i2v`` for image-to-video),
    on the CPU in float32, one torch thread."""
    return DiffusersVideoModel(
        tiny_pipeline(image_to_video=image_to_video, seed=seed),
        model_id=TINY_MODEL_ID + ("-i2v" if image_to_video else ""),
        device="cpu",
        # Its matrices are too small for threads to pay off; with a busy CPU they cost 3-10x in wall time.
        cpu_threads=1,
    )
