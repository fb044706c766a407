"""The trained prompt classifier: per-category probabilities from a sentence embedding.

A small model (logistic regression per category, or one hidden layer shared by all categories) on the
multilingual sentence encoder's embeddings, trained by ``benchmarks/policy_train.py`` on the labelled set in
``policies/training/`` and the public prompt sets. Its weights ship next to the pack as an ``.npz`` file that
the pack names with its SHA-256, so a pack always runs the exact model it was reviewed with.

A prompt is scored on its windows: the whole prompt (digits used as letters folded back, see
``semantic_text``) and each clause of two or more words, so one harmful clause in a long comma-separated
image prompt is not diluted by the rest. A category's score is its highest probability over the windows.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gen4sdk.errors import InvalidRequestError, ModelLoadError
from gen4sdk.policy._encoders import TextEncoder
from gen4sdk.policy._normalize import NormalizedText, normalize, semantic_text

__all__ = ["ClassifierWeights", "PromptClassifier", "classifier_windows"]

_CLAUSE = re.compile(r"[,;|.:!?，。；！？、]+(?=\s|$)|[，。；！？、]|\n|\s[-|/]\s")
_MAX_CLAUSES = 8


def classifier_windows(norm: NormalizedText) -> list[str]:
    """The texts a prompt is scored on: the whole prompt, then its clauses (at most ``_MAX_CLAUSES``)."""
    whole = semantic_text(norm)
    clauses = [c.strip() for c in _CLAUSE.split(norm.original)]
    # a clause of one short Latin word carries no meaning on its own; a CJK clause of two characters can
    clauses = [
        c for c in dict.fromkeys(clauses) if len(c.split()) >= 2 or len(c) >= (4 if c.isascii() else 2)
    ]
    if len(clauses) < 2:
        return [whole]
    if len(clauses) > _MAX_CLAUSES:
        # bounded cost for very long lists: neighbouring clauses are scored together, none is skipped
        size = -(-len(clauses) // _MAX_CLAUSES)
        clauses = [", ".join(clauses[i : i + size]) for i in range(0, len(clauses), size)]
    folded = [_folded(c) for c in clauses]
    return [whole, *dict.fromkeys(c for c in folded if c and c != whole)]


def _folded(clause: str) -> str:
    try:
        return semantic_text(normalize(clause))
    except (
        InvalidRequestError
    ):  # nothing visible in this clause (only invisible characters): nothing to score
        return ""


@dataclass(frozen=True)
class ClassifierWeights:
    """The arrays of one trained classifier and what it was trained for."""

    categories: tuple[str, ...]
    encoder: str
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (W, b) per layer; ReLU between layers, sigmoid out

    @classmethod
    def load(cls, path: str | Path, *, sha256: str | None = None) -> ClassifierWeights:
        """Read an ``.npz`` written by the training script; ModelLoadError if it is missing, altered or malformed."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as e:
            raise ModelLoadError(f"cannot read prompt classifier {p}: {e.strerror or e}") from e
        digest = hashlib.sha256(raw).hexdigest()
        if sha256 is not None and digest != sha256:
            raise ModelLoadError(
                f"prompt classifier {p} has SHA-256 {digest}, the pack expects {sha256}: refusing to use it"
            )
        try:
            import io

            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                categories = tuple(str(c) for c in z["categories"])
                encoder = str(z["encoder"])
                n = int(z["layers"])
                layers = tuple(
                    (z[f"W{i}"].astype(np.float32), z[f"b{i}"].astype(np.float32)) for i in range(n)
                )
        except (KeyError, ValueError, OSError) as e:
            raise ModelLoadError(f"prompt classifier {p} is not a valid classifier file: {e}") from e
        if not layers or layers[-1][0].shape[1] != len(categories):
            raise ModelLoadError(f"prompt classifier {p}: output layer does not match its categories")
        return cls(categories=categories, encoder=encoder, layers=layers)

    def save(self, path: str | Path, **meta: str) -> str:
        """Write the arrays (and string metadata) to ``path``; returns the file's SHA-256."""
        arrays: dict[str, Any] = {
            "categories": np.array(self.categories),
            "encoder": np.array(self.encoder),
            "layers": np.array(len(self.layers)),
        }
        for i, (w, b) in enumerate(self.layers):
            arrays[f"W{i}"] = w.astype(np.float32)
            arrays[f"b{i}"] = b.astype(np.float32)
        for k, v in meta.items():
            arrays[f"meta_{k}"] = np.array(v)
        p = Path(path)
        with open(p, "wb") as fh:
            np.savez(fh, **arrays)  # uncompressed: byte-for-byte reproducible for the same arrays
        return hashlib.sha256(p.read_bytes()).hexdigest()

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(N, D) embeddings -> (N, categories) probabilities."""
        h = np.asarray(x, dtype=np.float32)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        # float64 for the sigmoid: in float32 every logit above ~17 is exactly 1.0, and confident harmful and
        # confident benign-looking prompts could no longer be told apart by a threshold
        return 1.0 / (1.0 + np.exp(-np.clip(h.astype(np.float64), -40.0, 40.0)))


class PromptClassifier:
    """Scores prompts per category with trained weights over a text encoder's embeddings."""

    def __init__(self, weights: ClassifierWeights, encoder: TextEncoder) -> None:
        if weights.encoder != encoder.id:
            raise ModelLoadError(
                f"the prompt classifier was trained on {weights.encoder} embeddings, not {encoder.id}"
            )
        self.weights = weights
        self.encoder = encoder
        self._lock = threading.Lock()

    @property
    def categories(self) -> tuple[str, ...]:
        return self.weights.categories

    def score(self, norm: NormalizedText) -> dict[str, float]:
        return self.score_many([norm])[0]

    def score_many(self, norms: Sequence[NormalizedText]) -> list[dict[str, float]]:
        """Each prompt's highest probability per category over its windows, embedded in one batch."""
        windows = [classifier_windows(n) for n in norms]
        flat = [w for ws in windows for w in ws]
        probs = self.weights.probabilities(self.encoder.encode_texts(flat)) if flat else np.zeros((0, 0))
        out: list[dict[str, float]] = []
        start = 0
        for ws in windows:
            best = probs[start : start + len(ws)].max(axis=0)
            start += len(ws)
            out.append({c: float(best[i]) for i, c in enumerate(self.categories)})
        return out
