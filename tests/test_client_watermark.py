"""The Client's watermark stage: the strength setting, and the read-back that keeps credentials from declaring a
mark the encoded clip does not carry."""

from __future__ import annotations

import json
import logging

import c2pa
import pytest
from model_doubles import StaticNoise

import gen4sdk
from gen4sdk.compliance._aigc import claims_gen4sdk_ids, read_aigc
from gen4sdk.errors import InvalidRequestError
from watermark import Watermarker

SMALL = {"num_frames": 17, "height": 144, "width": 256, "fps": 8.0, "steps": 2}


class _MarksNothingBelowRobust(Watermarker):
    """A codec that leaves the frames as they are unless it is at full strength: stands for content a weaker mark
    cannot hold, so the Client's second, robust embedding is what carries the payload."""

    def embed(self, frames, payload, *, clip_start=True):  # type: ignore[no-untyped-def]
        if self.strength != "robust":
            return frames.copy()
        return super().embed(frames, payload, clip_start=clip_start)


def _actions(path) -> list[str]:  # type: ignore[no-untyped-def]
    with path.open("rb") as fh, c2pa.Reader("video/mp4", fh) as reader:
        store = json.loads(reader.json())
    active = store["manifests"][store["active_manifest"]]
    actions = next(
        a["data"]["actions"] for a in active["assertions"] if a["label"].startswith("c2pa.actions")
    )
    return [a["action"] for a in actions]


def test_default_strength_is_robust_and_checked(tmp_path, signer, dev_keys) -> None:
    client = gen4sdk.Client(model="tiny", signer=signer, owner="Acme", store=tmp_path / "s.db")
    assert client._watermarker.strength == "robust"  # type: ignore[attr-defined]
    result = client.generate(prompt="a lighthouse at dusk", output=tmp_path / "a.mp4", seed=3, **SMALL)
    assert result.watermark_payload is not None and "watermark_check" in result.timings
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert)
    assert report.watermark is not None and report.watermark.payload == result.watermark_payload


def test_content_that_cannot_hold_a_mark_is_signed_without_claiming_one(
    tmp_path, signer, dev_keys, caplog
) -> None:
    store = gen4sdk.Store(tmp_path / "s.db", signer=signer)
    client = gen4sdk.Client(
        model=StaticNoise(), signer=signer, owner="Acme", store=store, watermark_strength="balanced"
    )
    with caplog.at_level(logging.WARNING, logger="gen4sdk.client"):
        result = client.generate(prompt="a lighthouse at dusk", output=tmp_path / "a.mp4", seed=3, **SMALL)
    messages = [r.getMessage() for r in caplog.records]
    assert any("marking it again at robust" in m for m in messages)  # the second try, at full strength
    assert any("signed without claiming one" in m for m in messages)
    assert result.watermark_payload is None
    # the credentials are signed and say AI made it, and claim no mark: no soft binding, no c2pa.watermarked
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert)
    assert report.status == "trusted", report.reason
    assert report.soft_binding is None and report.watermark is not None and not report.watermark.found
    assert not [p for p in report.problems if "watermark" in p]
    assert _actions(result.path) == ["c2pa.created"]
    entry = store.find_record(result.request_id)
    assert entry is not None and entry.record.outcome == "allowed" and entry.record.watermark_payload is None


def test_the_aigc_block_of_a_clip_without_a_mark_names_no_watermark_id(tmp_path, signer, dev_keys) -> None:
    # cn-gb-45438's metadata block carries the watermark id in ReservedCode1; without a mark it must carry none,
    # or a checker would take the block for another clip's once the credentials are stripped
    client = gen4sdk.Client(
        model=StaticNoise(),
        signer=signer,
        owner="Acme",
        compliance=["cn-gb-45438"],
        label=gen4sdk.VisibleLabel(),
    )
    result = client.generate(prompt="a lighthouse at dusk", output=tmp_path / "a.mp4", seed=3, **SMALL)
    assert result.watermark_payload is None
    block = read_aigc(result.path).block
    assert block is not None and block["ReservedCode1"] == "" and not claims_gen4sdk_ids(block)
    assert block["ProduceID"] == result.manifest_id.removeprefix("urn:c2pa:")
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert)
    assert report.status == "trusted", report.reason  # the block was rewritten before signing


def test_a_mark_the_clip_does_not_hold_is_embedded_again_at_robust(
    tmp_path, signer, dev_keys, caplog
) -> None:
    codec = _MarksNothingBelowRobust(b"operator key", strength="balanced")
    client = gen4sdk.Client(model="tiny", signer=signer, owner="Acme", watermarker=codec)
    with caplog.at_level(logging.WARNING, logger="gen4sdk.client"):
        result = client.generate(prompt="a lighthouse at dusk", output=tmp_path / "a.mp4", seed=3, **SMALL)
    assert any("marking it again at robust" in r.getMessage() for r in caplog.records)
    assert result.watermark_payload is not None
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert, watermark_keys=[b"operator key"])
    assert report.watermark is not None and report.watermark.payload == result.watermark_payload
    assert report.watermark.matches_credentials is True
    assert _actions(result.path) == ["c2pa.created", "c2pa.watermarked"]


def test_without_the_check_the_clip_claims_its_mark_unread(tmp_path, signer) -> None:
    client = gen4sdk.Client(model=StaticNoise(), signer=signer, owner="Acme", check_watermark=False)
    result = client.generate(prompt="a lighthouse at dusk", output=tmp_path / "a.mp4", seed=3, **SMALL)
    assert result.watermark_payload is not None and "watermark_check" not in result.timings


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"watermark_strength": "max"}, "watermark_strength must be one of invisible, balanced, robust"),
        ({"watermark_strength": "robust", "watermarker": Watermarker.public()}, "give watermark_strength to"),
    ],
)
def test_bad_strength_settings_are_refused(signer, kwargs, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequestError, match=match) as info:
        gen4sdk.Client(model="tiny", signer=signer, owner="Acme", **kwargs)
    assert info.value.field == "watermark_strength"


def test_strength_reaches_the_codec(signer) -> None:
    client = gen4sdk.Client(
        model="tiny", signer=signer, owner="Acme", watermark_key=b"k", watermark_strength="invisible"
    )
    assert client._watermarker.strength == "invisible"  # type: ignore[attr-defined]
