"""Text checks: the rules in front (terms, combinations, the built-in minors rule, named people) and a model
behind them (the pack's trained classifier, or, for packs written before it, the nearest-exemplar scorer).

A category triggers when one of its terms matches, one of its combinations matches, or the model's score for it
reaches the pack's threshold. ``semantic:<category>`` in a combination means "the model flags <category>".
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Sequence
from typing import Protocol

from gen4sdk.errors import ModelLoadError
from gen4sdk.policy._classifier import ClassifierWeights, PromptClassifier
from gen4sdk.policy._encoders import TextEncoder, shared_minilm, shared_use
from gen4sdk.policy._likeness import LikenessRegistry
from gen4sdk.policy._normalize import NormalizedText, normalize
from gen4sdk.policy._packs import CoreLexicon, pack_file
from gen4sdk.policy._rules import Hit, Lexicon, any_within, minor_age_hits
from gen4sdk.policy._schema import MANDATORY_CATEGORY, LoadedPack
from gen4sdk.policy._semantic import SemanticScorer
from gen4sdk.policy._verdict import Trigger, Verdicts
from gen4sdk.types import Decision, MatchedSpan

__all__ = ["TextChecker"]

# Scripts the multilingual sentence encoder was trained on (its 16 languages); a prompt mostly in another
# script cannot be judged by the model, only by the rules.
_SUPPORTED_SCRIPTS = frozenset(
    {"LATIN", "CYRILLIC", "ARABIC", "CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI"}
)


def unsupported_script(text: str) -> str | None:
    """The script most of the text's letters are written in, when the encoder does not cover it."""
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            script = unicodedata.name(ch, "UNKNOWN ?").split(" ", 1)[0]
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return None
    script, n = max(counts.items(), key=lambda kv: kv[1])
    if script in _SUPPORTED_SCRIPTS or n * 2 < sum(counts.values()):
        return None
    return script


class _Model(Protocol):
    thresholds: dict[str, float]
    warnings: list[str]

    @property
    def encoder(self) -> TextEncoder | None: ...

    def scores_many(self, norms: Sequence[NormalizedText]) -> list[dict[str, float]]: ...

    def warm_up(self) -> None: ...


class _Classifier:
    def __init__(self, loaded: LoadedPack, encoder: TextEncoder | None) -> None:
        spec = loaded.pack.classifier
        assert spec is not None
        self._loaded = loaded
        self._encoder = encoder
        self.thresholds = dict(spec.thresholds)
        self.warnings: list[str] = []
        self._model: PromptClassifier | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is None:
                spec = self._loaded.pack.classifier
                assert spec is not None
                weights = ClassifierWeights.load(pack_file(self._loaded, spec.file), sha256=spec.sha256)
                missing = sorted(set(spec.thresholds) - set(weights.categories))
                if missing:
                    # a threshold for a category the model does not score would silently never fire
                    raise ModelLoadError(
                        f"the prompt classifier {spec.file} does not score {', '.join(missing)}"
                    )
                encoder = self._encoder if self._encoder is not None else shared_use()
                warm = getattr(encoder, "warm_up", None)
                if warm is not None:
                    warm()
                self._model = PromptClassifier(weights, encoder)

    @property
    def encoder(self) -> TextEncoder | None:
        return self._model.encoder if self._model is not None else None

    def scores_many(self, norms: Sequence[NormalizedText]) -> list[dict[str, float]]:
        self.warm_up()
        assert self._model is not None
        return self._model.score_many(norms)  # unrounded: thresholds have 8 decimals


class _Exemplars:
    def __init__(self, loaded: LoadedPack, encoder: TextEncoder | None) -> None:
        self._pack = loaded.pack
        self._encoder = encoder
        self._scorer: SemanticScorer | None = None
        self._lock = threading.Lock()
        self.thresholds: dict[str, float] = {}
        self.warnings: list[str] = []

    def warm_up(self) -> None:
        if self._scorer is None:
            with self._lock:
                if self._scorer is None:
                    scorer = SemanticScorer(self._pack, self._encoder or shared_minilm())
                    scorer.embed([normalize("warm up")])  # loads the encoder and embeds the exemplars
                    self.thresholds = scorer.thresholds
                    if scorer.untuned:
                        self.warnings = [f"semantic.untuned:{scorer.encoder.id}"]
                    self._scorer = scorer

    @property
    def encoder(self) -> TextEncoder | None:
        return self._scorer.encoder if self._scorer is not None else None

    def scores_many(self, norms: Sequence[NormalizedText]) -> list[dict[str, float]]:
        self.warm_up()
        assert self._scorer is not None
        return [self._scorer.scores(w) for w in self._scorer.embed(norms)]


