"""The generation job API over real workers with the tiny model: a task from POST to the signed clip, refusals
before queueing, API keys, idempotency and rate limits, cancellation, the overlap of one task's encoding with the
next one's generation, a worker killed mid-generation, a database lost mid-request, the OpenAPI document, the CLI,
and workers on Ray."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from model_doubles import StaticNoise

import gen4sdk
from gen4sdk.cli import main
from gen4sdk.server import GenerationService, GenerationWorker, create_app
from gen4sdk.store import Store, TaskQueue

FAST = {"steps": 2, "num_frames": 17, "fps": 8}
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")


@pytest.fixture(scope="module")
def policy() -> gen4sdk.Policy:
    p = gen4sdk.Policy.default()
    p.warm_up()
    return p


class Service:
    """A store, the job API over it (TestClient) and a key; workers are started by each test."""

    def __init__(
        self, location: str, signer: Any, policy: gen4sdk.Policy, tmp: Path, lease: float = 30.0
    ) -> None:
        self.signer = signer
        self.policy = policy
        self.store = Store(location, signer=signer)
        self.out = tmp / "clips"
        self.lease = lease
        self.service = GenerationService(self.store, policy=policy, lease=lease)
        self.api = TestClient(create_app(self.store, generations=self.service))
        record, key = TaskQueue(self.store).create_api_key("storyboard-app", rate_limit=50)
        self.key_id = record.id
        self.headers = {"Authorization": f"Bearer {key}"}

    def client(self) -> gen4sdk.Client:
        return gen4sdk.Client(
            model="tiny", signer=self.signer, owner="Acme Studios", store=self.store, policy=self.policy
        )

    def worker(self, **kw: Any) -> GenerationWorker:
        return GenerationWorker(self.client(), self.out, lease=self.lease, **kw)

    def post(self, **body: Any) -> Any:
        return self.api.post("/v1/generations", json={**FAST, **body}, headers=self.headers)

    def get(self, task_id: str) -> dict[str, Any]:
        r = self.api.get(f"/v1/generations/{task_id}", headers=self.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait(
        self, task_id: str, until: Any = lambda t: t["status"] in FINISHED, timeout: float = 120
    ) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(task_id)
            if until(task):
                return task
            assert time.monotonic() < deadline, f"task {task_id} stuck: {task}"
            time.sleep(0.05)


@pytest.fixture
def svc(tmp_path: Path, signer: Any, policy: gen4sdk.Policy) -> Service:
    return Service(str(tmp_path / "store.db"), signer, policy, tmp_path, lease=12.0)


def _records(store: Store, request_id: str) -> list[str]:
    return [e.record.outcome for e in store.records(request_id=request_id)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_task_from_post_to_the_signed_clip(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    signer: Any,
    policy: gen4sdk.Policy,
    dev_keys: Any,
) -> None:
    location = (
        str(tmp_path / "store.db")
        if backend == "sqlite"
        else request.getfixturevalue("postgres_server").create_database()
    )
    s = Service(location, signer, policy, tmp_path)
    r = s.post(prompt="a lighthouse at dusk", user="alice", seed=7)
    assert r.status_code == 201
    task = r.json()
    assert task["status"] == "PENDING" and task["queue_position"] == 0 and task["progress"] == 0
    with s.worker():
        seen = []
        done = s.wait(task["id"], until=lambda t: seen.append(t["progress"]) or t["status"] in FINISHED)
    assert done["status"] == "SUCCEEDED", done
    assert seen == sorted(seen) and done["progress"] == 1.0 and "stage" not in done
    assert done["output"]["url"] == f"/v1/generations/{task['id']}/content"
    clip = s.api.get(done["output"]["url"], headers=s.headers)
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
    received = tmp_path / "received.mp4"
    received.write_bytes(clip.content)
    report = gen4sdk.verify(received, trust_anchors=dev_keys.root_cert)
    assert report.status == "trusted" and report.manifest_id == done["output"]["manifest_id"]
    assert report.watermark is not None and report.watermark.payload == done["output"]["watermark_payload"]
    # one request, one audit record, under the task's id; the caller is the partner app's user
    assert _records(s.store, task["id"]) == ["allowed"]
    assert s.store.find_record(task["id"]).record.caller == "alice"  # type: ignore[union-attr]
    assert s.api.get("/v1/generations", headers=s.headers).json()["data"][0]["id"] == task["id"]


def test_refused_inputs_are_answered_before_queueing_and_recorded(svc: Service) -> None:
    r = svc.post(prompt="a sexual video of a 12 year old child")
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "SAFETY.INPUT.TEXT" and "sexual_minors" in err["categories"]
    assert TaskQueue(svc.store).tasks() == []
    assert _records(svc.store, err["request_id"]) == ["refused"]


def test_keys_errors_and_limits(svc: Service) -> None:
    api, h = svc.api, svc.headers
    assert api.post("/v1/generations", json={"prompt": "a boat"}).json()["error"]["code"] == "UNAUTHORIZED"
    r = api.get("/v1/generations", headers={"Authorization": "Bearer g4k_x_y"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    task = svc.post(prompt="a boat on a lake").json()
    # another application neither sees nor cancels this one's tasks
    _, other = TaskQueue(svc.store).create_api_key("other app")
    assert (
        api.get(f"/v1/generations/{task['id']}", headers={"Authorization": f"Bearer {other}"}).status_code
        == 404
    )
    assert (
        api.delete(f"/v1/generations/{task['id']}", headers={"Authorization": f"Bearer {other}"}).status_code
        == 404
    )
    assert api.get("/v1/generations/nope", headers=h).json()["error"]["code"] == "NOT_FOUND"
    # malformed requests: a typed error naming the field, never a 500
    for body, field in [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "a boat", "steps": 0}, "steps"),
        ({"prompt": "a boat", "colour": "red"}, "colour"),
        ({"prompt": "a boat", "image": "http://example.com/a.png"}, "image"),
        ({"prompt": "a boat", "image": "data:image/png;base64,!!!"}, "image"),
        (
            {"prompt": "a boat", "image": "data:image/png;base64," + base64.b64encode(b"not a png").decode()},
            "image",
        ),
    ]:
        r = api.post("/v1/generations", json=body, headers=h)
        assert r.status_code == 400 and r.json()["error"]["field"] == field, (body, r.text)
    assert (
        api.post(
            "/v1/generations", content=b"{", headers={**h, "content-type": "application/json"}
        ).status_code
        == 400
    )
    big = api.post("/v1/generations", content=b"x" * (65 * 1024 * 1024), headers=h)
    assert big.status_code == 413 and big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    # idempotency: the same task again (200), another request under the same key is a conflict
    first = svc.api.post("/v1/generations", json={"prompt": "a kite"}, headers={**h, "Idempotency-Key": "k1"})
    again = svc.api.post("/v1/generations", json={"prompt": "a kite"}, headers={**h, "Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    clash = svc.api.post("/v1/generations", json={"prompt": "a hawk"}, headers={**h, "Idempotency-Key": "k1"})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "IDEMPOTENCY.CONFLICT"
    # the key's rate limit, with Retry-After
    _, slow = TaskQueue(svc.store).create_api_key("slow app", rate_limit=1)
    sh = {"Authorization": f"Bearer {slow}"}
    assert api.post("/v1/generations", json={"prompt": "a boat"}, headers=sh).status_code == 201
    limited = api.post("/v1/generations", json={"prompt": "a boat"}, headers=sh)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # a revoked key stops at once
    record = TaskQueue(svc.store).api_keys()[-1]
    TaskQueue(svc.store).revoke_api_key(record.id)
    assert api.get("/v1/generations", headers=sh).status_code == 401
    # polling is not rate-limited per address: the key's limit is on submissions
    for _ in range(70):
        assert api.get(f"/v1/generations/{task['id']}", headers=h).status_code == 200


def test_cancelling_pending_running_and_finished_tasks(svc: Service) -> None:
    pending = svc.post(prompt="a quiet harbour").json()
    r = svc.api.delete(f"/v1/generations/{pending['id']}", headers=svc.headers)
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
    assert r.json()["failure_code"] == "GENERATION.CANCELLED"
    long = svc.post(prompt="a slow sunrise over the sea", steps=1000).json()
    with svc.worker():
        svc.wait(long["id"], until=lambda t: t.get("stage") == "generate" and t["progress"] > 0.05)
        r = svc.api.delete(f"/v1/generations/{long['id']}", headers=svc.headers)
        assert r.status_code == 200 and r.json()["status"] == "RUNNING"  # asked; stops at its next step
        done = svc.wait(long["id"])
    assert done["status"] == "CANCELLED" and done["failure_code"] == "GENERATION.CANCELLED"
    assert 0.05 < done["progress"] < 0.85 and done["stage"] == "generate"
    assert not (svc.out / f"{long['id']}.mp4").exists() and list(svc.out.iterdir()) == []
    assert _records(svc.store, long["id"]) == ["cancelled"]
    content = svc.api.get(f"/v1/generations/{long['id']}/content", headers=svc.headers)
    assert content.status_code == 409 and content.json()["error"]["code"] == "TASK.FINISHED"
    ok = svc.post(prompt="a lighthouse").json()
    assert svc.api.get(f"/v1/generations/{ok['id']}/content", headers=svc.headers).json()["error"][
        "code"
    ] == ("TASK.NOT_READY")
    with svc.worker():
        assert svc.wait(ok["id"])["status"] == "SUCCEEDED"
    again = svc.api.delete(f"/v1/generations/{ok['id']}", headers=svc.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "TASK.FINISHED"


@pytest.mark.parametrize("overlap", [True, False])
def test_the_next_task_generates_while_the_last_one_is_encoded(svc: Service, overlap: bool) -> None:
    scenes = ["a lighthouse at dusk", "a harbour at dawn", "a kite over green hills"]
    ids = [svc.post(prompt=scene).json()["id"] for scene in scenes]
    with svc.worker(overlap=overlap) as worker:
        tasks = [svc.wait(i) for i in ids]
        assert worker.completed == 3
    assert [t["status"] for t in tasks] == ["SUCCEEDED"] * 3
    starts = [t["started_at"] for t in tasks]
    ends = [t["finished_at"] for t in tasks]
    if overlap:  # task N+1 was claimed while task N was still being encoded, signed and recorded
        assert starts[1] < ends[0] and starts[2] < ends[1]
    else:
        assert starts[1] >= ends[0] and starts[2] >= ends[1]


def test_a_reference_image_travels_with_the_task(svc: Service, policy: gen4sdk.Policy) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((144, 256, 3), 120, np.uint8)).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    task = svc.post(prompt="the scene comes alive", image=uri).json()
    client = gen4sdk.Client(
        model="tiny-i2v", signer=svc.signer, owner="Acme Studios", store=svc.store, policy=policy
    )
    with GenerationWorker(client, svc.out, lease=svc.lease):
        done = svc.wait(task["id"])
    assert done["status"] == "SUCCEEDED", done
    row = TaskQueue(svc.store).get(task["id"])
    assert row is not None and row.image is None  # kept only while the task ran
    assert sorted(p.suffix for p in svc.out.iterdir()) == [".mp4"]


def test_a_clip_signed_without_a_mark_is_a_success_with_no_payload(svc: Service, dev_keys: Any) -> None:
    # content no strength of the mark holds: the Client signs it claiming none, and the task says so
    task = svc.post(prompt="a lighthouse at dusk").json()
    client = gen4sdk.Client(
        model=StaticNoise(), signer=svc.signer, owner="Acme Studios", store=svc.store, policy=svc.policy
    )
    with GenerationWorker(client, svc.out, lease=svc.lease):
        done = svc.wait(task["id"])
    assert done["status"] == "SUCCEEDED", done
    assert "watermark_payload" not in done["output"] and done["output"]["manifest_id"]  # None is left out
    clip = svc.api.get(done["output"]["url"], headers=svc.headers)
    received = svc.out.parent / "received.mp4"
    received.write_bytes(clip.content)
    report = gen4sdk.verify(received, trust_anchors=dev_keys.root_cert)
    assert report.status == "trusted" and report.soft_binding is None


_WORKER_SCRIPT = textwrap.dedent(
    """
    import sys, time, gen4sdk
    from gen4sdk.server import GenerationWorker
    store, cert, key, out = sys.argv[1:5]
    signer = gen4sdk.Signer.from_files(cert, key)
    client = gen4sdk.Client(model="tiny", signer=signer, owner="Acme Studios", store=gen4sdk.Store(store, signer=signer))
    GenerationWorker(client, out, lease=float(sys.argv[5]), name="doomed").start()
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_a_worker_killed_mid_generation_fails_its_task_and_others_go_on(
    tmp_path: Path, signer: Any, policy: gen4sdk.Policy, dev_keys: Any
) -> None:
    s = Service(str(tmp_path / "store.db"), signer, policy, tmp_path, lease=3.0)
    task = s.post(prompt="a long tracking shot of a river", steps=1000).json()
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER_SCRIPT, str(tmp_path / "store.db"), str(dev_keys.signer_cert),
         str(dev_keys.signer_key), str(s.out), "3.0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def generating(t: dict[str, Any]) -> bool:
            assert proc.poll() is None, "the worker process ended on its own"
            return t.get("stage") == "generate" and t["progress"] > 0.05

        s.wait(task["id"], until=generating, timeout=180)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    lost = s.wait(task["id"], timeout=60)  # settled by the API once the lease has run out
    assert (
        lost["status"] == "FAILED" and lost["failure_code"] == "WORKER.LOST" and "doomed" in lost["failure"]
    )
    assert not any(p.name.endswith(".mp4") and not p.name.startswith(".") for p in s.out.iterdir())
    assert _records(s.store, task["id"]) == ["failed"]
    after = s.post(prompt="a lighthouse at dusk").json()
    with s.worker():
        assert s.wait(after["id"])["status"] == "SUCCEEDED"


