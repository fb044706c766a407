"""The C2PA Soft Binding Resolution API over the manifest store, for this SDK's watermark.

Shapes follow the published OpenAPI document (C2PA Soft Binding Resolution API 1.1.0): ``/matches/byBinding``
(GET and POST), ``/matches/byContent``, ``/manifests/{manifestId}``, ``/services/supportedAlgorithms``. The service
is read-only and only ever serves manifest ids and the signed manifest stores, which carry prompt *commitments*.
A manifest signed with ``disclose_prompts=True`` carries the prompt itself; such a manifest is withheld (403)
unless the app is created with ``serve_disclosed_prompts=True``, so no prompt plaintext leaves by default. The
audit log is not reachable through it. The same app serves the public detection page at ``/`` (``_page.py``).
"""

# No "from __future__ import annotations": FastAPI resolves the route signatures, which use locally imported types.

import asyncio
import base64
import binascii
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from gen4sdk import fingerprint as fp
from gen4sdk.compliance._queue import ClientLeft, DetectionQueue, QueueFull, watch_disconnect
from gen4sdk.compliance._resolve import SoftBindingMatch, SoftBindingQueryResult, _Model, resolve_by_binding
from gen4sdk.errors import InvalidRequestError, StoreError
from gen4sdk.store import Store

logger = logging.getLogger(__name__)

# resolve_by_binding, the client side, lives in _resolve.py (which the verifier's recovery imports without the app)
__all__ = [
    "SoftBindingAlgList",
    "SoftBindingQuery",
    "SoftBindingQueryResult",
    "create_app",
    "resolve_by_binding",
]

API_TITLE = "C2PA Soft Binding Resolution API"
API_VERSION = "1.1.0"
DEFAULT_MAX_UPLOAD = 64 * 1024 * 1024
_CONTENT_TYPES = ("video/", "image/", "application/octet-stream")
_MAX_RESULTS_CAP = 100


class SoftBindingAlg(_Model):
    alg: str


class SoftBindingAlgList(_Model):
    watermarks: list[SoftBindingAlg] = Field(default_factory=list)
    fingerprints: list[SoftBindingAlg] = Field(default_factory=list)


class SoftBindingQuery(_Model):
    alg: str = Field(description="soft binding algorithm name")
    value: str = Field(description="base64 of the soft binding value")


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


def _watermark_algorithm() -> str:
    from watermark import Watermarker

    return str(Watermarker.public().algorithm)


def _detect_payload(path: Path, max_frames: int) -> tuple[bytes, float] | None:
    """Run the public watermark detector on an uploaded video or image; None when nothing is found."""
    from watermark import Watermarker

    wm = Watermarker.public()
    from gen4sdk import media

    try:
        info = media.probe(path)
    except Exception:  # noqa: BLE001 - not a video: try it as a still image
        info = None
    if info is not None:
        # bounded by pixels before anything is decoded: MediaError (415) for frames over the cap
        n = media.analysis_frames(info, max_frames)
        det = wm.detect_iter(
            media.iter_frames(path, max_frames=n, max_pixels=media.MAX_FRAME_PIXELS), max_frames=n
        )
    else:
        det = wm.detect_iter(iter([media.load_image(path)]), max_frames=1)
    if not det.found or det.payload is None:
        return None
    return bytes(det.payload), float(det.confidence)


