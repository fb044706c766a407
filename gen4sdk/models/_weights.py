"""A SHA-256 of a pipeline's weights, for the credentials.

The digest is taken over the weight *tensors* (not the files), so a pipeline built in memory and the same pipeline
saved with ``save_pretrained`` and loaded again have the same digest whatever the serialisation (safetensors or
pickle, sharded or not). Order is fixed: components by name, then state-dict keys sorted, each entry framed by its
name, dtype and shape. Tensors are hashed as loaded, so the same files loaded in another dtype hash differently:
the digest describes the weights that actually ran.

Hashing a multi-GB model takes a while, so digests of a local directory are cached in a small JSON file under
``$XDG_CACHE_HOME/gen4sdk`` (or ``~/.cache/gen4sdk``), keyed by every file's path, size and mtime plus the dtype;
an in-memory pipeline is hashed once per object.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["cache_path", "directory_weights_sha256", "pipeline_weights_sha256"]

_SCHEME = b"gen4sdk.weights.v1"
_CACHE_FILE = "weights-sha256.json"
_CACHE_MAX_ENTRIES = 256
_lock = threading.Lock()
_by_object: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gen4sdk" / _CACHE_FILE


def _hash_tensor(h: Any, key: str, t: torch.Tensor) -> None:
    t = t.detach()
    if t.device.type == "meta":
        raise ValueError(f"weight {key!r} is on the meta device (not materialised); cannot hash it")
    header = f"{key}\0{str(t.dtype).removeprefix('torch.')}\0{tuple(t.shape)}\0".encode()
    h.update(len(header).to_bytes(8, "big"))
    h.update(header)
    flat = t.cpu().contiguous().reshape(-1)
    # view as bytes so dtypes numpy lacks (bfloat16, float8) hash the same way as the rest
    data = flat.view(torch.uint8).numpy() if flat.numel() else b""
    h.update(len(data).to_bytes(8, "big"))
    h.update(data)


def _compute(pipeline: Any) -> str:
    h = hashlib.sha256(_SCHEME)
    components = getattr(pipeline, "components", None)
    if not isinstance(components, dict):
        raise TypeError(f"{type(pipeline).__name__} has no components dict; not a diffusers pipeline")
    n = 0
    for name in sorted(components):
        module = components[name]
        if not isinstance(module, torch.nn.Module):
            continue  # tokenizers, schedulers, processors: configuration, not weights
        for key, tensor in sorted(module.state_dict().items()):
            _hash_tensor(h, f"{name}.{key}", tensor)
            n += 1
    if n == 0:
        raise ValueError(f"{type(pipeline).__name__} has no torch components to hash")
    return h.hexdigest()


def pipeline_weights_sha256(pipeline: Any) -> str:
    """Digest of an in-memory pipeline's weights, computed once per object.

    The cache assumes weights are not modified in place afterwards (a LoRA fused into a live pipeline would not
    be seen); wrap a fresh pipeline object in that case.
    """
    with _lock:
        cached = _by_object.get(pipeline)
    if cached is not None:
        return cached
    digest = _compute(pipeline)
    with _lock:
        try:
            _by_object[pipeline] = digest
        except TypeError:  # not weak-referenceable: just do not cache
            pass
    return digest


def _directory_key(directory: Path, dtype: str) -> str:
    root = directory.resolve()
    files = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            files.append([p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"root": str(root), "dtype": dtype, "files": files}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def _read_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        logger.warning("ignoring unreadable weights-hash cache %s: %s", path, e)
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _write_cache(path: Path, entries: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".weights-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(entries, f, indent=0)  # insertion order = age, for eviction
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        # A read-only home must not stop generation; the digest is just recomputed next time.
        logger.warning("could not write weights-hash cache %s: %s", path, e)


def directory_weights_sha256(directory: Path, pipeline: Any, dtype: str) -> str:
    """Digest of ``pipeline`` (loaded from ``directory`` in ``dtype``), cached by the directory's file stats."""
    key = _directory_key(directory, dtype)
    path = cache_path()
    with _lock:
        hit = _read_cache(path).get(key)
    if hit is not None:
        logger.debug("weights digest of %s from cache %s", directory, path)
        with _lock:
            try:
                _by_object[pipeline] = hit
            except TypeError:
                pass
        return hit
    digest = pipeline_weights_sha256(pipeline)
    with _lock:
        entries = _read_cache(path)
        entries[key] = digest
        if len(entries) > _CACHE_MAX_ENTRIES:  # stale keys of changed directories would otherwise pile up
            for old in list(entries)[: len(entries) - _CACHE_MAX_ENTRIES]:
                del entries[old]
        _write_cache(path, entries)
    return digest
