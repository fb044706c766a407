"""Keys, signers, C2PA signing and verification of credentials (no model involved)."""

from __future__ import annotations

import datetime as dt
import shutil
import stat
import uuid

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from gen4sdk._crypto import verify_signature
from gen4sdk.errors import KeyMaterialError, SigningError
from gen4sdk.provenance import KeyPaths, Signer, init_keys, verify
from gen4sdk.provenance.keys import check_signing_certificate, load_certificate_chain
from gen4sdk.provenance.manifest import ManifestSpec, SoftBinding, sign_file
from gen4sdk.types import GenerationParams, ModelInfo, Owner, PolicySummary


def _spec(**overrides) -> ManifestSpec:
    params = GenerationParams(
        num_frames=16,
        height=144,
        width=256,
        fps=16.0,
        steps=4,
        guidance_scale=5.0,
        seed=42,
        device="cpu",
        dtype="float32",
        memory_mode="none",
        scheduler="UniPCMultistepScheduler",
        pipeline_class="WanPipeline",
        image_to_video=False,
    )
    fields = {
        "title": "clip.mp4",
        "owner": Owner(organization="Acme Studios", user="alice@example.com"),
        "model": ModelInfo(model_id="acme/wan-1.3b", pipeline_class="WanPipeline", weights_sha256="ab" * 32),
        "params": params,
        "request_id": "req-1",
        "created_at": dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc),
        "prompt_commitment": "cd" * 32,
        "policy": [
            PolicySummary(pack_id="default", pack_version="1.0.0", pack_sha256="ef" * 32, outcome="allowed")
        ],
        "soft_binding": SoftBinding(
            algorithm="com.gen4sdk.wm.v2", payload=b"\x01\x02\x03\x04\x05\x06\x07\x08", end_ms=1000
        ),
    }
    fields.update(overrides)
    return ManifestSpec(**fields)


def test_init_keys_writes_private_keys_0600_and_refuses_to_overwrite(tmp_path):
    paths = init_keys(tmp_path / "k", organization="Acme")
    assert paths.exist()
    for key in (paths.root_key, paths.signer_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    chain = load_certificate_chain(paths.signer_cert.read_bytes())
    assert len(chain) == 2  # signing certificate, then the CA
    check_signing_certificate(chain)
    with pytest.raises(KeyMaterialError, match="already holds key material"):
        init_keys(tmp_path / "k")


def test_passphrase_protected_keys(tmp_path):
    paths = init_keys(tmp_path / "k", passphrase="correct horse")
    assert b"ENCRYPTED" in paths.signer_key.read_bytes()
    Signer.from_files(paths.signer_cert, paths.signer_key, passphrase="correct horse")
    with pytest.raises(KeyMaterialError):
        Signer.from_files(paths.signer_cert, paths.signer_key, passphrase="wrong")
    with pytest.raises(KeyMaterialError):
        Signer.from_files(paths.signer_cert, paths.signer_key)


def test_key_that_does_not_match_certificate_is_rejected(tmp_path, dev_keys):
    other = init_keys(tmp_path / "other")
    with pytest.raises(KeyMaterialError, match="does not match"):
        Signer.from_files(dev_keys.signer_cert, other.signer_key)


def test_ca_certificate_cannot_sign(dev_keys):
    with pytest.raises(KeyMaterialError, match="CA certificate"):
        Signer.from_files(dev_keys.root_cert, dev_keys.root_key)


def test_expired_certificate_is_rejected(dev_keys):
    chain = load_certificate_chain(dev_keys.signer_cert.read_bytes())
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)
    with pytest.raises(KeyMaterialError, match="expired"):
        check_signing_certificate(chain, now=future)


def test_missing_key_file_is_a_typed_error(tmp_path, dev_keys):
    with pytest.raises(KeyMaterialError, match="cannot read"):
        Signer.from_files(dev_keys.signer_cert, tmp_path / "nope.key")


def test_callback_signer_probe_catches_wrong_key(dev_keys):
    wrong = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(KeyMaterialError, match="does not match"):
        Signer.from_callback(
            lambda data: wrong.sign(data, ec.ECDSA(hashes.SHA256())),
            certificate_chain_pem=dev_keys.signer_cert.read_bytes(),
        )


def test_signature_round_trip(signer):
    sig = signer.sign(b"checkpoint 7")
    assert verify_signature(signer.certificate_chain_pem, b"checkpoint 7", sig)
    assert not verify_signature(signer.certificate_chain_pem, b"checkpoint 8", sig)


