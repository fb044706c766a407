"""``verify(path)``: is this clip generated, by whom, and was it changed?

The reverse of the output stage: read the embedded C2PA credentials and validate signature, hashes and trust;
detect the invisible watermark; when the credentials were stripped, look the watermark up in a manifest store
(a local store or a soft-binding resolution service) and validate what it returns against the clip.
The verdicts are DESIGN.md's table. ``verify`` never raises on a bad file: every problem becomes a report.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import c2pa

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
    ManifestLookup,
    Owner,
    PolicySummary,
    SignerInfo,
    ValidationCode,
    VerificationReport,
    VerificationStatus,
    WatermarkReport,
)

logger = logging.getLogger(__name__)

__all__ = ["TrustAnchors", "verify"]

TrustAnchors = str | Path | bytes | Sequence[str | Path | bytes] | None

# Failures that concern who signed, not whether the content or claim changed: they make a clip untrusted, not
# tampered.
_TRUST_CODE_PREFIXES = ("signingCredential.", "timeStamp.untrusted", "timeStamp.outsideValidity")
# The failures a stripped, remuxed or re-encoded clip must show against its recovered manifest: the manifest's hash
# of the file's boxes no longer matches. Any other failure means the manifest itself was altered in the store.
_EXPECTED_AFTER_STRIPPING = frozenset({"assertion.bmffHash.mismatch", "assertion.dataHash.mismatch"})
# Frames examined before falling back to the whole clip: enough for the watermark's temporal averaging.
_SAMPLE_FRAMES = 48
_MAX_FRAMES = 24 * 60 * 10


def _anchors_pem(trust_anchors: TrustAnchors) -> str | None:
    if trust_anchors is None:
        return None
    items: Iterable[str | Path | bytes]
    items = [trust_anchors] if isinstance(trust_anchors, (str, Path, bytes)) else trust_anchors
    pems: list[str] = []
    for item in items:
        if isinstance(item, bytes):
            pems.append(item.decode("ascii"))
        elif isinstance(item, str) and "-----BEGIN" in item:
            pems.append(item)
        else:
            pems.append(Path(item).read_text(encoding="ascii"))
    return "\n".join(pems) or None


def _context(anchors_pem: str | None) -> c2pa.Context:
    settings: dict[str, Any] = {"verify": {"verify_trust": True}}
    if anchors_pem:
        settings["trust"] = {"trust_anchors": anchors_pem}
    return c2pa.Context(c2pa.Settings.from_dict(settings))


def _codes(results: dict[str, Any] | None) -> list[ValidationCode]:
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
            _codes(active)
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


def _manifest_fields(manifest: dict[str, Any], trusted: bool, problems: list[str]) -> dict[str, Any]:
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


def _classify(state: str | None, codes: list[ValidationCode]) -> tuple[VerificationStatus, str]:
    failures = [c for c in codes if c.kind == "failure"]
    content = [c for c in failures if not c.code.startswith(_TRUST_CODE_PREFIXES)]
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


def _read_embedded(path: Path, ctx: c2pa.Context) -> dict[str, Any] | None:
    """The embedded credentials as a dict, None when there are none. Raises c2pa errors for the caller."""
    with path.open("rb") as fh:
        reader = c2pa.Reader.try_create(None, fh, None, ctx)
        if reader is None:
            return None
        with reader:
            return {
                "store": json.loads(reader.json()),
                "state": reader.get_validation_state(),
                "results": reader.get_validation_results() or {},
            }


# The ISO BMFF 'uuid' box type that holds a C2PA manifest store (C2PA specification, "Embedding manifests into BMFF").
_C2PA_BMFF_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")


def _carries_c2pa_box(path: Path) -> bool:
    """Whether the file holds a C2PA manifest box anywhere: a scan, for files whose structure no longer parses."""
    tail = b""
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            if _C2PA_BMFF_UUID in tail + chunk:
                return True
            tail = chunk[-(len(_C2PA_BMFF_UUID) - 1) :]
    return False


def _detect_watermark(path: Path, watermarkers: Sequence[Any], info: Any) -> WatermarkReport | None:
    from gen4sdk import media

    best: WatermarkReport | None = None
    # Both passes are bounded by the pixels they decode, not only by a frame count (media.analysis_frames).
    for limit in dict.fromkeys(media.analysis_frames(info, n) for n in (_SAMPLE_FRAMES, _MAX_FRAMES)):
        for wm, key_kind in watermarkers:
            frames = media.iter_frames(path, max_frames=limit, max_pixels=media.MAX_FRAME_PIXELS)
            detection = wm.detect_iter(frames)
            report = WatermarkReport(
                found=bool(detection.found),
                payload=detection.payload.hex() if detection.found and detection.payload else None,
                confidence=float(detection.confidence),
                algorithm=wm.algorithm,
                key=key_kind,
                frames_examined=min(limit, getattr(detection, "frames", limit)),
            )
            if report.found:
                return report
            if best is None or report.confidence > best.confidence:
                best = report
        if info.frames is not None and info.frames <= limit:
            break  # the sample already was the whole clip
    return best


def _recover(
    path: Path, payload: bytes, lookup: ManifestLookup, ctx: c2pa.Context
) -> tuple[dict[str, Any], list[ValidationCode], str] | None:
    """Find a stripped clip's manifest by its watermark and validate its signature against the clip."""
    manifest_store = lookup.manifest_store_for(payload)
    if not manifest_store:
        return None
    with path.open("rb") as fh, c2pa.Reader("video/mp4", fh, bytes(manifest_store), ctx) as reader:
        store = json.loads(reader.json())
        results = reader.get_validation_results() or {}
    return store, _codes(results.get("activeManifest")), lookup.source


