"""Golden fixtures: clips signed and watermarked by earlier releases (tests/data/golden/<version>/) must keep
verifying with today's code: trusted against their own root CA, watermark payload found, recovered from a
manifest store once their credentials are stripped, tampered after a one-byte change to the video data.

The fixtures are never regenerated here (tests/data/golden/make_golden.py makes a new release's folder by hand).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import av
import pytest

import gen4sdk
from gen4sdk import media
from watermark import Watermarker

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
RELEASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "golden.json").is_file())


def test_the_first_release_has_a_golden_fixture() -> None:
    # a folder deleted by mistake must fail here rather than leave the parametrised tests with nothing to run
    assert "0.1.0" in RELEASES


@pytest.fixture(scope="module", params=RELEASES)
def golden(request: pytest.FixtureRequest) -> dict[str, Any]:
    folder = GOLDEN / request.param
    facts = json.loads((folder / "golden.json").read_text(encoding="utf-8"))
    facts["clip"] = folder / "clip.mp4"
    facts["anchor"] = folder / "root-ca.pem"
    facts["manifest_store"] = (folder / "manifest.c2pa").read_bytes()
    return facts


def _mdat_span(data: bytes) -> tuple[int, int]:
    """(start, end) of the first top-level mdat box's payload, from the ISO BMFF box headers."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif size == 0:
            size = len(data) - pos
        if size < header:
            break
        if kind == b"mdat":
            return pos + header, pos + size
        pos += size
    raise AssertionError("no mdat box")


def _strip(src: Path, dst: Path) -> None:
    """Remux every packet into a new MP4 without re-encoding, as ``ffmpeg -i src -c copy dst`` does: the video
    is bit-identical, the C2PA manifest (a box the muxer does not know) is gone."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)


def _fresh_store(tmp_path: Path, golden: dict[str, Any]) -> gen4sdk.Store:
    """A new manifest store holding the golden clip's manifest, imported through the public API."""
    store = gen4sdk.Store(tmp_path / "fresh.db")
    row = golden["manifest_row"]
    store.put_manifest(
        payload=bytes.fromhex(row["payload"]),
        manifest_id=row["manifest_id"],
        manifest_store=golden["manifest_store"],
        asset_sha256=row["asset_sha256"],
    )
    return store


def test_golden_clip_verifies_trusted_against_its_anchor(golden: dict[str, Any]) -> None:
    report = gen4sdk.verify(golden["clip"], trust_anchors=golden["anchor"])
    assert report.status == "trusted", report.reason
    row = golden["manifest_row"]
    assert report.manifest_id == row["manifest_id"] and report.ai_generated
    assert report.owner is not None and report.owner.organization == golden["owner"]["organization"]
    assert report.owner.user == golden["owner"]["user"]
    assert report.lineage is not None
    assert report.lineage.request_id == golden["request_id"] and report.lineage.model_id == golden["model_id"]
    assert report.soft_binding is not None and report.soft_binding["payload"] == row["payload"]
    assert report.watermark is not None and report.watermark.matches_credentials is True
    # the anchor is what makes it trusted: without it the same intact credentials are only untrusted
    assert gen4sdk.verify(golden["clip"], detect_watermark=False).status == "untrusted"


def test_golden_watermark_payload_is_detected(golden: dict[str, Any]) -> None:
    wm = Watermarker.public()
    assert wm.algorithm == golden["watermark_algorithm"]
    detection = wm.detect(media.read_frames(golden["clip"]))
    assert detection.found and detection.payload is not None
    assert detection.payload.hex() == golden["manifest_row"]["payload"]


def test_golden_clip_stripped_of_credentials_is_recovered_from_a_store(
    golden: dict[str, Any], tmp_path: Path
) -> None:
    stripped = tmp_path / "stripped.mp4"
    _strip(golden["clip"], stripped)
    assert gen4sdk.verify(stripped, trust_anchors=golden["anchor"]).status == "watermarked"
    store = _fresh_store(tmp_path, golden)
    report = gen4sdk.verify(stripped, trust_anchors=golden["anchor"], store=store)
    assert report.status == "recovered", (report.reason, report.problems)
    assert report.manifest_id == golden["manifest_row"]["manifest_id"]
    assert report.signer is not None and report.signer.trusted
    # what the recovered manifest says is the golden clip's, not just any manifest with a valid signature
    assert report.owner is not None and report.owner.organization == golden["owner"]["organization"]
    assert report.lineage is not None and report.lineage.request_id == golden["request_id"]
    assert report.watermark is not None and report.watermark.payload == golden["manifest_row"]["payload"]


def test_golden_clip_with_one_byte_changed_in_its_mdat_is_tampered(
    golden: dict[str, Any], tmp_path: Path
) -> None:
    data = bytearray(golden["clip"].read_bytes())
    start, end = _mdat_span(bytes(data))
    data[(start + end) // 2] ^= 0x01
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    report = gen4sdk.verify(tampered, trust_anchors=golden["anchor"], detect_watermark=False)
    assert report.status == "tampered", report.reason


def test_a_recovered_manifest_altered_in_the_store_is_not_recovered(
    golden: dict[str, Any], tmp_path: Path
) -> None:
    """The claim signature still validates when an assertion's bytes change (the claim holds only their hashes):
    the assertion's hash mismatch must keep the verdict from ``recovered`` and its altered owner from the report."""
    stripped = tmp_path / "stripped.mp4"
    _strip(golden["clip"], stripped)
    # the owner as the CreativeWork assertion names it (the certificates name the organisation too: left intact)
    original = b'"author":[{"@type":"Organization","name":"' + golden["owner"]["organization"].encode()
    manifest = bytes(golden["manifest_store"])
    assert manifest.count(original) == 1
    forged = dict(golden, manifest_store=manifest.replace(original, original[:-8] + original[-8:].upper()))
    report = gen4sdk.verify(stripped, trust_anchors=golden["anchor"], store=_fresh_store(tmp_path, forged))
    assert report.status == "watermarked", (report.reason, report.problems)
    assert any(p.startswith("the recovered manifest was altered: assertion.") for p in report.problems), (
        report.problems
    )
    assert report.owner is None
