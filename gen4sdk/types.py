"""Typed, frozen models that cross stage boundaries: requests, results, decisions and reports.

Every model here is a pydantic model so results serialise to JSON the same way in the SDK, the CLI's
``--json`` output, the audit log and the resolution service.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    import c2pa
    import numpy as np

__all__ = [
    "MAX_PROMPT_CHARS",
    "AuditRecord",
    "ClaimSigner",
    "ComplianceProfile",
    "ComplianceReport",
    "ContentLookup",
    "Decision",
    "Disclosure",
    "FingerprintReport",
    "GenerationParams",
    "GenerationRequest",
    "GenerationResult",
    "IngredientReport",
    "LabelRecord",
    "Lineage",
    "ManifestLookup",
    "MatchedSpan",
    "MemoryMode",
    "ModelInfo",
    "Owner",
    "PolicySummary",
    "ProgressEvent",
    "RefusalCode",
    "RequirementCheck",
    "RequirementStatus",
    "SignerInfo",
    "SoftBindingCodec",
    "ValidationCode",
    "VerificationReport",
    "VerificationStatus",
    "VisibleLabel",
    "WatermarkDetection",
    "WatermarkReport",
]

MemoryMode = Literal["none", "cpu_offload", "vae_tiling"]
VerificationStatus = Literal[
    "trusted", "untrusted", "tampered", "recovered", "watermarked", "unsigned", "unreadable"
]
Outcome = Literal["allowed", "refused", "failed", "cancelled"]
# The labelling-law profiles a Client can be held to and a clip checked against (docs/compliance.md).
ComplianceProfile = Literal["eu-ai-act", "ca-sb-942", "cn-gb-45438"]
# met: the clip shows it; missing: the clip should show it and does not; not_checkable: a clip cannot show it
# (an operator's duty, or evidence that needs what was not given, such as trust anchors).
RequirementStatus = Literal["met", "missing", "not_checkable"]
LabelPosition = Literal["top-left", "top-right", "bottom-left", "bottom-right", "top", "bottom", "center"]
# Why a request or its output was refused: a closed set, like pydantic's error types, so partner applications
# can branch on it. INPUT = before any GPU work (prompt, negative prompt, reference image), OUTPUT = the
# generated frames; UNAVAILABLE = a check could not run (a model file missing or corrupt) and the policy
# failed closed; INTERNAL = a check raised unexpectedly and the policy failed closed; LANGUAGE = the prompt is
# in a language no configured model can judge and the pack refuses what it cannot judge.
RefusalCode = Literal[
    "SAFETY.INPUT.TEXT",
    "SAFETY.INPUT.IMAGE",
    "SAFETY.INPUT.LIKENESS",
    "SAFETY.INPUT.LANGUAGE",
    "SAFETY.OUTPUT.FRAMES",
    "SAFETY.OUTPUT.LIKENESS",
    "SAFETY.UNAVAILABLE",
    "SAFETY.INTERNAL",
]

# Prompts longer than this are refused with a clear error rather than silently truncated: the text encoders of
# every supported pipeline truncate far earlier, and an unbounded prompt is a denial-of-service vector.
MAX_PROMPT_CHARS = 2000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


class GenerationRequest(_Frozen):
    """What a partner application asks for. Ranges here are the SDK's; the backend checks what the pipeline accepts."""

    prompt: str
    negative_prompt: str | None = None
    image: Path | None = Field(default=None, description="reference image for image-to-video")
    num_frames: int = Field(default=17, ge=1, le=1025)
    height: int = Field(default=144, ge=16, le=4096)
    width: int = Field(default=256, ge=16, le=4096)
    fps: float = Field(default=16.0, gt=0, le=240)
    steps: int = Field(default=30, ge=1, le=1000)
    guidance_scale: float = Field(default=5.0, ge=0, le=50)
    seed: int = Field(default=0, ge=0, lt=2**63)
    user: str | None = Field(
        default=None, description="the requesting end user, as the partner app identifies them"
    )
    use: str | None = Field(
        default=None,
        max_length=128,
        description="what the clip is for (e.g. 'advertising'); likeness grants scoped to uses must name it",
    )
    request_id: str

    @field_validator("prompt")
    @classmethod
    def _prompt_ok(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt is empty")
        if len(v) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt has {len(v)} characters; the limit is {MAX_PROMPT_CHARS}")
        if "\x00" in v:
            raise ValueError("prompt contains a NUL character")
        return v

    @field_validator("negative_prompt")
    @classmethod
    def _negative_ok(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > MAX_PROMPT_CHARS or "\x00" in v):
            raise ValueError(f"negative_prompt must be under {MAX_PROMPT_CHARS} characters with no NUL")
        return v


class GenerationParams(_Frozen):
    """The parameters the pipeline actually ran with (recorded in the credentials)."""

    num_frames: int
    height: int
    width: int
    fps: float
    steps: int
    guidance_scale: float
    seed: int
    device: str
    dtype: str
    memory_mode: MemoryMode
    scheduler: str
    pipeline_class: str
    image_to_video: bool


class ModelInfo(_Frozen):
    """The video model a clip was generated with, as recorded in the credentials."""

    model_id: str
    pipeline_class: str
    weights_sha256: str = Field(description="SHA-256 over the pipeline's weight tensors, in a fixed order")


class Owner(_Frozen):
    """Who owns a generated clip: the operator's organisation, and the end user it was made for."""

    organization: str = Field(min_length=1)
    user: str | None = None
    website: str | None = None


class MatchedSpan(_Frozen):
    """Where in the prompt a policy rule matched (kept in the audit log, never in the credentials)."""

    category: str
    rule: str
    start: int
    end: int
    text: str = Field(description="the matched text; kept in the audit log only, never in credentials")


class Decision(_Frozen):
    """The outcome of one policy check."""

    allowed: bool
    action: Literal["allow", "warn", "block"]
    code: RefusalCode | None = Field(default=None, description="why it was refused; None when allowed")
    stage: Literal["input", "output"] = "input"
    categories: list[str] = Field(
        default_factory=list, description="categories that triggered (block or warn)"
    )
    scores: dict[str, float] = Field(default_factory=dict)
    spans: list[MatchedSpan] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    reason: str = ""
    grant_id: str | None = None
    pack_id: str
    pack_version: str
    pack_sha256: str
    core_sha256: str | None = Field(
        default=None, description="SHA-256 of the built-in core lexicon (policy/core.yaml) the check ran with"
    )

    def summary(self) -> PolicySummary:
        """What may go into credentials: no matched text, no scores."""
        outcome: Literal["allowed", "allowed_with_warnings", "refused"]
        outcome = (
            "refused"
            if not self.allowed
            else ("allowed_with_warnings" if self.action == "warn" else "allowed")
        )
        return PolicySummary(
            stage=self.stage,
            pack_id=self.pack_id,
            pack_version=self.pack_version,
            pack_sha256=self.pack_sha256,
            core_sha256=self.core_sha256,
            outcome=outcome,
            categories=list(self.categories),
            grant_id=self.grant_id,
            code=self.code,
            warnings=list(self.warnings),
        )


class PolicySummary(_Frozen):
    """One policy decision as the credentials record it: pack, version and hash, outcome, categories (no text)."""

    stage: Literal["input", "output"] = "input"
    pack_id: str
    pack_version: str
    pack_sha256: str
    core_sha256: str | None = None
    outcome: Literal["allowed", "allowed_with_warnings", "refused"]
    categories: list[str] = Field(default_factory=list)
    grant_id: str | None = None
    code: RefusalCode | None = None
    warnings: list[str] = Field(default_factory=list, description="e.g. frames.unchecked; never matched text")


class GenerationResult(_Frozen):
    """A generated clip: where it was written, its manifest and watermark ids, the parameters and decisions."""

    request_id: str
    path: Path
    sha256: str
    manifest_id: str
    watermark_payload: str | None = Field(
        default=None, description="hex of the watermark payload (manifest short id)"
    )
    params: GenerationParams
    model: ModelInfo
    owner: Owner
    policy: list[PolicySummary] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    created_at: _dt.datetime = Field(default_factory=_utcnow)


class SignerInfo(_Frozen):
    """Who signed the credentials, from the signing certificate, and whether it chains to a trust anchor."""

    common_name: str | None = None
    organization: str | None = None
    issuer: str | None = None
    serial_number: str | None = None
    algorithm: str | None = None
    signed_at: str | None = None
    timestamped: bool = False
    trusted: bool = False


class Lineage(_Frozen):
    """Prompt lineage as recorded in the ``com.gen4sdk.lineage`` assertion."""

    request_id: str | None = None
    created_at: str | None = None
    prompt_commitment: str | None = None
    prompt: str | None = None
    negative_prompt_commitment: str | None = None
    negative_prompt: str | None = None
    commitment_scheme: str | None = None
    seed: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    model_id: str | None = None
    weights_sha256: str | None = None
    generator: str | None = None
    grant_id: str | None = None


class ValidationCode(_Frozen):
    """One C2PA validation status code reported by the reader (success, informational or failure)."""

    code: str
    explanation: str | None = None
    url: str | None = None
    kind: Literal["success", "informational", "failure"]


class IngredientReport(_Frozen):
    """An ingredient of a verified manifest (the reference image of an image-to-video clip) and its validation."""

    title: str | None = None
    format: str | None = None
    relationship: str | None = None
    instance_id: str | None = None
    has_manifest: bool = False
    validation_state: str | None = None
    validation_codes: list[ValidationCode] = Field(default_factory=list)


class WatermarkReport(_Frozen):
    """What watermark detection found in a clip, and whether it matches the credentials' soft binding."""

    found: bool
    payload: str | None = Field(default=None, description="hex")
    confidence: float = 0.0
    algorithm: str | None = None
    key: Literal["public", "operator"] | None = None
    frames_examined: int = 0
    matches_credentials: bool | None = Field(
        default=None, description="None when there are no credentials or no soft binding to compare with"
    )


class FingerprintReport(_Frozen):
    """How a clip without credentials or watermark matched a stored clip by its perceptual fingerprint
    (``gen4sdk.fingerprint``): a resemblance, not an exact binding."""

    algorithm: str
    distance: float = Field(description="median Hamming distance of the aligned frames' hashes, of 63 bits")
    similarity: int = Field(ge=0, le=100, description="100 at distance 0, 0 at chance (32 bits)")
    frames: int = Field(description="aligned frames compared")
    offset_seconds: float = Field(description="where the clip starts in the stored one")
    view: str = Field(description='how the clip was turned to match ("as embedded", "mirrored", ...)')


class LabelRecord(_Frozen):
    """A visible AI-disclosure label burned into a clip, as its credentials record it (a ``c2pa.edited`` action)."""

    text: str
    position: LabelPosition
    height_fraction: float = Field(description="rendered text height / the frame's shorter side")
    start_s: float = 0.0
    end_s: float = Field(description="seconds from the start of the clip the label is shown until")
    font: str | None = Field(default=None, description="the font file's name")


class Disclosure(_Frozen):
    """The latent disclosure of ``com.gen4sdk.disclosure``: what the labelling-law profiles ask a clip's
    machine-readable marking to carry (provider, system name and version, time, a unique id)."""

    profiles: list[str] = Field(default_factory=list)
    provider: str
    system_name: str
    system_version: str
    created_at: str
    content_id: str = Field(description="the manifest id (urn:c2pa:UUID)")
    aigc: dict[str, str] | None = Field(
        default=None, description="the GB 45438 AIGC block as written in the file"
    )


class VerificationReport(_Frozen):
    """Answer to "is this generated, by whom, and was it changed?" for one file. See DESIGN.md for the verdicts."""

    path: str
    status: VerificationStatus
    reason: str = ""
    manifest_id: str | None = None
    title: str | None = None
    format: str | None = None
    ai_generated: bool | None = None
    software_agent: str | None = None
    signer: SignerInfo | None = None
    owner: Owner | None = None
    lineage: Lineage | None = None
    policy: list[PolicySummary] = Field(default_factory=list)
    training_mining: dict[str, str] = Field(default_factory=dict)
    ingredients: list[IngredientReport] = Field(default_factory=list)
    validation_state: str | None = None
    validation_codes: list[ValidationCode] = Field(default_factory=list)
    soft_binding: dict[str, Any] | None = None
    watermark: WatermarkReport | None = None
    recovered_from: str | None = Field(
        default=None, description="the store or service a stripped manifest came from"
    )
    recovered_by: Literal["watermark", "fingerprint"] | None = Field(
        default=None, description="what led to the recovered manifest: the exact watermark, or a resemblance"
    )
    fingerprint: FingerprintReport | None = None
    disclosure: Disclosure | None = None
    visible_label: LabelRecord | None = None
    problems: list[str] = Field(default_factory=list)


class VisibleLabel(_Frozen):
    """A visible AI-disclosure label the Client burns into the first seconds of every clip, before the watermark.

    ``height``: text height as a fraction of the frame's shorter side (GB 45438 asks for at least 5 %).
    ``duration``: seconds from the start (None: the whole clip). ``font``: a TrueType/OpenType file; by default
    the first installed font that has every character of ``text`` (Debian's fonts-noto-cjk or fonts-wqy-zenhei
    for Chinese). A text no font can render is refused when the Client is made.
    """

    text: str = Field(default="AI生成 AI-generated", min_length=1, max_length=200)
    position: LabelPosition = "top-left"
    height: float = Field(default=0.05, gt=0, le=0.5)
    duration: float | None = Field(default=2.0, gt=0)
    font: Path | None = None
    color: tuple[int, int, int] = (255, 255, 255)
    background: tuple[int, int, int, int] | None = Field(
        default=(0, 0, 0, 160),
        description="RGBA box behind the text, for contrast on any picture; None for none",
    )


class RequirementCheck(_Frozen):
    """One requirement of a labelling-law profile, checked on one clip."""

    profile: ComplianceProfile
    requirement: str = Field(description="stable id, e.g. eu-ai-act.50-2.signed-metadata")
    title: str
    citation: str
    scope: Literal["clip", "operator"] = Field(
        description="operator: a duty no clip can show (not_checkable)"
    )
    status: RequirementStatus
    why: str


class ComplianceReport(_Frozen):
    """A clip checked against labelling-law profiles: each requirement met, missing or not checkable, and why."""

    path: str
    profiles: list[ComplianceProfile]
    verification: VerificationReport
    aigc: dict[str, str] | None = Field(default=None, description="the AIGC metadata block found in the file")
    checks: list[RequirementCheck] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every requirement a clip can show is met (operator duties do not count)."""
        return all(c.status == "met" for c in self.checks if c.scope == "clip")

    def summary(self, profile: str) -> RequirementStatus:
        """One word for a profile: met when all its clip requirements are, else missing or not_checkable."""
        mine = [c.status for c in self.checks if c.profile == profile and c.scope == "clip"]
        if "missing" in mine:
            return "missing"
        return "not_checkable" if "not_checkable" in mine else "met"


class AuditRecord(_Frozen):
    """One request the Client handled, allowed or refused; the audit log chains these."""

    request_id: str
    time: _dt.datetime = Field(default_factory=_utcnow)
    caller: str | None = None
    outcome: Outcome
    prompt: str
    negative_prompt: str | None = None
    prompt_salt: str | None = Field(default=None, description="hex salt that opens the prompt commitment")
    parameters: dict[str, Any] = Field(default_factory=dict)
    decisions: list[Decision] = Field(default_factory=list)
    model_id: str | None = None
    weights_sha256: str | None = None
    output_path: str | None = None
    output_sha256: str | None = None
    manifest_id: str | None = None
    watermark_payload: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    failure: str | None = None
    failure_code: str | None = None


class ProgressEvent(_Frozen):
    """Progress of one request: ``stage`` is one of policy, generate, frames_policy, label, watermark, encode,
    watermark_check, sign, record; ``step``/``total`` count denoising steps during ``generate`` and are 1/1 for the
    other stages."""

    request_id: str
    stage: str
    step: int
    total: int


# --- the seams the Client is built on: protocols, so a KMS-held key or another watermark codec plugs in ---------


@runtime_checkable
class ClaimSigner(Protocol):
    """What the SDK needs of the operator's signing identity (``gen4sdk.Signer`` is one).

    ``c2pa_signer()`` signs C2PA claims, ``sign()`` the audit log's checkpoints; ``check_valid()`` raises
    ``KeyMaterialError`` when the certificate can no longer sign (expired, say), before any file is written.
    """

    @property
    def certificate_chain_pem(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...

    def check_valid(self) -> None: ...

    def c2pa_signer(self) -> c2pa.Signer: ...


@runtime_checkable
class ManifestLookup(Protocol):
    """Where ``verify`` finds the manifest of a clip whose credentials were stripped, by its watermark payload.

    ``gen4sdk.Store`` is one (a local manifest store), so is a soft-binding resolution service client.
    ``gen4sdk.provenance.verify`` receives a lookup rather than importing the store, so provenance stays below
    compliance.
    """

    @property
    def source(self) -> str:
        """Where recovered manifests come from, as the report's ``recovered_from`` names it."""
        ...

    def manifest_store_for(self, payload: bytes) -> bytes | None:
        """The manifest store (JUMBF bytes) recorded under a watermark payload, or None; may raise on failure."""
        ...


@runtime_checkable
class ContentLookup(Protocol):
    """A :class:`ManifestLookup` that also finds a manifest by what a clip looks like (``gen4sdk.Store`` is one):
    what ``verify`` asks when a clip carries neither credentials nor a watermark."""

    @property
    def source(self) -> str: ...

    def manifest_store_for_content(self, query: dict[str, Any]) -> tuple[bytes, Any] | None:
        """The best-matching manifest store for a clip's fingerprint views (``gen4sdk.fingerprint.query_views``)
        and how it matched (a ``gen4sdk.fingerprint.FingerprintMatch``), or None. Typed loosely here: types.py sits
        below gen4sdk.fingerprint."""
        ...


class WatermarkDetection(Protocol):
    """What a codec's ``detect`` reports (``watermark.Detection`` is one)."""

    @property
    def found(self) -> bool: ...

    @property
    def payload(self) -> bytes | None: ...

    @property
    def confidence(self) -> float: ...


@runtime_checkable
class SoftBindingCodec(Protocol):
    """The invisible watermark as the Client uses it (``watermark.Watermarker`` is one): ``embed`` hides a payload
    of exactly ``payload_bytes`` bytes in uint8 (T, H, W, 3) RGB frames; ``algorithm`` is the C2PA soft-binding
    algorithm name recorded in the credentials, so a resolver knows which detector reads the mark."""

    @property
    def algorithm(self) -> str: ...

    @property
    def payload_bytes(self) -> int: ...

    def embed(self, frames: np.ndarray, payload: bytes) -> np.ndarray: ...

    def detect(self, frames: np.ndarray) -> WatermarkDetection: ...
