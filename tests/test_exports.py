"""The public surface, in the manner of httpx's test of its exported members.

Public are the package root and the modules that define what it re-exports (``gen4sdk.types``,
``gen4sdk.errors``); ``gen4sdk.policy`` keeps its own ``__all__`` for pack authors and ``gen4sdk.server`` its own
for operators of the job service. Everything else (the
subpackages' internals, anything under a ``_`` name) is private: tests and benchmarks may reach into it, the CLI
and the examples may not, because they are what users copy.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import types
from pathlib import Path

import pytest

import gen4sdk

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ["gen4sdk", "gen4sdk.types", "gen4sdk.errors"]
# modules whose names users may import besides the package root's
IMPORTABLE = {m: importlib.import_module(m) for m in [*PUBLIC, "gen4sdk.policy", "gen4sdk.server"]}
# names whose value is not a class or function, so has no __module__ of its own
_DUNDER_EXPORTS = {"__version__"}


@pytest.mark.parametrize("module", [*PUBLIC, "gen4sdk.policy", "gen4sdk.server"])
def test_every_exported_name_resolves_and_public_names_are_exported(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name
    assert sorted(mod.__all__) == sorted(set(mod.__all__)), "duplicates in __all__"
    public = {
        n
        for n, v in vars(mod).items()
        if not n.startswith("_")
        and not isinstance(v, types.ModuleType)
        and getattr(v, "__module__", module).startswith(module)
    }
    assert public <= set(mod.__all__) | {"annotations", "logger", "TYPE_CHECKING"}, public - set(mod.__all__)


def test_the_root_exports_exactly_its_public_names() -> None:
    # like httpx: __all__ is every non-underscore name the root binds, lazily loaded ones included
    bound = {n for n in vars(gen4sdk) if not n.startswith("_")} - {"TYPE_CHECKING", "Any"}
    bound -= {n for n, v in vars(gen4sdk).items() if isinstance(v, types.ModuleType)}
    lazy = set(vars(gen4sdk)["_LAZY"])
    assert set(gen4sdk.__all__) == bound | lazy | _DUNDER_EXPORTS
    assert gen4sdk.__all__ == sorted(gen4sdk.__all__), "keep __all__ sorted"


@pytest.mark.parametrize("module", PUBLIC)
def test_exported_names_are_documented_where_they_are_defined(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert not name.startswith("_") or name in _DUNDER_EXPORTS, (
            f"private name {name} exported by {module}"
        )
        value = getattr(mod, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        # defined in gen4sdk, not a third party's object passed through
        assert value.__module__.split(".")[0] == "gen4sdk", f"{module}.{name} comes from {value.__module__}"
        home = sys.modules[value.__module__]
        # the defining module declares it public too, so the reference docs find it where it lives
        assert name in getattr(home, "__all__", ()), f"{name} is not in {value.__module__}.__all__"
        doc = value.__dict__.get("__doc__") if inspect.isclass(value) else value.__doc__
        assert doc and doc.strip(), f"{module}.{name} ({value.__module__}) has no docstring"


def _imports_of(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, name, line) for each gen4sdk import of a file, and ("gen4sdk", attr, line) for gen4sdk.attr."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("gen4sdk"):
            found += [(node.module or "", a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names if a.name.startswith("gen4sdk")]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "gen4sdk"
        ):
            found.append(("gen4sdk", node.attr, node.lineno))
    return found


# The command line is split in three files: cli.py (the commands), _cli_args.py (its argument parser, help texts
# and nothing else) and _cli_output.py (how results are printed for people); both are the CLI's own halves, not
# library modules the CLI reaches into.
_CLI_OWN = {"gen4sdk._cli_args", "gen4sdk._cli_output", "gen4sdk._cli_checks", "gen4sdk._cli_serve"}


def _private_uses(path: Path) -> list[str]:
    bad = []
    for module, name, line in _imports_of(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        if path.name.startswith(("cli.py", "_cli_")) and module in _CLI_OWN:
            continue
        if module not in IMPORTABLE:
            bad.append(f"{where} imports {module}")
        elif name is not None and name not in IMPORTABLE[module].__all__:
            bad.append(f"{where} uses {module}.{name}")
    return bad


def test_the_check_sees_private_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import gen4sdk\nfrom gen4sdk.provenance.manifest import sign_file\n"
        "def f():\n    from gen4sdk.compliance import Store\n    return gen4sdk._LAZY, gen4sdk.verify\n",
        encoding="utf-8",
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = _private_uses(bad)
    finally:
        ROOT = saved
    assert found == [
        "bad.py:2 imports gen4sdk.provenance.manifest",
        "bad.py:4 imports gen4sdk.compliance",
        "bad.py:5 uses gen4sdk._LAZY",
    ]


CLI_FILES = [
    ROOT / "gen4sdk" / "cli.py",
    ROOT / "gen4sdk" / "_cli_serve.py",
    ROOT / "gen4sdk" / "_cli_checks.py",
]


@pytest.mark.parametrize("path", [*sorted((ROOT / "examples").glob("*.py")), *CLI_FILES])
def test_examples_and_cli_use_only_public_names(path: Path) -> None:
    assert not _private_uses(path)


def test_refusal_codes_are_a_closed_set() -> None:
    from typing import get_args

    codes = set(get_args(gen4sdk.RefusalCode))
    assert {"SAFETY.INPUT.TEXT", "SAFETY.INPUT.IMAGE", "SAFETY.INPUT.LIKENESS", "SAFETY.OUTPUT.FRAMES",
            "SAFETY.OUTPUT.LIKENESS", "SAFETY.UNAVAILABLE", "SAFETY.INTERNAL"} <= codes  # fmt: skip
    with pytest.raises(ValueError):
        gen4sdk.Decision(allowed=False, action="block", code="SAFETY.MADE.UP", pack_id="p", pack_version="1.0.0",
                         pack_sha256="0" * 64)  # type: ignore[arg-type]  # fmt: skip
