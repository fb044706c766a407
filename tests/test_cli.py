"""The gen4sdk command, run in-process through its entry point."""

from __future__ import annotations

import json

import pytest

import gen4sdk
from gen4sdk.cli import main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out)]) == 0
    return out


def test_demo_generates_a_trusted_clip_and_a_refusal(demo_dir, capsys):
    assert (demo_dir / "demo.mp4").is_file()
    assert not (demo_dir / "refused.mp4").exists()
    assert (demo_dir / "keys" / "root-ca.pem").is_file()
    code = main(["verify", str(demo_dir / "demo.mp4"), "--trust-anchors", str(demo_dir / "keys" / "root-ca.pem"), "--json"])
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
    assert main(["log", "verify", "--store", str(db), "--certificate", str(demo_dir / "keys" / "signer.pem")]) == 0
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
    assert main(["keys", "init", str(tmp_path / "k")]) == 1  # refuses to overwrite
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
    code = main(["log", "verify", "--store", str(demo_dir / "gen4sdk.db"), "--certificate", str(tmp_path / "x.pem")])
    assert code == 2 and "not found" in capsys.readouterr().err


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
