"""The examples run as documented: a partner app makes clips, a compliance officer audits them, a recipient verifies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, check=False)


def test_examples_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "partner"
    made = _run(str(EXAMPLES / "partner_app.py"), "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert "refused (SAFETY.INPUT.TEXT" in made.stdout
    clip = out / "user-1.mp4"
    assert clip.is_file()

    report = out / "audit.html"
    audited = _run(
        str(EXAMPLES / "compliance_audit.py"), "--store", str(out / "store.db"), "--clips", str(out),
        "--trust-anchors", str(out / "keys" / "root-ca.pem"), "--report", str(report),
    )  # fmt: skip
    assert audited.returncode == 0, audited.stderr
    assert report.is_file() and "user-1.mp4" in report.read_text()

    checked = _run(
        str(EXAMPLES / "verify_received.py"), str(clip), "--trust-anchors", str(out / "keys" / "root-ca.pem")
    )
    assert checked.returncode == 0, checked.stderr
    assert "trusted" in checked.stdout.lower()
