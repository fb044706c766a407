"""Resuming a batch audit from its previous JSON report: which entries still hold, and which files to verify again.

An entry is reused when the file's size and modification time (ns) are those recorded in it, the way make and
rsync decide a file is unchanged; reading every file for a hash would cost a good share of verifying it. Entries
with status ``unreadable`` are always retried: a timeout, a crash or a permission error is what a rerun may fix.
A previous report that cannot be trusted to describe the same audit (another root, other trust anchors, store or
profiles, another report version, a corrupt file) is an :class:`InvalidRequestError`, never a silent full rerun.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from gen4sdk.compliance._report import REPORT_VERSION, AuditEntry, AuditReport
from gen4sdk.errors import InvalidRequestError

__all__ = ["fingerprint", "load_previous", "reuse"]


def fingerprint(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of ``path``; None when it cannot be stat'ed (its entry is then never reused)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _key(path: str | Path, root: str | Path) -> str:
    # relative to the audited root, so `audit clips/` resumes `audit /abs/path/clips` and the reverse
    return Path(os.path.relpath(Path(path).resolve(), Path(root).resolve())).as_posix()


def load_previous(
    path: str | os.PathLike[str],
    *,
    root: Path,
    trust_anchors: str | None,
    store: str | None,
    profiles: Sequence[str],
) -> dict[str, AuditEntry]:
    """The previous report's entries by path relative to ``root``, after checking that it audited the same thing.

    ``trust_anchors`` and ``store`` are as the new report will record them.
    """
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequestError(
            f"cannot read the report to resume {source}: {exc}", field="resume"
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(
            f"the report to resume {source} is not JSON (corrupt or truncated): {exc}", field="resume"
        ) from exc
    if not isinstance(data, dict) or "entries" not in data or "root" not in data:
        raise InvalidRequestError(f"{source} is not a gen4sdk audit report", field="resume")
    version = data.get("version", 1)  # version 1 reports had no version field
    if version != REPORT_VERSION:
        raise InvalidRequestError(
            f"{source} is an audit report of version {version}, this gen4sdk resumes version {REPORT_VERSION} "
            "only; audit again without resuming",
            field="resume",
        )
    try:
        previous = AuditReport.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequestError(
            f"{source} is not a valid audit report: {exc.errors()[0]['msg']}", field="resume"
        ) from exc
    if Path(previous.root).resolve() != root.resolve():
        raise InvalidRequestError(
            f"{source} audited {previous.root}, not {root}; resume only the same directory", field="resume"
        )
    mismatched = [
        name
        for name, before, now in (
            ("trust anchors", previous.trust_anchors, trust_anchors),
            ("store", previous.store, store),
            ("profiles", sorted(previous.profiles), sorted(profiles)),
        )
        if before != now
    ]
    if mismatched:
        raise InvalidRequestError(
            f"{source} was audited with other {' and '.join(mismatched)}; its verdicts would not hold, audit "
            "again without resuming",
            field="resume",
        )
    return {_key(e.path, previous.root): e for e in previous.entries}


def reuse(
    previous: dict[str, AuditEntry], path: Path, root: Path, stat: tuple[int, int] | None
) -> AuditEntry | None:
    """The previous entry for ``path`` if the file is unchanged since, with its path as this audit names it."""
    entry = previous.get(_key(path, root))
    if entry is None or stat is None or entry.status == "unreadable":
        return None
    if (entry.size, entry.mtime_ns) != stat:
        return None
    update: dict[str, object] = {"path": str(path)}
    if entry.verification is not None:
        update["verification"] = entry.verification.model_copy(update={"path": str(path)})
    return entry.model_copy(update=update)
