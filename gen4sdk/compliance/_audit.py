"""Batch audit: verify every video under a directory in worker processes, and write JSON, CSV and HTML reports.

A file that hangs or crashes its worker becomes a report entry (status ``unreadable`` with the reason); the audit
itself never stops on one bad file.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import contextlib
import csv
import datetime as _dt
import io
import logging
import multiprocessing
import os
import stat
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from importlib import resources
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

from gen4sdk.errors import InvalidRequestError, OutputError
from gen4sdk.types import VerificationReport, VerificationStatus

logger = logging.getLogger(__name__)

__all__ = ["STATUSES", "AuditEntry", "AuditReport", "audit_directory", "find_videos"]

STATUSES: tuple[VerificationStatus, ...] = (
    "trusted",
    "untrusted",
    "tampered",
    "recovered",
    "watermarked",
    "unsigned",
    "unreadable",
)
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".3gp", ".mpg", ".mpeg", ".ts"}
)
_THUMB_WIDTH = 192


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

    @property
    def ok(self) -> bool:
        """True when there is at least one file and every file is ``trusted`` (the CLI's exit status 0)."""
        return bool(self.entries) and all(e.status == "trusted" for e in self.entries)

    def write_json(self, path_or_stream: str | os.PathLike[str] | IO[str]) -> None:
        _write_text(path_or_stream, self.model_dump_json(indent=2) + "\n")

    def write_csv(self, path_or_stream: str | os.PathLike[str] | IO[str]) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
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
                    ]
                )
            )
        _write_text(path_or_stream, buf.getvalue())

    def write_html(self, path_or_stream: str | os.PathLike[str] | IO[str]) -> None:
        _write_text(path_or_stream, render_html(self))


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): a foreign manifest's owner can be
# "=HYPERLINK(...)". Such cells get a leading apostrophe, which spreadsheets show as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe_row(cells: list[object]) -> list[object]:
    """The row with every text cell that a spreadsheet would evaluate made inert (prefixed with ``'``)."""
    return [f"'{c}" if isinstance(c, str) and c.startswith(_FORMULA_START) else c for c in cells]


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


# ------------------------------------------------------------------------------------------------ discovery

_MAGIC = (
    (4, b"ftyp"),  # MP4 / MOV / 3GP
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
)


def _sniff(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    return any(head[off : off + len(magic)] == magic for off, magic in _MAGIC)


def find_videos(root: str | os.PathLike[str]) -> list[Path]:
    """Video files under ``root``: by extension (even if unreadable, so they get a report entry) or by content."""
    base = Path(root)
    if base.is_file():
        return [base]
    found: list[Path] = []

    def onerror(exc: OSError) -> None:
        logger.warning("cannot list %s: %s", exc.filename, exc.strerror)

    for dirpath, dirnames, filenames in os.walk(base, onerror=onerror, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            try:
                if not stat.S_ISREG(p.stat().st_mode):
                    continue
            except OSError:
                continue  # dangling link
            if p.suffix.lower() in VIDEO_EXTENSIONS or _sniff(p):
                found.append(p)
    return found


# ------------------------------------------------------------------------------------------------ workers


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
    path: str, trust_anchors: Any, store: Any, thumbnails: bool
) -> tuple[dict[str, Any], str | None, float]:
    """Runs in a worker process; returns plain data so nothing unpicklable crosses back."""
    t0 = time.perf_counter()
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        report = VerificationReport(
            path=path, status="unreadable", reason=f"cannot read file: {exc.strerror or exc}"
        )
        return report.model_dump(mode="json"), None, time.perf_counter() - t0
    report = _verify_file(path, trust_anchors, store)
    thumb = _thumbnail(path) if thumbnails and report.status != "unreadable" else None
    return report.model_dump(mode="json"), thumb, time.perf_counter() - t0


def _summarise(report: VerificationReport, thumbnail: str | None, seconds: float) -> AuditEntry:
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
    )


