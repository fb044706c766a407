"""The batch audit's per-file work as Ray tasks, for an audit bigger than one machine (``gen4sdk[ray]``).

Same entries as the local process pool (``_audit._run``): each file is one task of one CPU, at most ``workers`` in
flight, each with its own clock from submission. A task past its time is cancelled (its worker process killed) and
the file gets an ``unreadable`` entry; a task whose worker dies is that file's ``unreadable`` entry. Unlike the
local pool, a dead worker takes no other file with it, so nothing is retried. The cluster's workers need the same
gen4sdk (and the files, at the same paths: a shared filesystem).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from gen4sdk._extras import require
from gen4sdk.compliance._audit_work import _failed, _summarise, _work
from gen4sdk.compliance._report import AuditEntry
from gen4sdk.types import VerificationReport

logger = logging.getLogger(__name__)

__all__ = ["run_on_ray"]


def _connect(address: str, workers: int) -> bool:
    """Join (or start) Ray; True when this call started it, so the audit shuts it down again."""
    require("gen4sdk audit on Ray", ("ray",), extra="ray")
    import ray

    if ray.is_initialized():  # an application (or a test) that set Ray up itself keeps its own settings
        return False
    if address == "local":
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    return True


def run_on_ray(
    files: Sequence[Path],
    *,
    address: str,
    trust_anchors: Any,
    store: Any,
    workers: int,
    timeout: float,
    thumbnails: bool,
    progress: Any,
    profiles: Sequence[str] = (),
    work: Callable[..., Any] | None = None,
) -> Iterator[tuple[int, AuditEntry]]:
    """Yield (index, entry) as files finish, like ``_audit._run``. ``work`` replaces the per-file function
    (tests give it a file that hangs or kills its worker)."""
    started_ray = _connect(address, workers)
    import ray
    from ray.exceptions import (
        GetTimeoutError,
        NodeDiedError,
        RayTaskError,
        TaskCancelledError,
        WorkerCrashedError,
    )

    # max_retries=0: a file that kills its worker would kill the retry too; its entry says so instead
    task = ray.remote(num_cpus=1, max_retries=0)(work or _work)
    queue = list(range(len(files)))
    in_flight: dict[Any, tuple[int, float]] = {}
    try:
        while queue or in_flight:
            while len(in_flight) < workers and queue:
                i = queue.pop(0)
                ref = task.remote(str(files[i]), trust_anchors, store, thumbnails, profiles)
                in_flight[ref] = (i, time.monotonic())
            next_deadline = min(start + timeout for _, start in in_flight.values())
            ready, _ = ray.wait(
                list(in_flight), num_returns=1, timeout=max(0.0, next_deadline - time.monotonic())
            )
            for ref in ready:
                i, start = in_flight.pop(ref)
                try:
                    data, thumb, seconds, checks = ray.get(ref)
                    entry = _summarise(VerificationReport.model_validate(data), thumb, seconds, checks)
                except (WorkerCrashedError, NodeDiedError):
                    entry = _failed(
                        files[i], "the verifier crashed on this file", time.monotonic() - start, profiles
                    )
                except RayTaskError as exc:
                    cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                    entry = _failed(
                        files[i],
                        f"verification failed: {type(cause).__name__}: {cause}",
                        time.monotonic() - start,
                        profiles,
                    )
                yield i, entry
                progress.update(1)
            now = time.monotonic()
            for ref in [r for r, (_, start) in in_flight.items() if now - start >= timeout]:
                i, start = in_flight.pop(ref)
                ray.cancel(ref, force=True)  # force: a hung native decoder ignores a polite cancel
                yield (
                    i,
                    _failed(files[i], f"verification timed out after {timeout:g} s", now - start, profiles),
                )
                progress.update(1)
    finally:
        for ref in in_flight:  # the caller stopped early (an exception, Ctrl-C): leave nothing running
            try:
                ray.cancel(ref, force=True)
            except (GetTimeoutError, TaskCancelledError, ValueError) as exc:
                logger.debug("cancelling a task: %s", exc)
        if started_ray:
            ray.shutdown()
