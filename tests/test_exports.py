"""The public surface, in the manner of httpx's test of its exported members: every exported name resolves,
and nothing public is left out of ``__all__``."""

from __future__ import annotations

import importlib
import types

import pytest


@pytest.mark.parametrize("module", ["gen4sdk", "gen4sdk.policy", "gen4sdk.types", "gen4sdk.errors"])
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


def test_refusal_codes_are_a_closed_set() -> None:
    from typing import get_args

    import gen4sdk

    codes = set(get_args(gen4sdk.RefusalCode))
    assert {"SAFETY.INPUT.TEXT", "SAFETY.INPUT.IMAGE", "SAFETY.INPUT.LIKENESS", "SAFETY.OUTPUT.FRAMES",
            "SAFETY.OUTPUT.LIKENESS", "SAFETY.UNAVAILABLE", "SAFETY.INTERNAL"} <= codes  # fmt: skip
    with pytest.raises(ValueError):
        gen4sdk.Decision(allowed=False, action="block", code="SAFETY.MADE.UP", pack_id="p", pack_version="1.0.0",
                         pack_sha256="0" * 64)  # type: ignore[arg-type]  # fmt: skip
