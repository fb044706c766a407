"""The light install (`pip install gen4sdk`, no `generate` extra): verify, audit, the log, keys, serve and watermark
detection work without torch and the models; everything that needs them raises MissingDependencyError naming the
extra, and the CLI says which one to install.

The clip is made here with the full install (the tiny model); the light features then run in a subprocess whose
import system refuses every package of the extra, as a light install would. The refusal is installed from a
``sitecustomize`` module, so the audit's worker processes get it too. benchmarks/install_size.py checks a real
light install in a fresh virtual environment.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gen4sdk
from gen4sdk._extras import DISTRIBUTIONS, EXTRAS, require
from gen4sdk.errors import MissingDependencyError, ModelLoadError

ROOT = Path(__file__).resolve().parents[1]

_BLOCKER = '''
import sys

BLOCKED = {blocked!r}


class _NotInstalled:
    """A meta path finder that answers for the generate extra's packages as if they were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (light install)", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
'''


def _blocked() -> list[str]:
    from light_install_checks import HEAVY

    return sorted(set(HEAVY) | set(EXTRAS["generate"]))


@pytest.fixture(scope="module")
def made_with_full_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import av

    from gen4sdk.models import tiny_model

    work = tmp_path_factory.mktemp("light")
    keys = gen4sdk.init_keys(work / "keys", organization="Light Install Test")
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)
    store = gen4sdk.Store(work / "gen4sdk.db", signer=signer)
    with gen4sdk.Client(model=tiny_model(), signer=signer, owner="Light Install Test", store=store) as client:
        client.generate(prompt="a red kite over green hills", output=work / "clip.mp4", num_frames=17, height=144,
                        width=256, fps=8, steps=2, seed=3)  # fmt: skip
    # the same clip without its credentials: remuxed, as `ffmpeg -c copy` would (the manifest box is not copied)
    with av.open(str(work / "clip.mp4")) as src, av.open(str(work / "stripped.mp4"), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
    return work


def _run_light(work: Path, blocked: list[str]) -> subprocess.CompletedProcess[str]:
    hook = work / "light-site"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(_BLOCKER.format(blocked=blocked))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), str(ROOT)]))
    return subprocess.run(
        [sys.executable, str(ROOT / "tests" / "light_install_checks.py"), str(work)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=300,
    )


def test_light_install_verifies_audits_serves_and_names_the_extra_elsewhere(
    made_with_full_install: Path,
) -> None:
    done = _run_light(made_with_full_install, _blocked())
    assert done.returncode == 0 and done.stdout.strip().endswith("LIGHT-INSTALL-OK"), (
        done.stdout + done.stderr
    )


def test_the_blocker_really_blocks(tmp_path: Path) -> None:
    # The proof above is only as good as its import hook: with it, `import torch` must fail.
    hook = tmp_path / "site"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_BLOCKER.format(blocked=["torch"]))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), str(ROOT)]))
    probe = (
        "import importlib.util, gen4sdk._extras as x\n"
        "print(x.installed('torch'), importlib.util.find_spec('numpy') is not None)\n"
        "import torch\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], check=False, capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.split() == ["False", "True"]
    assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr


def test_missing_dependency_error_names_the_extra_and_the_command() -> None:
    with pytest.raises(MissingDependencyError) as info:
        require("a feature", ["numpy", "gen4sdk_no_such_pkg"])
    exc = info.value
    assert exc.extra == "generate" and exc.missing == ["gen4sdk_no_such_pkg"]
    assert str(exc) == (
        "a feature cannot run: the 'generate' extra is not installed (missing: gen4sdk_no_such_pkg);"
        " install it with: pip install 'gen4sdk[generate]'"
    )
    # inside a policy check a missing model refuses with SAFETY.UNAVAILABLE (a ModelLoadError), and an import of
    # a feature's module fails as imports do
    assert (
        isinstance(exc, ModelLoadError)
        and isinstance(exc, ImportError)
        and isinstance(exc, gen4sdk.Gen4Error)
    )
    again = pickle.loads(pickle.dumps(exc))
    assert (again.feature, again.extra, again.missing, str(again)) == (
        exc.feature,
        exc.extra,
        exc.missing,
        str(exc),
    )
    require("numpy", ["numpy", "av"])  # installed: no error


def _canonical(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+(\[[^\]]*\])?", requirement.strip())
    assert name is not None, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def test_pyproject_extras_match_what_the_code_checks() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_canonical(r) for r in project["dependencies"]}
    extras = {k: [_canonical(r) for r in v] for k, v in project["optional-dependencies"].items()}
    generate = {_canonical(DISTRIBUTIONS[m]) for m in EXTRAS["generate"]}
    assert set(extras["generate"]) == generate
    assert not base & generate, "the light install must not pull the generate extra's packages"
    assert extras["all"] == ["gen4sdk[generate]", "gen4sdk[postgres]"]
    assert (
        extras["postgres"]
        == [_canonical(DISTRIBUTIONS[m]) for m in EXTRAS["postgres"]]
        == ["psycopg[binary]"]
    )
    assert "psycopg[binary]" not in base, "the light install opens SQLite stores only"
    # Ray: its own extra, in dev (its tests run in CI) but not in all (a client must match its cluster's Ray)
    assert [_canonical(DISTRIBUTIONS[m]) for m in EXTRAS["ray"]] == ["ray"]
    assert [_canonical(r) for r in extras["ray"]] == ["ray"] and "gen4sdk[ray]" in extras["dev"]
    assert "ray" not in base
    # the README's set-up command installs dev: everything permissive, the test tools, and the opt-in NudeNet
    assert "gen4sdk[all]" in extras["dev"] and "nudenet" in extras["dev"] and extras["nudenet"] == ["nudenet"]
    assert "nudenet" not in extras["generate"]
    torch = next(r for r in project["optional-dependencies"]["generate"] if _canonical(r) == "torch")
    assert torch.replace(" ", "") == "torch>=2.14"
