"""The C2PA Soft Binding Resolution API over the manifest store, for this SDK's watermark and fingerprint.

Shapes follow the published OpenAPI document (C2PA Soft Binding Resolution API 1.1.0): ``/matches/byBinding``
(GET and POST), ``/matches/byContent``, ``/manifests/{manifestId}``, ``/services/supportedAlgorithms``. These routes
are read-only and only ever serve manifest ids and the signed manifest stores, which carry prompt *commitments*.
A manifest signed with ``disclose_prompts=True`` carries the prompt itself; such a manifest is withheld (403)
unless the app is created with ``serve_disclosed_prompts=True``, so no prompt plaintext leaves by default. The
audit log is not reachable through them.
"""

# No "from __future__ import annotations": FastAPI resolves the route signatures, which use locally imported types.

import asyncio
import base64
import binascii
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from gen4sdk import fingerprint as fp
from gen4sdk.compliance._resolve import SoftBindingMatch, SoftBindingQueryResult, _Model
from gen4sdk.errors import InvalidRequestError, StoreError
from gen4sdk.server._queue import ClientLeft, DetectionQueue, QueueFull, watch_disconnect
from gen4sdk.store import Store

logger = logging.getLogger(__name__)

__all__ = ["SoftBindingAlgList", "SoftBindingQuery", "add_resolution_routes"]

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


def add_resolution_routes(
    app: Any,
    *,
    store: Store,
    detector: Callable[[Path, int], tuple[bytes, float] | None],
    queue: DetectionQueue[Any],
    max_upload_bytes: int,
    max_frames: int,
    serve_disclosed_prompts: bool,
) -> None:
    """Add the resolution API's routes to ``app`` (see :func:`gen4sdk.server.create_app`)."""
    from fastapi import HTTPException, Query, Request
    from fastapi.responses import Response

    the_store = store
    try:
        algorithm = _watermark_algorithm()
    except Exception as exc:  # noqa: BLE001 - the lookup endpoints still work without the codec
        logger.warning("watermark codec unavailable (%s): byContent disabled", exc)
        algorithm = "com.gen4sdk.wm.v2"

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
