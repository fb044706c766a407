"""The batch audit on Ray: the same entries as the local pool, hung and crashing tasks as entries, and the extra
named when Ray is missing. One local Ray (2 CPUs, no dashboard) serves the whole session; nothing outside runs."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from test_compliance_audit import _encode

from gen4sdk.compliance import _audit_ray, _audit_work, audit_directory
from gen4sdk.errors import MissingDependencyError


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray-audit")
    _encode(root / "a.mp4")
    (root / "sub").mkdir()
    shutil.copy(root / "a.mp4", root / "sub" / "b.mp4")
    (root / "junk.mp4").write_bytes(os.urandom(3000))
    return root


def _comparable(report) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [e.model_dump(mode="json", exclude={"seconds"}) for e in report.entries]


def test_ray_gives_the_local_pools_entries_and_progress(
    ray_session: None, clips: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = audit_directory(clips, workers=2, progress=False)
    capsys.readouterr()
    on_ray = audit_directory(clips, workers=2, ray_address="auto", progress=True)
    assert _comparable(on_ray) == _comparable(local)
    assert (
        on_ray.counts == local.counts and on_ray.counts["unsigned"] == 2 and on_ray.counts["unreadable"] == 1
    )
    assert [bool(e.thumbnail) for e in on_ray.entries] == [True, False, True]
    assert "audit: 100%" in capsys.readouterr().err  # tqdm's bar, as the local pool shows it


def test_ray_hung_and_crashing_tasks_become_entries(ray_session: None, clips: Path, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    for name in ("hang.mp4", "crash.mp4", "fine1.mp4", "fine2.mp4"):
        shutil.copy(clips / "a.mp4", root / name)

    # defined here so Ray ships it to its workers by value (a test module is not importable there)
    def work(path: str, *args: object) -> object:
        if Path(path).name == "hang.mp4":
            time.sleep(600)
        if Path(path).name == "crash.mp4":
            os._exit(3)  # a segfault in a native decoder looks the same to Ray
        if Path(path).name == "fine2.mp4":
            raise ValueError("a verifier bug")
        return _audit_work._work(path, *args)

    class Bar:
        n = 0

        def update(self, k: int) -> None:
            self.n += k

    bar = Bar()
    files = sorted(root.iterdir())
    entries = dict(
        _audit_ray.run_on_ray(
            files, address="auto", trust_anchors=None, store=None, workers=2, timeout=8.0,
            thumbnails=False, progress=bar, work=work,
        )
    )  # fmt: skip
    by_name = {files[i].name: e for i, e in entries.items()}
    assert bar.n == 4 and len(by_name) == 4
    assert by_name["hang.mp4"].status == "unreadable" and "timed out after 8 s" in by_name["hang.mp4"].reason
    assert by_name["crash.mp4"].status == "unreadable" and "crashed" in by_name["crash.mp4"].reason
    assert by_name["fine2.mp4"].reason == "verification failed: ValueError: a verifier bug"
    assert by_name["fine1.mp4"].status == "unsigned"


def test_without_ray_the_extra_is_named(clips: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from gen4sdk import _extras
    from gen4sdk.cli import EXIT_USAGE, main

    real = _extras.installed
    monkeypatch.setattr(_extras, "installed", lambda m: m != "ray" and real(m))
    with pytest.raises(MissingDependencyError) as info:
        audit_directory(clips, ray_address="auto", progress=False)
    assert info.value.extra == "ray" and info.value.missing == ["ray"]
    assert main(["audit", str(clips), "--ray", "auto"]) == EXIT_USAGE
    assert "gen4sdk[ray]" in capsys.readouterr().err
