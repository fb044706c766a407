"""The batch audit's report: one entry per file, counts per verification status and per labelling-law profile,
written as JSON, CSV or a self-contained HTML page (report.html, rendered with jinja2)."""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import os
import uuid
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, Field

from gen4sdk.errors import OutputError
from gen4sdk.types import RequirementCheck, RequirementStatus, VerificationReport, VerificationStatus

__all__ = [
    "CSV_COLUMNS",
    "REPORT_VERSION",
    "STATUSES",
    "AuditEntry",
    "AuditReport",
    "profile_summary",
    "render_html",
]

# The JSON report's format. 2: entries carry the file's size and mtime, which a resumed audit compares (1: none).
REPORT_VERSION = 2

STATUSES: tuple[VerificationStatus, ...] = (
    "trusted",
    "untrusted",
    "tampered",
    "recovered",
    "watermarked",
    "unsigned",
    "unreadable",
)


class AuditEntry(BaseModel):
    """One audited file, flattened for a compliance officer; ``verification`` keeps the full report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    status: VerificationStatus
    reason: str = ""
    manifest_id: str | None = None
    signer: str | None = None
    owner: str | None = None
    created: str | None = None
    model: str | None = None
    ai_generated: bool | None = None
    policy_outcome: str | None = None
    watermark: str = "not checked"
    watermark_payload: str | None = None
    lineage: str = ""
    problems: list[str] = Field(default_factory=list)
    seconds: float = 0.0
    thumbnail: str | None = Field(
        default=None, exclude=True, description="data: URI of one frame (HTML only)"
    )
    verification: VerificationReport | None = None
    compliance: dict[str, RequirementStatus] = Field(
        default_factory=dict, description="per chosen labelling-law profile: met, missing or not_checkable"
    )
    requirements: list[RequirementCheck] = Field(default_factory=list)
    size: int | None = Field(default=None, description="the file's size in bytes when it was audited")
    mtime_ns: int | None = Field(
        default=None,
        description="the file's modification time (ns) when it was audited; with size, what a resumed audit compares",
    )


class AuditReport(BaseModel):
    """The audit of a directory: one entry per video file, counts per status, and how it was run; written as
    JSON, CSV or a self-contained HTML page."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: str
    started_at: str
    seconds: float
    workers: int
    trust_anchors: str | None = None
    store: str | None = None
    counts: dict[str, int]
    entries: list[AuditEntry]
    profiles: list[str] = Field(default_factory=list)
    compliance_counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="per profile: how many files met it, miss it, cannot be checked"
    )
    version: int = Field(default=REPORT_VERSION, description="the report format (REPORT_VERSION)")
    resumed: int = Field(default=0, description="entries taken unchanged from the previous report (resume=)")

    @property
    def ok(self) -> bool:
        """True when there is at least one file and every file is ``trusted`` (the CLI's exit status 0)."""
        return bool(self.entries) and all(e.status == "trusted" for e in self.entries)

    def write_json(self, path_or_stream: str | os.PathLike[str] | IO[str]) -> None:
        _write_text(path_or_stream, self.model_dump_json(indent=2) + "\n")

    def write_csv(self, path_or_stream: str | os.PathLike[str] | IO[str]) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS + self.profiles)
        for e in self.entries:
            writer.writerow(
                _csv_safe_row(
                    [
                        e.path,
                        e.status,
                        e.reason,
                        e.manifest_id or "",
                        e.signer or "",
                        e.owner or "",
                        e.created or "",
                        e.model or "",
                        "" if e.ai_generated is None else str(e.ai_generated).lower(),
                        e.policy_outcome or "",
                        e.watermark,
                        e.watermark_payload or "",
                        e.lineage,
                        "; ".join(e.problems),
                        *(e.compliance.get(p, "") for p in self.profiles),
                    ]
                )
            )
        _write_text(path_or_stream, buf.getvalue())

    def write_html(self, path_or_stream: str | os.PathLike[str] | IO[str]) -> None:
        _write_text(path_or_stream, render_html(self))


CSV_COLUMNS = [
    "path",
    "status",
    "reason",
    "manifest_id",
    "signer",
    "owner",
    "created",
    "model",
    "ai_generated",
    "policy_outcome",
    "watermark",
    "watermark_payload",
    "lineage",
    "problems",
]


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): a foreign manifest's owner can be
# "=HYPERLINK(...)". Such cells get a leading apostrophe, which spreadsheets show as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe_row(cells: list[object]) -> list[object]:
    """The row with every text cell that a spreadsheet would evaluate made inert (prefixed with ``'``)."""
    return [f"'{c}" if isinstance(c, str) and c.startswith(_FORMULA_START) else c for c in cells]


def _write_text(path_or_stream: str | os.PathLike[str] | IO[str], text: str) -> None:
    """Write a report; a path is written via a temporary file so a failure never leaves half a report."""
    if not isinstance(path_or_stream, (str, os.PathLike)):
        path_or_stream.write(text)
        return
    target = Path(path_or_stream)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write report {target}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def render_html(report: AuditReport) -> str:
    """The self-contained HTML report (inline CSS, thumbnails as data URIs, no external assets)."""
    import jinja2

    template_text = resources.files("gen4sdk.compliance").joinpath("report.html").read_text(encoding="utf-8")
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    root = report.root.rstrip("/\\") + os.sep
    env.filters["rel"] = lambda p: p.removeprefix(root)
    env.filters["when"] = _when
    return env.from_string(template_text).render(
        report=report,
        statuses=STATUSES,
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _when(value: str | None) -> str:
    if not value:
        return "—"
    try:
        t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if t.tzinfo is not None:
        t = t.astimezone(_dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if t.tzinfo is not None else "")


def profile_summary(checks: Sequence[RequirementCheck]) -> dict[str, RequirementStatus]:
    out: dict[str, RequirementStatus] = {}
    for c in checks:
        if c.scope != "clip":
            continue
        rank = {"met": 0, "not_checkable": 1, "missing": 2}
        if rank[c.status] >= rank[out.get(c.profile, "met")]:
            out[c.profile] = c.status
    return out
