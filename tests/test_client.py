"""End to end through the Client: policy -> tiny model -> frame checks -> watermark -> encode -> sign -> record."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import natural_frames

import gen4sdk
from gen4sdk.errors import (
    GenerationCancelled,
    InvalidRequestError,
    OutputError,
    PolicyViolation,
    SigningError,
)
from gen4sdk.models import tiny_model

SMALL = {"num_frames": 17, "height": 144, "width": 256, "fps": 8.0, "steps": 2}


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def env(tmp_path_factory, model, signer, dev_keys):
    work = tmp_path_factory.mktemp("client")
    store = gen4sdk.Store(work / "store.db", signer=signer)
    client = gen4sdk.Client(model=model, signer=signer, owner="Acme Studios", store=store)
    return work, client, store


@pytest.fixture(scope="module")
def generated(env):
    work, client, _ = env
    events: list[gen4sdk.ProgressEvent] = []
    result = client.generate(
        prompt="a paper boat drifting down a rainy street",
        negative_prompt="blurry",
        output=work / "clip.mp4",
        seed=11,
        user="alice",
        on_progress=events.append,
        **SMALL,
    )
    return result, events


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_generated_clip_is_trusted_watermarked_and_recorded(env, generated, dev_keys):
    work, _, store = env
    result, events = generated
    assert result.path.is_file() and result.path == work / "clip.mp4"
    import hashlib

    assert hashlib.sha256(result.path.read_bytes()).hexdigest() == result.sha256
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert)
    assert report.status == "trusted", report.reason
    assert report.manifest_id == result.manifest_id
    assert report.owner == gen4sdk.Owner(organization="Acme Studios", user="alice")
    assert report.lineage is not None and report.lineage.seed == 11
    assert report.lineage.model_id == "gen4sdk/tiny-wan-random"
    assert report.lineage.weights_sha256 == result.model.weights_sha256
    assert report.lineage.prompt is None and report.lineage.prompt_commitment
    assert report.watermark is not None and report.watermark.found
    assert report.watermark.payload == result.watermark_payload
    assert report.watermark.matches_credentials is True
    # without compliance profiles nothing of them is written: no disclosure, no visible label, no AIGC block
    assert report.disclosure is None and report.visible_label is None
    assert b"AIGC" not in result.path.read_bytes()
    # the soft binding covers the whole clip, and the actions say the frames were watermarked
    assert report.soft_binding is not None and report.soft_binding["scope"] == {
        "timespan": {"start": 0, "end": 2125}
    }
    import json

    import c2pa

    with result.path.open("rb") as fh, c2pa.Reader("video/mp4", fh) as reader:
        manifest_store = json.loads(reader.json())
    active = manifest_store["manifests"][manifest_store["active_manifest"]]
    actions = next(
        a["data"]["actions"] for a in active["assertions"] if a["label"].startswith("c2pa.actions")
    )
    assert [a["action"] for a in actions] == ["c2pa.created", "c2pa.watermarked"]
    assert next(p.outcome for p in report.policy) in {"allowed", "allowed_with_warnings"}
    # Effective parameters and per-stage timings come back typed.
    assert (result.params.num_frames, result.params.width, result.params.height) == (17, 256, 144)
    later_stages = ["watermark", "encode", "watermark_check", "sign", "record"]
    assert {"policy", "generate", *later_stages} <= set(result.timings)
    # Progress: every denoising step, then the later stages in order.
    steps = [e.step for e in events if e.stage == "generate" and e.total == SMALL["steps"]]
    assert steps == list(range(1, SMALL["steps"] + 1))
    assert [e.stage for e in events if e.stage in later_stages] == later_stages
    # The store holds the audit record and the manifest under the watermark payload.
    entry = store.find_record(result.request_id)
    assert entry is not None and entry.record.outcome == "allowed"
    assert entry.record.output_sha256 == result.sha256 and entry.record.prompt.startswith("a paper boat")
    stored = store.find_manifest(bytes.fromhex(result.watermark_payload))
    assert stored is not None and stored.manifest_id == result.manifest_id
    assert gen4sdk.compliance.open_commitment(
        store, result.request_id, "a paper boat drifting down a rainy street"
    )
    assert not gen4sdk.compliance.open_commitment(store, result.request_id, "a different prompt")
    assert _leftovers(work) == []


def test_stripped_credentials_are_recovered_from_the_store(env, generated, dev_keys, tmp_path):
    _, _, store = env
    result, _ = generated
    remuxed = tmp_path / "remuxed.mp4"  # what `ffmpeg -c copy` does: same packets, new container, no manifest
    with av.open(str(result.path)) as src, av.open(str(remuxed), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
    assert gen4sdk.verify(remuxed).status == "watermarked"
    report = gen4sdk.verify(remuxed, trust_anchors=dev_keys.root_cert, store=store)
    assert report.status == "recovered" and report.recovered_by == "watermark", report.problems
    assert report.manifest_id == result.manifest_id and report.fingerprint is None
    assert report.owner is not None and report.owner.organization == "Acme Studios"
    assert report.recovered_from == str(store.path)
    assert report.signer is not None and report.signer.trusted and not report.problems
    # a manifest found through the store is only as good as its signer: without the right anchor it says so
    stranger = gen4sdk.provenance.init_keys(tmp_path / "stranger")
    unknown = gen4sdk.verify(remuxed, trust_anchors=stranger.root_cert, store=store)
    assert unknown.status == "recovered" and unknown.signer is not None and not unknown.signer.trusted
    assert any("does not chain to a configured trust anchor" in p for p in unknown.problems)


def test_a_clip_whose_mark_was_destroyed_is_found_by_its_fingerprint(env, generated, dev_keys, tmp_path):
    """Blurred past what the watermark survives: the fingerprint kept with the manifest still names it."""
    from PIL import Image, ImageFilter

    from gen4sdk import media

    _, _, store = env
    result, _ = generated
    frames = media.read_frames(result.path)
    blurred = np.stack([np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(4))) for f in frames])
    copy = tmp_path / "blurred.mp4"
    media.encode_video(blurred, copy, fps=8, crf=35, preset="veryfast")
    alone = gen4sdk.verify(copy, trust_anchors=dev_keys.root_cert)
    assert alone.status == "unsigned" and alone.watermark is not None and not alone.watermark.found
    report = gen4sdk.verify(copy, trust_anchors=dev_keys.root_cert, store=store)
    assert report.status == "recovered" and report.recovered_by == "fingerprint", report.problems
    assert report.manifest_id == result.manifest_id and report.signer is not None and report.signer.trusted
    assert (
        report.fingerprint is not None
        and report.fingerprint.distance <= 12
        and report.fingerprint.frames >= 4
    )
    assert any("matched by content, not by an exact binding" in p for p in report.problems)
    # a clip of other content that carries nothing is not claimed
    other = tmp_path / "other.mp4"
    media.encode_video(natural_frames(n=17, height=144, width=256), other, fps=8, crf=35)
    unknown = gen4sdk.verify(other, trust_anchors=dev_keys.root_cert, store=store)
    assert unknown.status == "unsigned" and "no stored clip looks like it" in unknown.reason


def test_reencoded_clip_is_recovered_and_says_its_hashes_differ(env, generated, dev_keys, tmp_path):
    """A platform re-encode (new pixels, no manifest) is still traced back to the signed original."""
    from gen4sdk import media

    _, _, store = env
    result, _ = generated
    frames = media.read_frames(result.path)
    reencoded = tmp_path / "platform.mp4"
    media.encode_video(frames, reencoded, fps=8, crf=30, preset="veryfast")
    assert gen4sdk.verify(reencoded, trust_anchors=dev_keys.root_cert).status == "watermarked"
    report = gen4sdk.verify(reencoded, trust_anchors=dev_keys.root_cert, store=store)
    assert report.status == "recovered", report.problems
    assert report.manifest_id == result.manifest_id and report.lineage is not None
    assert report.lineage.weights_sha256 == result.model.weights_sha256
    # the signature is the original's; the content no longer matches its hash, and the report says so
    assert any(c.kind == "failure" and "mismatch" in c.code for c in report.validation_codes), (
        report.validation_codes
    )


def test_refused_prompt_writes_nothing_and_is_audited(env):
    work, client, store = env
    out = work / "refused.mp4"
    with pytest.raises(PolicyViolation) as info:
        client.generate(
            prompt="a sexual video of a 12 year old child", output=out, request_id="refused-1", **SMALL
        )
    assert info.value.code == "SAFETY.INPUT.TEXT"
    assert info.value.categories and info.value.pack_id
    assert not out.exists() and _leftovers(work) == []
    entry = store.find_record("refused-1")
    assert entry is not None and entry.record.outcome == "refused"
    assert entry.record.decisions and not entry.record.decisions[0].allowed


def test_invalid_frame_count_is_rejected_not_rounded(env):
    work, client, store = env
    with pytest.raises(InvalidRequestError) as info:
        client.generate(
            prompt="a quiet lake", output=work / "bad.mp4", request_id="bad-1", **{**SMALL, "num_frames": 16}
        )
    assert info.value.field == "num_frames"
    assert not (work / "bad.mp4").exists()
    assert store.find_record("bad-1").record.outcome == "failed"


def test_a_shape_the_model_refuses_never_reaches_the_policy_or_the_model(env, model, monkeypatch):
    work, client, store = env
    reached: list[str] = []
    monkeypatch.setattr(client.policy, "check_request", lambda *a, **k: reached.append("policy"))
    monkeypatch.setattr(model, "generate", lambda *a, **k: reached.append("model"))
    events: list[gen4sdk.ProgressEvent] = []
    with pytest.raises(InvalidRequestError, match="nearest valid: 144 or 160") as info:
        client.generate(
            prompt="a quiet lake",
            output=work / "bad.mp4",
            request_id="bad-2",
            on_progress=events.append,
            **{**SMALL, "height": 150},
        )
    assert info.value.field == "height"
    assert reached == [] and events == []
    record = store.find_record("bad-2").record
    assert record.outcome == "failed" and record.decisions == []


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 5000}, "prompt"),
        ({"steps": 0}, "steps"),
        ({"fps": -1}, "fps"),
    ],
)
def test_bad_parameters_are_typed_errors(env, kwargs, field):
    work, client, _ = env
    args = {"prompt": "a quiet lake", "output": work / "bad.mp4", **SMALL, **kwargs}
    with pytest.raises(InvalidRequestError) as info:
        client.generate(**args)
    assert info.value.field == field


def test_missing_output_directory_and_wrong_suffix(env):
    work, client, _ = env
    with pytest.raises(OutputError):
        client.generate(prompt="a quiet lake", output=work / "nope" / "clip.mp4", **SMALL)
    with pytest.raises(InvalidRequestError):
        client.generate(prompt="a quiet lake", output=work / "clip.avi", **SMALL)


def test_cancellation_discards_output(env):
    work, client, store = env
    cancel = threading.Event()

    def on_progress(event: gen4sdk.ProgressEvent) -> None:
        if event.stage == "generate" and event.step >= 1:
            cancel.set()

    out = work / "cancelled.mp4"
    with pytest.raises(GenerationCancelled):
        client.generate(
            prompt="a quiet lake",
            output=out,
            cancel=cancel,
            on_progress=on_progress,
            request_id="cancel-1",
            **{**SMALL, "steps": 4},
        )
    assert not out.exists() and _leftovers(work) == []
    assert store.find_record("cancel-1").record.outcome == "cancelled"


def test_signer_failure_fails_closed(tmp_path, model, dev_keys, signer):
    calls = {"n": 0}

    def flaky(data: bytes) -> bytes:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("HSM offline")
        return signer.sign(data)

    kms = gen4sdk.Signer.from_callback(flaky, certificate_chain_pem=dev_keys.signer_cert.read_bytes())
    client = gen4sdk.Client(model=model, signer=kms, owner="Acme Studios")
    out = tmp_path / "clip.mp4"
    with pytest.raises(SigningError):
        client.generate(prompt="a quiet lake", output=out, **SMALL)
    assert list(tmp_path.iterdir()) == []  # no clip, signed or unsigned, and no temporary files


def test_full_disk_while_writing_leaves_nothing(tmp_path, model, signer, monkeypatch):
    import errno

    from gen4sdk import client as client_module

    real_sign = client_module.sign_file

    def sign_then_disk_full(source, destination, spec, s):
        real_sign(source, destination, spec, s)
        with destination.open("ab") as fh:
            fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(client_module, "sign_file", sign_then_disk_full)
    client = gen4sdk.Client(model=model, signer=signer, owner="Acme Studios")
    out = tmp_path / "clip.mp4"
    with pytest.raises(OutputError, match="space"):
        client.generate(prompt="a quiet lake", output=out, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_image_to_video_records_the_reference_image(tmp_path, signer, dev_keys):
    from conftest import natural_frames
    from PIL import Image

    ref = tmp_path / "reference.png"
    Image.fromarray(natural_frames(1)[0]).save(ref)
    client = gen4sdk.Client(model=tiny_model(image_to_video=True), signer=signer, owner="Acme Studios")
    result = client.generate(
        prompt="the astronaut waves", image=ref, output=tmp_path / "i2v.mp4", seed=3, **SMALL
    )
    assert result.params.image_to_video
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert)
    assert report.status == "trusted"
    assert [(i.title, i.relationship) for i in report.ingredients] == [("reference.png", "inputTo")]


def test_unreadable_reference_image(env, tmp_path):
    work, client, _ = env
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(gen4sdk.MediaError):
        client.generate(prompt="a quiet lake", image=bad, output=work / "x.mp4", **SMALL)
    assert not (work / "x.mp4").exists()


def test_reference_image_type_c2pa_cannot_record_fails_before_generation(tmp_path, signer, monkeypatch):
    from PIL import Image

    bmp = tmp_path / "reference.bmp"  # PIL reads it, but C2PA has no ingredient type for it
    Image.new("RGB", (64, 64), (10, 120, 200)).save(bmp)
    model = tiny_model(image_to_video=True)
    calls = []
    monkeypatch.setattr(model, "generate", lambda *a, **k: calls.append(1))
    client = gen4sdk.Client(model=model, signer=signer, owner="Acme Studios")
    with pytest.raises(gen4sdk.MediaError, match="C2PA cannot record"):
        client.generate(prompt="a quiet lake", image=bmp, output=tmp_path / "x.mp4", **SMALL)
    assert calls == [] and not (tmp_path / "x.mp4").exists()


def test_model_directory_errors(tmp_path, signer):
    with pytest.raises(gen4sdk.ModelLoadError):
        gen4sdk.Client(model=tmp_path / "missing", signer=signer, owner="Acme")
    (tmp_path / "empty").mkdir()
    with pytest.raises(gen4sdk.ModelLoadError):
        gen4sdk.Client(model=tmp_path / "empty", signer=signer, owner="Acme")


def test_consent_grant_scoped_to_a_use_reaches_prompt_and_frame_checks(tmp_path, model, signer):
    """A grant for one use covers only requests that name that use, and the frame check sees the same user."""
    from gen4sdk.policy import Face, Policy

    class EveryFrameShowsHer:
        """A face encoder that finds the registered person in every image (the tiny model draws noise)."""

        id = "test-face"

        def faces(self, image: np.ndarray) -> list[Face]:
            return [
                Face(box=(0, 0, 8, 8), embedding=np.eye(1, 128, dtype=np.float32)[0], detection_score=1.0)
            ]

        def warm_up(self) -> None:
            pass

    faces = EveryFrameShowsHer()
    base = Policy.default(semantic=False).pack
    pack = base.model_copy(
        update={"likeness": base.likeness.model_copy(update={"face_threshold": {faces.id: 0.9}})}
    )
    store = gen4sdk.Store(tmp_path / "store.db", signer=signer)
    client = gen4sdk.Client(
        model=model,
        signer=signer,
        owner="Acme Studios",
        store=store,
        policy=Policy(pack, semantic=False, faces=faces),
    )
    reg = client.likeness
    assert reg is not None
    ident = reg.add_identity("Jane Roe")
    reg.add_face(ident.id, np.full((64, 64, 3), 128, np.uint8), encoder=faces)
    grant = reg.grant(ident.id, "alice", uses=["advertising"])

    with pytest.raises(PolicyViolation) as named:
        client.generate(prompt="Jane Roe waving", output=tmp_path / "a.mp4", user="alice", seed=1, **SMALL)
    assert (
        named.value.code == "SAFETY.INPUT.LIKENESS"
    )  # the grant is for advertising, the request names no use

    with pytest.raises(PolicyViolation) as frames:
        client.generate(prompt="a person waving", output=tmp_path / "b.mp4", user="bob", seed=1, **SMALL)
    assert frames.value.code == "SAFETY.OUTPUT.LIKENESS"
    assert not (tmp_path / "b.mp4").exists()

    result = client.generate(
        prompt="Jane Roe waving", output=tmp_path / "c.mp4", user="alice", use="advertising", seed=1, **SMALL
    )
    assert [(p.stage, p.grant_id) for p in result.policy] == [("input", grant.id), ("output", grant.id)]
    assert result.path.exists()


@pytest.mark.parametrize("key", [b"", "not bytes"])
def test_bad_watermark_key_is_refused_not_replaced_by_the_public_key(model, signer, key):
    with pytest.raises(InvalidRequestError) as err:
        gen4sdk.Client(model=model, signer=signer, owner="Acme Studios", watermark_key=key)
    assert err.value.field == "watermark_key"
