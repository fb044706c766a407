"""Semantic scorer: a prompt's embedding against per-category exemplars and benign counter-exemplars.

score(category) = mean cosine to the category's k nearest exemplars (k = the pack's ``semantic_neighbours``)
- counter_weight * max cosine to its counter-exemplars, taken over the prompt's windows: the whole prompt
(split when past the encoder's limit, so nothing goes unseen) and each of its clauses; for long prompts the
whole is pooled from the clauses (see ``windows``). A category is flagged when its score reaches the pack's
threshold for the encoder in use; categories without a threshold for that encoder are not scored (the decision
says so in a warning).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gen4sdk.errors import InvalidRequestError
from gen4sdk.policy._encoders import TextEncoder
from gen4sdk.policy._normalize import NormalizedText, normalize, semantic_text
from gen4sdk.policy._schema import PolicyPack

__all__ = ["SemanticScorer", "lookup_threshold"]

_CLAUSE = re.compile(r"[,;|.:!?]+(?=\s|$)|\n|\s[-|/]\s")
_MAX_CLAUSES = 12
_POOL_WORDS = 24  # longer prompts with several clauses: clauses embedded, the whole pooled from them


@dataclass(frozen=True)
class _Windows:
    texts: list[str]
    # word weights of ``texts`` when the whole prompt's vector is pooled from them rather than embedded
    pooled: tuple[float, ...] | None


def lookup_threshold(table: dict[str, float], encoder_id: str) -> float | None:
    """Threshold for an encoder: exact id, then its family (text before ':'), then 'default'."""
    if encoder_id in table:
        return table[encoder_id]
    family = encoder_id.split(":", 1)[0]
    if family in table:
        return table[family]
    return table.get("default")


_CACHE_LOCK = threading.Lock()
_CACHE: dict[tuple[int, str, int], np.ndarray] = {}


def _exemplar_embeddings(encoder: TextEncoder, texts: tuple[str, ...]) -> np.ndarray:
    """Exemplar embeddings, cached per encoder object: packs loaded again (tests, CLI, workers) reuse them."""
    if not texts:
        return np.zeros((0, 1), np.float32)
    key = (id(encoder), encoder.id, hash(texts))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    emb = encoder.encode_texts(list(texts))
    with _CACHE_LOCK:
        if len(_CACHE) > 16:
            _CACHE.clear()
        _CACHE[key] = emb
    return emb


class SemanticScorer:
    def __init__(self, pack: PolicyPack, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self._pack = pack
        self._lock = threading.Lock()
        self._ready = False
        self._pos: dict[str, np.ndarray] = {}
        self._neg: dict[str, np.ndarray] = {}
        self.thresholds: dict[str, float] = {}
        self.untuned: list[str] = []
        # None embeds every prompt whole as well (the benchmark's baseline for pooling)
        self.pool_words: int | None = _POOL_WORDS
        for c in pack.categories:
            if c.semantic is None:
                continue
            t = lookup_threshold(c.semantic.threshold, encoder.id)
            if t is None:
                self.untuned.append(c.id)
            else:
                self.thresholds[c.id] = t

    def _prepare(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            texts: list[str] = []
            slices: dict[str, tuple[int, int, int]] = {}
            for c in self._pack.categories:
                if c.semantic is None or c.id not in self.thresholds:
                    continue
                a = len(texts)
                texts.extend(c.semantic.exemplars)
                b = len(texts)
                texts.extend(c.semantic.counter_exemplars)
                texts.extend(self._pack.common_counter_exemplars)
                slices[c.id] = (a, b, len(texts))
            emb = _exemplar_embeddings(self.encoder, tuple(texts))
            for cid, (a, b, e) in slices.items():
                self._pos[cid] = emb[a:b]
                self._neg[cid] = emb[b:e]
            self._ready = True

    def windows(self, norm: NormalizedText) -> _Windows:
        """The texts to embed for one prompt: the whole prompt (in word windows when long) and its clauses.

        Image prompts are often comma-separated lists where one clause carries the meaning ("..., least
        clothes, award winning photography"); scoring clauses on their own keeps the rest from diluting it.
        Clauses end at punctuation followed by a space, so punctuation inside a word (n.u.d.e) splits nothing.

        A prompt of more than ``pool_words`` (24) words with two or more clauses is not embedded whole: its
        clauses already hold all its words, and the whole prompt's vector is their word-weighted mean (what
        mean pooling gives without attention across clauses). Embedding it whole as well paid for every
        token twice, and long prompts are the slow ones (semantic p99 about 0.65x with pooling; on the
        benchmark's tuning half no false positive and a net one of 496 refusals changed).
        """
        whole = semantic_text(norm)
        split = getattr(self.encoder, "windows", None)

        def fit(text: str) -> list[str]:
            return list(split(text)) if split is not None else [text]

        clauses = list(dict.fromkeys(c.strip() for c in _CLAUSE.split(norm.original) if len(c.split()) >= 2))
        if len(clauses) > _MAX_CLAUSES:
            # bounded cost for very long lists: neighbouring clauses are scored together, none is skipped
            size = -(-len(clauses) // _MAX_CLAUSES)
            clauses = [", ".join(clauses[i : i + size]) for i in range(0, len(clauses), size)]
        parts: list[str] = []
        if len(clauses) > 1:
            for c in clauses:
                try:
                    t = semantic_text(normalize(c))
                except InvalidRequestError:
                    continue
                if t and t != whole and t not in parts:
                    parts.append(t)
        # a clause past the encoder's token limit would be truncated: then the whole prompt's windows cover it
        pool = self.pool_words is not None and len(whole.split()) > self.pool_words
        if pool and len(parts) > 1 and all(len(fit(t)) == 1 for t in parts):
            return _Windows(parts, tuple(float(len(t.split())) for t in parts))
        out = fit(whole)
        return _Windows(out + [t for t in parts if t not in out], None)

    def embed(self, norms: Sequence[NormalizedText]) -> list[np.ndarray]:
        """Window embeddings for each prompt (batched through the encoder), the pooled whole first."""
        self._prepare()
        plans = [self.windows(n) for n in norms]
        flat = [t for plan in plans for t in plan.texts]
        emb = self.encoder.encode_texts(flat)
        out: list[np.ndarray] = []
        start = 0
        for plan in plans:
            rows = emb[start : start + len(plan.texts)]
            start += len(plan.texts)
            if plan.pooled is not None:
                whole = np.asarray(plan.pooled, dtype=np.float32) @ rows
                rows = np.vstack([whole / max(float(np.linalg.norm(whole)), 1e-12), rows])
            out.append(rows)
        return out

    def scores(self, windows: np.ndarray) -> dict[str, float]:
        self._prepare()
        w = self._pack.counter_weight
        result: dict[str, float] = {}
        for cid, pos in self._pos.items():
            # The mean of the k nearest exemplars, not the nearest alone: one exemplar that shares a word
            # with a prompt ("a cocktail" and "a tutorial on making a molotov cocktail") cannot refuse it by
            # itself; a prompt has to be near the category, not near one sentence (README, policy section).
            sims = windows @ pos.T
            k = min(self._pack.semantic_neighbours, sims.shape[1])
            p = sims.max(axis=1) if k == 1 else -np.partition(-sims, k - 1, axis=1)[:, :k].mean(axis=1)
            neg = self._neg[cid]
            n = (windows @ neg.T).max(axis=1) if len(neg) else np.zeros_like(p)
            result[cid] = round(float((p - w * n).max()), 4)
        return result
