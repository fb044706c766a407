"""The one FastAPI app of ``gen4sdk serve``: the C2PA soft-binding resolution API (``_resolution.py``), the public
detection page at ``/`` (``_page.py``) and, when the app is given a generation service, the job API under
``/v1/generations`` (``_generations.py``); one rate limit and one upload cap in front of them all.
"""

# No "from __future__ import annotations": FastAPI resolves the route signatures, which use locally imported types.

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gen4sdk import fingerprint as fp
from gen4sdk.server._jobs import GenerationService
from gen4sdk.server._queue import DetectionQueue
from gen4sdk.server._resolution import _detect_payload, add_resolution_routes
from gen4sdk.store import Store

logger = logging.getLogger(__name__)

__all__ = ["create_app"]

API_TITLE = "C2PA Soft Binding Resolution API"
JOBS_TITLE = "gen4sdk generation and soft-binding resolution API"
API_VERSION = "1.1.0"
DEFAULT_MAX_UPLOAD = 64 * 1024 * 1024


class _RateLimiter:
    """A sliding-window request counter per client address (enough for one process; use a proxy for more)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> float | None:
        """None when allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return self.window - (now - hits[0])
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients so the table stays small
                for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= self.window]:
                    del self._hits[key]
            return None


def create_app(
    store: Store | str | os.PathLike[str],
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
    rate_limit: int = 60,
    rate_window: float = 60.0,
    max_frames: int = 96,
    detect: Callable[[Path, int], tuple[bytes, float] | None] | None = None,
    serve_disclosed_prompts: bool = False,
    page: bool = True,
    trust_anchors: str | os.PathLike[str] | None = None,
    max_pending_uploads: int = 8,
    generations: GenerationService | None = None,
) -> Any:
    """A FastAPI app serving the Soft Binding Resolution API from ``store`` (a Store, a database path or a
    ``postgresql://`` URL; opened read-only), and at ``/`` the public
    detection page (``page=False`` leaves it out), which trusts ``trust_anchors`` (a PEM file) to name who made a clip.

    ``max_upload_bytes``: larger requests get 413. ``rate_limit`` requests per ``rate_window`` seconds per client
    address, then 429 with Retry-After. ``detect`` replaces the watermark detector (for other soft bindings).
    Uploads are analysed one at a time; ``max_pending_uploads`` may wait (more get 503 with Retry-After), an upload
    whose client disconnects while waiting is dropped, and the other endpoints answer meanwhile.
    ``generations``: a :class:`~gen4sdk.server.GenerationService` over the same store adds the job API under
    ``/v1/generations`` (authenticated by API key, rate-limited per key rather than per address); its tasks run on
    :class:`~gen4sdk.server.GenerationWorker` s.
    Run it with ``uvicorn.run(create_app(store), host="127.0.0.1", port=8000)``.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    if generations is not None:
        store = generations.store  # one store: the queue, the audit log and the manifests
    elif not isinstance(store, Store):
        store = Store(store, read_only=True)
    the_store = store
    detector = detect or _detect_payload
    limiter = _RateLimiter(rate_limit, rate_window)
    # Watermark detection is CPU heavy: one upload at a time per process, waiting uploads holding no thread.
    queue: DetectionQueue[Any] = DetectionQueue(max_pending_uploads)  # byContent and the page share it

    description = (
        "C2PA Soft Binding Resolution API for gen4sdk's video watermark: find the C2PA manifest store of a clip "
        "whose embedded credentials were stripped. Read-only."
    )
    if generations is not None:
        description += (
            " Beside it, under /v1/generations, the generation job API: queue a generation behind the policy "
            "filter, follow its task, fetch the watermarked clip with its signed Content Credentials."
        )
    app = FastAPI(
        title=API_TITLE if generations is None else JOBS_TITLE,
        version=API_VERSION,
        description=description,
        license_info={
            "name": "Creative Commons Attribution 4.0 International",
            "url": "https://creativecommons.org/licenses/by/4.0/",
        },
    )
    app.state.detection_queue = queue

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        client = request.client.host if request.client else "unknown"
        # the job API's limits are per API key (its tasks a minute), and polling a task must not exhaust them
        wait = None if request.url.path.startswith("/v1/") else limiter.check(client)
        if wait is not None:
            return JSONResponse(
                {"detail": "rate limit exceeded"},
                status_code=429,
                headers={"Retry-After": str(max(1, int(wait) + 1))},
            )
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > max_upload_bytes
            except ValueError:
                return JSONResponse({"detail": "invalid Content-Length"}, status_code=400)
            if too_big:
                if page and request.url.path == "/check":
                    from fastapi.responses import HTMLResponse

                    from gen4sdk.server._page import error_page

                    limit = f"{max_upload_bytes // (1024 * 1024)} MB"
                    return HTMLResponse(
                        error_page(f"The file is larger than {limit}.", max_upload_bytes), 413
                    )
                message = f"request body larger than {max_upload_bytes} bytes"
                if request.url.path.startswith("/v1/"):  # the job API's error body
                    return JSONResponse({"error": {"code": "PAYLOAD_TOO_LARGE", "message": message}}, 413)
                return JSONResponse({"detail": message}, status_code=413)
        return await call_next(request)

    add_resolution_routes(
        app,
        store=the_store,
        detector=detector,
        queue=queue,
        max_upload_bytes=max_upload_bytes,
        max_frames=max_frames,
        serve_disclosed_prompts=serve_disclosed_prompts,
    )
    if generations is not None:
        from gen4sdk.server._generations import add_generation_routes

        add_generation_routes(app, generations)
    if page:
        from gen4sdk.server._page import add_detection_page

        add_detection_page(
            app,
            lookup=_OpenStore(the_store),
            trust_anchors=str(trust_anchors) if trust_anchors is not None else None,
            max_upload_bytes=max_upload_bytes,
            queue=queue,
        )
    return app


class _OpenStore:
    """The app's open store as the ManifestLookup the page's verification recovers stripped credentials from."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def source(self) -> str:
        return "this service's manifest store"

    def manifest_store_for(self, payload: bytes) -> bytes | None:
        return self._store.manifest_store_for(payload)

    def manifest_store_for_content(
        self, query: dict[str, fp.Fingerprint]
    ) -> tuple[bytes, fp.FingerprintMatch] | None:
        return self._store.manifest_store_for_content(query)