def _content_views(path: Path) -> dict[str, fp.Fingerprint] | None:
    """An uploaded video's fingerprint views (None for a still image: one frame is too little to claim a match)."""
    from gen4sdk import media

    try:
        info = media.probe(path)
    except Exception:  # noqa: BLE001 - not a video
        return None
    views = fp.query_views(
        media.iter_frames(path, max_pixels=media.MAX_FRAME_PIXELS), info.fps or 24.0, max_seconds=60.0
    )
    return views if views["as embedded"].usable else None


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
) -> Any:
    """A FastAPI app serving the Soft Binding Resolution API from ``store`` (a Store, a database path or a
    ``postgresql://`` URL; opened read-only), and at ``/`` the public
    detection page (``page=False`` leaves it out), which trusts ``trust_anchors`` (a PEM file) to name who made a clip.

    ``max_upload_bytes``: larger requests get 413. ``rate_limit`` requests per ``rate_window`` seconds per client
    address, then 429 with Retry-After. ``detect`` replaces the watermark detector (for other soft bindings).
    Uploads are analysed one at a time; ``max_pending_uploads`` may wait (more get 503 with Retry-After), an upload
    whose client disconnects while waiting is dropped, and the other endpoints answer meanwhile.
    Run it with ``uvicorn.run(create_app(store), host="127.0.0.1", port=8000)``.
    """
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.responses import JSONResponse, Response

    if not isinstance(store, Store):
        store = Store(store, read_only=True)
    the_store = store
    detector = detect or _detect_payload
    limiter = _RateLimiter(rate_limit, rate_window)
    # Watermark detection is CPU heavy: one upload at a time per process, waiting uploads holding no thread.
    queue: DetectionQueue[Any] = DetectionQueue(max_pending_uploads)  # byContent and the page share it

    try:
        algorithm = _watermark_algorithm()
    except Exception as exc:  # noqa: BLE001 - the lookup endpoints still work without the codec
        logger.warning("watermark codec unavailable (%s): byContent disabled", exc)
        algorithm = "com.gen4sdk.wm.v2"

    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        description=(
            "C2PA Soft Binding Resolution API for gen4sdk's video watermark: find the C2PA manifest store of a clip "
            "whose embedded credentials were stripped. Read-only."
        ),
        license_info={
            "name": "Creative Commons Attribution 4.0 International",
            "url": "https://creativecommons.org/licenses/by/4.0/",
        },
    )
    app.state.detection_queue = queue

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        client = request.client.host if request.client else "unknown"
        wait = limiter.check(client)
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

                    from gen4sdk.compliance._page import error_page

                    limit = f"{max_upload_bytes // (1024 * 1024)} MB"
                    return HTMLResponse(
                        error_page(f"The file is larger than {limit}.", max_upload_bytes), 413
                    )
                return JSONResponse(
                    {"detail": f"request body larger than {max_upload_bytes} bytes"}, status_code=413
                )
        return await call_next(request)

    def lookup(alg: str, value: str, max_results: int) -> SoftBindingQueryResult:
        if alg not in (algorithm, fp.ALGORITHM):
            raise HTTPException(
                400, f"unsupported soft binding algorithm {alg!r}; supported: {algorithm}, {fp.ALGORITHM}"
            )
        try:
            payload = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(400, "value is not base64") from None
        if not payload:
            raise HTTPException(400, "value is empty")
        if alg == fp.ALGORITHM:
            try:
                query = fp.Fingerprint.from_bytes(payload)
            except InvalidRequestError as exc:
                raise HTTPException(400, f"value: {exc}") from None
            return content_matches(query, max_results)
        try:
            found = the_store.find_manifests(payload, limit=min(max_results, _MAX_RESULTS_CAP))
        except StoreError as exc:
            logger.error("store lookup failed: %s", exc)
            raise HTTPException(500, "service failure") from None
        return SoftBindingQueryResult(
            matches=[SoftBindingMatch(manifestId=m.manifest_id, similarityScore=100) for m in found]
        )

    def content_matches(
        query: dict[str, fp.Fingerprint] | fp.Fingerprint, max_results: int
    ) -> SoftBindingQueryResult:
        try:
            found = the_store.find_by_content(query, limit=min(max_results, _MAX_RESULTS_CAP))
        except StoreError as exc:
            logger.error("store lookup by content failed: %s", exc)
            raise HTTPException(500, "service failure") from None
        return SoftBindingQueryResult(
            matches=[
                SoftBindingMatch(manifestId=m.manifest_id, similarityScore=how.similarity) for m, how in found
            ]
        )

    @app.get(
        "/matches/byBinding",
        response_model=SoftBindingQueryResult,
        response_model_exclude_none=True,
        operation_id="queryByBinding",
        tags=["query"],
        summary="Returns C2PA Manifest identifiers corresponding to a soft binding.",
        responses={400: {"description": "Invalid query value"}, 500: {"description": "Service failure"}},
    )
    def query_by_binding(
        alg: str = Query(..., description="soft binding algorithm name"),
        value: str = Query(..., description="base64-encoded soft binding value"),
        maxResults: int = Query(10, ge=1, description="maximum number of manifest identifiers to return"),
    ) -> SoftBindingQueryResult:
        return lookup(alg, value, maxResults)

    @app.post(
        "/matches/byBinding",
        response_model=SoftBindingQueryResult,
        response_model_exclude_none=True,
        operation_id="queryByLargeBinding",
        tags=["query"],
        summary="Returns C2PA Manifest identifiers corresponding to a large soft binding value.",
        responses={400: {"description": "Invalid request body"}, 500: {"description": "Service failure"}},
    )
    def query_by_large_binding(
        query: SoftBindingQuery,
        maxResults: int = Query(10, ge=1),
    ) -> SoftBindingQueryResult:
        return lookup(query.alg, query.value, maxResults)

    @app.post(
        "/matches/byContent",
        response_model=SoftBindingQueryResult,
        response_model_exclude_none=True,
        operation_id="uploadFile",
        tags=["query"],
        summary="Finds C2PA Manifest identifiers using a digital asset.",
        responses={
            400: {"description": "Invalid request body"},
            413: {"description": "Asset too large"},
            415: {"description": "Invalid asset type"},
            500: {"description": "Service failure"},
        },
        openapi_extra={
            "requestBody": {
                "description": "Asset to match to manifests.",
                "required": True,
                "content": {
                    "video/*": {"schema": {"type": "string", "format": "binary"}},
                    "image/*": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def upload_file(
        request: Request,
        alg: str | None = Query(None),
        maxResults: int = Query(10, ge=1),
        hintAlg: str | None = Query(None),
        hintValue: str | None = Query(None),
    ) -> Any:  # a SoftBindingQueryResult, or a bare 499 once the client has gone
        if alg is not None and alg not in (algorithm, fp.ALGORITHM):
            raise HTTPException(
                400, f"unsupported soft binding algorithm {alg!r}; supported: {algorithm}, {fp.ALGORITHM}"
            )
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if not ctype.startswith(_CONTENT_TYPES):
            raise HTTPException(415, f"unsupported asset type {ctype or '(none)'}; send video/* or image/*")
        suffix = {
            "video/quicktime": ".mov",
            "video/webm": ".webm",
            "image/png": ".png",
            "image/jpeg": ".jpg",
        }.get(ctype, ".mp4")
        fd, name = tempfile.mkstemp(prefix="gen4sdk-upload-", suffix=suffix)
        path = Path(name)
        try:
            size = 0
            with os.fdopen(fd, "wb") as fh:
                # Content-Length can be absent (chunked upload): count what actually arrives.
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_upload_bytes:
                        raise HTTPException(413, f"asset larger than {max_upload_bytes} bytes")
                    fh.write(chunk)
            if size == 0:
                raise HTTPException(400, "empty request body")
            left = asyncio.Event()
            watcher = asyncio.ensure_future(watch_disconnect(request.receive, left))

            # the watermark first (an exact binding); when none is found, what the clip looks like
            def analyse() -> tuple[bytes, float] | dict[str, fp.Fingerprint] | None:
                mark = detector(path, max_frames) if alg in (None, algorithm) else None
                return mark if mark is not None or alg == algorithm else _content_views(path)

            try:
                found = await queue.run(analyse, left)
            except QueueFull:
                raise HTTPException(
                    503, "too many uploads are being analysed; retry later", headers={"Retry-After": "5"}
                ) from None
            except ClientLeft:
                return Response(status_code=499)  # nobody reads it: the client has gone
            except Exception as exc:  # noqa: BLE001 - an undecodable upload is the client's problem
                logger.info("byContent: cannot analyse upload: %s", exc)
                raise HTTPException(415, "the asset could not be decoded as video or image") from None
            finally:
                watcher.cancel()
        finally:
            path.unlink(missing_ok=True)
        if found is None:
            return SoftBindingQueryResult(matches=[])
        if isinstance(found, dict):
            return content_matches(found, maxResults)
        payload, confidence = found
        matches = the_store.find_manifests(payload, limit=min(maxResults, _MAX_RESULTS_CAP))
        score = max(0, min(100, round(confidence * 100)))
        return SoftBindingQueryResult(
            matches=[SoftBindingMatch(manifestId=m.manifest_id, similarityScore=score) for m in matches]
        )

    @app.get(
        "/manifests/{manifestId}",
        operation_id="getManifestById",
        tags=["fetch"],
        summary="Returns a full C2PA Manifest Store.",
        response_class=Response,
        responses={
            200: {"description": "Successful operation", "content": {"application/c2pa": {}}},
            404: {"description": "C2PA Manifest Id not found"},
        },
    )
    def get_manifest(
        manifestId: str,
        returnActiveManifest: bool = Query(
            False, description="only the entire manifest store is kept; true is answered with the store too"
        ),
    ) -> Response:
        try:
            found = the_store.get_manifest(manifestId)
        except StoreError as exc:
            logger.error("store lookup failed: %s", exc)
            raise HTTPException(500, "service failure") from None
        if found is None:
            raise HTTPException(404, "C2PA Manifest Id not found")
        if not serve_disclosed_prompts and _carries_prompt(found.manifest_store):
            raise HTTPException(
                403, "this manifest discloses its prompt and the service does not serve prompts"
            )
        return Response(content=found.manifest_store, media_type="application/c2pa")

    @app.get(
        "/services/supportedAlgorithms",
        response_model=SoftBindingAlgList,
        operation_id="getSupportedBindings",
        tags=["service"],
        summary="Returns a list of the soft binding algorithms supported by the service.",
    )
    async def supported_algorithms() -> SoftBindingAlgList:  # async: answered on the loop, never queued
        return SoftBindingAlgList(
            watermarks=[SoftBindingAlg(alg=algorithm)], fingerprints=[SoftBindingAlg(alg=fp.ALGORITHM)]
        )

    if page:
        from gen4sdk.compliance._page import add_detection_page

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


def _carries_prompt(manifest_store: bytes) -> bool:
    """Whether a manifest in the store discloses a prompt: its gen4sdk lineage assertion has a ``prompt`` or
    ``negative_prompt`` field (signed with ``disclose_prompts=True``). Read from the manifest itself, whoever made
    it and however short the prompt; a manifest store that cannot be read is withheld too (fail closed)."""
    import io
    import json

    from gen4sdk.provenance._assertions import LINEAGE_LABEL

    try:
        import c2pa

        with c2pa.Reader("application/c2pa", io.BytesIO(manifest_store)) as reader:
            data = json.loads(reader.json())
        manifests = list((data.get("manifests") or {}).values())
    except Exception as exc:  # noqa: BLE001 - unreadable means unchecked, and unchecked is not served
        logger.warning("manifest store cannot be read to check for a disclosed prompt: %s", exc)
        return True
    for manifest in manifests:
        for assertion in manifest.get("assertions") or []:
            label = str(assertion.get("label", "")).split("__")[0]
            if label != LINEAGE_LABEL and not label.startswith(LINEAGE_LABEL + ".v"):
                continue
            fields = assertion.get("data") or {}
            if not isinstance(fields, dict) or fields.get("prompt") or fields.get("negative_prompt"):
                return True
    return False