class TextChecker:
    """The text checks of one pack."""

    def __init__(
        self, loaded: LoadedPack, core: CoreLexicon, verdicts: Verdicts, *, semantic: bool | TextEncoder
    ) -> None:
        pack = self.pack = loaded.pack
        self._verdicts = verdicts
        self._core_window = core.window
        self._by_id = {c.id: c for c in pack.categories}
        terms: dict[str, list[str]] = {}
        exceptions: dict[str, list[str]] = {}
        for c in pack.categories:
            terms[f"cat:{c.id}"] = list(c.terms)
            exceptions[f"cat:{c.id}"] = list(c.exceptions)
            if c.context_terms:
                terms[f"ctx:{c.id}"] = list(c.context_terms)
                exceptions[f"ctx:{c.id}"] = list(c.exceptions)
        terms[f"cat:{MANDATORY_CATEGORY}"] += list(core.minor_terms)
        terms["core:minor"] = list(core.minor_words)
        terms["core:sexual"] = list(core.sexual_words)
        for g, items in pack.term_groups.items():
            terms[f"group:{g}"] = list(items)
        for g, items in pack.group_exceptions.items():
            exceptions[f"group:{g}"] = list(items)
        for f in pack.likeness.public_figures:
            terms[f"person:public:{f.id}"] = [f.name, *f.aliases]
        self._lexicon = Lexicon(terms, exceptions)  # ValueError on a bad term: the caller names the pack
        self._negative = Lexicon({"negative": pack.negative_prompt.terms})
        self._names: tuple[tuple[str, int], Lexicon] | None = None
        encoder = None if isinstance(semantic, bool) else semantic
        self.model: _Model | None = None
        if semantic is not False and pack.semantic_enabled:
            if pack.classifier is not None:
                self.model = _Classifier(loaded, encoder)
            elif any(c.semantic is not None for c in pack.categories):
                self.model = _Exemplars(loaded, encoder)

    def warm_up(self) -> None:
        if self.model is not None:
            self.model.warm_up()

    def _name_lexicon(self, registry: LikenessRegistry | None) -> Lexicon | None:
        if registry is None:
            return None
        key = (str(registry.path), registry.revision())
        cached = self._names
        if cached is not None and cached[0] == key:
            return cached[1]
        lex = Lexicon({f"person:{i.id}": [i.name, *i.aliases] for i in registry.identities()})
        self._names = (key, lex)
        return lex

    def check_many(
        self,
        norms: Sequence[NormalizedText],
        *,
        user: str | None,
        registry: LikenessRegistry | None,
        use: str | None,
    ) -> list[Decision]:
        model_scores: list[dict[str, float] | None] = [None] * len(norms)
        if self.model is not None:
            model_scores = list(self.model.scores_many(norms))
        return [self._decide(n, s, user, registry, use) for n, s in zip(norms, model_scores)]

    def _decide(
        self,
        norm: NormalizedText,
        scores: dict[str, float] | None,
        user: str | None,
        registry: LikenessRegistry | None,
        use: str | None,
    ) -> Decision:
        pack = self.pack
        hits = self._lexicon.find(norm) + minor_age_hits(norm)
        names = self._name_lexicon(registry)
        if names is not None:
            hits += names.find(norm)
        by_label: dict[str, list[Hit]] = {}
        for h in hits:
            by_label.setdefault(h.label, []).append(h)
        person_hits = [h for h in hits if h.label.startswith("person:")]
        warnings = list(norm.warnings)

        flagged: set[str] = set()
        if self.model is not None and scores is not None:
            flagged = {
                c for c, s in scores.items() if c in self.model.thresholds and s >= self.model.thresholds[c]
            }
            warnings += self.model.warnings
            script = unsupported_script(norm.original) if pack.classifier is not None else None
            if script is not None:
                warnings.append(f"text.unsupported_script:{script.lower()}")
                if pack.classifier is not None and pack.classifier.unsupported_script == "block":
                    return self._verdicts.fail_closed(
                        code="SAFETY.INPUT.LANGUAGE",
                        stage="input",
                        scores={c: round(v, 4) for c, v in scores.items()},
                        warnings=warnings,
                        reason=f"the prompt is written in a script ({script.lower()}) the policy's model cannot "
                        f"judge, and pack {pack.id} refuses what it cannot judge",
                    )
        elif any(c.semantic is not None for c in pack.categories) or pack.classifier is not None:
            warnings.append("semantic.off")
        scores = dict(scores or {})

        def item_hits(item: str) -> list[Hit] | None:
            if item.startswith("semantic:"):
                return [] if item[9:] in flagged else None
            if item == "@person":
                return person_hits
            if item == "@minor_age":
                return by_label.get("group:@minor", [])
            if item in self._by_id:
                return by_label.get(f"cat:{item}", []) + by_label.get(f"ctx:{item}", [])
            return by_label.get(f"group:{item}", [])

        triggers: dict[str, Trigger] = {}

        def trig(cid: str) -> Trigger:
            return triggers.setdefault(cid, Trigger(cid))

        def span(cid: str, rule: str, h: Hit) -> MatchedSpan:
            return MatchedSpan(
                category=cid, rule=rule, start=h.start, end=h.end, text=norm.original[h.start : h.end]
            )

        for c in pack.categories:
            if "prompt" not in c.applies_to:
                continue
            for h in by_label.get(f"cat:{c.id}", []):
                trig(c.id).spans.append(span(c.id, f"term:{h.term}", h))
            context = by_label.get(f"ctx:{c.id}", [])
            veto = pack.classifier.context_veto.get(c.id) if pack.classifier is not None else None
            if context and not (veto is not None and c.id in scores and scores[c.id] < veto):
                trig(c.id).spans.extend(span(c.id, f"context:{h.term}", h) for h in context)
            for k, comb in enumerate(c.combinations):
                groups = [item_hits(item) for item in comb.all_of]
                if any(
                    g is None or (not g and not item.startswith("semantic:"))
                    for g, item in zip(groups, comb.all_of)
                ):
                    continue
                positional = [
                    g
                    for g, item in zip(groups, comb.all_of)
                    if g is not None and not item.startswith("semantic:")
                ]
                chosen = (
                    any_within(norm.original, positional, comb.within, ordered=comb.ordered)
                    if positional
                    else []
                )
                if chosen is None:
                    continue
                t = trig(c.id)
                t.spans.extend(span(c.id, f"combination:{k}:{h.term}", h) for h in chosen)
                t.model = t.model or len(chosen) < len(comb.all_of)
            if c.id in flagged:
                trig(c.id).model = True

        # the built-in floor of the mandatory category (core.yaml): no pack can remove it
        minors = by_label.get("core:minor", []) + by_label.get("group:@minor", [])
        core = any_within(norm.original, [minors, by_label.get("core:sexual", [])], self._core_window)
        if core is not None:
            trig(MANDATORY_CATEGORY).spans.extend(
                span(MANDATORY_CATEGORY, f"builtin:minor+sexual:{h.term}", h) for h in core
            )

        # likeness: named protected identities need a consent grant for this user
        grant_ids: list[str] = []
        for h in person_hits:
            ident = h.label[len("person:") :]
            grant = registry.find_grant(ident, user, use=use) if registry is not None else None
            if grant is not None:
                grant_ids.append(grant.id)
                continue
            if ident.startswith("public:"):
                if pack.likeness.public_figure_threshold == "low":
                    warnings.append(f"likeness.public_figure:{ident}")
                    continue
                cid = "public_figures"
            else:
                cid = "likeness"
            if "prompt" in self._by_id[cid].applies_to:
                trig(cid).spans.append(span(cid, f"person:{ident}", h))

        return self._verdicts.finish(
            triggers,
            {c: round(v, 4) for c, v in scores.items()},  # compared unrounded above, shown to 4 places
            warnings,
            grant_ids,
            stage="input",
            content_code="SAFETY.INPUT.TEXT",
            likeness_code="SAFETY.INPUT.LIKENESS",
        )

    def check_negative(self, text: str) -> Decision:
        """Negative prompts name what to avoid: only the pack's undressing terms count there."""
        norm = normalize(text, field="negative_prompt")
        cid = self.pack.negative_prompt.category
        triggers: dict[str, Trigger] = {}
        for h in self._negative.find(norm):
            triggers.setdefault(cid, Trigger(cid)).spans.append(
                MatchedSpan(
                    category=cid,
                    rule=f"negative:{h.term}",
                    start=h.start,
                    end=h.end,
                    text=text[h.start : h.end],
                )
            )
        return self._verdicts.finish(
            triggers,
            {},
            list(norm.warnings),
            [],
            stage="input",
            content_code="SAFETY.INPUT.TEXT",
            likeness_code="SAFETY.INPUT.LIKENESS",
        )
