"""``verify(path)``: is this clip generated, by whom, and was it changed?

The reverse of the output stage: read the embedded C2PA credentials and validate signature, hashes and trust;
detect the invisible watermark; when the credentials were stripped, look the watermark up in a manifest store
(a local store or a soft-binding resolution service) and validate what it returns against the clip.
The verdicts are DESIGN.md's table. ``verify`` never raises on a bad file: every problem becomes a report.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import c2pa

from gen4sdk.provenance._manifest_read import classify, manifest_fields, validation_codes
from gen4sdk.provenance._recover import recover_by_content, recover_by_watermark
from gen4sdk.types import ContentLookup, ManifestLookup, VerificationReport, WatermarkReport

logger = logging.getLogger(__name__)

__all__ = ["TrustAnchors", "verify"]

TrustAnchors = str | Path | bytes | Sequence[str | Path | bytes] | None

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
        codes = validation_codes(results.get("activeManifest"))
        status, reason = classify(embedded["state"], codes)
        fields = manifest_fields(manifest, trusted=status == "trusted", problems=problems)
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
        if isinstance(store, ContentLookup) and decodable and info is not None:
            # no credentials, no mark: what the clip looks like may still name its manifest
            try:
                recovered = recover_by_content(
                    p,
                    media.iter_frames(p, max_pixels=media.MAX_FRAME_PIXELS),
                    info.fps or 24.0,
                    store,
                    ctx,
                    anchors_given=trust_anchors is not None,
                    problems=problems,
                    wm_report=wm_report,
                )
            except Exception as exc:  # noqa: BLE001 - store or service failures are reported, never raised
                logger.warning("lookup by content failed for %s: %s", p, exc)
                problems.append(f"lookup by content failed: {exc}")
                recovered = None
            if recovered is not None:
                return recovered.model_copy(update={"path": name})
        return VerificationReport(
            path=name,
            status="unsigned",
            reason="no credentials and no watermark"
            + ("" if not isinstance(store, ContentLookup) else ", and no stored clip looks like it"),
            watermark=wm_report,
            problems=problems,
        )

    if store is not None:
        try:
            recovered = recover_by_watermark(
                p, wm_report, store, ctx, anchors_given=trust_anchors is not None, problems=problems
            )
        except Exception as exc:  # noqa: BLE001 - store or service failures are reported, never raised
            logger.warning("manifest lookup failed for %s: %s", p, exc)
            problems.append(f"manifest lookup failed: {exc}")
            recovered = None
        if recovered is not None:
            return recovered.model_copy(update={"path": name})
    return VerificationReport(
        path=name,
        status="watermarked",
        reason="no credentials; a gen4sdk watermark was found"
        + ("" if store is None else ", but no store knows its manifest"),
        watermark=wm_report,
        problems=problems,
    )
