"""The README's promises hold: it opens with the two set-up commands, and its Python blocks run as they are.

Blocks fenced as plain ```python run, in order, each in a fresh interpreter, in one directory that holds the
development keys the guide tells the reader to make (`gen4sdk keys init keys`), so a later block may use what an
earlier one wrote (the verify block reads the partner block's clip), as a reader pasting them would. A block that
cannot run as written (it needs the reader's photos or a KMS) is fenced ```python no-run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

SETUP = [
    "```bash",
    'pip install -e ".[dev]" && gen4sdk demo --out demo-out',
    "python -m pytest -q",
    "```",
]

# An opening fence: three backticks and an info string (language, then optional words such as no-run).
_FENCE = re.compile(r"^```(\S*)(.*)$")


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(first line number, code, runnable) for every ```python block, in order."""
    blocks: list[tuple[int, str, bool]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"README.md:{start + 1}: a code block is never closed")
        i += 1
        if m.group(1) == "python":
            blocks.append((start + 2, "\n".join(body) + "\n", "no-run" not in m.group(2).split()))
    return blocks


def test_readme_starts_with_the_two_setup_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), "the README opens with its title"
    first = [line for line in lines[1:] if line.strip()][: len(SETUP)]
    assert first == SETUP


def test_block_parser_sees_fences_and_markers() -> None:
    text = "# t\n```python\na = 1\n```\n```\n```python\n```\n```python no-run\nb = c\n```\n"
    # the plain block's content is text, not an opening fence
    assert python_blocks(text) == [(3, "a = 1\n", True), (9, "b = c\n", False)]
    with pytest.raises(AssertionError, match="never closed"):
        python_blocks("```python\nx = 1\n")


def test_readme_python_blocks_run(tmp_path: Path) -> None:
    from gen4sdk.provenance import init_keys

    blocks = python_blocks(README.read_text(encoding="utf-8"))
    runnable = [(line, code) for line, code, run in blocks if run]
    # the partner-app and verify snippets at least; a README whose blocks were all marked no-run would test nothing
    assert len(runnable) >= 2, blocks

    init_keys(tmp_path / "keys", organization="Acme Studios")
    env = dict(os.environ)
    # the checkout under test first, whether or not it is the one pip installed
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    for line, code in runnable:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"README.md:{line}: the block failed\n{done.stdout}\n{done.stderr}"
