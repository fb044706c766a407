"""Labelling-law profiles: each law's requirements as a table, what a Client's configuration must provide to meet
them, and how each is checked on a clip.

One row per requirement: its id, the law's words in short, the citation, whether a clip can show it (``clip``) or
it is the operator's duty (``operator``, always ``not_checkable`` on a clip unless the clip happens to show it),
and the check. The checks read what ``verify`` found (credentials, watermark, recovered manifest) and the file's
AIGC block; docs/compliance.md gives the sources behind every row and what the operator must still do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from gen4sdk.compliance._aigc import AigcFinding, claims_gen4sdk_ids, matches_manifest
from gen4sdk.errors import ComplianceError
from gen4sdk.types import (
    ComplianceProfile,
    RequirementCheck,
    RequirementStatus,
    VerificationReport,
    VisibleLabel,
)

__all__ = ["PROFILES", "REQUIREMENTS", "Requirement", "check_configuration", "evaluate", "resolve_profiles"]

PROFILES: tuple[ComplianceProfile, ...] = get_args(ComplianceProfile)
_INTACT = ("trusted", "untrusted", "recovered")
# GB 45438-2025 as summarised by the sources in docs/compliance.md: a video's explicit label at its start, text
# at least 5 % of the frame's shorter side high, shown at least 2 s (or the whole clip when it is shorter).
CN_MIN_HEIGHT = 0.05
CN_MIN_SECONDS = 2.0

Verdict = tuple[RequirementStatus, str]


@dataclass(frozen=True)
class Facts:
    """What the checks read about one clip."""

    report: VerificationReport
    aigc: AigcFinding
    expected_provider: str | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Requirement:
    profile: ComplianceProfile
    id: str
    title: str
    citation: str
    scope: Literal["clip", "operator"]
    check: Callable[[Facts], Verdict]


def _operator(why: str, met_when: Callable[[Facts], str | None] | None = None) -> Callable[[Facts], Verdict]:
    def check(f: Facts) -> Verdict:
        shown = met_when(f) if met_when is not None else None
        return ("met", shown) if shown else ("not_checkable", why)

    return check


# --- checks on a clip -----------------------------------------------------------------------------------------


def _credentials(f: Facts) -> Verdict:
    r = f.report
    if r.status in _INTACT:
        how = "recovered from " + str(r.recovered_from) if r.status == "recovered" else "embedded"
        return "met", f"C2PA credentials {how}, signature and hashes valid ({r.status})"
    if r.status == "tampered":
        return "missing", f"the credentials do not validate: {r.reason}"
    return "missing", f"no valid C2PA credentials ({r.status}: {r.reason})"


def _signed_metadata(f: Facts) -> Verdict:
    status, why = _credentials(f)
    if status != "met":
        return status, why
    signer = f.report.signer
    stamped = (
        "time-stamped by a TSA"
        if signer and signer.timestamped
        else "no TSA timestamp (the claim records its time)"
    )
    return status, f"{why}; {stamped}"


def _ai_disclosure(f: Facts) -> Verdict:
    status, why = _credentials(f)
    if status != "met":
        return status, why
    if not f.report.ai_generated:
        return (
            "missing",
            "the credentials do not declare the content AI-generated (no trainedAlgorithmicMedia)",
        )
    agent = f.report.software_agent
    return "met", f"the credentials declare digitalSourceType trainedAlgorithmicMedia ({agent})"


def _watermark(f: Facts) -> Verdict:
    wm = f.report.watermark
    if wm is None:
        return "not_checkable", "watermark detection was not run"
    if not wm.found:
        return "missing", "no imperceptible watermark found with the public key"
    if wm.matches_credentials is False:
        return "missing", f"a watermark was found ({wm.payload}) but it does not match the credentials"
    return (
        "met",
        f"imperceptible watermark found ({wm.algorithm}, payload {wm.payload}, confidence {wm.confidence:.2f})",
    )


def _public_detector(f: Facts) -> Verdict:
    status, why = _watermark(f)
    if status != "met":
        return status, why
    wm = f.report.watermark
    if wm is not None and wm.key != "public":
        return "missing", "the watermark is readable only with the operator's key, not by a public detector"
    return "met", "the public gen4sdk detector (gen4sdk verify, gen4sdk serve) finds the mark: " + why


def _trusted_provider(f: Facts) -> tuple[str | None, Verdict | None]:
    r = f.report
    name = (r.disclosure.provider if r.disclosure else None) or (r.owner.organization if r.owner else None)
    if r.status not in _INTACT:
        return None, ("missing", f"no valid credentials name a provider ({r.status})")
    if not name:
        return None, ("missing", "the credentials name no provider (no owner organisation, no disclosure)")
    if f.expected_provider is not None and name.casefold() != f.expected_provider.casefold():
        return name, ("missing", f"the credentials name the provider {name!r}, not {f.expected_provider!r}")
    if not (r.signer and r.signer.trusted):
        why = (
            f"the credentials name {name!r}, but their signer is not chained to a trust anchor you gave, so who "
            "made the clip is not established (pass the provider's root CA as trust anchors)"
        )
        return name, ("not_checkable", why)
    return name, None


def _provider(f: Facts) -> Verdict:
    name, problem = _trusted_provider(f)
    return problem or ("met", f"provider {name!r}, signed by a certificate that chains to a trust anchor")


def _system(f: Facts) -> Verdict:
    r = f.report
    if r.status not in _INTACT:
        return "missing", f"no valid credentials ({r.status})"
    if r.disclosure is not None:
        return "met", f"system {r.disclosure.system_name!r}, version {r.disclosure.system_version!r}"
    model = r.lineage.model_id if r.lineage else None
    if model and r.software_agent:
        return "met", f"system {model!r} run by {r.software_agent!r}"
    return "missing", "the credentials do not name the generating system and its version"


def _time(f: Facts) -> Verdict:
    r = f.report
    if r.status not in _INTACT:
        return "missing", f"no valid credentials ({r.status})"
    when = (r.disclosure.created_at if r.disclosure else None) or (
        r.lineage.created_at if r.lineage else None
    )
    when = when or (r.signer.signed_at if r.signer else None)
    return ("met", f"created {when}") if when else ("missing", "the credentials record no creation time")


def _unique_id(f: Facts) -> Verdict:
    r = f.report
    if r.status not in _INTACT or not r.manifest_id:
        return "missing", f"no valid credentials with a manifest id ({r.status})"
    return "met", f"unique id {r.manifest_id}"


def _detectable(f: Facts) -> Verdict:
    r = f.report
    if r.status in _INTACT:
        return "met", f"gen4sdk's detection tool reads the disclosure ({r.status})"
    if r.watermark is not None and r.watermark.found:
        return (
            "met",
            "gen4sdk's detection tool finds the watermark (the credentials themselves are not readable)",
        )
    return "missing", f"nothing a detection tool can read ({r.status})"


def _permanent(f: Facts) -> Verdict:
    status, why = _public_detector(f)
    if status != "met":
        return status, why + "; metadata alone is removed by any re-encode"
    return (
        "met",
        "the disclosure survives stripping: "
        + why
        + ", and it leads to the manifest in the operator's store",
    )


def _aigc_block(f: Facts) -> Verdict:
    a, r = f.aigc, f.report
    if not a.present:
        return "missing", "the file has no AIGC metadata block (GB 45438 implicit label)"
    if a.block is None or a.problems:
        return "missing", "malformed AIGC block: " + "; ".join(a.problems)
    if r.status == "tampered":
        return "missing", f"the AIGC block is in a file whose credentials do not validate ({r.reason})"
    payload = r.watermark.payload if r.watermark is not None and r.watermark.found else None
    manifest = r.manifest_id if r.status in _INTACT else None
    mismatch = matches_manifest(a.block, manifest, payload)
    if mismatch:
        return "missing", "the AIGC block is not this clip's (forged or copied): " + mismatch
    if r.disclosure is not None and r.disclosure.aigc is not None and r.disclosure.aigc != a.block:
        return "missing", "the AIGC block differs from the one the signed credentials record"
    found = f"AIGC block Label={a.block['Label']} ProduceID={a.block['ProduceID']}"
    if r.status in ("trusted", "untrusted"):
        return "met", found + ", covered by the credentials' hash"
    if r.status == "recovered" or payload is not None:
        return "met", found + ", its ids those of the clip's watermark"
    if claims_gen4sdk_ids(a.block):
        return "missing", (
            "the AIGC block names gen4sdk credentials and a watermark id the clip does not carry: forged, or "
            "copied from another clip"
        )
    return "met", found + " (bound to no credentials or watermark, so its ids cannot be confirmed)"


def _aigc_producer(f: Facts) -> Verdict:
    a, r = f.aigc, f.report
    if a.block is None or not a.block.get("ContentProducer"):
        return "missing", "no AIGC ContentProducer (provider name or code)"
    producer = a.block["ContentProducer"]
    named = (r.disclosure.provider if r.disclosure else None) or (r.owner.organization if r.owner else None)
    if r.status in _INTACT and named and producer != named:
        return (
            "missing",
            f"AIGC ContentProducer {producer!r} is not the provider the credentials name ({named!r})",
        )
    if f.expected_provider is not None and producer.casefold() != f.expected_provider.casefold():
        return "missing", f"AIGC ContentProducer {producer!r}, not {f.expected_provider!r}"
    return "met", f"ContentProducer {producer!r}"


def _explicit_label(f: Facts) -> Verdict:
    r = f.report
    if r.status not in _INTACT:
        return "not_checkable", "a visible label is in the pixels; without valid credentials none records it"
    label = r.visible_label
    if label is None:
        return "missing", "the credentials record no visible AI label"
    shortfalls = []
    if label.start_s > 0:
        shortfalls.append(f"starts at {label.start_s:g} s, not at the start")
    needed = CN_MIN_SECONDS if f.duration is None else min(CN_MIN_SECONDS, f.duration)
    if label.end_s + 1e-3 < needed:
        shortfalls.append(f"shown {label.end_s:g} s, less than {needed:g} s")
    if label.height_fraction + 1e-4 < CN_MIN_HEIGHT:
        shortfalls.append(f"text {label.height_fraction:.1%} of the shorter side, under {CN_MIN_HEIGHT:.0%}")
    if shortfalls:
        return "missing", f"visible label {label.text!r}: " + "; ".join(shortfalls)
    return (
        "met",
        f"visible label {label.text!r} ({label.position}, {label.height_fraction:.1%} high, 0-{label.end_s:g} s)",
    )


def _label_shown(f: Facts) -> str | None:
    label = f.report.visible_label if f.report.status in _INTACT else None
    return f"the credentials record a visible label {label.text!r}" if label else None


# --- the table ------------------------------------------------------------------------------------------------
EU: ComplianceProfile = "eu-ai-act"
CA: ComplianceProfile = "ca-sb-942"
CN: ComplianceProfile = "cn-gb-45438"
_AIA = "Regulation (EU) 2024/1689 (AI Act)"
_COP = "Code of Practice on Transparency of AI-Generated Content (AI Office, 2026)"
_BPC = "Cal. Bus. & Prof. Code"
_MEAS = "Measures for Labelling AI-Generated Synthetic Content (CAC et al., 2025)"

REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(EU, "eu-ai-act.50-2.machine-readable", "outputs marked in a machine-readable format as AI-generated",
                f"{_AIA} Art. 50(2)", "clip", _ai_disclosure),
    Requirement(EU, "eu-ai-act.cop-1.1.1.signed-metadata", "signed, tamper-evident metadata layer",
                f"{_COP} Measure 1.1, sub-measure 1.1.1", "clip", _signed_metadata),
    Requirement(EU, "eu-ai-act.cop-1.1.2.watermark", "imperceptible watermark layer",
                f"{_COP} Measure 1.1, sub-measure 1.1.2", "clip", _watermark),
    Requirement(EU, "eu-ai-act.50-2.detectable", "detectable as AI-generated, by a free public detector",
                f"{_AIA} Art. 50(2); {_COP} (detection interface)", "clip", _public_detector),
    Requirement(EU, "eu-ai-act.cop-1.1.3.logging", "fingerprinting or logging layer (optional)",
                f"{_COP} Measure 1.1, sub-measure 1.1.3", "operator",
                _operator("an operator's layer: the Client's store keeps the audit log and the manifest store")),
    Requirement(EU, "eu-ai-act.50-4.deep-fake", "deployers disclose deep fakes (a visible label)",
                f"{_AIA} Art. 50(4)", "operator",
                _operator("a deployer's duty when the clip is a deep fake; Client(label=VisibleLabel(...))",
                          _label_shown)),
    Requirement(EU, "eu-ai-act.50-5.first-exposure", "disclosure clear, distinguishable, accessible, at first exposure",
                f"{_AIA} Art. 50(5)", "operator", _operator("how the clip is presented to people is the deployer's")),
    Requirement(EU, "eu-ai-act.cop-1.2.terms", "terms of use forbid removing the marking",
                f"{_COP} Measure 1.2", "operator", _operator("the operator's terms of service")),
    Requirement(CA, "ca-sb-942.22757.3-b.latent", "latent disclosure identifying AI-generated content",
                f"{_BPC} § 22757.3(b)", "clip", _ai_disclosure),
    Requirement(CA, "ca-sb-942.22757.3-b.provider", "latent disclosure: the covered provider's name",
                f"{_BPC} § 22757.3(b)(1)(A)", "clip", _provider),
    Requirement(CA, "ca-sb-942.22757.3-b.system", "latent disclosure: the GenAI system's name and version",
                f"{_BPC} § 22757.3(b)(1)(B)", "clip", _system),
    Requirement(CA, "ca-sb-942.22757.3-b.time", "latent disclosure: time and date of creation",
                f"{_BPC} § 22757.3(b)(1)(C)", "clip", _time),
    Requirement(CA, "ca-sb-942.22757.3-b.unique-id", "latent disclosure: a unique identifier",
                f"{_BPC} § 22757.3(b)(1)(D)", "clip", _unique_id),
    Requirement(CA, "ca-sb-942.22757.3-b.detectable", "detectable by the provider's AI detection tool",
                f"{_BPC} § 22757.3(b)(2)", "clip", _detectable),
    Requirement(CA, "ca-sb-942.22757.3-b.standard", "consistent with widely accepted industry standards (C2PA)",
                f"{_BPC} § 22757.3(b)(3)", "clip", _credentials),
    Requirement(CA, "ca-sb-942.22757.3-b.permanent", "permanent or extraordinarily difficult to remove",
                f"{_BPC} § 22757.3(b)(4)", "clip", _permanent),
    Requirement(CA, "ca-sb-942.22757.3-a.manifest", "users offered a manifest (visible) disclosure",
                f"{_BPC} § 22757.3(a)", "operator",
                _operator("the operator offers its users the option; Client(label=VisibleLabel(...))", _label_shown)),
    Requirement(CA, "ca-sb-942.22757.2.detection-tool", "a free, public AI detection tool",
                f"{_BPC} § 22757.2", "operator",
                _operator("the operator publishes one: gen4sdk verify and gen4sdk serve read every layer")),
    Requirement(CA, "ca-sb-942.22757.3-c.licensees", "licensees must keep the disclosures",
                f"{_BPC} § 22757.3(c)", "operator", _operator("the operator's licence terms")),
    Requirement(CN, "cn-gb-45438.implicit-metadata", "implicit label: the AIGC block in the file's metadata",
                f"{_MEAS} Art. 5; GB 45438-2025", "clip", _aigc_block),
    Requirement(CN, "cn-gb-45438.producer", "implicit label: the service provider's name or code",
                f"{_MEAS} Art. 5; GB 45438-2025", "clip", _aigc_producer),
    Requirement(CN, "cn-gb-45438.explicit-label", "explicit label at the video's start (>= 2 s, text >= 5 %)",
                f"{_MEAS} Art. 4; GB 45438-2025", "clip", _explicit_label),
    Requirement(CN, "cn-gb-45438.user-agreement", "labelling methods stated in the user agreement",
                f"{_MEAS} Art. 8", "operator", _operator("the operator's user service agreement")),
    Requirement(CN, "cn-gb-45438.no-removal", "labels not maliciously removed, altered or forged",
                f"{_MEAS} Art. 10", "operator", _operator("the operator's terms and its users' conduct")),
)  # fmt: skip


def resolve_profiles(names: Iterable[str]) -> list[ComplianceProfile]:
    """The profiles named, in order, without repeats; ComplianceError for a name that is not one."""
    if isinstance(names, str):
        names = [names]
    out: list[ComplianceProfile] = []
    for name in names:
        if name not in PROFILES:
            raise ComplianceError(
                f"unknown compliance profile {name!r}; known profiles: {', '.join(PROFILES)}",
                profile=str(name),
            )
        if name not in out:
            out.append(name)  # type: ignore[arg-type]
    return out


def check_configuration(
    profiles: Sequence[ComplianceProfile],
    *,
    public_watermark: bool,
    has_store: bool,
    label: VisibleLabel | None,
) -> None:
    """Refuse, with the reason, a Client configuration that cannot produce clips meeting ``profiles``."""
    for profile in profiles:
        if profile in (EU, CA) and not public_watermark:
            req = f"{profile}.50-2.detectable" if profile == EU else f"{profile}.22757.3-b.detectable"
            raise ComplianceError(
                f"{profile} needs a watermark any receiver's free detector can read: an operator watermark_key or "
                "another watermarker makes the mark invisible to the public detector; use the public gen4sdk key",
                profile=profile,
                requirement=req,
            )
        if profile == CA and not has_store:
            raise ComplianceError(
                "ca-sb-942 needs a latent disclosure that survives removal: without a store the watermark leads to "
                "no manifest once the credentials are stripped; pass store=",
                profile=profile,
                requirement="ca-sb-942.22757.3-b.permanent",
            )
        if profile == CN:
            if label is None:
                raise ComplianceError(
                    "cn-gb-45438 needs an explicit label at the start of every video: pass label=VisibleLabel(...)",
                    profile=profile,
                    requirement="cn-gb-45438.explicit-label",
                )
            if label.height < CN_MIN_HEIGHT or (
                label.duration is not None and label.duration < CN_MIN_SECONDS
            ):
                raise ComplianceError(
                    f"cn-gb-45438 needs the label's text at least {CN_MIN_HEIGHT:.0%} of the shorter side high "
                    f"(height={label.height:g}) and shown at least {CN_MIN_SECONDS:g} s (duration={label.duration})",
                    profile=profile,
                    requirement="cn-gb-45438.explicit-label",
                )


def evaluate(profiles: Sequence[ComplianceProfile], facts: Facts) -> list[RequirementCheck]:
    """Every requirement of ``profiles`` checked on one clip."""
    checks = []
    for req in REQUIREMENTS:
        if req.profile not in profiles:
            continue
        status, why = req.check(facts)
        checks.append(
            RequirementCheck(
                profile=req.profile,
                requirement=req.id,
                title=req.title,
                citation=req.citation,
                scope=req.scope,
                status=status,
                why=why,
            )
        )
    return checks
