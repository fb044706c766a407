"""Policy engine: packs, text normalisation and rules, a semantic scorer, likeness and consent, frame checks.

Public names::

    from gen4sdk.policy import Policy, LikenessRegistry
    policy = Policy.default()                     # policies/default.yaml, MiniLM semantic scorer (lazy)
    policy.check_prompt("...") -> Decision
"""

from gen4sdk.policy._encoders import ImageEncoder, MiniLMEncoder, OpenClipEncoder, TextEncoder, tiny_open_clip
from gen4sdk.policy._engine import Policy, shipped_packs
from gen4sdk.policy._likeness import ConsentGrant, LikenessRegistry, ProtectedIdentity
from gen4sdk.policy._packtest import PackTestReport, PackTestResult, check_text, run_pack_tests
from gen4sdk.policy._schema import (
    CategorySpec,
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
    "Combination",
    "ConceptSpec",
    "ConsentGrant",
    "ImageEncoder",
    "LikenessRegistry",
    "LikenessSpec",
    "MediaCheckSpec",
    "MiniLMEncoder",
    "OpenClipEncoder",
    "PackTestCase",
    "PackTestReport",
    "PackTestResult",
    "Policy",
    "PolicyPack",
    "ProtectedIdentity",
    "PublicFigure",
    "SemanticSpec",
    "TextEncoder",
    "check_text",
    "parse_pack",
    "run_pack_tests",
    "shipped_packs",
    "tiny_open_clip",
]