def test_signed_clip_is_trusted_with_anchor_and_untrusted_without(tmp_path, small_clip, signer, dev_keys):
    out = tmp_path / "signed.mp4"
    store_bytes = sign_file(small_clip, out, _spec(), signer)
    assert len(store_bytes) > 1000

    report = verify(out, trust_anchors=dev_keys.root_cert, detect_watermark=False)
    assert report.status == "trusted", report.reason
    assert report.ai_generated is True
    assert (
        report.signer is not None and report.signer.trusted and report.signer.organization == "Acme Studios"
    )
    assert report.owner == Owner(organization="Acme Studios", user="alice@example.com")
    assert report.lineage is not None
    assert report.lineage.seed == 42 and report.lineage.model_id == "acme/wan-1.3b"
    assert report.lineage.prompt_commitment == "cd" * 32 and report.lineage.prompt is None
    assert report.lineage.parameters["num_frames"] == 16
    assert report.policy[0].outcome == "allowed"
    assert set(report.training_mining.values()) == {"notAllowed"}
    assert report.soft_binding is not None and report.soft_binding["payload"] == "0102030405060708"
    assert "gen4sdk" in (report.software_agent or "") and "acme/wan-1.3b" in (report.software_agent or "")
    assert report.manifest_id and report.manifest_id.startswith("urn:c2pa:")
    assert any(c.code == "claimSignature.validated" for c in report.validation_codes)

    untrusted = verify(out, detect_watermark=False)
    assert untrusted.status == "untrusted"
    assert "signingCredential.untrusted" in untrusted.reason


def test_anchor_of_another_ca_does_not_make_a_clip_trusted(tmp_path, small_clip, signer):
    out = tmp_path / "signed.mp4"
    sign_file(small_clip, out, _spec(), signer)
    stranger = init_keys(tmp_path / "stranger")
    assert verify(out, trust_anchors=stranger.root_cert, detect_watermark=False).status == "untrusted"


def test_altered_content_is_tampered(tmp_path, small_clip, signer, dev_keys):
    out = tmp_path / "signed.mp4"
    sign_file(small_clip, out, _spec(), signer)
    data = bytearray(out.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 500] ^= 0xFF
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    report = verify(tampered, trust_anchors=dev_keys.root_cert, detect_watermark=False)
    assert report.status == "tampered"
    assert "mismatch" in report.reason


def test_unsigned_and_unreadable(tmp_path, small_clip):
    assert verify(small_clip, detect_watermark=False).status == "unsigned"
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    assert verify(text).status == "unreadable"
    assert verify(tmp_path / "missing.mp4").status == "unreadable"
    assert verify(tmp_path).status == "unreadable"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert verify(junk).status == "unreadable"


def test_third_party_video_unsigned_then_trusted_once_signed(tmp_path, bbb_excerpt, signer, dev_keys):
    assert verify(bbb_excerpt, trust_anchors=dev_keys.root_cert).status == "unsigned"
    out = tmp_path / "bbb_signed.mp4"
    sign_file(bbb_excerpt, out, _spec(title="bbb_signed.mp4", soft_binding=None), signer)
    report = verify(out, trust_anchors=dev_keys.root_cert, detect_watermark=False)
    assert report.status == "trusted", report.reason


def test_reference_image_is_an_input_ingredient(tmp_path, small_clip, signer, dev_keys):
    from PIL import Image

    image = tmp_path / "reference.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(image)
    out = tmp_path / "i2v.mp4"
    sign_file(small_clip, out, _spec(reference_image=image), signer)
    report = verify(out, trust_anchors=dev_keys.root_cert, detect_watermark=False)
    assert report.status == "trusted"
    assert [(i.title, i.relationship) for i in report.ingredients] == [("reference.png", "inputTo")]


def test_failing_signing_callback_raises_signing_error(tmp_path, small_clip, dev_keys, signer):
    calls = {"n": 0}

    def flaky(data: bytes) -> bytes:
        calls["n"] += 1
        if calls["n"] > 1:  # the first call is the construction probe
            raise RuntimeError("KMS unavailable")
        return signer.sign(data)

    kms = Signer.from_callback(flaky, certificate_chain_pem=dev_keys.signer_cert.read_bytes())
    with pytest.raises(SigningError):
        sign_file(small_clip, tmp_path / "out.mp4", _spec(), kms)


def test_short_id_is_the_manifest_uuid_prefix():
    u = uuid.uuid4()
    spec = _spec(manifest_uuid=u)
    assert spec.manifest_label == f"urn:c2pa:{u}"
    assert spec.short_id == u.bytes[:8]


