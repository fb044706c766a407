"""The batch audit's per-file work, shared by the local process pool (``_audit``) and Ray (``_audit_ray``): verify
one file, make its thumbnail, check it against the chosen profiles, and flatten the result into an entry."""

from __future__ import annotations

import base64
import io
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gen4sdk.compliance._report import AuditEntry, profile_summary
from gen4sdk.types import RequirementCheck, VerificationReport

logger = logging.getLogger(__name__)

_THUMB_WIDTH = 192


def _verify_file(path: str, trust_anchors: Any, store: Any) -> VerificationReport:
    # imported in the worker: the verifier loads c2pa, which building a report from saved results does not need
    from gen4sdk.compliance._recovery import verify

    return verify(path, trust_anchors=trust_anchors, store=store)


def _thumbnail(path: str) -> str | None:
    """One frame from a third into the first seconds, as a small JPEG data URI; None if nothing decodes."""
    try:
        import av
        from PIL import Image

        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frame_img = None
            for i, frame in enumerate(container.decode(stream)):
                frame_img = frame.to_image()
                if i >= 8:  # skip a possibly black first frame, but stay cheap
                    break
        if frame_img is None:
            return None
        frame_img.thumbnail((_THUMB_WIDTH, _THUMB_WIDTH * 2), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        frame_img.convert("RGB").save(buf, format="JPEG", quality=70)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    except Exception as exc:  # noqa: BLE001 - a missing thumbnail is cosmetic
        logger.debug("no thumbnail for %s: %s", path, exc)
        return None


def _work(
    path: str, trust_anchors: Any, store: Any, thumbnails: bool, profiles: Sequence[str] = ()
) -> tuple[dict[str, Any], str | None, float, list[dict[str, Any]]]:
    """Runs in a worker process; returns plain data so nothing unpicklable crosses back."""
    t0 = time.perf_counter()
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        report = VerificationReport(
            path=path, status="unreadable", reason=f"cannot read file: {exc.strerror or exc}"
        )
        return report.model_dump(mode="json"), None, time.perf_counter() - t0, _checks(report, profiles)
    report = _verify_file(path, trust_anchors, store)
    thumb = _thumbnail(path) if thumbnails and report.status != "unreadable" else None
    return report.model_dump(mode="json"), thumb, time.perf_counter() - t0, _checks(report, profiles)


def _checks(report: VerificationReport, profiles: Sequence[str]) -> list[dict[str, Any]]:
    if not profiles:
        return []
    # imported here: the profile checks read the file's AIGC block, which a plain audit does not need
    from gen4sdk.compliance._check import check_report

    return [c.model_dump(mode="json") for c in check_report(report, profiles).checks]


def _summarise(
    report: VerificationReport, thumbnail: str | None, seconds: float, checks: Sequence[dict[str, Any]] = ()
) -> AuditEntry:
    signer = None
    if report.signer is not None:
        signer = report.signer.organization or report.signer.common_name
        if report.signer.common_name and report.signer.organization and report.signer.common_name != signer:
            signer = f"{report.signer.organization} ({report.signer.common_name})"
    owner = None
    if report.owner is not None:
        owner = report.owner.organization + (f" / {report.owner.user}" if report.owner.user else "")
    lin = report.lineage
    policy = None
    if report.policy:
        order = {"refused": 2, "allowed_with_warnings": 1, "allowed": 0}
        worst = max(report.policy, key=lambda p: order.get(p.outcome, 0))
        policy = worst.outcome + (f" ({', '.join(worst.categories)})" if worst.categories else "")
    wm = report.watermark
    if wm is None:
        watermark = "not checked"
    elif wm.found:
        watermark = f"found ({wm.confidence:.2f})"
        if wm.matches_credentials is False:
            watermark += ", does not match credentials"
    else:
        watermark = "not found"
    parts = []
    if lin is not None:
        if lin.request_id:
            parts.append(f"request {lin.request_id}")
        if lin.prompt_commitment:
            parts.append("prompt committed")
        elif lin.prompt:
            parts.append("prompt in clear")
        if lin.seed is not None:
            parts.append(f"seed {lin.seed}")
    if report.ingredients:
        names = ", ".join(i.title or i.format or "untitled" for i in report.ingredients[:3])
        parts.append(f"{len(report.ingredients)} ingredient(s): {names}")
    if report.recovered_from:
        parts.append(f"manifest recovered from {report.recovered_from}")
    return AuditEntry(
        path=report.path,
        status=report.status,
        reason=report.reason,
        manifest_id=report.manifest_id,
        signer=signer,
        owner=owner,
        created=(lin.created_at if lin else None) or (report.signer.signed_at if report.signer else None),
        model=(lin.model_id if lin and lin.model_id else None) or report.software_agent,
        ai_generated=report.ai_generated,
        policy_outcome=policy,
        watermark=watermark,
        watermark_payload=wm.payload if wm is not None else None,
        lineage="; ".join(parts),
        problems=list(report.problems),
        seconds=round(seconds, 3),
        thumbnail=thumbnail,
        verification=report,
        requirements=[RequirementCheck.model_validate(c) for c in checks],
        compliance=profile_summary([RequirementCheck.model_validate(c) for c in checks]),
    )


def _failed(path: Path, reason: str, seconds: float = 0.0, profiles: Sequence[str] = ()) -> AuditEntry:
    report = VerificationReport(path=str(path), status="unreadable", reason=reason, problems=[reason])
    return _summarise(report, None, seconds, _checks(report, profiles))
