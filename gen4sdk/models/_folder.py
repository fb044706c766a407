"""A saved pipeline folder (``save_pretrained`` layout), read before diffusers is asked to load it.

diffusers' own errors for a broken folder are long and name files, not components; checking the folder first lets
the SDK say which component is missing or corrupt (``ModelLoadError`` naming it), and which pipeline class the
folder holds before any weights are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen4sdk.errors import ModelLoadError

__all__ = ["PipelineFolder", "check_components", "read_folder"]

_CONFIG_FILES = ("config.json", "scheduler_config.json", "preprocessor_config.json", "tokenizer_config.json")


@dataclass(frozen=True)
class PipelineFolder:
    directory: Path
    class_name: str
    # component name -> (library, class) for every component the index names (None entries left out)
    components: dict[str, tuple[str, str]]


def read_folder(path: str | Path) -> PipelineFolder:
    """Read and check ``model_index.json`` and the component folders it names; ModelLoadError on any fault."""
    directory = Path(path).expanduser()
    if not directory.exists():
        raise ModelLoadError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise ModelLoadError(f"{directory} is not a directory (expected a diffusers save_pretrained folder)")
    index = directory / "model_index.json"
    if not index.is_file():
        raise ModelLoadError(f"{directory} has no model_index.json; not a diffusers pipeline folder")
    try:
        meta: Any = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelLoadError(f"{index} is not valid JSON: {e}") from e
    class_name = meta.get("_class_name") if isinstance(meta, dict) else None
    if not isinstance(class_name, str):
        raise ModelLoadError(f"{index} has no _class_name; not a diffusers pipeline folder")
    components: dict[str, tuple[str, str]] = {}
    for name, value in meta.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue  # private keys, and plain config values such as boundary_ratio
        library, cls = value
        if library is None or cls is None:
            continue  # an optional component saved as absent (Wan 2.1's transformer_2)
        components[name] = (str(library), str(cls))
    return PipelineFolder(directory=directory, class_name=class_name, components=components)


def check_components(folder: PipelineFolder) -> None:
    """Every named component has its folder, a readable config and weight files whose headers parse."""
    for name in sorted(folder.components):
        sub = folder.directory / name
        if not sub.is_dir():
            raise ModelLoadError(f"component {name!r} is missing: {folder.directory} has no folder {name}/")
        if not any((sub / c).is_file() for c in _CONFIG_FILES) and not any(sub.glob("*.json")):
            raise ModelLoadError(f"component {name!r} has no configuration file in {sub}")
        for weights in sorted(sub.glob("*.safetensors")):
            _check_safetensors(name, weights)


def _check_safetensors(component: str, path: Path) -> None:
    # The header (a length and a JSON table of tensors) is enough to catch truncated or overwritten files
    # cheaply; a bit flip inside a tensor changes the weights digest instead.
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or 8 + n > size:
                raise ValueError(f"header length {n} does not fit a {size}-byte file")
            header = json.loads(f.read(n))
        if not isinstance(header, dict):
            raise TypeError("header is not a JSON object")
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + n + end > size:
            raise ValueError(f"tensors end at byte {8 + n + end}, the file has {size}")
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise ModelLoadError(f"component {component!r} is corrupt: {path.name}: {e}") from e
