"""Where packs come from: the shipped ones (``policies/``, installed as ``gen4sdk.policies``), files, and the
built-in core lexicon that every pack enforces and none can change (``gen4sdk/policy/data/core.yaml``)."""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gen4sdk.errors import PolicyPackError
from gen4sdk.policy._schema import LoadedPack, load_pack_bytes, load_pack_file

__all__ = ["CoreLexicon", "core_lexicon", "load_pack", "pack_file", "shipped_packs"]


def _shipped_dir() -> Any:
    try:
        return importlib.resources.files("gen4sdk.policies")
    except ModuleNotFoundError:
        # A source checkout without installation: the repository's policies/ next to the package.
        return Path(__file__).resolve().parents[2] / "policies"


def shipped_packs() -> list[str]:
    """Names of the packs that ship with the SDK (``default``, ``strict``, ...)."""
    return sorted(p.name[: -len(".yaml")] for p in _shipped_dir().iterdir() if p.name.endswith(".yaml"))


def load_pack(pack: str | Path) -> LoadedPack:
    """A pack file, or a shipped pack by name (``"default"``, ``"strict"``)."""
    text = str(pack)
    if (
        isinstance(pack, str)
        and "/" not in text
        and "\\" not in text
        and not text.endswith((".yaml", ".yml"))
    ):
        entry = _shipped_dir() / f"{text}.yaml"
        if not entry.is_file():
            raise PolicyPackError(
                f"no shipped policy pack named {text!r} (shipped: {', '.join(shipped_packs())})"
            )
        return load_pack_bytes(
            entry.read_bytes(), source=f"gen4sdk.policies/{text}.yaml", base="gen4sdk.policies"
        )
    return load_pack_file(pack)


def pack_file(loaded: LoadedPack, name: str) -> Path:
    """A file a pack names (its classifier's weights), beside the pack: in the installed ``gen4sdk.policies``
    for a shipped pack, in the pack file's folder otherwise."""
    if loaded.base is None:
        path = Path(name)
    elif loaded.base == "gen4sdk.policies":
        path = Path(str(_shipped_dir() / name))
    else:
        path = Path(loaded.base) / name
    return path


@dataclass(frozen=True)
class CoreLexicon:
    """The built-in floor of the mandatory category (sexual content involving minors)."""

    minor_terms: tuple[str, ...]
    minor_words: tuple[str, ...]
    sexual_words: tuple[str, ...]
    window: int
    sha256: str


@functools.lru_cache(maxsize=1)
def core_lexicon() -> CoreLexicon:
    """The reviewed core lexicon shipped inside the SDK; PolicyPackError if it is missing or malformed
    (every check would then fail closed rather than run without it)."""
    try:
        raw = importlib.resources.files("gen4sdk.policy").joinpath("data/core.yaml").read_bytes()
        data = yaml.safe_load(raw)
        lex = CoreLexicon(
            minor_terms=tuple(str(t) for t in data["minor_terms"]),
            minor_words=tuple(str(t) for t in data["minor_words"]),
            sexual_words=tuple(str(t) for t in data["sexual_words"]),
            window=int(data["window"]),
            sha256=hashlib.sha256(raw).hexdigest(),
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise PolicyPackError(
            f"the SDK's core lexicon (gen4sdk/policy/data/core.yaml) cannot be read: {e}"
        ) from e
    if not (lex.minor_terms and lex.minor_words and lex.sexual_words) or lex.window < 1:
        raise PolicyPackError("the SDK's core lexicon (gen4sdk/policy/data/core.yaml) is incomplete")
    return lex
