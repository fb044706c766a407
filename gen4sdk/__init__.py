"""gen4sdk: provenance-aware video generation.

A diffusers video pipeline between a policy filter (in front) and an output stage (behind) that embeds an
invisible watermark and signs C2PA Content Credentials. Everything public is re-exported here::

    import gen4sdk
    client = gen4sdk.Client(model=..., signer=..., owner=..., store=...)
    result = client.generate(prompt="...", output="clip.mp4")
    report = gen4sdk.verify("clip.mp4", trust_anchors="root-ca.pem")
"""

from typing import TYPE_CHECKING, Any

from gen4sdk._version import __version__
from gen4sdk.compliance import (
    AuditEntry,
    AuditReport,
    Store,
    audit_directory,
    check_compliance,
    verify_log_proof,
)
from gen4sdk.compliance._recovery import verify
from gen4sdk.errors import (
    ComplianceError,
    Gen4Error,
    GenerationCancelled,
    GenerationFailed,
    InvalidRequestError,
    KeyMaterialError,
    MediaError,
    MissingDependencyError,
    ModelLoadError,
    OutputError,
    PolicyPackError,
    PolicyViolation,
    ProgressCallbackError,
    SigningError,
    StoreError,
    WatermarkFailure,
)
from gen4sdk.provenance import KeyPaths, Signer, init_keys
from gen4sdk.server import create_app
from gen4sdk.types import (
    ClaimSigner,
    ComplianceProfile,
    ComplianceReport,
    Decision,
    GenerationParams,
    GenerationResult,
    ManifestLookup,
    ModelInfo,
    Owner,
    PolicySummary,
    ProgressEvent,
    RefusalCode,
    RequirementCheck,
    SoftBindingCodec,
    VerificationReport,
    VisibleLabel,
)

if TYPE_CHECKING:
    from gen4sdk.client import AsyncClient, Client
    from gen4sdk.models import tiny_model
    from gen4sdk.policy import LikenessRegistry, OpenClipEncoder, Policy, run_pack_tests

# The Client, the models and the policy engine pull in torch, diffusers and transformers (seconds to import).
# Someone who only verifies a clip should not pay for them, so these names load on first use.
_LAZY = {
    "AsyncClient": "gen4sdk.client",
    "Client": "gen4sdk.client",
    "LikenessRegistry": "gen4sdk.policy",
    "OpenClipEncoder": "gen4sdk.policy",
    "Policy": "gen4sdk.policy",
    "run_pack_tests": "gen4sdk.policy",
    "tiny_model": "gen4sdk.models",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gen4sdk' has no attribute {name!r}")


__all__ = [
    "AsyncClient",
    "AuditEntry",
    "AuditReport",
    "ClaimSigner",
    "Client",
    "ComplianceError",
    "ComplianceProfile",
    "ComplianceReport",
    "Decision",
    "Gen4Error",
    "GenerationCancelled",
    "GenerationFailed",
    "GenerationParams",
    "GenerationResult",
    "InvalidRequestError",
    "KeyMaterialError",
    "KeyPaths",
    "LikenessRegistry",
    "ManifestLookup",
    "MediaError",
    "MissingDependencyError",
    "ModelInfo",
    "ModelLoadError",
    "OpenClipEncoder",
    "OutputError",
    "Owner",
    "Policy",
    "PolicyPackError",
    "PolicySummary",
    "PolicyViolation",
    "ProgressCallbackError",
    "ProgressEvent",
    "RefusalCode",
    "RequirementCheck",
    "Signer",
    "SigningError",
    "SoftBindingCodec",
    "Store",
    "StoreError",
    "VerificationReport",
    "VisibleLabel",
    "WatermarkFailure",
    "__version__",
    "audit_directory",
    "check_compliance",
    "create_app",
    "init_keys",
    "run_pack_tests",
    "tiny_model",
    "verify",
    "verify_log_proof",
]
