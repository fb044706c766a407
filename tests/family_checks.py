"""What each tiny family variant is asked in tests/test_model_families.py: a shape it accepts, a request it must
refuse (and on which field), whether it takes an image, and the pinned output of a seeded run.

The pinned values are the first and last 8 bytes of the uint8 frames the model returned for ``PROMPT`` at
``seed=SEED`` (before the watermark), like the output slices diffusers' pipeline tests pin; CPU, float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    pinned: dict[str, tuple[int, ...]] = field(default_factory=dict)  # mode -> first 8 + last 8 frame bytes


VARIANTS: tuple[Variant, ...] = (
    Variant("wan2.1-t2v", "WanPipeline", (5, 144, 256), {"num_frames": 6}, "num_frames"),
    Variant(
        "wan2.1-i2v", "WanImageToVideoPipeline", (5, 144, 256), {"num_frames": 7}, "num_frames", ("i2v",)
    ),
    Variant("wan2.2-a14b", "WanPipeline", (5, 144, 256), {"width": 264}, "width"),
    Variant("wan2.2-ti2v-5b", "WanPipeline", (5, 160, 256), {"height": 144}, "height"),
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
        "hunyuan-skyreels-i2v",
        "HunyuanSkyreelsImageToVideoPipeline",
        (5, 144, 256),
        {"height": 152},
        "height",
        ("i2v",),
    ),
    Variant("hunyuan1.5-t2v", "HunyuanVideo15Pipeline", (5, 144, 256), {"width": 264}, "width"),
    Variant("mochi", "MochiPipeline", (7, 144, 256), {"steps": 1}, "steps"),
    Variant("modelscope-t2v", "TextToVideoSDPipeline", (4, 144, 256), {"height": 148}, "height"),
)

BY_NAME = {v.name: v for v in VARIANTS}
