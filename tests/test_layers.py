"""The layers of DESIGN.md, checked on the source: every import statement of gen4sdk/ and watermark/ (function-local
ones included, since a lazy import is still a dependency) forms one module graph, which must have no cycles,
no stage that reaches back to the package root or the client, and a watermark codec that stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gen4sdk", "watermark")
# The package root re-exports everything and the CLI (cli.py and its _cli_* modules) is a shell over that surface:
# only they may import the root.
ROOT_IMPORTERS = {"gen4sdk", "gen4sdk.cli", "gen4sdk._cli_checks", "gen4sdk._cli_serve"}
# Above the stages sit the users of the Client: the CLI, and the server's generation workers, which run Clients.
CLIENT_IMPORTERS = ROOT_IMPORTERS | {
    "gen4sdk.client",
    "gen4sdk.server._worker",
    "gen4sdk.server._ray_workers",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    # a module's own package is itself for __init__, its parent otherwise
    base = base if is_package else base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `module` imports, anywhere in its source (`from p import m` counts m if it is
    a module, p otherwise)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
        else:
            continue
        for name in names:
            # `import a.b.c` depends on the deepest module of ours it names
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {m: imports_of(m, p, known) for m, p in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path a -> b -> ... -> a, or None (iterative DFS: the graph is small but recursion is not
    needed)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for start in sorted(edges):
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(edges[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(edges.get(nxt, ()))))
    return None


def test_the_parser_sees_function_local_and_relative_imports(tmp_path: Path) -> None:
    src = tmp_path / "mod.py"
    src.write_text("def f():\n    from . import b\n    from .c import d\n    import e.f\n", encoding="utf-8")
    known = {"pkg", "pkg.b", "pkg.c", "e", "e.f"}
    assert imports_of("pkg.a", src, known) == {"pkg.b", "pkg.c", "e.f"}


def test_cycle_finder_reports_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_watermark_imports_nothing_of_gen4sdk() -> None:
    bad = {m: sorted(d for d in deps if d.split(".")[0] == "gen4sdk") for m, deps in graph().items()}
    bad = {m: d for m, d in bad.items() if m.split(".")[0] == "watermark" and d}
    assert not bad, f"watermark must stand alone: {bad}"


@pytest.mark.parametrize("forbidden", ["gen4sdk", "gen4sdk.client"])
def test_stages_never_import_the_root_or_the_client(forbidden: str) -> None:
    allowed = CLIENT_IMPORTERS if forbidden == "gen4sdk.client" else ROOT_IMPORTERS
    offenders = sorted(m for m, deps in graph().items() if forbidden in deps and m not in allowed)
    assert not offenders, f"{offenders} import {forbidden}"


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# The store (gen4sdk/store/) sits under the client, compliance and the policy engine's likeness registry: it uses
# the errors, the shared types, the signature helpers, the extras check and the fingerprint (which it indexes), and
# nothing that sits above it.
STORE_MAY_IMPORT = {
    "gen4sdk.errors",
    "gen4sdk.types",
    "gen4sdk._crypto",
    "gen4sdk._extras",
    "gen4sdk.fingerprint",
}
DATABASE_DRIVERS = ("sqlite3", "psycopg")


def test_the_store_imports_nothing_above_it() -> None:
    bad = {
        m: sorted(d for d in deps if not d.startswith("gen4sdk.store") and d not in STORE_MAY_IMPORT)
        for m, deps in graph().items()
        if m.split(".")[:2] == ["gen4sdk", "store"]
    }
    assert {m: d for m, d in bad.items() if d} == {}


def test_the_fingerprint_is_a_leaf() -> None:
    """gen4sdk.fingerprint sits under the store, verify and the service: it needs numpy and Pillow, nothing above."""
    assert {d for d in graph()["gen4sdk.fingerprint"] if d.startswith("gen4sdk")} == {"gen4sdk.errors"}


def test_only_the_store_talks_to_a_database() -> None:
    """One database layer: the audit log, the manifests and the likeness registry all go through gen4sdk.store,
    so no other module opens a connection of its own (function-local imports included)."""
    offenders = []
    for module, path in _modules().items():
        if module.split(".")[:2] == ["gen4sdk", "store"] or module.split(".")[0] != "gen4sdk":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            offenders += [f"{module}: {n}" for n in names if n.split(".")[0] in DATABASE_DRIVERS]
    assert offenders == []
