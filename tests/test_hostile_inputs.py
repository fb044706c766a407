"""Hostile inputs that once escaped as untyped errors or silent insecurity (issue 21, items 5 and 7)."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from compliance_helpers import record

import gen4sdk
from gen4sdk.cli import main
from gen4sdk.errors import KeyMaterialError, OutputError
from gen4sdk.provenance import init_keys
from gen4sdk.provenance import keys as keys_module


def test_keys_init_refuses_a_missing_or_empty_passphrase_variable(
    tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("G4_NOPE", raising=False)
    assert main(["keys", "init", str(tmp_path / "a"), "--passphrase-env", "G4_NOPE"]) == 2
    assert "G4_NOPE: the environment variable is not set" in capsys.readouterr().err
    monkeypatch.setenv("G4_EMPTY", "")
    assert main(["keys", "init", str(tmp_path / "b"), "--passphrase-env", "G4_EMPTY"]) == 2
    assert "is empty" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(KeyMaterialError, match="empty"):
        init_keys(tmp_path / "c", passphrase="")
    monkeypatch.setenv("G4_PASS", "correct horse")
    assert main(["keys", "init", str(tmp_path / "d"), "--passphrase-env", "G4_PASS"]) == 0
    assert b"ENCRYPTED" in (tmp_path / "d" / "signer.key").read_bytes()


@pytest.mark.parametrize("days", [0, 10_000_000, -5])
def test_keys_init_bounds_the_validity(tmp_path: Path, days: int, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyMaterialError, match="days"):
        init_keys(tmp_path / "k", days=days)
    assert main(["keys", "init", str(tmp_path / "k"), "--days", str(days)]) == 2
    assert "Traceback" not in capsys.readouterr().err and not (tmp_path / "k").exists()


def test_keys_init_leaves_no_half_made_folder(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A dangling link at the signer key's name: refused before the CA files are written.
    d = tmp_path / "dangling"
    d.mkdir()
    (d / "signer.key").symlink_to(tmp_path / "nowhere")
    with pytest.raises(KeyMaterialError, match="signer.key"):
        init_keys(d)
    assert sorted(p.name for p in d.iterdir()) == ["signer.key"] and not (tmp_path / "nowhere").exists()

    # A disk that fills after two files: the two are removed again.
    real_open = os.open
    calls = {"n": 0}

    def open_then_full(path, flags, mode=0o777):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(keys_module.os, "open", open_then_full)
    with pytest.raises(OutputError, match="space"):
        init_keys(tmp_path / "full")
    assert list((tmp_path / "full").iterdir()) == []


def test_keys_init_on_an_unwritable_location_is_typed(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match="cannot create the key directory"):
        init_keys(blocker / "keys")
    assert main(["keys", "init", str(blocker / "keys")]) == 1
    err = capsys.readouterr().err
    assert "OutputError" in err and "Traceback" not in err


def test_key_folders_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        paths = init_keys(tmp_path / "new" / "keys")
    finally:
        os.umask(old)
    assert stat.S_IMODE(paths.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.signer_key.stat().st_mode) == 0o600


def test_a_record_that_is_not_utf8_is_an_edit_not_a_crash(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store = gen4sdk.Store(tmp_path / "s.db", checkpoint_interval=None)
    for i in range(3):
        store.append(record(i))
    store.close()
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE audit_log SET record_json = CAST(X'7B22FF22' AS TEXT) WHERE seq = 2")
    report = gen4sdk.Store(store.path, read_only=True).verify_log()
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "edited")]
    for command in (["log", "export", "--store", str(store.path), "--out", str(tmp_path / "x.jsonl")],
                    ["log", "query", "--store", str(store.path)]):  # fmt: skip
        assert main(command) == 1, command
        err = capsys.readouterr().err
        assert "StoreError" in err and "Traceback" not in err
    assert not (tmp_path / "x.jsonl").exists()


def test_a_signed_clip_with_a_corrupted_moov_reads_tampered(tmp_path: Path) -> None:
    golden = Path(__file__).parent / "data" / "golden" / "0.1.0"
    data = bytearray((golden / "clip.mp4").read_bytes())
    at = data.find(b"moov")
    data[at + 100 : at + 140] = b"\xff" * 40  # box sizes inside the moov now point past the end of the file
    (tmp_path / "broken.mp4").write_bytes(bytes(data))
    report = gen4sdk.verify(tmp_path / "broken.mp4", trust_anchors=str(golden / "root-ca.pem"))
    assert report.status == "tampered" and "credentials present" in report.reason
    # The same damage to a clip without credentials is just unreadable.
    (tmp_path / "plain.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    assert gen4sdk.verify(tmp_path / "plain.mp4").status == "unreadable"


def test_frames_examined_are_bounded_by_pixels_before_decoding() -> None:
    from gen4sdk.errors import MediaError
    from gen4sdk.media import MAX_EXAMINED_PIXELS, VideoInfo, analysis_frames

    def info(w: int, h: int) -> VideoInfo:
        return VideoInfo(width=w, height=h, fps=8.0, frames=100, duration=12.5, codec="h264")

    assert analysis_frames(info(256, 144), 48) == 48  # ordinary clips: the frames asked for
    assert analysis_frames(info(4096, 4096), 100) == MAX_EXAMINED_PIXELS // (4096 * 4096) < 100
    assert analysis_frames(info(1920, 1080), 14400) == MAX_EXAMINED_PIXELS // (1920 * 1080)
    with pytest.raises(MediaError, match="16000x16000"):
        analysis_frames(info(16000, 16000), 2)


def test_verify_does_not_decode_frames_over_the_cap(tmp_path: Path, small_clip: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from gen4sdk import media
    from gen4sdk.errors import MediaError

    decoded: list[int] = []
    real_iter = media.iter_frames
    monkeypatch.setattr(media, "iter_frames", lambda *a, **k: decoded.append(1) or real_iter(*a, **k))
    monkeypatch.setattr(media, "MAX_FRAME_PIXELS", 100 * 100)  # the 256x144 test clip now counts as huge
    report = gen4sdk.verify(small_clip)
    assert report.status == "unreadable" and "over the 10000 pixels" in report.reason and decoded == []
    golden = Path(__file__).parent / "data" / "golden" / "0.1.0"
    signed = gen4sdk.verify(golden / "clip.mp4", trust_anchors=str(golden / "root-ca.pem"))
    assert signed.status == "trusted" and signed.watermark is None and decoded == []
    assert any("the watermark was not checked" in p for p in signed.problems)
    # The decoder's own check, for a stream whose header understates its frames.
    with pytest.raises(MediaError, match="over 100 pixels"):
        next(real_iter(small_clip, max_pixels=100))
