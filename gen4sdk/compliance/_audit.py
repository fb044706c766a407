"""Batch audit: verify every video under a directory in worker processes, and write JSON, CSV and HTML reports.

A file that hangs or crashes its worker becomes a report entry (status ``unreadable`` with the reason); the audit
itself never stops on one bad file.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as _dt
import functools
import logging
import multiprocessing
import os
import stat
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from gen4sdk.compliance._audit_work import _failed, _summarise, _work
from gen4sdk.compliance._report import (
    CSV_COLUMNS,
    STATUSES,
    AuditEntry,
    AuditReport,
    render_html,
)
from gen4sdk.errors import InvalidRequestError
from gen4sdk.types import VerificationReport

logger = logging.getLogger(__name__)

# the report's names stay importable from here, where the audit's users have found them
__all__ = [
    "CSV_COLUMNS",
    "STATUSES",
    "AuditEntry",
    "AuditReport",
    "audit_directory",
    "find_videos",
    "render_html",
]

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".3gp", ".mpg", ".mpeg", ".ts"}
)


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


# ------------------------------------------------------------------------------------------------ pool


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
    profiles: Sequence[str] = (),
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
                    fut = pool.submit(_work, str(files[i]), trust_anchors, store, thumbnails, profiles)
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
                    data, thumb, seconds, checks = fut.result()
                    entry = _summarise(VerificationReport.model_validate(data), thumb, seconds, checks)
                except BrokenProcessPool:
                    broken = True
                    if not alone:
                        suspects.append(i)
                        continue
                    entry = _failed(
                        files[i], "the verifier crashed on this file", time.monotonic() - start, profiles
                    )
                except Exception as exc:  # noqa: BLE001 - a verifier bug on one file is that file's entry
                    entry = _failed(
                        files[i],
                        f"verification failed: {type(exc).__name__}: {exc}",
                        time.monotonic() - start,
                        profiles,
                    )
                yield i, entry
                progress.update(1)
            now = time.monotonic()
            overdue = [f for f, (_, start, _) in in_flight.items() if now - start >= timeout]
            for fut in overdue:
                i, start, _ = in_flight.pop(fut)
                yield (
                    i,
                    _failed(files[i], f"verification timed out after {timeout:g} s", now - start, profiles),
                )
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
    profiles: Sequence[str] = (),
    resume: str | os.PathLike[str] | None = None,
    ray_address: str | None = None,
) -> AuditReport:
    """Verify every video under ``root`` with ``gen4sdk.verify`` in ``workers`` processes.

    ``trust_anchors`` and ``store`` are passed to ``verify`` as given (a Store is reopened by path in each worker).
    A file taking longer than ``timeout`` seconds, or crashing its worker, gets an ``unreadable`` entry with the
    reason. Entries come back in path order; ``counts`` has every status, zeros included. ``profiles``:
    labelling-law profiles each file is also checked against (``check_compliance``); each entry gets a verdict
    per profile and ``compliance_counts`` counts them.

    ``resume``: a previous JSON report of the same directory, trust anchors, store and profiles; a file whose entry
    is there and whose size and modification time are unchanged keeps that entry (without a thumbnail) and is not
    verified again; ``unreadable`` entries are retried. Any other report raises ``InvalidRequestError``.

    ``ray_address``: run the per-file work as Ray tasks instead of local processes (``"auto"``, ``"ray://host:10001"``
    or ``"local"`` for a Ray started in this process; needs ``gen4sdk[ray]``), at most ``workers`` at a time.
    """
    from tqdm import tqdm

    from gen4sdk.compliance._audit_resume import fingerprint, load_previous, reuse
    from gen4sdk.compliance._profiles import resolve_profiles

    chosen = resolve_profiles(profiles)
    base = Path(root)
    if not base.exists():
        raise InvalidRequestError(f"{base} does not exist", field="root")
    if workers < 1:
        raise InvalidRequestError("workers must be at least 1", field="workers")
    if timeout <= 0:
        raise InvalidRequestError("timeout must be positive", field="timeout")
    runner: Any = _run
    if ray_address is not None:
        from gen4sdk._extras import require

        require("gen4sdk audit on Ray", ("ray",), extra="ray")  # before a long walk of the directory
        from gen4sdk.compliance._audit_ray import run_on_ray

        runner = functools.partial(run_on_ray, address=ray_address)
    store_arg: Any = str(store) if isinstance(store, os.PathLike) else store  # a Store pickles as its path
    if isinstance(trust_anchors, os.PathLike):
        trust_anchors = str(trust_anchors)
    anchors_name = trust_anchors if isinstance(trust_anchors, str) and len(trust_anchors) < 4096 else None
    store_name = str(getattr(store, "path", store)) if store is not None else None
    previous: dict[str, AuditEntry] = {}
    if resume is not None:
        if trust_anchors is not None and anchors_name is None:
            raise InvalidRequestError(
                "resuming needs the trust anchors as a file path, which the report records", field="resume"
            )
        previous = load_previous(
            resume, root=base, trust_anchors=anchors_name, store=store_name, profiles=chosen
        )
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    files = find_videos(base)
    # stat'ed before verifying: a file that changes while it is verified is verified again on the next resume
    stats = [fingerprint(f) for f in files]
    entries: list[AuditEntry | None] = [reuse(previous, f, base, st) for f, st in zip(files, stats)]
    resumed = sum(e is not None for e in entries)
    todo = [i for i, e in enumerate(entries) if e is None]
    if resumed:
        logger.info("resuming: %d of %d files unchanged since %s", resumed, len(files), resume)
    with tqdm(
        total=len(files), initial=resumed, disable=not progress, unit="clip", desc="audit", leave=False
    ) as bar:
        if todo:
            for j, entry in runner(
                [files[i] for i in todo],
                trust_anchors=trust_anchors,
                store=store_arg,
                workers=min(workers, len(todo)),
                timeout=timeout,
                thumbnails=thumbnails,
                progress=bar,
                profiles=chosen,
            ):
                st = stats[todo[j]]
                entries[todo[j]] = entry.model_copy(
                    update={"size": st[0], "mtime_ns": st[1]} if st is not None else {}
                )
        # tqdm draws at most every 0.1 s: the last file's update may not have been drawn, and the bar is cleared
        # on exit; draw the finished state once so a watcher sees the audit reach 100%
        bar.refresh()
    done = [e for e in entries if e is not None]
    counts: dict[str, int] = {s: 0 for s in STATUSES}
    counts.update(Counter(e.status for e in done))
    compliance_counts: dict[str, dict[str, int]] = {
        p: {s: sum(1 for e in done if e.compliance.get(p) == s) for s in ("met", "missing", "not_checkable")}
        for p in chosen
    }
    return AuditReport(
        root=str(base),
        started_at=started.isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - t0, 3),
        workers=workers,
        trust_anchors=anchors_name,
        store=store_name,
        counts=counts,
        entries=done,
        profiles=list(chosen),
        compliance_counts=compliance_counts,
        resumed=resumed,
    )