def test_a_database_lost_mid_request_fails_closed_and_says_why(
    tmp_path: Path, signer: Any, policy: gen4sdk.Policy
) -> None:
    from postgres_server import PostgresServer

    server = PostgresServer().start()
    try:
        s = Service(server.create_database(), signer, policy, tmp_path, lease=600)
        task = s.post(prompt="a long tracking shot of a river", steps=1000).json()
        with s.worker() as worker:
            s.wait(task["id"], until=lambda t: t.get("stage") == "generate" and t["progress"] > 0.05)
            server.halt()
            unavailable = s.api.get(f"/v1/generations/{task['id']}", headers=s.headers)
            assert unavailable.status_code == 503 and unavailable.json()["error"]["code"] == "UNAVAILABLE"
            assert "postgresql" not in unavailable.text  # no URL, no password
            deadline = time.monotonic() + 120
            while worker.running and time.monotonic() < deadline:  # the request ends: it cannot be recorded
                time.sleep(0.1)
            assert worker.running == []
            assert list(s.out.iterdir()) == []  # nothing at the output, no temporary left
            server.resume()
            done = s.wait(task["id"], timeout=60)  # the worker settles it once the store is back
        assert done["status"] == "FAILED" and done["failure_code"] == "STORE.FAILED"
        assert "audit record could not be written" in done["failure"]
    finally:
        server.stop()


