"""The resolution service's detection queue: watermark detection off the event loop, one job at a time, with a
bound on waiting jobs and no work done for a client that has left.

Detection costs seconds of CPU per upload. Run in the server's shared thread pool behind a lock, as it once was,
every waiting upload held one of that pool's threads, so 45 uploads from one address made a cheap request from
another wait 44 s. Here waiting jobs hold no thread at all: the handler awaits a future on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

__all__ = ["ClientLeft", "DetectionQueue", "QueueFull", "watch_disconnect"]

T = TypeVar("T")


class QueueFull(Exception):
    """As many jobs are waiting as the queue holds: answer 503 and let the client retry."""


class ClientLeft(Exception):
    """The client disconnected before its job finished; the job was dropped (or its result is discarded)."""


class DetectionQueue(Generic[T]):
    def __init__(self, max_pending: int, workers: int = 1) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self._executor = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gen4sdk-detect")
        self._lock = threading.Lock()
        self.pending = 0  # jobs queued or running
        self.dropped = 0  # jobs never run because their client left

    async def run(self, job: Callable[[], T], client_left: asyncio.Event) -> T:
        """``job``'s result, run in the queue's worker; QueueFull at once when the queue is full, ClientLeft as
        soon as ``client_left`` is set (a job that has not started then never does)."""
        with self._lock:
            if self.pending >= self.max_pending:
                raise QueueFull(f"{self.pending} uploads are being analysed or waiting")
            self.pending += 1
        left = threading.Event()

        def guarded() -> T:
            if left.is_set():
                raise ClientLeft("dropped before it started")
            return job()

        waiter = asyncio.ensure_future(client_left.wait())
        try:
            future = asyncio.wrap_future(self._executor.submit(guarded))
            either: set[asyncio.Future[Any]] = {future, waiter}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if future.done():
                return future.result()
            left.set()
            if future.cancel():
                with self._lock:
                    self.dropped += 1
            logger.info("detection dropped: the client left")
            raise ClientLeft("the client disconnected")
        finally:
            waiter.cancel()
            with self._lock:
                self.pending -= 1


async def watch_disconnect(
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]], left: asyncio.Event
) -> None:
    """Set ``left`` when the ASGI ``receive`` says the client disconnected (run as a task once the body is read).

    Starlette's ``Request.is_disconnected`` cannot see a disconnect behind an HTTP middleware (it polls under a
    cancelled scope), so the service listens itself.
    """
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            left.set()
            return