def verify(
    path: str | Path,
    *,
    trust_anchors: TrustAnchors = None,
    store: ManifestLookup | None = None,
    watermark_keys: Sequence[bytes] = (),
    detect_watermark: bool = True,
) -> VerificationReport:
    """Verify one file. Never raises on a bad file; see DESIGN.md for the ``status`` values.

    ``trust_anchors``: PEM file path(s) or PEM text of the CA certificates to trust. ``store``: a
    :class:`ManifestLookup` used to recover stripped credentials (``gen4sdk.verify`` also takes a database path
    or a resolution service URL and opens the lookup for them). ``watermark_keys``: operator watermark keys to
    try besides the public one.
    """
    p = Path(path)
    name = str(path)
    if not p.is_file():
        return VerificationReport(
            path=name, status="unreadable", reason="no such file" if not p.exists() else "not a regular file"
        )
    try:
        ctx = _context(_anchors_pem(trust_anchors))
    except (OSError, UnicodeDecodeError, c2pa.C2paError) as exc:
        return VerificationReport(path=name, status="unreadable", reason=f"trust anchors unusable: {exc}")

    problems: list[str] = []
    embedded: dict[str, Any] | None = None
    credentials_error: str | None = None
    try:
        embedded = _read_embedded(p, ctx)
    except c2pa.C2paError.NotSupported:
        embedded = None
    except c2pa.C2paError as exc:
        credentials_error = str(exc)
    except OSError as exc:
        return VerificationReport(path=name, status="unreadable", reason=f"cannot read file: {exc}")

    from gen4sdk import media
    from gen4sdk.errors import MediaError

    info: media.VideoInfo | None = None
    try:
        info = media.probe(p)
        decodable = True
    except MediaError as exc:
        decodable = False
        # A signed clip whose boxes were broken (its moov, say) is still a signed clip that was altered.
        if embedded is None and not (credentials_error is not None and _carries_c2pa_box(p)):
            return VerificationReport(
                path=name, status="unreadable", reason=f"not a video this SDK can read: {exc}"
            )
        problems.append(f"video does not decode: {exc}")

    if info is not None and info.width * info.height > media.MAX_FRAME_PIXELS:
        # Checked from the header, before decoding: such frames cost seconds and gigabytes each.
        decodable = False
        too_big = f"frames of {info.width}x{info.height} are over the {media.MAX_FRAME_PIXELS} pixels this SDK decodes"
        if embedded is None and credentials_error is None:
            return VerificationReport(path=name, status="unreadable", reason=too_big)
        problems.append(f"{too_big}: the watermark was not checked")

    wm_report: WatermarkReport | None = None
    if detect_watermark and decodable and info is not None:
        try:
            from watermark import Watermarker

            wms: list[tuple[Any, str]] = [(Watermarker.public(), "public")]
            wms += [(Watermarker(key=k), "operator") for k in watermark_keys]
            wm_report = _detect_watermark(p, wms, info)
        except Exception as exc:  # noqa: BLE001 - a detector failure must not turn a verdict into a crash
            logger.warning("watermark detection failed on %s: %s", p, exc)
            problems.append(f"watermark detection failed: {exc}")

    if credentials_error is not None:
        return VerificationReport(
            path=name,
            status="tampered",
            reason=f"credentials present but unreadable: {credentials_error}",
            watermark=wm_report,
            problems=problems,
        )

    if embedded is not None:
        manifest_store = embedded["store"]
        label = manifest_store.get("active_manifest")
        manifest = (manifest_store.get("manifests") or {}).get(label, {})
        results = embedded["results"]
        codes = _codes(results.get("activeManifest"))
        status, reason = _classify(embedded["state"], codes)
        fields = _manifest_fields(manifest, trusted=status == "trusted", problems=problems)
        if wm_report is not None and fields["soft_binding"] and fields["soft_binding"].get("payload"):
            if not wm_report.found:
                # not a mismatch: a mark made with an operator key is invisible without that key
                wm_report = wm_report.model_copy(update={"matches_credentials": None})
                problems.append(
                    "the credentials declare a watermark but none was found with the keys given "
                    "(an operator-key mark needs its key; otherwise the mark was destroyed)"
                )
            else:
                matches = wm_report.payload == fields["soft_binding"]["payload"]
                wm_report = wm_report.model_copy(update={"matches_credentials": matches})
                if not matches:
                    problems.append(
                        f"the watermark does not match the credentials' soft binding (found {wm_report.payload})"
                    )
        return VerificationReport(
            path=name,
            status=status,
            reason=reason,
            validation_state=embedded["state"],
            validation_codes=codes,
            watermark=wm_report,
            problems=problems,
            **fields,
        )

    if wm_report is None or not wm_report.found or not wm_report.payload:
        return VerificationReport(
            path=name,
            status="unsigned",
            reason="no credentials and no watermark",
            watermark=wm_report,
            problems=problems,
        )

    if store is not None:
        try:
            recovered = _recover(p, bytes.fromhex(wm_report.payload), store, ctx)
        except Exception as exc:  # noqa: BLE001 - store or service failures are reported, never raised
            logger.warning("manifest lookup failed for %s: %s", p, exc)
            problems.append(f"manifest lookup failed: {exc}")
            recovered = None
        if recovered is not None:
            manifest_store, codes, source = recovered
            label = manifest_store.get("active_manifest")
            manifest = (manifest_store.get("manifests") or {}).get(label, {})
            signature_ok = any(c.code == "claimSignature.validated" for c in codes)
            # the clip's hashes no longer match, so the reader's state is Invalid whatever the signer: trust
            # comes from the signing-credential codes alone
            trusted = any(c.code == "signingCredential.trusted" and c.kind == "success" for c in codes)
            fields = _manifest_fields(manifest, trusted=trusted, problems=problems)
            if signature_ok and not trusted:
                problems.append(
                    "the recovered manifest's signer does not chain to a configured trust anchor"
                    if trust_anchors is not None
                    else "no trust anchors given: who signed the recovered manifest is not established"
                )
            sb_payload = (fields["soft_binding"] or {}).get("payload")
            altered = [
                c
                for c in codes
                if c.kind == "failure"
                and c.code not in _EXPECTED_AFTER_STRIPPING
                and not c.code.startswith(_TRUST_CODE_PREFIXES)
            ]
            if not signature_ok:
                problems.append("the recovered manifest's signature does not validate")
            for c in altered:
                # a valid claim signature over altered assertions: what the manifest says cannot be relied on
                problems.append(
                    f"the recovered manifest was altered: {c.code}: {c.explanation or 'validation failed'}"
                )
            if sb_payload != wm_report.payload:
                problems.append("the recovered manifest's soft binding does not match the watermark")
            if signature_ok and not altered and sb_payload == wm_report.payload:
                wm_report = wm_report.model_copy(update={"matches_credentials": True})
                return VerificationReport(
                    path=name,
                    status="recovered",
                    reason="credentials were stripped; the watermark led to the original manifest, whose signature "
                    "validates (the content hashes no longer match because the clip was re-encoded or remuxed)",
                    validation_codes=codes,
                    watermark=wm_report,
                    recovered_from=source,
                    problems=problems,
                    **fields,
                )
    return VerificationReport(
        path=name,
        status="watermarked",
        reason="no credentials; a gen4sdk watermark was found"
        + ("" if store is None else ", but no store knows its manifest"),
        watermark=wm_report,
        problems=problems,
    )
