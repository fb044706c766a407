"""What a C2PA manifest says, as a report reads it: its validation codes, its fields (owner, lineage, policy,
soft binding, disclosure, ...) and the verdict its codes give. Shared by reading embedded credentials and
recovered ones (``_recovery.py``)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from gen4sdk.provenance._assertions import (
    DISCLOSURE_LABEL,
    LINEAGE_LABEL,
    POLICY_LABEL,
    DisclosureAssertion,
    LineageAssertion,
    PolicyAssertion,
)
from gen4sdk.provenance.manifest import (
    OWNERSHIP_LABEL,
    SOFT_BINDING_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    TRAINING_LABEL,
    VISIBLE_LABEL_PARAMETER,
)
from gen4sdk.types import (
    Disclosure,
    IngredientReport,
    LabelRecord,
    Lineage,
    Owner,
    PolicySummary,
    SignerInfo,
    ValidationCode,
    VerificationStatus,
)

logger = logging.getLogger(__name__)


__all__ = ["TRUST_CODE_PREFIXES", "classify", "manifest_fields", "validation_codes"]

# Failures that concern who signed, not whether the content or claim changed: they make a clip untrusted, not
# tampered.
TRUST_CODE_PREFIXES = ("signingCredential.", "timeStamp.untrusted", "timeStamp.outsideValidity")


def validation_codes(results: dict[str, Any] | None) -> list[ValidationCode]:
    out: list[ValidationCode] = []
    for kind in ("success", "informational", "failure"):
        for item in (results or {}).get(kind, []) or []:
            out.append(
                ValidationCode(
                    code=item.get("code", ""),
                    explanation=item.get("explanation"),
                    url=item.get("url"),
                    kind=kind,
                )
            )  # type: ignore[arg-type]
    return out


def _assertion(manifest: dict[str, Any], label: str) -> dict[str, Any] | None:
    for a in manifest.get("assertions", []) or []:
        name = a.get("label", "")
        if name == label or name.startswith(label + ".v") or name.split("__")[0] == label:
            data = a.get("data")
            return data if isinstance(data, dict) else None
    return None


def _owner(manifest: dict[str, Any]) -> Owner | None:
    work = _assertion(manifest, OWNERSHIP_LABEL)
    if not work:
        return None
    authors = work.get("author") or []
    if isinstance(authors, dict):
        authors = [authors]
    org = next((a.get("name") for a in authors if a.get("@type") == "Organization"), None)
    org = org or (work.get("copyrightHolder") or {}).get("name")
    user = next((a.get("name") for a in authors if a.get("@type") == "Person"), None)
    url = next((a.get("url") for a in authors if a.get("@type") == "Organization" and a.get("url")), None)
    return Owner(organization=org, user=user, website=url) if org else None


def _lineage(manifest: dict[str, Any]) -> Lineage | None:
    data = _assertion(manifest, LINEAGE_LABEL)
    if not data:
        return None
    lineage = LineageAssertion.read(data)
    return Lineage(
        request_id=lineage.request_id,
        created_at=lineage.created_at,
        prompt_commitment=lineage.prompt_commitment,
        prompt=lineage.prompt,
        negative_prompt_commitment=lineage.negative_prompt_commitment,
        negative_prompt=lineage.negative_prompt,
        commitment_scheme=lineage.commitment_scheme,
        seed=lineage.seed,
        parameters=lineage.parameters,
        model_id=lineage.model.model_id,
        weights_sha256=lineage.model.weights_sha256,
        generator=lineage.generator,
        grant_id=lineage.likeness_grant_id,
    )


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    for label in ("c2pa.actions", "c2pa.actions.v2"):
        data = _assertion(manifest, label)
        if data:
            return list(data.get("actions") or [])
    return []


def _signer(manifest: dict[str, Any], trusted: bool) -> SignerInfo:
    info = manifest.get("signature_info")
    if not isinstance(info, dict):
        return SignerInfo(trusted=trusted)
    return SignerInfo(
        common_name=info.get("common_name"),
        organization=info.get("issuer"),
        issuer=info.get("issuer"),
        serial_number=info.get("cert_serial_number"),
        algorithm=info.get("alg"),
        signed_at=info.get("time"),
        timestamped=bool(info.get("time")),
        trusted=trusted,
    )


def _ingredients(manifest: dict[str, Any]) -> list[IngredientReport]:
    out: list[IngredientReport] = []
    for ing in manifest.get("ingredients", []) or []:
        results = ing.get("validation_results") or {}
        active = results.get("activeManifest") if isinstance(results, dict) else None
        codes = (
            validation_codes(active)
            if active
            else [
                ValidationCode(
                    code=s.get("code", ""), explanation=s.get("explanation"), url=s.get("url"), kind="failure"
                )
                for s in ing.get("validation_status", []) or []
            ]
        )
        failed = any(c.kind == "failure" for c in codes)
        out.append(
            IngredientReport(
                title=ing.get("title"),
                format=ing.get("format"),
                relationship=ing.get("relationship"),
                instance_id=ing.get("instance_id"),
                has_manifest=bool(ing.get("active_manifest")),
                validation_state=("invalid" if failed else "valid") if ing.get("active_manifest") else None,
                validation_codes=codes,
            )
        )
    return out


def _soft_binding(manifest: dict[str, Any]) -> dict[str, Any] | None:
    data = _assertion(manifest, SOFT_BINDING_LABEL)
    if not data:
        return None
    blocks = data.get("blocks") or []
    value = blocks[0].get("value") if blocks else None
    payload_hex: str | None = None
    if isinstance(value, str):
        try:
            payload_hex = base64.b64decode(value, validate=True).hex()
        except ValueError:
            payload_hex = None
    return {
        "alg": data.get("alg"),
        "payload": payload_hex,
        "scope": blocks[0].get("scope") if blocks else None,
    }


def _policy(manifest: dict[str, Any]) -> list[PolicySummary]:
    data = _assertion(manifest, POLICY_LABEL)
    return list(PolicyAssertion.read(data).decisions) if data else []


def _training(manifest: dict[str, Any]) -> dict[str, str]:
    training = _assertion(manifest, TRAINING_LABEL) or {}
    return {k: str(v.get("use")) for k, v in (training.get("entries") or {}).items()}


def _software_agent(manifest: dict[str, Any]) -> str | None:
    created = [a for a in _actions(manifest) if str(a.get("action", "")).startswith("c2pa.created")]
    agent = created[0].get("softwareAgent") if created else None
    return agent.get("name") if isinstance(agent, dict) else agent


def _disclosure(manifest: dict[str, Any]) -> Disclosure | None:
    data = _assertion(manifest, DISCLOSURE_LABEL)
    if not data:
        return None
    d = DisclosureAssertion.read(data)
    return Disclosure.model_validate(d.model_dump(exclude={"version"}))


def _visible_label(manifest: dict[str, Any]) -> LabelRecord | None:
    for action in _actions(manifest):
        params = action.get("parameters") if isinstance(action, dict) else None
        if isinstance(params, dict) and VISIBLE_LABEL_PARAMETER in params:
            return LabelRecord.model_validate(params[VISIBLE_LABEL_PARAMETER])
    return None


# Each field, and what makes its value when the signer wrote it in a shape this SDK does not know. A manifest is
# signed by whoever made it, not necessarily by gen4sdk: a malformed field is reported as a problem, never raised.
_FIELDS: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[], Any]]] = {
    "software_agent": (_software_agent, lambda: None),
    "owner": (_owner, lambda: None),
    "lineage": (_lineage, lambda: None),
    "policy": (_policy, list),
    "training_mining": (_training, dict),
    "ingredients": (_ingredients, list),
    "soft_binding": (_soft_binding, lambda: None),
    "disclosure": (_disclosure, lambda: None),
    "visible_label": (_visible_label, lambda: None),
}


def manifest_fields(manifest: dict[str, Any], trusted: bool, problems: list[str]) -> dict[str, Any]:
    try:
        actions = _actions(manifest)
        ai = any(
            isinstance(a, dict) and a.get("digitalSourceType") == TRAINED_ALGORITHMIC_MEDIA for a in actions
        )
    except (AttributeError, TypeError, ValueError) as exc:
        problems.append(f"malformed actions assertion: {exc}")
        ai = False
    fields: dict[str, Any] = {
        "manifest_id": manifest.get("label") if isinstance(manifest.get("label"), str) else None,
        "title": manifest.get("title") if isinstance(manifest.get("title"), str) else None,
        "format": manifest.get("format") if isinstance(manifest.get("format"), str) else None,
        "ai_generated": ai,
    }
    try:
        fields["signer"] = _signer(manifest, trusted)
    except ValueError as exc:
        problems.append(f"malformed signature_info: {type(exc).__name__}")
        fields["signer"] = SignerInfo(trusted=trusted)
    for name, (read, empty) in _FIELDS.items():
        try:
            fields[name] = read(manifest)
        except (
            AttributeError,
            TypeError,
            ValueError,
            KeyError,
        ) as exc:  # pydantic's ValidationError is a ValueError
            logger.info("malformed %s in manifest %s: %s", name, manifest.get("label"), exc)
            problems.append(f"malformed {name} in the credentials: {type(exc).__name__}")
            fields[name] = empty()
    return fields


def classify(state: str | None, codes: list[ValidationCode]) -> tuple[VerificationStatus, str]:
    failures = [c for c in codes if c.kind == "failure"]
    content = [c for c in failures if not c.code.startswith(TRUST_CODE_PREFIXES)]
    if content:
        first = content[0]
        return "tampered", f"{first.code}: {first.explanation or 'validation failed'}"
    if state == "Trusted":
        return "trusted", "credentials valid; signer chains to a configured trust anchor"
    trust = [c.code for c in failures]
    detail = f" ({', '.join(sorted(set(trust)))})" if trust else ""
    return (
        "untrusted",
        f"credentials intact and valid; signer not chained to a configured trust anchor{detail}",
    )
