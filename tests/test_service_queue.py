"""The resolution service under load: a bounded detection queue, no work for clients that left, and cheap
endpoints that answer while uploads are analysed (issue 21, item 3)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx

from gen4sdk.compliance import Store
from gen4sdk.server import create_app


class _BlockingDetector:
    """Blocks every detection until released, so the test controls what is in flight."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls: list[bytes] = []

    def __call__(self, path: Path, max_frames: int) -> tuple[bytes, float] | None:
        self.calls.append(path.read_bytes())
        self.started.set()
        self.release.wait(60)
        return None


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "svc.db")
    store.close()
    return Store(store.path, read_only=True)


def test_uploads_beyond_the_queue_get_503_and_cheap_endpoints_still_answer(tmp_path: Path) -> None:
    detector = _BlockingDetector()
    app = create_app(_store(tmp_path), detect=detector, max_pending_uploads=2, rate_limit=1000)
    queue = app.state.detection_queue

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:

            def upload(body: bytes) -> Any:
                return client.post("/matches/byContent", content=body, headers={"content-type": "video/mp4"})

            first = asyncio.create_task(upload(b"first"))
            second = asyncio.create_task(upload(b"second"))
            await _until(lambda: queue.pending == 2 and detector.started.is_set())
            third = await upload(b"third")
            assert third.status_code == 503 and third.headers["retry-after"] == "5"
            # Detection is blocked, and the cheap endpoints answer regardless.
            assert (await client.get("/services/supportedAlgorithms")).status_code == 200
            assert (await client.get("/manifests/urn:c2pa:none")).status_code == 404
            detector.release.set()
            assert [(await t).status_code for t in (first, second)] == [200, 200]

    asyncio.run(scenario())
    assert detector.calls == [b"first", b"second"] and queue.pending == 0


def test_a_waiting_upload_whose_client_left_is_never_analysed(tmp_path: Path) -> None:
    detector = _BlockingDetector()
    app = create_app(_store(tmp_path), detect=detector, max_pending_uploads=4, rate_limit=1000)
    queue = app.state.detection_queue

    async def call(body: bytes, gone: asyncio.Event) -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/matches/byContent", "raw_path": b"/matches/byContent",
            "query_string": b"", "root_path": "", "client": ("198.51.100.9", 5000), "server": ("svc", 80),
            "headers": [(b"host", b"svc"), (b"content-type", b"video/mp4"),
                        (b"content-length", str(len(body)).encode())],
        }  # fmt: skip
        sent = False
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        return status[0]

    async def scenario() -> None:
        stays, leaves = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(call(b"first", stays))
        await _until(detector.started.is_set)
        second = asyncio.create_task(call(b"second", leaves))
        await _until(lambda: queue.pending == 2)
        leaves.set()  # the second client hangs up while its upload waits behind the first
        assert await second == 499
        detector.release.set()
        assert await first == 200

    asyncio.run(scenario())
    assert detector.calls == [b"first"] and queue.dropped == 1 and queue.pending == 0
