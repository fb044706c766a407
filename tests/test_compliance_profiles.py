"""Labelling-law profiles end to end: a Client held to all three profiles makes a clip that meets them (AIGC block
in the MP4 under the C2PA hard binding, visible label burned in and recorded, latent disclosure), and the checks
catch what breaks them: an edited or forged AIGC block, another provider, a configuration that cannot comply."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import av
import numpy as np
import pytest

import gen4sdk
from gen4sdk.compliance._aigc import parse_aigc, read_aigc
from gen4sdk.compliance._label import missing_characters, prepare_label
from gen4sdk.errors import ComplianceError, InvalidRequestError

ALL = ["eu-ai-act", "ca-sb-942", "cn-gb-45438"]
SMALL = {"num_frames": 33, "height": 144, "width": 256, "fps": 8.0, "steps": 2}
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
LATIN_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@pytest.fixture(scope="module")
def made(tmp_path_factory, signer, dev_keys):
    work = tmp_path_factory.mktemp("profiles")
    store = gen4sdk.Store(work / "store.db", signer=signer)
    with gen4sdk.Client(
        model="tiny",
        signer=signer,
        owner="Acme Studios",
        store=store,
        compliance=ALL,
        label=gen4sdk.VisibleLabel(),
    ) as client:
        assert client.compliance == ALL
        result = client.generate(
            prompt="a paper boat on a rainy street", output=work / "clip.mp4", seed=3, **SMALL
        )
    return work, result, store


def _check(path: Path, dev_keys, store=None, **kw) -> gen4sdk.ComplianceReport:
    return gen4sdk.check_compliance(path, ALL, trust_anchors=dev_keys.root_cert, store=store, **kw)


def _by_id(report: gen4sdk.ComplianceReport) -> dict[str, gen4sdk.RequirementCheck]:
    return {c.requirement: c for c in report.checks}


def _remux(src: Path, dst: Path, metadata: dict[str, str]) -> None:
    """Copy the video packets into a new MP4 (which drops the C2PA box) with the given container tags."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "use_metadata_tags"}) as out:
        out.metadata.update(metadata)
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)


def test_a_compliant_clip_meets_every_requirement_a_clip_can_show(made, dev_keys) -> None:
    _, result, store = made
    report = _check(result.path, dev_keys, store=store.path)
    assert report.verification.status == "trusted", report.verification.reason
    failing = [(c.requirement, c.why) for c in report.checks if c.scope == "clip" and c.status != "met"]
    assert report.ok and not failing, failing
    assert {c.profile for c in report.checks} == set(ALL)
    assert all(report.summary(p) == "met" for p in ALL)
    # operator duties are never claimed from a clip, except where the clip shows them (a recorded visible label)
    ops = {c.requirement: c.status for c in report.checks if c.scope == "operator"}
    assert ops["eu-ai-act.50-5.first-exposure"] == "not_checkable"
    assert ops["ca-sb-942.22757.3-a.manifest"] == "met"


def test_the_aigc_block_is_in_the_mp4_with_the_manifest_ids(made) -> None:
    _, result, _ = made
    finding = read_aigc(result.path)
    assert finding.present and not finding.problems
    manifest_uuid = result.manifest_id.removeprefix("urn:c2pa:")
    assert finding.block == {
        "Label": "1",
        "ContentProducer": "Acme Studios",
        "ProduceID": manifest_uuid,
        "ReservedCode1": result.watermark_payload,
        "ContentPropagator": "",
        "PropagateID": "",
        "ReservedCode2": "",
    }
    # the standard's form: a JSON object under the key AIGC, as QuickTime mdta metadata in moov/udta/meta
    data = result.path.read_bytes()
    assert b"mdtaAIGC" in data and b'{"Label":"1","ContentProducer":"Acme Studios"' in data


def test_credentials_carry_the_latent_disclosure_and_the_label_action(made, dev_keys) -> None:
    _, result, _ = made
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert)
    d = report.disclosure
    assert d is not None and d.profiles == ALL and d.provider == "Acme Studios"
    assert d.content_id == result.manifest_id and d.system_name == result.model.model_id
    assert result.model.weights_sha256 and result.model.weights_sha256[:16] in d.system_version
    assert d.aigc == read_aigc(result.path).block
    label = report.visible_label
    assert label is not None and label.text == "AI生成 AI-generated" and label.position == "top-left"
    assert label.start_s == 0 and label.end_s == 2.0 and label.height_fraction >= 0.05
    assert label.font == CJK_FONT.name


