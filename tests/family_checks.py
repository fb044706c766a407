"""What each tiny family variant is asked in tests/test_model_families.py: a shape it accepts, a request it must
refuse (and on which field), whether it takes an image, and the pinned output of a seeded run.

The pinned values are the first and last 8 bytes of the uint8 frames the model returned for ``PROMPT`` at
``seed=SEED`` (before the watermark), like the output slices diffusers' pipeline tests pin; CPU, float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROMPT = "a paper boat drifting down a rainy street"
SEED = 7
STEPS = 2


@dataclass(frozen=True)
class Variant:
    name: str  # tests/tiny_families.py BUILDERS key
    pipeline_class: str
    shape: tuple[int, int, int]  # (num_frames, height, width) the pipeline produces exactly
    bad: dict[str, Any]  # a change to that request the model must refuse, and the field it names
    bad_field: str
    modes: tuple[str, ...] = ("t2v",)  # "t2v" and/or "i2v"


VARIANTS: tuple[Variant, ...] = (
    Variant("wan2.1-t2v", "WanPipeline", (5, 144, 256), {"num_frames": 6}, "num_frames"),
    Variant(
        "wan2.1-i2v", "WanImageToVideoPipeline", (5, 144, 256), {"num_frames": 7}, "num_frames", ("i2v",)
    ),
    Variant("wan2.2-a14b", "WanPipeline", (5, 144, 256), {"width": 264}, "width"),
    Variant("wan2.2-ti2v-5b", "WanPipeline", (5, 160, 256), {"height": 144}, "height"),
    Variant(
        "wan2.2-i2v-a14b", "WanImageToVideoPipeline", (5, 144, 256), {"num_frames": 3}, "num_frames", ("i2v",)
    ),
    Variant("skyreels-v2-t2v", "SkyReelsV2Pipeline", (5, 144, 256), {"num_frames": 8}, "num_frames"),
    Variant(
        "skyreels-v2-i2v",
        "SkyReelsV2ImageToVideoPipeline",
        (5, 144, 256),
        {"height": 152},
        "height",
        ("i2v",),
    ),
    Variant(
        "skyreels-v2-df",
        "SkyReelsV2DiffusionForcingPipeline",
        (5, 144, 256),
        {"num_frames": 101},
        "num_frames",
    ),
    Variant(
        "skyreels-v2-df-i2v",
        "SkyReelsV2DiffusionForcingImageToVideoPipeline",
        (5, 144, 256),
        {"num_frames": 4},
        "num_frames",
        ("i2v",),
    ),
    Variant("ltx-t2v", "LTXPipeline", (5, 160, 256), {"height": 144}, "height"),
    Variant("ltx-i2v", "LTXImageToVideoPipeline", (5, 160, 256), {"width": 240}, "width", ("i2v",)),
    Variant(
        "ltx-condition",
        "LTXConditionPipeline",
        (5, 160, 256),
        {"num_frames": 6},
        "num_frames",
        ("t2v", "i2v"),
    ),
    Variant("cogvideox-t2v", "CogVideoXPipeline", (8, 144, 256), {"num_frames": 13}, "num_frames"),
    Variant("cogvideox1.5-t2v", "CogVideoXPipeline", (9, 144, 256), {"width": 272}, "width"),
    Variant(
        "cogvideox-i2v", "CogVideoXImageToVideoPipeline", (8, 144, 256), {"height": 160}, "height", ("i2v",)
    ),
    Variant(
        "cogvideox1.5-i2v",
        "CogVideoXImageToVideoPipeline",
        (9, 144, 256),
        {"num_frames": 12},
        "num_frames",
        ("i2v",),
    ),
    Variant("hunyuan-t2v", "HunyuanVideoPipeline", (5, 144, 256), {"num_frames": 6}, "num_frames"),
    Variant(
        "hunyuan-i2v",
        "HunyuanVideoImageToVideoPipeline",
        (5, 144, 256),
        {"num_frames": 8},
        "num_frames",
        ("i2v",),
    ),
    Variant(
        "hunyuan-skyreels-i2v",
        "HunyuanSkyreelsImageToVideoPipeline",
        (5, 144, 256),
        {"height": 152},
        "height",
        ("i2v",),
    ),
    Variant("hunyuan1.5-t2v", "HunyuanVideo15Pipeline", (5, 144, 256), {"width": 264}, "width"),
    Variant("mochi", "MochiPipeline", (7, 144, 256), {"steps": 1}, "steps"),
    Variant("allegro", "AllegroPipeline", (24, 256, 256), {"num_frames": 25}, "num_frames"),
    Variant("modelscope-t2v", "TextToVideoSDPipeline", (4, 144, 256), {"height": 148}, "height"),
)

BY_NAME = {v.name: v for v in VARIANTS}

# (variant, mode) -> the first 8 and last 8 bytes of the model's frames for PROMPT, SEED, STEPS (CPU, float32)
PINNED: dict[tuple[str, str], tuple[int, ...]] = {
    ("hunyuan-i2v", "i2v"): (138, 133, 94, 137, 132, 96, 137, 131, 134, 148, 159, 143, 146, 151, 133, 148),
    ("wan2.2-i2v-a14b", "i2v"): (
        129,
        110,
        121,
        137,
        121,
        118,
        139,
        121,
        107,
        146,
        139,
        91,
        164,
        121,
        114,
        143,
    ),
    ("cogvideox-i2v", "i2v"): (135, 9, 218, 116, 0, 255, 102, 0, 151, 183, 171, 104, 225, 128, 126, 255),
    ("allegro", "t2v"): (143, 126, 136, 139, 91, 121, 142, 115, 130, 109, 123, 132, 116, 130, 146, 123),
    ("wan2.1-t2v", "t2v"): (129, 110, 121, 137, 121, 118, 139, 121, 107, 146, 139, 91, 164, 121, 114, 143),
    ("wan2.1-i2v", "i2v"): (121, 116, 137, 115, 120, 138, 120, 109, 61, 74, 90, 81, 83, 102, 113, 102),
    ("wan2.2-a14b", "t2v"): (129, 110, 121, 137, 121, 118, 139, 121, 107, 147, 138, 91, 163, 121, 114, 143),
    ("wan2.2-ti2v-5b", "t2v"): (
        120,
        126,
        116,
        153,
        118,
        132,
        108,
        125,
        102,
        119,
        159,
        67,
        145,
        180,
        132,
        134,
    ),
    ("skyreels-v2-t2v", "t2v"): (
        129,
        110,
        121,
        137,
        121,
        118,
        139,
        121,
        107,
        147,
        138,
        91,
        163,
        121,
        114,
        143,
    ),
    ("skyreels-v2-i2v", "i2v"): (
        129,
        110,
        121,
        137,
        121,
        118,
        139,
        121,
        107,
        147,
        138,
        92,
        163,
        121,
        115,
        143,
    ),
    ("skyreels-v2-df", "t2v"): (
        129,
        110,
        121,
        137,
        121,
        118,
        139,
        121,
        107,
        147,
        138,
        91,
        163,
        121,
        114,
        143,
    ),
    ("skyreels-v2-df-i2v", "i2v"): (
        129,
        110,
        121,
        137,
        121,
        118,
        139,
        121,
        107,
        147,
        139,
        92,
        163,
        121,
        114,
        143,
    ),
    ("ltx-t2v", "t2v"): (124, 126, 203, 89, 163, 192, 46, 76, 124, 138, 119, 142, 187, 104, 140, 102),
    ("ltx-i2v", "i2v"): (114, 200, 109, 107, 85, 175, 143, 95, 104, 166, 65, 194, 145, 67, 92, 88),
    ("ltx-condition", "t2v"): (126, 129, 201, 83, 167, 187, 54, 75, 121, 140, 121, 142, 186, 105, 142, 108),
    ("ltx-condition", "i2v"): (128, 142, 173, 87, 118, 156, 130, 144, 93, 166, 101, 157, 196, 101, 108, 123),
    ("cogvideox-t2v", "t2v"): (
        123,
        193,
        196,
        197,
        222,
        241,
        213,
        219,
        255,
        176,
        188,
        233,
        178,
        159,
        202,
        111,
    ),
    ("cogvideox1.5-t2v", "t2v"): (109, 176, 129, 75, 200, 96, 109, 195, 228, 91, 51, 220, 90, 8, 225, 87),
    ("cogvideox1.5-i2v", "i2v"): (58, 129, 24, 97, 190, 26, 101, 189, 161, 0, 135, 129, 0, 181, 118, 59),
    ("hunyuan-t2v", "t2v"): (185, 118, 142, 174, 103, 136, 176, 70, 104, 180, 148, 95, 165, 151, 81, 150),
    ("hunyuan-skyreels-i2v", "i2v"): (
        161,
        144,
        110,
        162,
        142,
        112,
        151,
        139,
        255,
        57,
        119,
        255,
        54,
        115,
        255,
        55,
    ),
    ("hunyuan1.5-t2v", "t2v"): (175, 147, 121, 144, 147, 109, 94, 180, 27, 189, 151, 0, 93, 180, 2, 42),
    ("mochi", "t2v"): (140, 125, 132, 135, 127, 141, 134, 150, 133, 129, 134, 130, 147, 142, 97, 149),
    ("modelscope-t2v", "t2v"): (121, 142, 111, 99, 146, 116, 94, 145, 156, 136, 116, 148, 119, 108, 148, 128),
}