def test_keypaths_layout(tmp_path):
    p = KeyPaths.in_directory(tmp_path)
    assert not p.exist()
    assert p.signer_cert.name == "signer.pem" and p.root_cert.name == "root-ca.pem"
    shutil.rmtree(tmp_path)


@pytest.fixture(scope="module")
def marked_clip(tmp_path_factory):
    """A natural clip carrying the public watermark with payload 0xAA.. and one with an operator key."""
    from conftest import natural_frames

    from gen4sdk import media
    from watermark import Watermarker

    work = tmp_path_factory.mktemp("marked")
    frames = natural_frames(24, 360, 640)  # wiring test; the codec's size limits are tested in test_watermark
    public, operator = Watermarker.public(), Watermarker(key=b"operator secret")
    paths = {}
    for name, wm in (("public", public), ("operator", operator)):
        paths[name] = work / f"{name}.mp4"
        media.encode_video(
            wm.embed(frames, b"\xaa" * wm.payload_bytes), paths[name], fps=16, crf=18, preset="veryfast"
        )
    return paths


def test_watermark_disagreeing_with_soft_binding_is_reported(tmp_path, marked_clip, signer, dev_keys):
    out = tmp_path / "signed.mp4"
    sign_file(marked_clip["public"], out, _spec(), signer)  # the spec's soft binding says 0102030405060708
    report = verify(out, trust_anchors=dev_keys.root_cert)
    assert report.status == "trusted"  # the credentials themselves are intact
    assert report.watermark is not None and report.watermark.found
    assert report.watermark.payload == "aa" * 8 and report.watermark.matches_credentials is False
    assert any("does not match" in p for p in report.problems)

    agreeing = tmp_path / "agreeing.mp4"
    sb = SoftBinding(algorithm="com.gen4sdk.wm.v2", payload=b"\xaa" * 8, end_ms=1500)
    sign_file(marked_clip["public"], agreeing, _spec(soft_binding=sb), signer)
    good = verify(agreeing, trust_anchors=dev_keys.root_cert)
    assert good.watermark is not None and good.watermark.matches_credentials is True and not good.problems


def test_operator_watermark_needs_the_operator_key(marked_clip):
    assert verify(marked_clip["operator"]).status == "unsigned"  # the public key does not see it
    report = verify(marked_clip["operator"], watermark_keys=[b"operator secret"])
    assert report.status == "watermarked"
    assert (
        report.watermark is not None
        and report.watermark.key == "operator"
        and report.watermark.payload == "aa" * 8
    )
    assert verify(marked_clip["public"]).status == "watermarked"


def test_altered_manifest_is_tampered(tmp_path, small_clip, signer, dev_keys):
    out = tmp_path / "signed.mp4"
    sign_file(small_clip, out, _spec(), signer)
    data = out.read_bytes()
    commitment = ("cd" * 32).encode()
    assert data.count(commitment) == 1
    forged = tmp_path / "forged.mp4"
    forged.write_bytes(data.replace(commitment, ("ce" * 32).encode()))  # someone rewrites the lineage
    report = verify(forged, trust_anchors=dev_keys.root_cert, detect_watermark=False)
    assert report.status == "tampered", report.reason


def test_malformed_assertions_are_problems_not_crashes(tmp_path, small_clip, signer, dev_keys, monkeypatch):
    """Credentials are signed by whoever made the clip: fields in shapes gen4sdk never writes must not crash verify."""
    import gen4sdk.provenance.manifest as manifest_mod
    from gen4sdk.provenance.manifest import LINEAGE_LABEL, OWNERSHIP_LABEL, POLICY_LABEL

    real = manifest_mod.build_definition

    def forged(spec: ManifestSpec) -> dict:
        definition = real(spec)
        for a in definition["assertions"]:
            if a["label"] == OWNERSHIP_LABEL:
                a["data"]["author"] = ["mallory"]
            elif a["label"] == POLICY_LABEL:
                a["data"]["decisions"] = [{"outcome": "whatever"}]
            elif a["label"] == LINEAGE_LABEL:
                a["data"]["model"] = "not an object"
        return definition

    monkeypatch.setattr(manifest_mod, "build_definition", forged)
    out = tmp_path / "odd.mp4"
    sign_file(small_clip, out, _spec(), signer)
    report = verify(out, trust_anchors=dev_keys.root_cert, detect_watermark=False)
    assert report.status == "trusted"  # validly signed, just not in gen4sdk's shapes
    assert report.owner is None and report.lineage is None and report.policy == []
    assert {p.split(" in ")[0] for p in report.problems} == {
        "malformed owner",
        "malformed lineage",
        "malformed policy",
    }
    assert report.soft_binding is not None and report.soft_binding["payload"] == "0102030405060708"
