"""The video pipeline families gen4sdk drives, as data: which diffusers classes, their frame and size rules, whether
they take a reference image, and the few per-family quirks. Everything else about a family is read from the
pipeline's own components (VAE compression, transformer patch sizes, sample sizes) by ``_rules``.

Every family listed here is proven end to end by ``tests/test_model_families.py`` on a tiny randomly initialised
pipeline saved to a folder and loaded back through the Client. A video pipeline class not listed is refused at load
(``REFUSED`` says why for the ones we know of): a rule we cannot state is a failure after all the GPU work.

``python -m gen4sdk.models._family_docs`` prints ``docs/model-families.md`` from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FAMILIES", "REFUSED", "VERIFIED_DIFFUSERS", "Family", "Quirk", "family_for"]

# the diffusers release the table was proven against (tests/test_model_families.py walks its pipeline classes)
VERIFIED_DIFFUSERS = "0.42.1"

# How the output frame count follows from the requested one (t = the VAE's temporal compression):
#   causal     the first frame is encoded alone: n = t*k + 1
#   cogvideox  the VAE decodes latent frames in pairs: L = (n-1)//t + 1 latent frames give t*L frames when L is
#              even and t*(L-1) + 1 when it is odd, so n = 2t*k or 2t*k + 1
#   any        no temporal compression: any n
#   tiled      the VAE decodes only whole tiles of its kernel (Allegro: 24 frames, stride 16): n must not pass the
#              last whole tile of the L latent frames the pipeline makes for n (uncovered frames would be black)
FrameKind = Literal["causal", "cogvideox", "any", "tiled"]
# How the picture size is bounded (m = the multiple the family's check_inputs and patchifier demand):
#   multiple   height and width multiples of m
#   sample     also bounded by the transformer's sample size, as its config says: exactly that size with learned
#              positional embeddings (CogVideoX-5b-I2V), at most that size with rotary positions sliced from the
#              sample-size grid (CogVideoX 1.5, patch_size_t set), unbounded otherwise (CogVideoX-2b/5b)
#   tiled      multiples of m covered by whole spatial tiles of the VAE's kernel and stride (Allegro)
SizeKind = Literal["multiple", "sample", "tiled"]
ImageUse = Literal["none", "required", "optional"]
# Named per-family quirks, each handled in one place in _diffusers.py:
#   vae_tiling          the VAE only decodes tiled (Allegro): tiling is enabled at load
#   latent_concat_trim  HunyuanVideo-I2V in "latent_concat" mode drops the first 4 decoded frames: ask for 4 more
Quirk = Literal["vae_tiling", "latent_concat_trim"]


@dataclass(frozen=True)
class Family:
    name: str
    classes: tuple[str, ...]
    image: ImageUse
    frames: FrameKind
    # what check_inputs demands of height and width beyond the VAE x patch size (Wan and Hunyuan: 16, LTX: 32)
    size_multiple: int
    size: SizeKind = "multiple"
    max_frames: int | None = None
    min_steps: int = 1
    quirks: tuple[Quirk, ...] = ()
    # the published checkpoints and the rule their configs give, for the documentation
    checkpoints: str = ""
    note: str = ""


FAMILIES: tuple[Family, ...] = (
    Family(
        "Wan 2.1 / 2.2 text-to-video",
        ("WanPipeline",),
        "none",
        "causal",
        16,
        checkpoints="Wan2.1-T2V-1.3B/14B, Wan2.2-T2V-A14B: 4k+1 frames, multiples of 16; "
        "Wan2.2-TI2V-5B (16x VAE): 4k+1 frames, multiples of 32",
    ),
    Family(
        "Wan 2.1 / 2.2 image-to-video",
        ("WanImageToVideoPipeline",),
        "required",
        "causal",
        16,
        checkpoints="Wan2.1-I2V-14B-480P/720P (CLIP image encoder), Wan2.2-I2V-A14B (two experts, no image "
        "encoder): 4k+1 frames, multiples of 16",
    ),
    Family(
        "SkyReels-V2",
        ("SkyReelsV2Pipeline",),
        "none",
        "causal",
        16,
        checkpoints="SkyReels-V2-T2V-14B-540P/720P: 4k+1 frames, multiples of 16",
    ),
    Family(
        "SkyReels-V2 image-to-video",
        ("SkyReelsV2ImageToVideoPipeline",),
        "required",
        "causal",
        16,
        checkpoints="SkyReels-V2-I2V-1.3B/14B: 4k+1 frames, multiples of 16",
    ),
    Family(
        "SkyReels-V2 Diffusion Forcing",
        ("SkyReelsV2DiffusionForcingPipeline",),
        "none",
        "causal",
        16,
        max_frames=97,
        checkpoints="SkyReels-V2-DF-1.3B/14B: 4k+1 frames up to 97 (one window), multiples of 16",
        note="longer clips need overlap_history, which the SDK does not set",
    ),
    Family(
        "SkyReels-V2 Diffusion Forcing image-to-video",
        ("SkyReelsV2DiffusionForcingImageToVideoPipeline",),
        "required",
        "causal",
        16,
        max_frames=97,
        checkpoints="SkyReels-V2-DF-1.3B/14B: 4k+1 frames up to 97, multiples of 16",
    ),
    Family(
        "LTX-Video",
        ("LTXPipeline",),
        "none",
        "causal",
        32,
        checkpoints="LTX-Video 0.9.x: 8k+1 frames, multiples of 32",
    ),
    Family(
        "LTX-Video image-to-video",
        ("LTXImageToVideoPipeline",),
        "required",
        "causal",
        32,
        checkpoints="LTX-Video 0.9.x: 8k+1 frames, multiples of 32",
    ),
    Family(
        "LTX-Video condition",
        ("LTXConditionPipeline",),
        "optional",
        "causal",
        32,
        checkpoints="LTX-Video 0.9.5+: 8k+1 frames, multiples of 32; the image conditions frame 0",
    ),
    Family(
        "CogVideoX 1.0 / 1.5",
        ("CogVideoXPipeline",),
        "none",
        "cogvideox",
        8,
        size="sample",
        checkpoints="CogVideoX-2b/5b: 8k or 8k+1 frames (49 default), multiples of 16; "
        "CogVideoX1.5-5B: the same frames (81 default), multiples of 16 up to its sample size",
    ),
    Family(
        "CogVideoX image-to-video",
        ("CogVideoXImageToVideoPipeline",),
        "required",
        "cogvideox",
        8,
        size="sample",
        checkpoints="CogVideoX-5b-I2V: 8k or 8k+1 frames, exactly 720x480; "
        "CogVideoX1.5-5B-I2V: 8k or 8k+1 frames, multiples of 16 up to its sample size",
    ),
    Family(
        "HunyuanVideo",
        ("HunyuanVideoPipeline",),
        "none",
        "causal",
        16,
        checkpoints="HunyuanVideo: 4k+1 frames, multiples of 16",
    ),
    Family(
        "HunyuanVideo image-to-video",
        ("HunyuanVideoImageToVideoPipeline",),
        "required",
        "causal",
        16,
        quirks=("latent_concat_trim",),
        checkpoints="HunyuanVideo-I2V: 4k+1 frames, multiples of 16",
    ),
    Family(
        "HunyuanVideo image-to-video (SkyReels-V1)",
        ("HunyuanSkyreelsImageToVideoPipeline",),
        "required",
        "causal",
        16,
        checkpoints="SkyReels-V1-Hunyuan-I2V: 4k+1 frames, multiples of 16",
    ),
    Family(
        "HunyuanVideo 1.5",
        ("HunyuanVideo15Pipeline",),
        "none",
        "causal",
        16,
        checkpoints="HunyuanVideo-1.5 480p/720p: 4k+1 frames, multiples of 16",
        note="no step callback: progress and cancellation come from the scheduler-step hook",
    ),
    Family(
        "Mochi",
        ("MochiPipeline",),
        "none",
        "causal",
        8,
        min_steps=2,
        checkpoints="Mochi 1: 6k+1 frames, multiples of 16; at least 2 steps (its schedule divides by steps // 2)",
    ),
    Family(
        "Allegro",
        ("AllegroPipeline",),
        "none",
        "tiled",
        8,
        size="tiled",
        quirks=("vae_tiling",),
        checkpoints="Allegro (88 frames at 1280x720 by default): frame counts its whole 24-frame tiles (stride 16) "
        "cover, 19 and 21-24, 35 and 37-40, ..., 83 and 85-88; sizes covered by whole 320-pixel tiles (stride 200 "
        "down, 240 across) that are multiples of 16, 1280x720 among them",
    ),
    Family(
        "ModelScope text-to-video",
        ("TextToVideoSDPipeline",),
        "none",
        "any",
        8,
        checkpoints="damo-vilab/text-to-video-ms-1.7b: any frame count (16 default), multiples of 8",
        note="no step callback: progress and cancellation come from the scheduler-step hook",
    ),
)


_UNVERIFIED = "no tiny end-to-end test proves its frame and size rules yet"
_SOURCE_VIDEO = "it edits or continues a source video, which the SDK does not supply"
_CONTROL = "it needs control inputs (poses, depth, edges, masks), which the SDK does not supply"
_LTX2 = "LTX-2 makes audio with the video and has its own latent layout; " + _UNVERIFIED

# Video pipeline classes in diffusers that gen4sdk refuses at load, and why. The test that walks diffusers' classes
# fails when a new video pipeline appears in neither table, so a diffusers upgrade cannot add an unproven family.
REFUSED: dict[str, str] = {
    "AnimateDiffPipeline": "an image UNet with a motion adapter; " + _UNVERIFIED,
    "AnimateDiffSDXLPipeline": "an image UNet with a motion adapter; " + _UNVERIFIED,
    "AnimateDiffPAGPipeline": "an image UNet with a motion adapter; " + _UNVERIFIED,
    "AnimateDiffControlNetPipeline": _CONTROL,
    "AnimateDiffSparseControlNetPipeline": _CONTROL,
    "AnimateDiffVideoToVideoPipeline": _SOURCE_VIDEO,
    "AnimateDiffVideoToVideoControlNetPipeline": _SOURCE_VIDEO,
    "AnyFlowPipeline": _UNVERIFIED,
    "AnyFlowFARPipeline": _UNVERIFIED,
    "ChronoEditPipeline": "it edits an image through a video model (image editing, not video generation)",
    "CogVideoXFunControlPipeline": _CONTROL,
    "CogVideoXVideoToVideoPipeline": _SOURCE_VIDEO,
    "ConsisIDPipeline": "identity-preserving generation needs face embeddings from its own face models; "
    + _UNVERIFIED,
    "CosmosTextToWorldPipeline": "Cosmos needs its own safety checker package (cosmos_guardrail); "
    + _UNVERIFIED,
    "CosmosVideoToWorldPipeline": "Cosmos needs its own safety checker package (cosmos_guardrail); "
    + _UNVERIFIED,
    "Cosmos2VideoToWorldPipeline": "Cosmos needs its own safety checker package (cosmos_guardrail); "
    + _UNVERIFIED,
    "Cosmos2_5_PredictBasePipeline": "Cosmos needs its own safety checker package (cosmos_guardrail); "
    + _UNVERIFIED,
    "Cosmos2_5_TransferPipeline": _CONTROL,
    "Cosmos3OmniPipeline": _UNVERIFIED,
    "EasyAnimatePipeline": _UNVERIFIED,
    "EasyAnimateControlPipeline": _CONTROL,
    "EasyAnimateInpaintPipeline": "it inpaints a source video with a mask, which the SDK does not supply",
    "HeliosPipeline": _UNVERIFIED,
    "HeliosPyramidPipeline": _UNVERIFIED,
    "HunyuanVideo15ImageToVideoPipeline": _UNVERIFIED,
    "HunyuanVideoFramepackPipeline": "it generates in sections from history latents; " + _UNVERIFIED,
    "I2VGenXLPipeline": _UNVERIFIED,
    "Kandinsky5T2VPipeline": _UNVERIFIED,
    "Kandinsky5I2VPipeline": _UNVERIFIED,
    "Kandinsky6TI2VAPipeline": _UNVERIFIED,
    "LTX2Pipeline": _LTX2,
    "LTX2ImageToVideoPipeline": _LTX2,
    "LTX2ConditionPipeline": _LTX2,
    "LTX2DFRPipeline": _LTX2,
    "LTX2DFRTemporalRefinePipeline": _LTX2,
    "LTX2HDRPipeline": _LTX2,
    "LTX2InContextPipeline": _LTX2,
    "LTX2LatentUpsamplePipeline": "it upsamples latents of another run; it does not generate from a prompt",
    "LTX2VideoDiffusionDecodePipeline": "it decodes latents of another run; it does not generate from a prompt",
    "LTXI2VLongMultiPromptPipeline": "it takes a schedule of prompts; " + _UNVERIFIED,
    "LucyEditPipeline": _SOURCE_VIDEO,
    "MotifVideoPipeline": _UNVERIFIED,
    "MotifVideoImage2VideoPipeline": _UNVERIFIED,
    "PIAPipeline": "an image UNet with a motion adapter; " + _UNVERIFIED,
    "SanaWMPipeline": _UNVERIFIED,
    "SanaVideoPipeline": _UNVERIFIED,
    "SanaImageToVideoPipeline": _UNVERIFIED,
    "SkyReelsV2DiffusionForcingVideoToVideoPipeline": _SOURCE_VIDEO,
    "StableVideoDiffusionPipeline": "it is conditioned on an image only and takes no prompt",
    "TextToVideoZeroPipeline": "it animates an image model's latents frame by frame, with no video model; "
    + _UNVERIFIED,
    "TextToVideoZeroSDXLPipeline": "it animates an image model's latents frame by frame, with no video model; "
    + _UNVERIFIED,
    "VideoToVideoSDPipeline": _SOURCE_VIDEO,
    "WanAnimatePipeline": _CONTROL,
    "WanVACEPipeline": _CONTROL,
    "WanVideoToVideoPipeline": _SOURCE_VIDEO,
}


def family_for(class_names: tuple[str, ...]) -> Family | None:
    """The family of the first class name (a pipeline's class, then its bases) that the table lists."""
    for name in class_names:
        for fam in FAMILIES:
            if name in fam.classes:
                return fam
    return None