def _failed(path: Path, reason: str, seconds: float = 0.0) -> AuditEntry:
    report = VerificationReport(path=str(path), status="unreadable", reason=reason, problems=[reason])
    return _summarise(report, None, seconds)


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    # fork: workers inherit the already-imported SDK instead of re-importing torch & co. per worker (seconds each).
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def _kill_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool whose worker hangs: shutdown() alone would wait for it forever."""
    processes = (
        getattr(pool, "_processes", None) or {}
    )  # no public API before Python 3.14's terminate_workers()
    for proc in list(processes.values()):
        with contextlib.suppress(Exception):
            proc.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def _run(
    files: Sequence[Path],
    *,
    trust_anchors: Any,
    store: Any,
    workers: int,
    timeout: float,
    thumbnails: bool,
    progress: Any,
) -> Iterator[tuple[int, AuditEntry]]:
    """Yield (index, entry) as files finish.

    At most ``workers`` files are in flight, so each file's clock starts when it is submitted. A crash breaks the
    whole pool, failing every file in flight: those files are retried one at a time, and only a file that crashes
    a worker on its own is blamed. A hung file is reported when its time is up and its pool is killed; the other
    files in flight then simply start again.
    """
    queue = list(range(len(files)))
    suspects: list[int] = []
    pool = _pool(workers)
    in_flight: dict[cf.Future[Any], tuple[int, float, bool]] = {}
    try:
        while queue or suspects or in_flight:
            solo = bool(suspects) or any(alone for _, _, alone in in_flight.values())
            while len(in_flight) < (1 if solo else workers) and (suspects or queue):
                source = suspects if suspects else queue
                i = source.pop(0)
                try:
                    fut = pool.submit(_work, str(files[i]), trust_anchors, store, thumbnails)
                except BrokenProcessPool:
                    # A file in flight has just crashed its worker; its future reports that below.
                    source.insert(0, i)
                    if in_flight:
                        break
                    _kill_pool(pool)
                    pool = _pool(workers)
                    continue
                in_flight[fut] = (i, time.monotonic(), solo)
            next_deadline = min(start + timeout for _, start, _ in in_flight.values())
            done, _ = cf.wait(
                list(in_flight),
                timeout=max(0.0, next_deadline - time.monotonic()),
                return_when=cf.FIRST_COMPLETED,
            )
            broken = False
            for fut in done:
                i, start, alone = in_flight.pop(fut)
                try:
                    data, thumb, seconds = fut.result()
                    entry = _summarise(VerificationReport.model_validate(data), thumb, seconds)
                except BrokenProcessPool:
                    broken = True
                    if not alone:
                        suspects.append(i)
                        continue
                    entry = _failed(files[i], "the verifier crashed on this file", time.monotonic() - start)
                except Exception as exc:  # noqa: BLE001 - a verifier bug on one file is that file's entry
                    entry = _failed(
                        files[i],
                        f"verification failed: {type(exc).__name__}: {exc}",
                        time.monotonic() - start,
                    )
                yield i, entry
                progress.update(1)
            now = time.monotonic()
            overdue = [f for f, (_, start, _) in in_flight.items() if now - start >= timeout]
            for fut in overdue:
                i, start, _ = in_flight.pop(fut)
                yield i, _failed(files[i], f"verification timed out after {timeout:g} s", now - start)
                progress.update(1)
            if overdue or broken:
                retry = suspects if broken else queue
                for i, _, _ in in_flight.values():
                    retry.insert(0, i)
                in_flight.clear()
                _kill_pool(pool)
                pool = _pool(workers)
    finally:
        if in_flight:
            _kill_pool(pool)
        else:
            pool.shutdown(wait=True)


def audit_directory(
    root: str | os.PathLike[str],
    *,
    trust_anchors: Any = None,
    store: Any = None,
    workers: int = 2,
    timeout: float = 60.0,
    progress: bool = True,
    thumbnails: bool = True,
) -> AuditReport:
    """Verify every video under ``root`` with ``gen4sdk.verify`` in ``workers`` processes.

    ``trust_anchors`` and ``store`` are passed to ``verify`` as given (a Store is reopened by path in each worker).
    A file taking longer than ``timeout`` seconds, or crashing its worker, gets an ``unreadable`` entry with the
    reason. Entries come back in path order; ``counts`` has every status, zeros included.
    """
    from tqdm import tqdm

    base = Path(root)
    if not base.exists():
        raise InvalidRequestError(f"{base} does not exist", field="root")
    if workers < 1:
        raise InvalidRequestError("workers must be at least 1", field="workers")
    if timeout <= 0:
        raise InvalidRequestError("timeout must be positive", field="timeout")
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    files = find_videos(base)
    store_arg: Any = str(store) if isinstance(store, os.PathLike) else store  # a Store pickles as its path
    if isinstance(trust_anchors, os.PathLike):
        trust_anchors = str(trust_anchors)
    entries: list[AuditEntry | None] = [None] * len(files)
    with tqdm(total=len(files), disable=not progress, unit="clip", desc="audit", leave=False) as bar:
        if files:
            for i, entry in _run(
                files,
                trust_anchors=trust_anchors,
                store=store_arg,
                workers=min(workers, len(files)),
                timeout=timeout,
                thumbnails=thumbnails,
                progress=bar,
            ):
                entries[i] = entry
    done = [e for e in entries if e is not None]
    counts: dict[str, int] = {s: 0 for s in STATUSES}
    counts.update(Counter(e.status for e in done))
    return AuditReport(
        root=str(base),
        started_at=started.isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - t0, 3),
        workers=workers,
        trust_anchors=trust_anchors if isinstance(trust_anchors, str) and len(trust_anchors) < 4096 else None,
        store=str(getattr(store, "path", store)) if store is not None else None,
        counts=counts,
        entries=done,
    )
