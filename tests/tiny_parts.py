"""Offline stand-ins for the hub's tiny tokenizers and text encoders that diffusers' pipeline tests download.

Every tokenizer here is a real fast tokenizer built with ``tokenizers`` (a byte-level BPE with no merges: each
UTF-8 byte is a token), and every text encoder is configured in code with a matching vocabulary.
"""

from __future__ import annotations

from typing import Any

TEXT_DIM = 32


def byte_tokenizer(max_length: int = 512) -> Any:
    """A real (if tiny) fast tokenizer: every UTF-8 byte is a token, plus pad/eos/unk/bos; T5-style ``</s>`` end."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(specials + alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
        model_max_length=max_length,
    )


VOCAB = 4 + 256


def t5(d_model: int = TEXT_DIM, umt5: bool = False) -> Any:
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    cfg: dict[str, Any] = {
        "vocab_size": VOCAB,
        "d_model": d_model,
        "d_kv": 8,
        "d_ff": 37,
        "num_layers": 2,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }
    return (UMT5EncoderModel(UMT5Config(**cfg)) if umt5 else T5EncoderModel(T5Config(**cfg))).eval()


def clip_vision(hidden: int = 4, image_size: int = 32) -> tuple[Any, Any]:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    enc = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=hidden,
            projection_dim=hidden,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=image_size,
            intermediate_size=16,
            patch_size=4,
        )
    ).eval()
    return enc, CLIPImageProcessor(crop_size=image_size, size=image_size)


def llama(hidden: int = 16) -> Any:
    from transformers import LlamaConfig, LlamaModel

    return LlamaModel(
        LlamaConfig(
            bos_token_id=3,
            eos_token_id=1,
            pad_token_id=0,
            hidden_size=hidden,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=VOCAB,
            hidden_act="gelu",
        )
    ).eval()


def clip_text(hidden: int = 8) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=3,
            eos_token_id=1,
            pad_token_id=0,
            hidden_size=hidden,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=VOCAB,
            hidden_act="gelu",
            projection_dim=32,
            max_position_embeddings=77,
        )
    ).eval()


def template_tokenizer(template: str, max_length: int = 1024) -> Any:
    """A WordPiece tokenizer that keeps a prompt template's words and markers whole (so its token positions match
    a large vocabulary's, as HunyuanVideo-I2V's fixed image slots assume) and spells other words by character."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    markers = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<image>"]
    specials = ["<pad>", "</s>", "<unk>", "<s>", *markers]
    text = template
    for m in markers:
        text = text.replace(m, " ")
    words = sorted({piece for piece, _ in pre_tokenizers.WhitespaceSplit().pre_tokenize_str(text)})
    chars = [chr(c) for c in range(32, 127)]
    vocab_list = (
        specials + ["\n\n"] + chars + ["##" + c for c in chars] + [w for w in words if w not in chars]
    )
    vocab = {t: i for i, t in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="<unk>", max_input_chars_per_word=100))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split("\n\n", behavior="isolated"), pre_tokenizers.WhitespaceSplit()]
    )
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 3)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
        model_max_length=max_length,
    )
    fast.add_special_tokens({"additional_special_tokens": markers})
    return fast
