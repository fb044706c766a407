"""The gen4sdk command, run in-process through its entry point."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gen4sdk
from gen4sdk._cli_args import build_parser
from gen4sdk.cli import _HANDLERS, main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out)]) == 0
    return out


def test_demo_generates_a_trusted_clip_and_a_refusal(demo_dir, capsys):
    assert (demo_dir / "demo.mp4").is_file()
    assert not (demo_dir / "refused.mp4").exists()
    assert (demo_dir / "keys" / "root-ca.pem").is_file()
    code = main(
        [
            "verify",
            str(demo_dir / "demo.mp4"),
            "--trust-anchors",
            str(demo_dir / "keys" / "root-ca.pem"),
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["status"] == "trusted"
    assert report["watermark"]["found"] and report["watermark"]["matches_credentials"]


def test_demo_again_reuses_keys_and_appends_to_the_store(demo_dir, capsys, tmp_path):
    db = demo_dir / "gen4sdk.db"
    before = (demo_dir / "keys" / "signer.key").read_bytes()
    n_before = len(gen4sdk.Store(db, create=False))
    assert n_before >= 2  # one allowed, one refused
    capsys.readouterr()
    assert main(["demo", "--out", str(demo_dir)]) == 0
    assert "reusing development keys" in capsys.readouterr().out
    assert (demo_dir / "keys" / "signer.key").read_bytes() == before
    assert len(gen4sdk.Store(db, create=False)) == n_before + 2
    assert main(["log", "verify", "--store", str(db)]) == 0
    # Pinned to the operator's certificate the checkpoints verify; pinned to a stranger's they do not.
    assert (
        main(["log", "verify", "--store", str(db), "--certificate", str(demo_dir / "keys" / "signer.pem")])
        == 0
    )
    stranger = gen4sdk.init_keys(tmp_path / "stranger")
    assert main(["log", "verify", "--store", str(db), "--certificate", str(stranger.signer_cert)]) == 1


def test_verify_exit_codes(demo_dir, bbb_excerpt, tmp_path, capsys):
    assert main(["verify", str(bbb_excerpt), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "unsigned"
    # Without the operator's anchor the demo clip is intact but untrusted: exit 1.
    assert main(["verify", str(demo_dir / "demo.mp4")]) == 1
    assert "UNTRUSTED" in capsys.readouterr().out
    assert main(["verify", str(demo_dir / "demo.mp4"), "--trust-anchors", str(tmp_path / "none.pem")]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["verify"])
    assert usage.value.code == 2


def test_keys_init_and_policy_check(tmp_path, capsys):
    assert main(["keys", "init", str(tmp_path / "k"), "--organization", "Acme"]) == 0
    assert (tmp_path / "k" / "signer.key").stat().st_mode & 0o777 == 0o600
    assert (
        main(["keys", "init", str(tmp_path / "k")]) == 2
    )  # refuses to overwrite: the directory given is at fault
    assert main(["policy", "check", "a watercolor of a lighthouse"]) == 0
    assert main(["policy", "check", "a sexual video of a 12 year old child"]) == 1


def test_generate_writes_a_signed_clip_and_checkpoints_the_log(demo_dir, tmp_path, capsys):
    keys = gen4sdk.provenance.KeyPaths.in_directory(demo_dir / "keys")
    db = tmp_path / "store.db"
    out = tmp_path / "cli.mp4"
    common = ["generate", "--model", "tiny", "--cert", str(keys.signer_cert), "--key", str(keys.signer_key),
              "--owner", "Acme Studios", "--store", str(db), "--frames", "9", "--steps", "2"]  # fmt: skip
    code = main([*common, "--prompt", "a lighthouse at dusk", "--out", str(out), "--user", "u1", "--use", "ads",
                 "--disclose-prompt", "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["path"] == str(out) and out.is_file()
    report = gen4sdk.verify(out, trust_anchors=keys.root_cert)
    assert report.status == "trusted" and report.lineage is not None
    assert report.lineage.prompt == "a lighthouse at dusk"  # --disclose-prompt puts the plaintext in
    store = gen4sdk.Store(db, create=False)
    # the client was closed on exit: a signed checkpoint covers the new record
    check = store.verify_log()
    assert check.ok and check.checkpoints >= 1 and check.unprotected_tail == 0
    assert main([*common, "--prompt", "a naked woman", "--out", str(tmp_path / "no.mp4")]) == 1
    assert not (tmp_path / "no.mp4").exists()
    assert [e.record.outcome for e in store.records()] == ["allowed", "refused"]


def test_log_verify_with_a_missing_certificate_is_a_usage_error(demo_dir, tmp_path, capsys):
    code = main(
        ["log", "verify", "--store", str(demo_dir / "gen4sdk.db"), "--certificate", str(tmp_path / "x.pem")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "x.pem does not exist" in err and "--certificate" in err


def test_log_query_filters_and_writes_csv(demo_dir, capsys):
    import csv
    import io

    db = str(demo_dir / "gen4sdk.db")
    capsys.readouterr()
    assert main(["log", "query", "--store", db, "--outcome", "refused", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and {r["outcome"] for r in rows} == {"refused"}
    assert all("sexual_minors" in r["categories"].split() for r in rows)  # the demo's refused request
    assert main(["log", "query", "--store", db, "--category", "sexual_minors", "--json", "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["record"]["outcome"] == "refused"
    assert main(["log", "query", "--store", db, "--since", "not a time"]) == 2


# --- a newcomer's friction (issue 23) ------------------------------------------------------------------------------
def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def test_every_help_is_plain_text_and_documents_each_option_and_its_default():
    seen = 0
    for path, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert not re.search(r"``|:(func|class|meth|mod|attr):", text), (path, text)  # no RST markup
        if parser.get_default("handler") is None:
            continue  # a group (keys, log, policy) or the top level, which lists commands
        seen += 1
        assert parser.get_default("handler") in _HANDLERS, path
        assert "exit codes:" in text and "example" in text, path
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            assert action.help, (path, action.dest)
            if action.option_strings and action.default not in (None, False):
                assert "%(default)" in action.help, (path, action.dest)  # shown, not guessed
    assert seen == len(_HANDLERS) == 18
    top = build_parser().format_help()
    assert "exit codes:" in top and "141" in top and "gen4sdk verify" in top


@pytest.mark.parametrize(
    "content", [None, "meeting notes, no certificate here\n", "-----BEGIN CERTIFICATE-----\nAAAA\n"]
)
def test_verify_with_unusable_trust_anchors_is_a_usage_error_naming_the_file(
    demo_dir, tmp_path, capsys, content
):
    anchors = tmp_path / "notes.txt"
    if content is not None:
        anchors.write_text(content)
    capsys.readouterr()
    code = main(["verify", str(demo_dir / "demo.mp4"), "--trust-anchors", str(anchors), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and str(anchors) in err and "--trust-anchors" in err
    assert out == ""  # the clip is not blamed (no "unreadable" report)


def test_verify_with_a_missing_store_is_a_usage_error_and_creates_nothing(demo_dir, tmp_path, capsys):
    missing = tmp_path / "missing.db"
    for command in (["verify", str(demo_dir / "demo.mp4")], ["audit", str(demo_dir)], ["log", "verify"]):
        capsys.readouterr()
        assert main([*command, "--store", str(missing)]) == 2, command
        assert str(missing) in capsys.readouterr().err
    assert not missing.exists()


def _generate_args(demo_dir: Path, out: Path, *extra: str) -> list[str]:
    keys = gen4sdk.provenance.KeyPaths.in_directory(demo_dir / "keys")
    return ["generate", "--model", "tiny", "--cert", str(keys.signer_cert), "--key", str(keys.signer_key),
            "--owner", "Acme Studios", "--frames", "9", "--steps", "2", "--out", str(out), *extra]  # fmt: skip


def test_generate_keeps_an_audit_log_by_default_and_warns_without_one(demo_dir, tmp_path, capsys):
    refused = ["--prompt", "a sexual video of a 12 year old child"]  # refused before any GPU work: fast
    default_dir, opt_out_dir = tmp_path / "default", tmp_path / "opt-out"
    default_dir.mkdir()
    opt_out_dir.mkdir()
    assert main(_generate_args(demo_dir, default_dir / "clip.mp4", *refused)) == 1
    records = gen4sdk.Store(default_dir / "gen4sdk.db", create=False).records()
    assert [e.record.outcome for e in records] == ["refused"]  # the refusal is on record without --store
    capsys.readouterr()
    assert main(_generate_args(demo_dir, opt_out_dir / "clip.mp4", "--no-store", *refused)) == 1
    assert "--store" in capsys.readouterr().err.split("warning:", 1)[1]
    assert list(opt_out_dir.iterdir()) == []
    with pytest.raises(SystemExit) as both:
        main(_generate_args(demo_dir, opt_out_dir / "clip.mp4", "--no-store", "--store", "x.db", *refused))
    assert both.value.code == 2


@pytest.fixture
def no_model_load(monkeypatch):
    def fail(**kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(gen4sdk, "Client", fail)


def test_a_missing_output_directory_is_reported_before_the_model_loads(
    demo_dir, tmp_path, capsys, no_model_load
):
    out = tmp_path / "no-such-dir" / "clip.mp4"
    assert main(_generate_args(demo_dir, out, "--prompt", "a lighthouse")) == 2
    assert str(out.parent) in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "no-such-dir" / "demo")]) == 2
    assert "no-such-dir" in capsys.readouterr().err and not out.parent.exists()


def test_bad_input_exits_2_and_a_refusal_exits_1(demo_dir, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    assert main(_generate_args(demo_dir, out, "--prompt", "a lighthouse", "--frames", "10")) == 2  # not 4k+1
    bad_model = _generate_args(demo_dir, out, "--prompt", "a lighthouse")
    bad_model[bad_model.index("tiny")] = str(tmp_path / "no-such-model")
    capsys.readouterr()
    assert main(bad_model) == 2
    assert "'tiny'" in capsys.readouterr().err  # the message lists what --model accepts
    assert main(_generate_args(demo_dir, out, "--prompt", "a naked woman")) == 1
    assert not out.exists()


def test_verify_into_a_closed_pipe_exits_quietly(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte, as head is after its first line
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "gen4sdk.cli", "verify", str(notes), str(notes)],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300,
            cwd=Path(gen4sdk.__file__).resolve().parents[1], check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 141


# The API gets the tiny model by name, as the CLI's --model does.
def test_client_accepts_the_tiny_model_by_name(demo_dir, tmp_path):
    keys = gen4sdk.provenance.KeyPaths.in_directory(demo_dir / "keys")
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)
    with gen4sdk.Client(model="tiny", signer=signer, owner="Acme Studios") as client:
        result = client.generate(
            prompt="a lighthouse at dusk", output=tmp_path / "t.mp4", num_frames=9, steps=2
        )
    assert result.model.model_id == gen4sdk.models.TINY_MODEL_ID and result.path.is_file()
    with pytest.raises(gen4sdk.ModelLoadError, match=r"'tny'.*'tiny', 'tiny-i2v'"):
        gen4sdk.Client(model="tny", signer=signer, owner="Acme Studios")


def test_comply_check_lists_each_requirement_and_exits_like_verify(demo_dir, bbb_excerpt, tmp_path, capsys):
    keys = gen4sdk.provenance.KeyPaths.in_directory(demo_dir / "keys")
    db, out = tmp_path / "store.db", tmp_path / "labelled.mp4"
    code = main(["generate", "--model", "tiny", "--cert", str(keys.signer_cert), "--key", str(keys.signer_key),
                 "--owner", "Acme Studios", "--store", str(db), "--frames", "17", "--fps", "8", "--steps", "2",
                 "--prompt", "a lighthouse at dusk", "--out", str(out), "--compliance", "cn-gb-45438",
                 "--compliance", "ca-sb-942", "--label", "AI生成"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    anchors = ["--trust-anchors", str(keys.root_cert)]
    assert (
        main(["comply", "check", str(out), "--profile", "cn-gb-45438", "--profile", "ca-sb-942", *anchors])
        == 0
    )
    text = capsys.readouterr().out
    assert f"{out}: MEETS cn-gb-45438, ca-sb-942" in text
    assert (
        "met           cn-gb-45438.implicit-metadata" in text
        and "not checkable cn-gb-45438.user-agreement" in text
    )
    # the demo's clip has credentials but no AIGC block and no visible label; a stranger's clip has nothing
    code = main(["comply", "check", str(demo_dir / "demo.mp4"), str(bbb_excerpt), "--profile", "cn-gb-45438",
                 *anchors, "--json"])  # fmt: skip
    reports = json.loads(capsys.readouterr().out)
    assert code == 1 and [r["verification"]["status"] for r in reports] == ["trusted", "unsigned"]
    missing = {c["requirement"] for c in reports[0]["checks"] if c["status"] == "missing"}
    assert missing == {"cn-gb-45438.implicit-metadata", "cn-gb-45438.producer", "cn-gb-45438.explicit-label"}
    # another provider than the one expected
    assert main(["comply", "check", str(out), "--profile", "ca-sb-942", "--provider", "Other", *anchors]) == 1
    assert "'Acme Studios', not 'Other'" in capsys.readouterr().out
    # an unknown profile is a usage error that names the known ones; so is a profile the configuration cannot meet
    assert main(["comply", "check", str(out), "--profile", "eu-ai-act-2"]) == 2
    assert "known profiles: eu-ai-act, ca-sb-942, cn-gb-45438" in capsys.readouterr().err
    gen_args = _generate_args(
        demo_dir, tmp_path / "x.mp4", "--prompt", "a lighthouse", "--compliance", "cn-gb-45438"
    )
    assert main(gen_args) == 2
    assert "ComplianceError" in capsys.readouterr().err and not (tmp_path / "x.mp4").exists()
    too_long = _generate_args(demo_dir, tmp_path / "x.mp4", "--prompt", "a lighthouse", "--label", "x" * 201)
    assert main(too_long) == 2
    assert "--label: String should have at most 200 characters" in capsys.readouterr().err


def test_audit_with_profiles_counts_them(demo_dir, tmp_path, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "demo.mp4").write_bytes((demo_dir / "demo.mp4").read_bytes())
    csv_path = tmp_path / "a.csv"
    code = main(["audit", str(clips), "--profile", "eu-ai-act", "--profile", "cn-gb-45438", "--workers", "1",
                 "--csv", str(csv_path), "--trust-anchors", str(demo_dir / "keys" / "root-ca.pem")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0  # the audit's exit code is verify's: the clip is trusted
    assert "eu-ai-act: met 1, missing 0, not checkable 0" in out and "cn-gb-45438: met 0, missing 1" in out
    header, row = csv_path.read_text().splitlines()[:2]
    assert header.endswith(",eu-ai-act,cn-gb-45438") and row.endswith(",met,missing")


def test_the_cli_names_every_compliance_profile():
    from typing import get_args

    from gen4sdk._cli_args import _PROFILE_NAMES

    assert _PROFILE_NAMES.split(", ") == list(get_args(gen4sdk.ComplianceProfile))


def test_the_cli_names_every_watermark_strength_and_its_default():
    from gen4sdk._cli_args import _DEFAULT_WATERMARK_STRENGTH, _WATERMARK_STRENGTHS
    from watermark import DEFAULT_STRENGTH, STRENGTHS

    assert _WATERMARK_STRENGTHS == STRENGTHS and _DEFAULT_WATERMARK_STRENGTH == DEFAULT_STRENGTH
