"""Batch audit: discovery, worker failures (hang, crash), JSON/CSV writers, and the HTML report in real chromium."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pytest
from compliance_helpers import make_signed_clips
from conftest import BBB

from gen4sdk.compliance import AuditReport, _audit, _audit_work, audit_directory, find_videos
from gen4sdk.types import VerificationReport


def _encode(path: Path, frames: int = 12, size: tuple[int, int] = (256, 144)) -> None:
    """A short real H.264 clip: the first frames of the Big Buck Bunny excerpt, scaled down."""
    w, h = size
    with av.open(str(path), "w") as out, av.open(str(BBB)) as src:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for n, frame in enumerate(src.decode(video=0)):
            if n >= frames:
                break
            small = frame.reformat(w, h, "yuv420p")
            small.pts = None  # let the encoder number frames at its own rate
            for packet in stream.encode(small):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit")
    _encode(root / "clip_a.mp4")
    (root / "sub").mkdir()
    _encode(root / "sub" / "clip_b.mov")
    shutil.copy(root / "clip_a.mp4", root / "sub" / "no_extension")  # found by sniffing
    (root / "junk.mp4").write_bytes(os.urandom(3000))  # a video by name only
    data = (root / "clip_a.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (root / "notes.txt").write_text("not a video")
    (root / ".hidden.mp4").write_bytes(b"")
    return root


def test_find_videos_by_extension_and_content(audit_dir: Path) -> None:
    names = sorted(p.relative_to(audit_dir).as_posix() for p in find_videos(audit_dir))
    assert names == ["clip_a.mp4", "junk.mp4", "sub/clip_b.mov", "sub/no_extension", "truncated.mp4"]


def test_audit_directory_reports_every_file(audit_dir: Path) -> None:
    report = audit_directory(audit_dir, workers=2, timeout=60, progress=False)
    by_name = {Path(e.path).name: e for e in report.entries}
    assert set(by_name) == {"clip_a.mp4", "clip_b.mov", "no_extension", "junk.mp4", "truncated.mp4"}
    assert by_name["junk.mp4"].status == "unreadable" and by_name["junk.mp4"].reason
    for name in ("clip_a.mp4", "clip_b.mov", "no_extension"):
        assert by_name[name].status == "unsigned", by_name[name]
        assert by_name[name].thumbnail and by_name[name].thumbnail.startswith("data:image/jpeg;base64,")
    assert sum(report.counts.values()) == 5
    assert set(report.counts) == {
        "trusted",
        "untrusted",
        "tampered",
        "recovered",
        "watermarked",
        "unsigned",
        "unreadable",
    }
    assert not report.ok


def test_hung_and_crashing_workers_become_entries(
    audit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    for name in ("hang.mp4", "crash.mp4", "fine1.mp4", "fine2.mp4", "fine3.mp4"):
        shutil.copy(audit_dir / "clip_a.mp4", root / name)

    def fake_verify(path: str, trust_anchors: object, store: object) -> VerificationReport:
        if Path(path).name == "hang.mp4":
            time.sleep(600)
        if Path(path).name == "crash.mp4":
            os._exit(3)  # a segfault in a native decoder looks the same to the pool
        return VerificationReport(path=path, status="unsigned", reason="fake")

    monkeypatch.setattr(_audit_work, "_verify_file", fake_verify)
    t0 = time.monotonic()
    report = audit_directory(root, workers=2, timeout=5.0, progress=False, thumbnails=False)
    assert time.monotonic() - t0 < 30
    by_name = {Path(e.path).name: e for e in report.entries}
    assert by_name["hang.mp4"].status == "unreadable" and "timed out" in by_name["hang.mp4"].reason
    assert by_name["crash.mp4"].status == "unreadable" and "crashed" in by_name["crash.mp4"].reason
    for name in ("fine1.mp4", "fine2.mp4", "fine3.mp4"):
        assert by_name[name].status == "unsigned", by_name[name]


def test_json_and_csv_writers(audit_dir: Path, tmp_path: Path) -> None:
    report = audit_directory(audit_dir, workers=1, progress=False, thumbnails=False)
    report.write_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert len(data["entries"]) == 5
    first = data["entries"][0]
    for key in ("path", "status", "signer", "owner", "lineage", "policy_outcome", "watermark", "problems"):
        assert key in first
    assert "thumbnail" not in first
    assert AuditReport.model_validate(data).counts == report.counts

    report.write_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == [e.path for e in report.entries]
    assert [r["status"] for r in rows] == [e.status for e in report.entries]

    with pytest.raises(Exception, match="cannot write"):
        report.write_csv(tmp_path / "missing" / "r.csv")
    assert not (tmp_path / "missing").exists()


def test_csv_cells_a_spreadsheet_would_run_are_inert(tmp_path: Path) -> None:
    from gen4sdk.compliance import AuditEntry

    hostile = AuditEntry(
        path="/clips/a.mp4", status="untrusted", owner='=HYPERLINK("http://evil.example","x")',
        signer="+cmd|' /C calc'!A0", lineage="@SUM(1)", reason="-2+3", watermark="not checked",
    )  # fmt: skip
    report = AuditReport(
        root="/clips", started_at="2026-01-01T00:00:00+00:00", seconds=0.0, workers=1,
        counts={"untrusted": 1}, entries=[hostile],
    )  # fmt: skip
    report.write_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["owner"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["signer"].startswith("'+") and row["lineage"] == "'@SUM(1)" and row["reason"] == "'-2+3"
    assert row["path"] == "/clips/a.mp4" and row["status"] == "untrusted"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("headless chromium is required for this test: apt-get install -y chromium")


def _chromium_args(user_dir: str) -> list[str]:
    return [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={user_dir}",
    ]


def test_html_report_renders_in_headless_chromium(audit_dir: Path, tmp_path: Path) -> None:
    report = audit_directory(audit_dir, workers=2, progress=False)
    html_path = tmp_path / "report.html"
    report.write_html(html_path)
    html = html_path.read_text()
    # Self-contained: no external fetches of any kind.
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert "<details>" in html

    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as user_dir:  # chromium helpers may linger
        dom = subprocess.run(
            [*_chromium_args(user_dir), "--dump-dom", html_path.as_uri()],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    assert dom.returncode == 0, dom.stderr[-2000:]
    rows = re.findall(r'<tr class="clip" data-status="([a-z]+)"', dom.stdout)
    assert sorted(rows) == sorted(e.status for e in report.entries)
    assert len(re.findall(r'<img alt="frame of', dom.stdout)) == 3
    for status, n in report.counts.items():
        assert re.search(rf'data-status="{status}"><div class="n">{n}</div>', dom.stdout)

    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as user_dir:  # chromium helpers may linger
        shot = tmp_path / "shot.png"
        subprocess.run(
            [*_chromium_args(user_dir), f"--screenshot={shot}", "--window-size=1280,900", html_path.as_uri()],
            capture_output=True,
            timeout=90,
            check=True,
        )
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (900, 1280)
    assert pixels.std() > 10  # not a blank page


def test_html_escapes_hostile_file_names(tmp_path: Path, audit_dir: Path) -> None:
    root = tmp_path / "x"
    root.mkdir()
    shutil.copy(audit_dir / "junk.mp4", root / "<img src=x onerror=alert(1)>.mp4")
    report = audit_directory(root, workers=1, progress=False)
    html = _audit.render_html(report)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_unreadable_file_gets_an_entry(tmp_path: Path, audit_dir: Path) -> None:
    root = tmp_path / "perm"
    root.mkdir()
    target = root / "locked.mp4"
    shutil.copy(audit_dir / "clip_a.mp4", target)
    if os.geteuid() == 0:
        # root reads anything: make the file vanish between discovery and verification instead.
        real_find = _audit.find_videos
        files = real_find(root)
        target.unlink()
        _audit_find = lambda _root: files
        mp = pytest.MonkeyPatch()
        mp.setattr(_audit, "find_videos", _audit_find)
        try:
            report = audit_directory(root, workers=1, progress=False)
        finally:
            mp.undo()
    else:
        target.chmod(0)
        report = audit_directory(root, workers=1, progress=False)
    (entry,) = report.entries
    assert entry.status == "unreadable" and "cannot read" in entry.reason


def test_audit_of_signed_tampered_and_stripped_clips(tmp_path: Path, dev_keys, signer) -> None:  # type: ignore[no-untyped-def]
    """End to end with real credentials: trusted, tampered, recovered (via the store) and unsigned in one folder."""
    from gen4sdk.compliance import Store

    clips = tmp_path / "clips"
    spec, jumbf = make_signed_clips(clips, signer)
    store = Store(tmp_path / "store.db")
    store.put_manifest(
        payload=spec.short_id, manifest_id=spec.manifest_label, manifest_store=jumbf, asset_sha256="00" * 32
    )

    report = audit_directory(clips, trust_anchors=str(dev_keys.root_cert), store=store, progress=False)
    by_name = {Path(e.path).name: e for e in report.entries}
    assert {n: e.status for n, e in by_name.items()} == {
        "signed.mp4": "trusted",
        "tampered.mp4": "tampered",
        "stripped.mp4": "recovered",
        "plain.mp4": "unsigned",
    }
    signed = by_name["signed.mp4"]
    assert signed.owner == "Acme Studios / alice" and signed.model == "gen4sdk/tiny"
    assert signed.manifest_id == spec.manifest_label and signed.watermark.startswith("found")
    assert "request req-1" in signed.lineage and signed.ai_generated
    assert str(store.path) in by_name["stripped.mp4"].lineage
    html = _audit.render_html(report)
    assert html.count('<tr class="clip"') == 4 and "Acme Studios / alice" in html


def test_bad_arguments_and_empty_directory(tmp_path: Path) -> None:
    from gen4sdk.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError):
        audit_directory(tmp_path / "missing", progress=False)
    with pytest.raises(InvalidRequestError):
        audit_directory(tmp_path, workers=0, progress=False)
    report = audit_directory(tmp_path, progress=False)
    assert report.entries == [] and not report.ok and sum(report.counts.values()) == 0
    assert "No video files found" in _audit.render_html(report)


# ------------------------------------------------------------------------------------------------ resume


def _second_run_verify(path: str, trust_anchors: object, store: object) -> VerificationReport:
    # marks every file the resumed run verifies again, so the test sees which ones it did
    return VerificationReport(path=path, status="tampered", reason="verified by the second run")


def test_resume_verifies_only_new_changed_and_unreadable_files(
    audit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "clips"
    shutil.copytree(audit_dir, root)
    first = audit_directory(root, workers=2, progress=False, thumbnails=False)
    first.write_json(tmp_path / "r.json")
    before = {Path(e.path).relative_to(root).as_posix(): e for e in first.entries}

    with open(root / "sub" / "clip_b.mov", "ab") as fh:  # changed: another size
        fh.write(b"\0")
    st = (root / "sub" / "no_extension").stat()  # changed: same size, another mtime
    os.utime(root / "sub" / "no_extension", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    shutil.copy(root / "clip_a.mp4", root / "new.mp4")
    monkeypatch.setattr(_audit_work, "_verify_file", _second_run_verify)
    # the same folder named another way: entries are matched relative to the root
    second = audit_directory(
        Path(os.path.relpath(root)), workers=2, progress=False, thumbnails=False, resume=tmp_path / "r.json"
    )
    after = {Path(e.path).relative_to(Path(os.path.relpath(root))).as_posix(): e for e in second.entries}

    assert second.resumed == 1
    assert after["clip_a.mp4"].status == "unsigned"
    assert after["clip_a.mp4"].model_dump(exclude={"path", "verification"}) == before[
        "clip_a.mp4"
    ].model_dump(exclude={"path", "verification"})
    assert (
        after["clip_a.mp4"].path
        == after["clip_a.mp4"].verification.path
        == str(Path(second.root) / "clip_a.mp4")
    )  # type: ignore[union-attr]
    # junk.mp4 and truncated.mp4 were unreadable: retried, like every changed or new file
    for name in ("sub/clip_b.mov", "sub/no_extension", "new.mp4", "junk.mp4", "truncated.mp4"):
        assert after[name].status == "tampered", name
        assert after[name].size == (Path(second.root) / name).stat().st_size
    assert second.counts["tampered"] == 5 and second.counts["unsigned"] == 1
    second.write_json(tmp_path / "r2.json")
    assert set(json.loads((tmp_path / "r2.json").read_text())) == set(
        json.loads((tmp_path / "r.json").read_text())
    )

    third = audit_directory(root, workers=2, progress=False, thumbnails=False, resume=tmp_path / "r2.json")
    assert third.resumed == 6 and third.counts == second.counts


def test_resume_refuses_a_report_it_cannot_trust(audit_dir: Path, tmp_path: Path) -> None:
    from gen4sdk.errors import InvalidRequestError

    root = tmp_path / "clips"
    root.mkdir()
    shutil.copy(audit_dir / "clip_a.mp4", root / "a.mp4")
    report = audit_directory(root, workers=1, progress=False, thumbnails=False)
    good = tmp_path / "r.json"
    report.write_json(good)
    data = json.loads(good.read_text())

    def refused(match: str, path: Path = good, **kwargs: object) -> None:
        with pytest.raises(InvalidRequestError, match=match) as info:
            audit_directory(kwargs.pop("root", root), progress=False, resume=path, **kwargs)  # type: ignore[arg-type]
        assert info.value.field == "resume"

    other = tmp_path / "other"
    other.mkdir()
    refused("audited .*clips, not .*other", root=other)
    refused("other trust anchors", trust_anchors=str(audit_dir / "clip_a.mp4"))
    refused("other profiles", profiles=["eu-ai-act"])
    refused("other store", store=str(tmp_path / "store.db"))
    (tmp_path / "cut.json").write_text(good.read_text()[:200])
    refused("not JSON", tmp_path / "cut.json")
    refused("cannot read", tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[]")
    refused("not a gen4sdk audit report", tmp_path / "list.json")
    for version, name in ((None, "v1.json"), (3, "v3.json")):
        old = {k: v for k, v in data.items() if k != "version"}
        if version is not None:
            old["version"] = version
        (tmp_path / name).write_text(json.dumps(old))
        refused(f"version {version or 1}, this gen4sdk resumes version 2", tmp_path / name)
    bad = dict(data, entries=[{"path": "x"}])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    refused("not a valid audit report", tmp_path / "bad.json")
    # the good report still resumes
    assert audit_directory(root, progress=False, resume=good).resumed == 1


def test_cli_audit_resume(audit_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gen4sdk.cli import EXIT_USAGE, main

    root = tmp_path / "clips"
    root.mkdir()
    shutil.copy(audit_dir / "clip_a.mp4", root / "a.mp4")
    shutil.copy(audit_dir / "clip_a.mp4", root / "b.mp4")
    report = tmp_path / "r.json"
    argv = ["audit", str(root), "--json", str(report), "--resume", "--workers", "1"]
    assert main(argv) == 1  # unsigned clips: the audit's failing exit status
    assert "does not exist yet" in capsys.readouterr().err
    shutil.copy(audit_dir / "clip_a.mp4", root / "c.mp4")
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "resumed: 2 of 3 files" in out and "unsigned: 3" in out
    assert json.loads(report.read_text())["resumed"] == 2
    assert main(["audit", str(root), "--resume"]) == EXIT_USAGE
    assert "--resume needs --json" in capsys.readouterr().err
