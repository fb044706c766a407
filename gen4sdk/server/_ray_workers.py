"""Generation workers as Ray actors, for a pool of GPUs across hosts (``gen4sdk[ray]``).

Each actor holds one :class:`GenerationWorker` (one Client, one model) and asks Ray for ``num_gpus`` (1 for a GPU
host); the actors share nothing but the store, whose queue they claim from, so Ray only places and supervises them.
An actor that dies mid-generation stops sending heartbeats: its task is failed with ``WORKER.LOST`` once the lease
runs out, and the other actors go on taking tasks. The cluster's hosts need the same gen4sdk, the store's URL
(PostgreSQL, or an SQLite file on one host) and the output directory at the same path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen4sdk._extras import require
from gen4sdk.server._jobs import DEFAULT_LEASE
from gen4sdk.server._worker import GenerationWorker

if TYPE_CHECKING:
    from gen4sdk.client import Client

logger = logging.getLogger(__name__)

__all__ = ["RayWorkers", "start_ray_workers"]


class _WorkerActor:
    """The body of one Ray actor: a worker started in the actor's process, with a Client made there."""

    def __init__(
        self, make_client: Callable[[], Client], output_dir: str, overlap: bool, lease: float, poll: float
    ) -> None:
        self.worker = GenerationWorker(
            make_client(), output_dir, overlap=overlap, lease=lease, poll_interval=poll
        ).start()

    def name(self) -> str:
        return self.worker.name

    def completed(self) -> int:
        return self.worker.completed

    def stop(self, cancel: bool) -> int:
        self.worker.stop(cancel=cancel)
        self.worker.client.close()
        return self.worker.completed


class RayWorkers:
    """The running actors of :func:`start_ray_workers`."""

    def __init__(self, actors: list[Any], names: list[str], started_ray: bool) -> None:
        self.actors = actors
        self.names = names
        self._started_ray = started_ray

    def completed(self) -> int:
        """Tasks settled by the live actors."""
        import ray

        return sum(ray.get([a.completed.remote() for a in self.actors]))

    def stop(self, *, cancel: bool = False, timeout: float = 600.0) -> None:
        """Stop every actor after its running task (``cancel=True``: cancel those), then end them."""
        import ray

        pending = [a.stop.remote(cancel) for a in self.actors]
        try:
            ray.get(pending, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - a dead actor has nothing left to stop
            logger.warning("a Ray generation worker did not stop cleanly: %s", exc)
        for actor in self.actors:
            ray.kill(actor)
        if self._started_ray:
            ray.shutdown()


def start_ray_workers(
    make_client: Callable[[], Client],
    output_dir: str | os.PathLike[str],
    *,
    count: int = 1,
    address: str = "local",
    num_gpus: float = 0,
    num_cpus: float = 1,
    overlap: bool = True,
    lease: float = DEFAULT_LEASE,
    poll_interval: float = 0.25,
) -> RayWorkers:
    """Start ``count`` generation workers as Ray actors (``address``: a cluster's address, or ``"local"`` for a
    Ray started here). ``make_client`` runs in each actor and returns its Client: a picklable function (a
    module-level function or a ``functools.partial`` of one) that builds the model, signer and store there.
    """
    require("generation workers on Ray", ("ray",), extra="ray")
    import ray

    started = False
    if not ray.is_initialized():
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
        started = True
    actor: Any = ray.remote(num_gpus=num_gpus, num_cpus=num_cpus, max_restarts=0)(_WorkerActor)
    target = str(Path(output_dir).resolve())
    actors: list[Any] = [
        actor.remote(make_client, target, overlap, lease, poll_interval) for _ in range(count)
    ]
    names = ray.get([a.name.remote() for a in actors])  # waits until every model has loaded
    logger.info("started %d generation workers on Ray: %s", count, ", ".join(names))
    return RayWorkers(actors, names, started)