def test_the_label_is_in_the_first_two_seconds_only(made) -> None:
    _, result, _ = made
    with av.open(str(result.path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    # white text on a dark box in the top-left corner for 2 s (16 frames at 8 fps), then the picture alone
    corner = [f[3:16, 3:60].astype(int) for f in frames]
    white = [int((c.min(axis=2) > 200).sum()) for c in corner]  # all three channels bright: the text
    dark = [int((c.max(axis=2) < 70).sum()) for c in corner]  # all three dark: the box behind it
    assert all(w > 0 and d > 20 for w, d in zip(white[:16], dark[:16])), (white, dark)
    assert not any(white[16:]) and not any(dark[16:]), (white, dark)


def test_editing_the_aigc_block_after_signing_breaks_the_credentials(made, dev_keys, tmp_path) -> None:
    _, result, _ = made
    edited = tmp_path / "edited.mp4"
    data = result.path.read_bytes()
    assert data.count(b'"ContentProducer":"Acme Studios"') == 1
    edited.write_bytes(data.replace(b'"ContentProducer":"Acme Studios"', b'"ContentProducer":"Evil Studios"'))
    report = _check(edited, dev_keys)
    assert report.verification.status == "tampered"
    checks = _by_id(report)
    assert checks["cn-gb-45438.implicit-metadata"].status == "missing"
    assert "do not validate" in checks["cn-gb-45438.implicit-metadata"].why
    assert checks["cn-gb-45438.producer"].status == "met" or "Evil" in checks["cn-gb-45438.producer"].why
    assert not report.ok


def test_a_stripped_clip_keeps_its_block_and_recovers_its_manifest(made, dev_keys, tmp_path) -> None:
    _, result, store = made
    stripped = tmp_path / "stripped.mp4"
    _remux(result.path, stripped, {"AIGC": json.dumps(read_aigc(result.path).block)})
    report = _check(stripped, dev_keys, store=store.path)
    assert report.verification.status == "recovered", report.verification.problems
    checks = _by_id(report)
    assert checks["cn-gb-45438.implicit-metadata"].status == "met", checks[
        "cn-gb-45438.implicit-metadata"
    ].why
    assert checks["ca-sb-942.22757.3-b.permanent"].status == "met"


def test_a_forged_block_is_not_this_clips(made, dev_keys, bbb_excerpt, tmp_path) -> None:
    _, result, _ = made
    block = read_aigc(result.path).block
    assert block is not None
    # another manifest's id on this watermarked clip: the watermark says otherwise
    forged = tmp_path / "forged.mp4"
    _remux(result.path, forged, {"AIGC": json.dumps({**block, "ProduceID": str(uuid.uuid4())})})
    check = _by_id(_check(forged, dev_keys))["cn-gb-45438.implicit-metadata"]
    assert check.status == "missing" and "forged or copied" in check.why and "watermark" in check.why
    # our block copied onto a clip we never made (no credentials, no watermark)
    copied = tmp_path / "copied.mp4"
    _remux(bbb_excerpt, copied, {"AIGC": json.dumps(block)})
    report = _check(copied, dev_keys)
    assert report.verification.status == "unsigned"
    check = _by_id(report)["cn-gb-45438.implicit-metadata"]
    assert check.status == "missing" and "does not carry" in check.why
    # a malformed block
    broken = tmp_path / "broken.mp4"
    _remux(bbb_excerpt, broken, {"AIGC": json.dumps({"Label": "9", "ProduceID": "x"})})
    check = _by_id(_check(broken, dev_keys))["cn-gb-45438.implicit-metadata"]
    assert check.status == "missing" and "ContentProducer" in check.why and "none of 1, 2, 3" in check.why


def test_a_third_party_block_without_our_ids_is_met_but_unconfirmed(bbb_excerpt, dev_keys, tmp_path) -> None:
    theirs = {"Label": "1", "ContentProducer": "001191610133596325171T12566", "ProduceID": "BGVIDEO20250001",
              "ReservedCode1": "", "ContentPropagator": "", "PropagateID": "", "ReservedCode2": ""}  # fmt: skip
    clip = tmp_path / "theirs.mp4"
    _remux(bbb_excerpt, clip, {"AIGC": json.dumps(theirs, ensure_ascii=False)})
    checks = _by_id(_check(clip, dev_keys))
    assert checks["cn-gb-45438.implicit-metadata"].status == "met"
    assert "cannot be confirmed" in checks["cn-gb-45438.implicit-metadata"].why
    assert checks["cn-gb-45438.explicit-label"].status == "not_checkable"
    assert checks["eu-ai-act.50-2.machine-readable"].status == "missing"


def test_credentials_naming_another_provider(made, dev_keys) -> None:
    _, result, _ = made
    checks = _by_id(_check(result.path, dev_keys, expected_provider="Other Corp"))
    assert checks["ca-sb-942.22757.3-b.provider"].status == "missing"
    assert "'Acme Studios', not 'Other Corp'" in checks["ca-sb-942.22757.3-b.provider"].why
    assert checks["cn-gb-45438.producer"].status == "missing"
    # without the provider's trust anchors the name is only a claim
    untrusted = _by_id(gen4sdk.check_compliance(result.path, ["ca-sb-942"]))
    assert untrusted["ca-sb-942.22757.3-b.provider"].status == "not_checkable"
    assert "trust anchor" in untrusted["ca-sb-942.22757.3-b.provider"].why


def test_an_ordinary_clip_and_an_unreadable_file(small_clip, tmp_path) -> None:
    report = gen4sdk.check_compliance(small_clip, ["eu-ai-act"])
    assert report.verification.status == "unsigned" and not report.ok
    assert {c.status for c in report.checks if c.scope == "clip"} == {"missing"}
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    report = gen4sdk.check_compliance(junk, ["cn-gb-45438"])
    assert report.verification.status == "unreadable" and report.summary("cn-gb-45438") == "missing"


def test_unknown_profile_names_are_refused(small_clip, signer) -> None:
    with pytest.raises(ComplianceError, match="known profiles: eu-ai-act, ca-sb-942, cn-gb-45438") as info:
        gen4sdk.check_compliance(small_clip, ["eu-ai-act", "eu-ai-act-2"])
    assert info.value.profile == "eu-ai-act-2" and info.value.field == "compliance"
    with pytest.raises(ComplianceError):
        gen4sdk.Client(model="tiny", signer=signer, owner="A", compliance=["gdpr"])


@pytest.mark.parametrize(
    ("kwargs", "profile", "requirement", "words"),
    [
        ({"compliance": ["eu-ai-act"], "watermark_key": b"operator"}, "eu-ai-act", "eu-ai-act.50-2.detectable",
         "public detector"),
        ({"compliance": ["ca-sb-942"], "store": None}, "ca-sb-942", "ca-sb-942.22757.3-b.permanent", "store="),
        ({"compliance": ["cn-gb-45438"]}, "cn-gb-45438", "cn-gb-45438.explicit-label", "label=VisibleLabel"),
        ({"compliance": ["cn-gb-45438"], "label": gen4sdk.VisibleLabel(height=0.03)}, "cn-gb-45438",
         "cn-gb-45438.explicit-label", "5%"),
        ({"compliance": ["cn-gb-45438"], "label": gen4sdk.VisibleLabel(duration=1.0)}, "cn-gb-45438",
         "cn-gb-45438.explicit-label", "2 s"),
    ],
)  # fmt: skip
def test_a_configuration_that_cannot_comply_is_refused_at_construction(
    signer, tmp_path, kwargs, profile, requirement, words
) -> None:
    kwargs = {"store": tmp_path / "s.db", **kwargs}
    with pytest.raises(ComplianceError) as info:
        gen4sdk.Client(model="tiny", signer=signer, owner="Acme", **kwargs)
    assert info.value.profile == profile and info.value.requirement == requirement
    assert words in str(info.value)
    assert not (tmp_path / "s.db").exists()  # refused before anything was made


def test_an_explicit_public_watermarker_is_accepted_and_an_operator_one_refused(signer, tmp_path) -> None:
    from watermark import Watermarker

    client = gen4sdk.Client(model="tiny", signer=signer, owner="A", compliance=["eu-ai-act"],
                            watermarker=Watermarker.public())  # fmt: skip
    assert client.compliance == ["eu-ai-act"]
    with pytest.raises(ComplianceError, match="public detector"):
        gen4sdk.Client(model="tiny", signer=signer, owner="A", compliance=["eu-ai-act"],
                       watermarker=Watermarker(key=b"operator"))  # fmt: skip


def test_label_fonts(signer) -> None:
    assert missing_characters(LATIN_FONT, "AI生成") == ["生", "成"]
    assert missing_characters(CJK_FONT, "AI生成 AI-generated") == []
    # a font named by the caller that cannot draw the text: refused with what to install
    with pytest.raises(InvalidRequestError, match="fonts-noto-cjk") as info:
        prepare_label(gen4sdk.VisibleLabel(text="AI生成", font=LATIN_FONT))
    assert info.value.field == "label.text"
    # a character no installed font has (a private-use code point): refused when the Client is made
    with pytest.raises(InvalidRequestError, match="no installed font") as info:
        gen4sdk.Client(
            model="tiny", signer=signer, owner="A", label=gen4sdk.VisibleLabel(text="AI \U000f0001")
        )
    assert info.value.field == "label.text"
    with pytest.raises(InvalidRequestError) as info:
        prepare_label(gen4sdk.VisibleLabel(font=Path("/nonexistent/font.ttf")))
    assert info.value.field == "label.font"
    # Latin text needs no CJK font
    assert prepare_label(gen4sdk.VisibleLabel(text="AI-generated")).font_path.is_file()


def test_label_rendering_follows_position_and_size() -> None:
    from gen4sdk.compliance._label import burn_label

    frames = np.zeros((10, 120, 200, 3), np.uint8)
    prepared = prepare_label(gen4sdk.VisibleLabel(text="AI", position="bottom-right", height=0.2, duration=0.5,
                                                  font=LATIN_FONT, background=None))  # fmt: skip
    out, record = burn_label(frames, prepared, fps=10)
    assert record.end_s == 0.5 and record.height_fraction >= 0.2
    lit = np.argwhere(out[0].max(axis=2) > 128)
    assert lit[:, 0].min() > 60 and lit[:, 1].min() > 100  # in the bottom-right quarter
    assert out[5:].max() == 0  # after 0.5 s nothing is drawn


def test_parse_aigc_reports_each_problem() -> None:
    assert parse_aigc("{not json").problems[0].startswith("the AIGC entry is not JSON")
    assert parse_aigc("[1]").problems == ["the AIGC entry is not a JSON object"]
    problems = parse_aigc(json.dumps({"Label": 1, "Extra": "x"})).problems
    assert any("lacks ContentProducer" in p for p in problems)
    assert any("not define: Extra" in p for p in problems)
    assert any("not strings: Label" in p for p in problems)


def test_a_copy_of_the_clip_is_still_compliant(made, dev_keys, tmp_path) -> None:
    # the hard binding is over the content, not the file name or place
    _, result, store = made
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(result.path, copy)
    assert _check(copy, dev_keys, store=store.path).ok


def test_audit_reports_a_column_and_a_count_per_profile_in_chromium(
    made, dev_keys, bbb_excerpt, tmp_path
) -> None:
    import re
    import subprocess
    import tempfile

    from test_compliance_audit import _chromium_args

    _, result, store = made
    root = tmp_path / "clips"
    root.mkdir()
    shutil.copyfile(result.path, root / "ours.mp4")
    shutil.copyfile(bbb_excerpt, root / "theirs.mp4")
    (root / "junk.mp4").write_bytes(b"not a video")
    report = gen4sdk.audit_directory(
        root, trust_anchors=dev_keys.root_cert, store=store.path, workers=1, progress=False, profiles=ALL
    )
    by_name = {Path(e.path).name: e for e in report.entries}
    assert by_name["ours.mp4"].compliance == {p: "met" for p in ALL}
    assert by_name["theirs.mp4"].compliance["eu-ai-act"] == "missing"
    assert by_name["junk.mp4"].compliance == {p: "missing" for p in ALL}
    assert report.compliance_counts["eu-ai-act"] == {"met": 1, "missing": 2, "not_checkable": 0}
    assert report.compliance_counts["cn-gb-45438"] == {"met": 1, "missing": 2, "not_checkable": 0}
    with pytest.raises(ComplianceError):
        gen4sdk.audit_directory(root, progress=False, profiles=["nope"])

    html_path = tmp_path / "report.html"
    report.write_html(html_path)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as user_dir:  # chromium helpers may linger
        dom = subprocess.run(
            [*_chromium_args(user_dir), "--dump-dom", html_path.as_uri()],
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    headers = re.findall(r"<th>([^<]+)</th>", dom.stdout)
    assert headers[-3:] == ALL
    cells = re.findall(r'<td data-profile="([a-z0-9-]+)"><span class="badge c-([a-z_]+)">', dom.stdout)
    assert sorted(cells) == sorted((p, e.compliance[p]) for e in report.entries for p in ALL)
    for p in ALL:
        card = re.search(rf'data-profile="{p}"><h2>{p}</h2>(.*?)</div>', dom.stdout)
        assert card is not None and "1 met" in card.group(1) and "2 missing" in card.group(1)
    assert "Profile requirements not met" in dom.stdout and "cn-gb-45438.implicit-metadata" in dom.stdout
