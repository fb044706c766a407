"""Soft Binding Resolution service: endpoints, OpenAPI shapes, limits (413/429), privacy, client, real uvicorn."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from compliance_helpers import make_signed_clips, record
from conftest import BBB
from fastapi.testclient import TestClient

from gen4sdk.compliance import Store, resolve_by_binding
from gen4sdk.errors import StoreError
from gen4sdk.server import create_app

PAYLOAD = bytes.fromhex("0a1b2c3d4e5f6071")
# A real manifest store (the golden clip's), whose lineage holds only the prompt's commitment.
JUMBF = (Path(__file__).parent / "data" / "golden" / "0.1.0" / "manifest.c2pa").read_bytes()
SECRET_PROMPT = "a very private prompt about a named person"


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "svc.db")
    s.put_manifest(payload=PAYLOAD, manifest_id="urn:c2pa:1111", manifest_store=JUMBF, asset_sha256="cd" * 32)
    s.append(record(1, prompt=SECRET_PROMPT, manifest_id="urn:c2pa:1111", salt="00" * 16))
    return s


def _alg(client: TestClient) -> str:
    return str(client.get("/services/supportedAlgorithms").json()["watermarks"][0]["alg"])


def test_supported_algorithms_and_by_binding(store: Store) -> None:
    client = TestClient(create_app(store))
    algs = client.get("/services/supportedAlgorithms")
    assert algs.status_code == 200
    assert algs.json() == {
        "watermarks": [{"alg": "com.gen4sdk.wm.v2"}],
        "fingerprints": [{"alg": "io.gen4sdk.phash-video.1"}],
    }
    alg = _alg(client)
    value = base64.b64encode(PAYLOAD).decode()
    r = client.get("/matches/byBinding", params={"alg": alg, "value": value})
    assert r.status_code == 200
    assert r.json() == {"matches": [{"manifestId": "urn:c2pa:1111", "similarityScore": 100}]}
    r = client.post("/matches/byBinding", json={"alg": alg, "value": value})
    assert r.json()["matches"][0]["manifestId"] == "urn:c2pa:1111"
    # unknown payload: an empty result, not an error
    r = client.get("/matches/byBinding", params={"alg": alg, "value": base64.b64encode(bytes(8)).decode()})
    assert r.status_code == 200 and r.json() == {"matches": []}
    # bad input
    assert client.get("/matches/byBinding", params={"alg": alg, "value": "***"}).status_code == 400
    assert client.get("/matches/byBinding", params={"alg": "com.other.wm", "value": value}).status_code == 400
    assert client.get("/matches/byBinding", params={"alg": alg}).status_code == 422


def test_get_manifest(store: Store) -> None:
    client = TestClient(create_app(store))
    r = client.get("/manifests/urn:c2pa:1111")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/c2pa"
    assert r.content == JUMBF
    assert client.get("/manifests/urn:c2pa:none").status_code == 404


def test_openapi_matches_the_published_shapes(store: Store) -> None:
    doc = TestClient(create_app(store)).get("/openapi.json").json()
    assert doc["info"]["title"] == "C2PA Soft Binding Resolution API"
    ops = {
        (path, method): op["operationId"]
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }
    assert ops == {
        ("/matches/byBinding", "get"): "queryByBinding",
        ("/matches/byBinding", "post"): "queryByLargeBinding",
        ("/matches/byContent", "post"): "uploadFile",
        ("/manifests/{manifestId}", "get"): "getManifestById",
        ("/services/supportedAlgorithms", "get"): "getSupportedBindings",
    }
    params = {p["name"] for p in doc["paths"]["/matches/byBinding"]["get"]["parameters"]}
    assert params == {"alg", "value", "maxResults"}
    upload_params = {p["name"] for p in doc["paths"]["/matches/byContent"]["post"]["parameters"]}
    assert upload_params == {"alg", "maxResults", "hintAlg", "hintValue"}
    assert "video/*" in doc["paths"]["/matches/byContent"]["post"]["requestBody"]["content"]
    assert "application/c2pa" in doc["paths"]["/manifests/{manifestId}"]["get"]["responses"]["200"]["content"]
    schemas = doc["components"]["schemas"]
    result = schemas["SoftBindingQueryResult"]
    match_ref = result["properties"]["matches"]["items"]["$ref"].split("/")[-1]
    assert schemas[match_ref]["required"] == ["manifestId"]
    assert {"manifestId", "endpoint", "similarityScore"} == set(schemas[match_ref]["properties"])
    assert set(schemas["SoftBindingAlgList"]["properties"]) == {"watermarks", "fingerprints"}


def _watermarked_clip(path: Path) -> None:
    from gen4sdk.media import encode_video, read_frames
    from watermark import Watermarker

    frames = read_frames(BBB, max_frames=24)
    encode_video(Watermarker.public().embed(frames, PAYLOAD), path, fps=12)


def test_by_content_finds_the_watermarked_clip(store: Store, tmp_path: Path) -> None:
    clip = tmp_path / "wm.mp4"
    _watermarked_clip(clip)
    client = TestClient(create_app(store))
    r = client.post("/matches/byContent", content=clip.read_bytes(), headers={"content-type": "video/mp4"})
    assert r.status_code == 200, r.text
    (match,) = r.json()["matches"]
    assert match["manifestId"] == "urn:c2pa:1111" and 0 < match["similarityScore"] <= 100
    # an unmarked upload finds nothing; garbage is rejected; a wrong type is 415
    plain = tmp_path / "plain.mp4"
    from gen4sdk.media import encode_video

    encode_video(np.full((8, 144, 256, 3), 90, np.uint8), plain, fps=8)
    r = client.post("/matches/byContent", content=plain.read_bytes(), headers={"content-type": "video/mp4"})
    assert r.status_code == 200 and r.json() == {"matches": []}
    r = client.post("/matches/byContent", content=os.urandom(5000), headers={"content-type": "video/mp4"})
    assert r.status_code == 415
    r = client.post("/matches/byContent", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = client.post("/matches/byContent", content=b"", headers={"content-type": "video/mp4"})
    assert r.status_code == 400


def test_upload_size_limit_413(store: Store) -> None:
    client = TestClient(create_app(store, max_upload_bytes=10_000))
    big = os.urandom(10_001)
    r = client.post("/matches/byContent", content=big, headers={"content-type": "video/mp4"})
    assert r.status_code == 413
    # without Content-Length (chunked), the streamed size is enforced as well
    r = client.post(
        "/matches/byContent", content=iter([big[:6000], big[6000:]]), headers={"content-type": "video/mp4"}
    )
    assert r.status_code == 413


def test_rate_limit_429(store: Store) -> None:
    client = TestClient(create_app(store, rate_limit=5, rate_window=60))
    codes = [client.get("/services/supportedAlgorithms").status_code for _ in range(7)]
    assert codes == [200] * 5 + [429, 429]
    r = client.get("/manifests/urn:c2pa:1111")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_no_prompt_leaves_the_service(store: Store) -> None:
    client = TestClient(create_app(store))
    alg = _alg(client)
    bodies = [
        client.get("/openapi.json").content,
        client.get("/services/supportedAlgorithms").content,
        client.get(
            "/matches/byBinding", params={"alg": alg, "value": base64.b64encode(PAYLOAD).decode()}
        ).content,
        client.get("/manifests/urn:c2pa:1111").content,
        client.get("/audit").content,
        client.get("/records").content,
    ]
    for body in bodies:
        assert SECRET_PROMPT.encode() not in body
    assert client.get("/audit").status_code == 404
    # read-only: no write methods exist
    assert client.put("/manifests/urn:c2pa:1111", content=b"x").status_code == 405
    assert client.delete("/manifests/urn:c2pa:1111").status_code == 405


def test_missing_store_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        create_app(tmp_path / "nope.db")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_uvicorn_on_loopback_and_resolve_client(store: Store) -> None:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        assert resolve_by_binding(url, "com.gen4sdk.wm.v2", PAYLOAD) == JUMBF
        assert resolve_by_binding(url, "com.gen4sdk.wm.v2", base64.b64encode(PAYLOAD).decode()) == JUMBF
        assert resolve_by_binding(url, "com.gen4sdk.wm.v2", bytes(8)) is None
        with pytest.raises(StoreError):
            resolve_by_binding(url, "com.unknown", PAYLOAD)  # the service answers 400
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    with pytest.raises(StoreError):
        resolve_by_binding(url, "com.gen4sdk.wm.v2", PAYLOAD, timeout=2)  # nothing listens any more


def test_verify_recovers_a_stripped_clip_through_the_service(tmp_path: Path, dev_keys, signer) -> None:  # type: ignore[no-untyped-def]
    """gen4sdk.verify with a resolution URL instead of a local store: the watermark leads to the manifest."""
    import uvicorn

    import gen4sdk

    clips = tmp_path / "clips"
    spec, jumbf = make_signed_clips(clips, signer)
    store = Store(tmp_path / "svc.db")
    store.put_manifest(
        payload=spec.short_id, manifest_id=spec.manifest_label, manifest_store=jumbf, asset_sha256="00" * 32
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        report = gen4sdk.verify(clips / "stripped.mp4", trust_anchors=str(dev_keys.root_cert), store=url)
        assert report.status == "recovered", report
        assert report.manifest_id == spec.manifest_label and report.recovered_from == url
        # the service answers the upload of the same clip as well
        with open(clips / "stripped.mp4", "rb") as fh:
            import httpx

            r = httpx.post(
                f"{url}/matches/byContent",
                content=fh.read(),
                headers={"content-type": "video/mp4"},
                timeout=60,
            )
        assert r.json()["matches"][0]["manifestId"] == spec.manifest_label
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _disclosing_manifest(clip: Path, directory: Path, signer, prompt: str) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    """Sign ``clip`` as a Client with ``disclose_prompts=True`` would: the prompt in clear in the lineage."""
    import datetime as dt

    from gen4sdk.provenance.manifest import ManifestSpec, sign_file
    from gen4sdk.types import GenerationParams, ModelInfo, Owner

    params = GenerationParams(
        num_frames=16, height=144, width=256, fps=16, steps=2, guidance_scale=5, seed=1, device="cpu",
        dtype="float32", memory_mode="none", scheduler="euler", pipeline_class="WanPipeline", image_to_video=False,
    )  # fmt: skip
    spec = ManifestSpec(
        title="clip.mp4",
        owner=Owner(organization="Acme Studios"),
        model=ModelInfo(model_id="gen4sdk/tiny", pipeline_class="WanPipeline", weights_sha256="ab" * 32),
        params=params,
        request_id="req-owl",
        created_at=dt.datetime.now(dt.timezone.utc),
        prompt_commitment="00" * 32,
        prompt=prompt,
    )
    return spec.manifest_label, sign_file(clip, directory / "signed.mp4", spec, signer)


def test_manifest_that_discloses_its_prompt_is_withheld(tmp_path: Path, small_clip: Path, signer) -> None:  # type: ignore[no-untyped-def]
    s = Store(tmp_path / "disclosed.db")
    # A three-letter prompt (once served: the check searched for texts of 4 characters or more) ...
    manifest_id, disclosing = _disclosing_manifest(small_clip, tmp_path, signer, "owl")
    s.put_manifest(
        payload=PAYLOAD, manifest_id=manifest_id, manifest_store=disclosing, asset_sha256="ef" * 32
    )
    s.append(record(2, prompt="owl", manifest_id=manifest_id, salt="00" * 16))
    closed = TestClient(create_app(s)).get(f"/manifests/{manifest_id}")
    assert closed.status_code == 403 and b"owl" not in closed.content
    opened = TestClient(create_app(s, serve_disclosed_prompts=True)).get(f"/manifests/{manifest_id}")
    assert opened.status_code == 200 and opened.content == disclosing
    # ... and one the log knows nothing about (made by another operator) are withheld from their own fields;
    # bytes that are no manifest store cannot be checked, so they are withheld too.
    other = Store(tmp_path / "other.db")
    other.put_manifest(
        payload=PAYLOAD, manifest_id=manifest_id, manifest_store=disclosing, asset_sha256="ef" * 32
    )
    junk = os.urandom(64)
    other.put_manifest(
        payload=PAYLOAD, manifest_id="urn:c2pa:junk", manifest_store=junk, asset_sha256="ef" * 32
    )
    client = TestClient(create_app(other))
    assert client.get(f"/manifests/{manifest_id}").status_code == 403
    assert client.get("/manifests/urn:c2pa:junk").status_code == 403
