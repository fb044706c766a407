"""A request has one outcome: the audit record, the stored manifest and the clip at its path happen together or not
at all; a raising progress callback is a typed error (issue 21, item 8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gen4sdk
from gen4sdk import client as client_module
from gen4sdk.errors import OutputError, ProgressCallbackError, StoreError
from gen4sdk.models import tiny_model

SMALL = {"num_frames": 9, "height": 144, "width": 256, "fps": 8.0, "steps": 2}


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _one_outcome(store: gen4sdk.Store, request_id: str) -> gen4sdk.compliance.LogEntry:  # type: ignore[name-defined]
    entries = store.records(request_id=request_id)
    assert len(entries) == 1, [e.record.outcome for e in entries]
    return entries[0]


def test_a_failed_move_keeps_neither_the_allowed_record_nor_the_manifest(
    tmp_path, model, signer, monkeypatch
):
    store = gen4sdk.Store(tmp_path / "store.db", signer=signer)
    client = gen4sdk.Client(model=model, signer=signer, owner="Acme Studios", store=store)
    out = tmp_path / "clip.mp4"
    real_replace = os.replace

    def replace(src, dst):  # type: ignore[no-untyped-def]
        if Path(dst) == out:
            raise OSError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(client_module.os, "replace", replace)
    with pytest.raises(OutputError, match="into place"):
        client.generate(prompt="a quiet lake", output=out, request_id="move-fails", **SMALL)
    entry = _one_outcome(store, "move-fails")
    assert entry.record.outcome == "failed" and entry.record.output_sha256 is None
    assert entry.record.manifest_id is None
    assert store.find_manifest(entry.record.watermark_payload or "") is None
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".mp4") == []


class _CommitFails(gen4sdk.Store):
    def append(self, record, *, manifest=None, before_commit=None):  # type: ignore[no-untyped-def,override]
        if manifest is None:
            return super().append(record)

        def then_fail() -> None:
            assert before_commit is not None
            before_commit()
            raise StoreError("disk I/O error at commit")

        return super().append(record, manifest=manifest, before_commit=then_fail)


def test_a_failed_commit_takes_the_clip_back_out(tmp_path, model, signer):
    store = _CommitFails(tmp_path / "store.db", signer=signer)
    client = gen4sdk.Client(model=model, signer=signer, owner="Acme Studios", store=store)
    out = tmp_path / "clip.mp4"
    with pytest.raises(StoreError, match="commit"):
        client.generate(prompt="a quiet lake", output=out, request_id="commit-fails", **SMALL)
    assert not out.exists()
    assert _one_outcome(store, "commit-fails").record.outcome == "failed"


def test_a_raising_progress_callback_is_a_typed_error_and_writes_nothing(tmp_path, model, signer):
    store = gen4sdk.Store(tmp_path / "store.db", signer=signer)
    client = gen4sdk.Client(model=model, signer=signer, owner="Acme Studios", store=store)
    out = tmp_path / "clip.mp4"
    for stage in ("generate", "encode", "sign"):

        def on_progress(event: gen4sdk.ProgressEvent, stage: str = stage) -> None:
            if event.stage == stage:
                raise KeyError("the UI went away")

        rid = f"callback-{stage}"
        with pytest.raises(ProgressCallbackError, match=stage) as err:
            client.generate(
                prompt="a quiet lake", output=out, request_id=rid, on_progress=on_progress, **SMALL
            )
        assert isinstance(err.value.__cause__, KeyError)
        assert not out.exists()
        entry = _one_outcome(store, rid)
        assert entry.record.outcome == "failed" and entry.record.failure_code == "ProgressCallbackError"
    assert store.find_manifests(b"") == [] and len(store.records(outcome="allowed")) == 0


def test_a_callback_raising_after_the_clip_is_recorded_does_not_undo_it(tmp_path, model, signer):
    store = gen4sdk.Store(tmp_path / "store.db", signer=signer)
    client = gen4sdk.Client(model=model, signer=signer, owner="Acme Studios", store=store)
    out = tmp_path / "clip.mp4"

    def on_progress(event: gen4sdk.ProgressEvent) -> None:
        if event.stage == "record":
            raise RuntimeError("late")

    result = client.generate(
        prompt="a quiet lake", output=out, request_id="late", on_progress=on_progress, **SMALL
    )
    assert out.is_file() and result.path == out
    entry = _one_outcome(store, "late")
    assert entry.record.outcome == "allowed" and entry.record.output_sha256 == result.sha256
    assert store.get_manifest(result.manifest_id) is not None


class _CheckpointSignerDown:
    """Signs clips, but the key service refuses the audit log's checkpoints (they start with the log's origin)."""

    def __init__(self, signer) -> None:  # type: ignore[no-untyped-def]
        self._signer = signer

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._signer, name)

    def sign(self, data: bytes) -> bytes:
        if data.startswith(b"gen4sdk.audit/"):
            raise ConnectionError("key service down")
        return bytes(self._signer.sign(data))

    @property
    def certificate_chain_pem(self) -> bytes:
        return bytes(self._signer.certificate_chain_pem)


def test_a_failing_checkpoint_signer_keeps_refusals_and_raises_the_policy_violation(tmp_path, model, signer):
    from gen4sdk.errors import PolicyViolation

    store = gen4sdk.Store(tmp_path / "store.db", signer=_CheckpointSignerDown(signer))
    client = gen4sdk.Client(model=model, signer=signer, owner="Acme Studios", store=store)
    with client, pytest.raises(PolicyViolation):
        client.generate(prompt="a naked woman", output=tmp_path / "no.mp4", request_id="refused-1", **SMALL)
    assert _one_outcome(store, "refused-1").record.outcome == "refused"
    report = store.verify_log()
    assert report.checkpoint_pending and "key service down" in report.checkpoint_pending
