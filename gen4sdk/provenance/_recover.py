"""Recovering a stripped clip's credentials from a manifest store: by its watermark (an exact binding) or, when
no mark is left, by its perceptual fingerprint (a resemblance), and validating what comes back against the clip.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import c2pa

from gen4sdk import fingerprint as fp
from gen4sdk.provenance._manifest_read import TRUST_CODE_PREFIXES, manifest_fields, validation_codes
from gen4sdk.types import (
    ContentLookup,
    FingerprintReport,
    ManifestLookup,
    ValidationCode,
    VerificationReport,
    WatermarkReport,
)

__all__ = ["recover_by_content", "recover_by_watermark"]

logger = logging.getLogger(__name__)

# The failures a stripped, remuxed or re-encoded clip must show against its recovered manifest: the manifest's hash
# of the file's boxes no longer matches. Any other failure means the manifest itself was altered in the store.
_EXPECTED_AFTER_STRIPPING = frozenset({"assertion.bmffHash.mismatch", "assertion.dataHash.mismatch"})
# A fingerprint query looks at the first minute of a clip (240 frames decoded to thumbnails at most).
_QUERY_SECONDS = 60.0


def _validate(
    path: Path, manifest_store: bytes, ctx: c2pa.Context
) -> tuple[dict[str, Any], list[ValidationCode]]:
    with path.open("rb") as fh, c2pa.Reader("video/mp4", fh, bytes(manifest_store), ctx) as reader:
        store = json.loads(reader.json())
        results = reader.get_validation_results() or {}
    return store, validation_codes(results.get("activeManifest"))


def _judge(
    store: dict[str, Any], codes: list[ValidationCode], anchors_given: bool, problems: list[str]
) -> tuple[dict[str, Any], bool]:
    """The recovered manifest's fields, and whether its signature validates over unaltered assertions."""
    label = store.get("active_manifest")
    manifest = (store.get("manifests") or {}).get(label, {})
    signature_ok = any(c.code == "claimSignature.validated" for c in codes)
    # the clip's hashes no longer match, so the reader's state is Invalid whatever the signer: trust comes from
    # the signing-credential codes alone
    trusted = any(c.code == "signingCredential.trusted" and c.kind == "success" for c in codes)
    fields = manifest_fields(manifest, trusted=trusted, problems=problems)
    if signature_ok and not trusted:
        problems.append(
            "the recovered manifest's signer does not chain to a configured trust anchor"
            if anchors_given
            else "no trust anchors given: who signed the recovered manifest is not established"
        )
    altered = [
        c
        for c in codes
        if c.kind == "failure"
        and c.code not in _EXPECTED_AFTER_STRIPPING
        and not c.code.startswith(TRUST_CODE_PREFIXES)
    ]
    if not signature_ok:
        problems.append("the recovered manifest's signature does not validate")
    for c in altered:
        # a valid claim signature over altered assertions: what the manifest says cannot be relied on
        problems.append(
            f"the recovered manifest was altered: {c.code}: {c.explanation or 'validation failed'}"
        )
    return fields, signature_ok and not altered


def recover_by_watermark(
    path: Path,
    wm_report: WatermarkReport,
    lookup: ManifestLookup,
    ctx: c2pa.Context,
    *,
    anchors_given: bool,
    problems: list[str],
) -> VerificationReport | None:
    """The ``recovered`` report of a clip whose watermark leads to a manifest that validates, else None."""
    if not wm_report.payload:
        return None
    manifest_store = lookup.manifest_store_for(bytes.fromhex(wm_report.payload))
    if not manifest_store:
        return None
    store, codes = _validate(path, manifest_store, ctx)
    fields, sound = _judge(store, codes, anchors_given, problems)
    sb_payload = (fields["soft_binding"] or {}).get("payload")
    if sb_payload != wm_report.payload:
        problems.append("the recovered manifest's soft binding does not match the watermark")
        return None
    if not sound:
        return None
    return VerificationReport(
        path=str(path),
        status="recovered",
        reason="credentials were stripped; the watermark led to the original manifest, whose signature validates "
        "(the content hashes no longer match because the clip was re-encoded or remuxed)",
        validation_codes=codes,
        watermark=wm_report.model_copy(update={"matches_credentials": True}),
        recovered_from=lookup.source,
        recovered_by="watermark",
        problems=problems,
        **fields,
    )


def recover_by_content(
    path: Path,
    frames: Any,
    fps: float,
    lookup: ContentLookup,
    ctx: c2pa.Context,
    *,
    anchors_given: bool,
    problems: list[str],
    wm_report: WatermarkReport | None,
) -> VerificationReport | None:
    """The ``recovered`` report of a clip that looks like a stored one whose manifest validates, else None.

    ``frames``: the clip's decoded frames (an iterator is enough; only the first minute is read).
    """
    views = fp.query_views(frames, fps, max_seconds=_QUERY_SECONDS)
    if not views["as embedded"].usable:
        return None  # nothing but flat frames: no resemblance can be claimed
    found = lookup.manifest_store_for_content(views)
    if found is None:
        return None
    manifest_store, how = found
    store, codes = _validate(path, manifest_store, ctx)
    fields, sound = _judge(store, codes, anchors_given, problems)
    if not sound:
        return None
    problems.append(
        "matched by content, not by an exact binding: the clip looks like the one these credentials were made "
        f"for ({how.frames} frames compared, {how.distance:g} of 63 bits apart, {how.view}); the watermark was "
        "not found"
    )
    return VerificationReport(
        path=str(path),
        status="recovered",
        reason="credentials were stripped and the watermark is gone; the clip's fingerprint led to a stored "
        "manifest whose signature validates (a resemblance: the clip was re-encoded, cropped or otherwise changed)",
        validation_codes=codes,
        watermark=wm_report,
        recovered_from=lookup.source,
        recovered_by="fingerprint",
        fingerprint=FingerprintReport(
            algorithm=fp.ALGORITHM,
            distance=how.distance,
            similarity=how.similarity,
            frames=how.frames,
            offset_seconds=how.offset_seconds,
            view=how.view,
        ),
        problems=problems,
        **fields,
    )