def test_the_openapi_document_describes_the_job_api(svc: Service) -> None:
    doc = svc.api.get("/openapi.json").json()
    paths = doc["paths"]
    assert set(paths["/v1/generations"]) == {"post", "get"}
    assert set(paths["/v1/generations/{task_id}"]) == {"get", "delete"}
    assert "video/mp4" in paths["/v1/generations/{task_id}/content"]["get"]["responses"]["200"]["content"]
    post = paths["/v1/generations"]["post"]
    assert {"201", "200", "400", "401", "409", "413", "429", "503"} <= set(post["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    codes = doc["components"]["schemas"]["ApiError"]["properties"]["code"]["enum"]
    assert {"SAFETY.INPUT.TEXT", "RATE_LIMITED", "IDEMPOTENCY.CONFLICT"} <= set(codes)
    task = doc["components"]["schemas"]["GenerationTask"]["properties"]
    assert task["status"]["enum"] == ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
    assert "WORKER.LOST" in str(task["failure_code"])
    # the resolution API is still there, under its published paths
    assert "/matches/byBinding" in paths and doc["info"]["title"].startswith("gen4sdk generation")


def test_api_keys_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "keys.db")
    assert (
        main(["keys", "api-key", "create", "--store", db, "--name", "storyboard-app", "--rate-limit", "20"])
        == 0
    )
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("g4k_") and "cannot be shown again" in err
    record = TaskQueue(Store(db)).authenticate(key)
    assert record is not None and record.rate_limit == 20
    assert main(["keys", "api-key", "list", "--store", db]) == 0
    listing = capsys.readouterr().out
    assert record.id in listing and "storyboard-app" in listing and key not in listing
    assert main(["keys", "api-key", "revoke", "--store", db, record.id]) == 0
    assert TaskQueue(Store(db)).authenticate(key) is None
    assert main(["keys", "api-key", "list", "--store", str(tmp_path / "missing.db")]) == 2


def test_serve_names_an_unreachable_database_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://gen4sdk:s3cret@127.0.0.1:1/gen4sdk"
    code = main(["serve", "--store", url, "--model", "tiny", "--keys", str(tmp_path / "keys")])
    err = capsys.readouterr().err
    assert code == 1 and "127.0.0.1:1/gen4sdk" in err and "s3cret" not in err


def test_workers_on_ray(svc: Service, dev_keys: Any, ray_session: Iterator[None]) -> None:
    from gen4sdk.server import start_ray_workers

    ids = [svc.post(prompt=scene).json()["id"] for scene in ("a lighthouse at dusk", "a harbour at dawn")]
    location, cert, key = svc.store.database.target, str(dev_keys.signer_cert), str(dev_keys.signer_key)

    # defined here so Ray ships it to the actor by value (a test module is not importable there)
    def make() -> gen4sdk.Client:
        signer = gen4sdk.Signer.from_files(cert, key)
        return gen4sdk.Client(
            model="tiny", signer=signer, owner="Acme Studios", store=Store(location, signer=signer)
        )

    workers = start_ray_workers(make, svc.out, count=1)
    try:
        tasks = [svc.wait(i, timeout=180) for i in ids]
        assert workers.completed() == 2
    finally:
        workers.stop()
    assert [t["status"] for t in tasks] == ["SUCCEEDED", "SUCCEEDED"]
    assert all(_records(svc.store, i) == ["allowed"] for i in ids)


def test_the_job_api_example_against_a_real_server(
    svc: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from http_server import serving

    spec = importlib.util.spec_from_file_location(
        "job_api_client", Path(__file__).resolve().parents[1] / "examples" / "job_api_client.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    key = svc.headers["Authorization"].removeprefix("Bearer ")
    with serving(svc.api.app) as url, svc.worker():
        out = tmp_path / "boat.mp4"
        assert example.generate(url, key, "a paper boat on a rainy street", str(out)) == 0
        assert gen4sdk.verify(out).status == "untrusted"  # intact credentials; no trust anchor given
        refused = example.generate(url, key, "a sexual video of a 12 year old child", str(tmp_path / "x.mp4"))
    assert refused == 1 and not (tmp_path / "x.mp4").exists()
    assert "refused: SAFETY.INPUT.TEXT" in capsys.readouterr().err
