"""The policy engine: a loaded pack, its compiled rules, the semantic scorer and the image/frame checks."""

from __future__ import annotations

import importlib.resources
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gen4sdk.errors import InvalidRequestError, MediaError, PolicyPackError
from gen4sdk.policy._encoders import ImageEncoder, TextEncoder, shared_minilm
from gen4sdk.policy._likeness import LikenessRegistry
from gen4sdk.policy._normalize import NormalizedText, normalize
from gen4sdk.policy._rules import Hit, Lexicon, any_within, minor_age_hits
from gen4sdk.policy._schema import (
    MANDATORY_CATEGORY,
    CategorySpec,
    LoadedPack,
    PolicyPack,
    load_pack_bytes,
    load_pack_file,
)
from gen4sdk.policy._semantic import SemanticScorer, lookup_threshold
from gen4sdk.types import Decision, GenerationRequest, MatchedSpan

__all__ = ["Policy", "shipped_packs"]

logger = logging.getLogger(__name__)

_LIKENESS_CATEGORIES = ("likeness", "public_figures")
# Built in, whatever the pack says: sexual content involving minors.
_CORE_MINOR_TERMS = (
    "child porn",
    "child pornography",
    "csam",
    "lolicon",
    "shotacon",
    "jailbait",
    "underage sex",
    "underage nude",
    "pedophile porn",
    "preteen nude",
    "kiddie porn",
)
# The floor under the mandatory category's combinations: a pack may add to them but these fire even if a pack
# empties its own term groups or lets adult sexual content through.
_CORE_MINOR_WORDS = (
    "child", "children", "kid", "kids", "toddler", "infant", "baby", "babies", "little girl", "little boy",
    "young girl", "young boy", "schoolgirl", "schoolboy", "preteen", "pre-teen", "tween", "underage", "minors",
    "juvenile", "loli", "shota",
)  # fmt: skip
_CORE_SEXUAL_WORDS = (
    "naked", "nude", "nudes", "nudity", "topless", "porn", "porno", "pornographic", "sex", "sexual", "sexy",
    "sexualised", "sexualized", "erotic", "lewd", "undressed", "undressing", "genitals", "genitalia", "nsfw",
    "masturbat*", "orgasm", "xxx", "hentai", "fetish", "seductive", "lingerie",
)  # fmt: skip
_CORE_WINDOW = 12  # words between the two; a whole short prompt


def shipped_packs() -> list[str]:
    """Names of the packs that ship with the SDK (``default``, ``strict``, ...)."""
    return sorted(p.stem for p in _packs_dir_entries())


def _packs_dir_entries() -> list[Any]:
    try:
        root: Any = importlib.resources.files("gen4sdk.policies")
        return [p for p in root.iterdir() if p.name.endswith(".yaml")]
    except ModuleNotFoundError:
        # A source checkout without installation: the repository's policies/ next to the package.
        root = Path(__file__).resolve().parents[2] / "policies"
        return sorted(root.glob("*.yaml"))


def _read_shipped(name: str) -> tuple[bytes, str]:
    for entry in _packs_dir_entries():
        if entry.name == f"{name}.yaml":
            return entry.read_bytes(), f"gen4sdk.policies/{name}.yaml"
    raise PolicyPackError(f"no shipped policy pack named {name!r} (shipped: {', '.join(shipped_packs())})")


def _as_image(image: Any) -> np.ndarray:
    """An RGB uint8 (H, W, 3) array from an array or an image file path; typed errors on anything else."""
    if isinstance(image, (str, Path)):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(image) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise MediaError(f"cannot read image {image}: {e}") from e
        return arr
    if not isinstance(image, np.ndarray):
        raise InvalidRequestError(
            f"image must be a numpy array or a path, not {type(image).__name__}", field="image"
        )
    arr = image
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InvalidRequestError(f"image must have shape (H, W, 3), got {image.shape}", field="image")
    if arr.dtype != np.uint8:
        raise InvalidRequestError(f"image must be uint8 RGB, got dtype {arr.dtype}", field="image")
    if arr.shape[0] < 8 or arr.shape[1] < 8:
        raise InvalidRequestError(
            f"image is too small to check: {arr.shape[1]}x{arr.shape[0]}", field="image"
        )
    return np.ascontiguousarray(arr[:, :, :3])


class _Trigger:
    __slots__ = ("category", "semantic", "spans")

    def __init__(self, category: str) -> None:
        self.category = category
        self.spans: list[MatchedSpan] = []
        self.semantic = False


class Policy:
    """A policy pack ready to check prompts, reference images and output frames.

    ``semantic``: True (default) uses the pack's semantic scorer with all-MiniLM-L6-v2, loaded lazily on the
    first check (about 1-4 s once, ~90 MB RAM); False disables it (rules only); or pass any TextEncoder.
    ``image_encoder``: an ImageEncoder (e.g. ``OpenClipEncoder.from_pretrained(name, weights_path)``) for
    reference images and output frames; without one those checks follow the pack's ``unchecked`` setting.
    ``likeness``: the default LikenessRegistry for checks that are not given one.
    """

    def __init__(
        self,
        pack: PolicyPack | LoadedPack,
        *,
        semantic: bool | TextEncoder = True,
        image_encoder: ImageEncoder | None = None,
        likeness: LikenessRegistry | None = None,
    ) -> None:
        if isinstance(pack, LoadedPack):
            self.pack, self.sha256, self.source = pack.pack, pack.sha256, pack.source
        else:
            import hashlib

            self.pack = pack
            self.sha256 = hashlib.sha256(pack.model_dump_json().encode()).hexdigest()
            self.source = "<memory>"
        self.image_encoder = image_encoder
        self.likeness = likeness
        self._lock = threading.Lock()
        self._scorer: SemanticScorer | None = None
        self._semantic_option = semantic if self.pack.semantic_enabled else False
        self._name_cache: tuple[tuple[str, int], Lexicon, dict[str, str]] | None = None
        self._concepts: dict[str, tuple[str, np.ndarray, np.ndarray]] | None = None
        self._compile()

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, pack: str | Path, **kwargs: Any) -> Policy:
        """Load a pack file, or a shipped pack by name (``"default"``, ``"strict"``)."""
        text = str(pack)
        if (
            isinstance(pack, str)
            and "/" not in text
            and "\\" not in text
            and not text.endswith((".yaml", ".yml"))
        ):
            raw, source = _read_shipped(text)
            return cls(load_pack_bytes(raw, source=source), **kwargs)
        return cls(load_pack_file(pack), **kwargs)

    @classmethod
    def default(cls, **kwargs: Any) -> Policy:
        """The shipped default pack (``policies/default.yaml``)."""
        return cls.load("default", **kwargs)

    def __repr__(self) -> str:
        return f"Policy(id={self.id!r}, version={self.version!r})"

    @property
    def id(self) -> str:
        return self.pack.id

    @property
    def version(self) -> str:
        return self.pack.version

    @property
    def public_figures(self) -> dict[str, str]:
        """Identity ids (``public:<id>``, usable in consent grants) of the pack's public figures -> names."""
        return {f"public:{f.id}": f.name for f in self.pack.likeness.public_figures}

    def _compile(self) -> None:
        pack = self.pack
        terms: dict[str, list[str]] = {}
        exceptions: dict[str, list[str]] = {}
        for c in pack.categories:
            terms[f"cat:{c.id}"] = list(c.terms)
            exceptions[f"cat:{c.id}"] = list(c.exceptions)
        terms[f"cat:{MANDATORY_CATEGORY}"] = terms[f"cat:{MANDATORY_CATEGORY}"] + list(_CORE_MINOR_TERMS)
        terms["core:minor"] = list(_CORE_MINOR_WORDS)
        terms["core:sexual"] = list(_CORE_SEXUAL_WORDS)
        for g, items in pack.term_groups.items():
            terms[f"group:{g}"] = list(items)
        for g, items in pack.group_exceptions.items():
            exceptions[f"group:{g}"] = list(items)
        for f in pack.likeness.public_figures:
            terms[f"person:public:{f.id}"] = [f.name, *f.aliases]
        try:
            self._lexicon = Lexicon(terms, exceptions)
            self._negative = Lexicon({"negative": pack.negative_prompt.terms})
        except ValueError as e:
            raise PolicyPackError(f"{self.source}: {e}") from e
        self._by_id: dict[str, CategorySpec] = {c.id: c for c in pack.categories}

    # ------------------------------------------------------------------ semantic scorer
    @property
    def text_encoder(self) -> TextEncoder | None:
        s = self._get_scorer()
        return s.encoder if s else None

    def _get_scorer(self) -> SemanticScorer | None:
        opt = self._semantic_option
        if opt is False:
            return None
        if self._scorer is None:
            with self._lock:
                if self._scorer is None:
                    encoder: TextEncoder = shared_minilm() if opt is True else opt  # type: ignore[assignment]
                    self._scorer = SemanticScorer(self.pack, encoder)
        return self._scorer

    # ------------------------------------------------------------------ decisions
    def _decision(self, **kw: Any) -> Decision:
        return Decision(pack_id=self.id, pack_version=self.version, pack_sha256=self.sha256, **kw)

    def _fail_closed(
        self,
        *,
        code: str,
        stage: Literal["input", "output"],
        warnings: list[str],
        reason: str,
        scores: dict[str, float] | None = None,
    ) -> Decision:
        """A refusal because a check could not run and the pack says ``unchecked: block``."""
        return self._decision(
            allowed=False, action="block", code=code, stage=stage, scores=scores or {}, warnings=warnings, reason=reason
        )

    def _internal(self, stage: Literal["input", "output"], exc: BaseException) -> Decision:
        logger.error(
            "policy check failed internally; refusing (fail closed): %s: %s", type(exc).__name__, exc
        )
        return self._decision(
            allowed=False,
            action="block",
            code="SAFETY.INTERNAL",
            stage=stage,
            reason=f"the policy check failed internally ({type(exc).__name__}: {exc}); refused (fail closed)",
        )

    def _guard(self, stage: Literal["input", "output"], fn: Callable[[], Decision]) -> Decision:
        try:
            return fn()
        except (InvalidRequestError, MediaError):
            raise  # the caller's input is bad: a typed error, not a decision
        except Exception as exc:  # noqa: BLE001 - fail closed on anything else
            return self._internal(stage, exc)

    # ------------------------------------------------------------------ text
    def check_prompt(
        self,
        text: str,
        *,
        user: str | None = None,
        likeness: LikenessRegistry | None = None,
        use: str | None = None,
    ) -> Decision:
        """Check one prompt. Raises InvalidRequestError for empty, oversized (> MAX_PROMPT_CHARS) or binary text."""
        norm = normalize(text)
        return self._guard("input", lambda: self._text_decision(norm, None, user, likeness, use))

    def check_prompts(self, texts: Sequence[str], *, user: str | None = None) -> list[Decision]:
        """Check many prompts, batching the sentence encoder (the same decisions as check_prompt)."""
        norms = [normalize(t) for t in texts]

        def run() -> list[Decision]:
            scorer = self._get_scorer()
            embs: list[np.ndarray | None] = [None] * len(norms)
            if scorer is not None:
                embs = list(scorer.embed(norms))
            return [self._text_decision(n, e, user, None, None) for n, e in zip(norms, embs)]

        try:
            return run()
        except Exception as exc:  # noqa: BLE001
            return [self._internal("input", exc)] * len(norms)

    def _name_lexicon(self, registry: LikenessRegistry | None) -> tuple[Lexicon | None, dict[str, str]]:
        if registry is None:
            return None, {}
        key = (str(registry.path), registry.revision())
        cached = self._name_cache
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        terms: dict[str, list[str]] = {}
        names: dict[str, str] = {}
        for ident in registry.identities():
            terms[f"person:{ident.id}"] = [ident.name, *ident.aliases]
            names[ident.id] = ident.name
        lex = Lexicon(terms)
        self._name_cache = (key, lex, names)
        return lex, names

    def _text_decision(
        self,
        norm: NormalizedText,
        windows: np.ndarray | None,
        user: str | None,
        likeness: LikenessRegistry | None,
        use: str | None,
    ) -> Decision:
        pack = self.pack
        registry = likeness if likeness is not None else self.likeness
        hits = self._lexicon.find(norm) + minor_age_hits(norm)
        names_lex, _ = self._name_lexicon(registry)
        if names_lex is not None:
            hits += names_lex.find(norm)
        by_label: dict[str, list[Hit]] = {}
        for h in hits:
            by_label.setdefault(h.label, []).append(h)
        person_hits = [h for h in hits if h.label.startswith("person:")]
        warnings = list(norm.warnings)

        # semantic scores
        scores: dict[str, float] = {}
        sem_pass: set[str] = set()
        scorer = self._get_scorer()
        if scorer is not None:
            if windows is None:
                windows = scorer.embed([norm])[0]
            scores = scorer.scores(windows)
            sem_pass = {c for c, s in scores.items() if s >= scorer.thresholds[c]}
            if scorer.untuned:
                warnings.append(f"semantic.untuned:{scorer.encoder.id}")
        elif any(c.semantic is not None for c in pack.categories):
            warnings.append("semantic.off")

        def item_hits(item: str) -> list[Hit] | None:
            if item.startswith("semantic:"):
                return [] if item[9:] in sem_pass else None
            if item == "@person":
                return person_hits
            if item == "@minor_age":
                return by_label.get("group:@minor", [])
            if item in self._by_id:
                return by_label.get(f"cat:{item}", [])
            return by_label.get(f"group:{item}", [])

        triggers: dict[str, _Trigger] = {}

        def trig(cid: str) -> _Trigger:
            return triggers.setdefault(cid, _Trigger(cid))

        def span(cid: str, rule: str, h: Hit) -> MatchedSpan:
            return MatchedSpan(
                category=cid, rule=rule, start=h.start, end=h.end, text=norm.original[h.start : h.end]
            )

        for c in pack.categories:
            if "prompt" not in c.applies_to:
                continue
            for h in by_label.get(f"cat:{c.id}", []):
                trig(c.id).spans.append(span(c.id, f"term:{h.term}", h))
            for k, comb in enumerate(c.combinations):
                groups: list[list[Hit]] = []
                positional: list[list[Hit]] = []
                ok = True
                for item in comb.all_of:
                    got = item_hits(item)
                    if got is None or (not got and not item.startswith("semantic:")):
                        ok = False
                        break
                    groups.append(got)
                    if not item.startswith("semantic:"):
                        positional.append(got)
                if not ok:
                    continue
                chosen = (
                    any_within(norm.original, positional, comb.within, ordered=comb.ordered)
                    if positional
                    else []
                )
                if chosen is None:
                    continue
                t = trig(c.id)
                for h in chosen:
                    t.spans.append(span(c.id, f"combination:{k}:{h.term}", h))
                if len(chosen) < len(comb.all_of):
                    t.semantic = True
            if c.id in sem_pass:
                trig(c.id).semantic = True

        # built-in floor for the mandatory category (see _CORE_MINOR_WORDS)
        minors = by_label.get("core:minor", []) + by_label.get("group:@minor", [])
        core = any_within(norm.original, [minors, by_label.get("core:sexual", [])], _CORE_WINDOW)
        if core is not None:
            t = trig(MANDATORY_CATEGORY)
            t.spans.extend(span(MANDATORY_CATEGORY, f"builtin:minor+sexual:{h.term}", h) for h in core)

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

        return self._finish(
            triggers, scores, warnings, grant_ids, stage="input", text_code="SAFETY.INPUT.TEXT"
        )

    def _finish(
        self,
        triggers: dict[str, _Trigger],
        scores: dict[str, float],
        warnings: list[str],
        grant_ids: list[str],
        *,
        stage: Literal["input", "output"],
        text_code: str,
        likeness_code: str | None = None,
    ) -> Decision:
        blocking = [c for c in triggers if self._by_id[c].action == "block"]
        warning = [c for c in triggers if self._by_id[c].action == "warn"]
        spans = [s for t in triggers.values() for s in t.spans if self._by_id[t.category].action != "allow"]
        categories = blocking + [c for c in warning if c not in blocking]
        for c in warning:
            warnings.append(f"category:{c}")
        warnings = list(dict.fromkeys(warnings))
        if blocking:
            likeness_hit = [c for c in blocking if c in _LIKENESS_CATEGORIES]
            code = (likeness_code or "SAFETY.INPUT.LIKENESS") if likeness_hit else text_code
            why = []
            for c in blocking:
                t = triggers[c]
                how = [s.rule for s in t.spans[:3]] + (["semantic"] if t.semantic else [])
                why.append(f"{c} ({', '.join(how)})")
            return self._decision(
                allowed=False,
                action="block",
                code=code,
                stage=stage,
                categories=categories,
                scores=scores,
                spans=spans,
                warnings=warnings,
                reason="refused by policy: " + "; ".join(why),
            )
        action: Literal["allow", "warn"] = "warn" if warning else "allow"
        return self._decision(
            allowed=True,
            action=action,
            stage=stage,
            categories=categories,
            scores=scores,
            spans=spans,
            warnings=warnings,
            grant_id=",".join(dict.fromkeys(grant_ids)) or None,
            reason="allowed with warnings: " + ", ".join(warning) if warning else "allowed",
        )

    def _negative_decision(self, text: str) -> Decision:
        norm = normalize(text, field="negative_prompt")
        cid = self.pack.negative_prompt.category
        triggers: dict[str, _Trigger] = {}
        for h in self._negative.find(norm):
            t = triggers.setdefault(cid, _Trigger(cid))
            t.spans.append(
                MatchedSpan(
                    category=cid,
                    rule=f"negative:{h.term}",
                    start=h.start,
                    end=h.end,
                    text=text[h.start : h.end],
                )
            )
        return self._finish(
            triggers, {}, list(norm.warnings), [], stage="input", text_code="SAFETY.INPUT.TEXT"
        )

    # ------------------------------------------------------------------ images and frames
    def _concept_table(self, encoder: ImageEncoder) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
        if self._concepts is None:
            with self._lock:
                if self._concepts is None:
                    table = {}
                    for c in self.pack.categories:
                        if c.concepts is None:
                            continue
                        pos = encoder.encode_texts(c.concepts.positive)
                        neg = encoder.encode_texts(c.concepts.negative) if c.concepts.negative else pos[:0]
                        table[c.id] = (c.id, pos, neg)
                    self._concepts = table
        return self._concepts

    def _media_decision(
        self,
        images: list[np.ndarray],
        *,
        target: Literal["image", "frames"],
        registry: LikenessRegistry | None,
        user: str | None,
        use: str | None,
    ) -> Decision:
        stage: Literal["input", "output"] = "input" if target == "image" else "output"
        code = "SAFETY.INPUT.IMAGE" if target == "image" else "SAFETY.OUTPUT.FRAMES"
        likeness_code = "SAFETY.INPUT.LIKENESS" if target == "image" else "SAFETY.OUTPUT.FRAMES"
        spec = self.pack.images if target == "image" else self.pack.frames
        encoder = self.image_encoder
        label = "image" if target == "image" else "frames"
        if encoder is None:
            if spec.unchecked == "block":
                return self._fail_closed(
                    code=code,
                    stage=stage,
                    warnings=[f"{label}.unchecked"],
                    reason=f"no image encoder is configured and pack {self.id} fails closed on unchecked {label}",
                )
            return self._decision(
                allowed=True,
                action="allow",
                stage=stage,
                warnings=[f"{label}.unchecked"],
                reason=f"allowed; {label} not checked (no image encoder configured)",
            )
        emb = encoder.encode_images(images)
        scores: dict[str, float] = {}
        warnings: list[str] = []
        triggers: dict[str, _Trigger] = {}
        untuned = []
        for cid, (_, pos, neg) in self._concept_table(encoder).items():
            cat = self._by_id[cid]
            if target not in cat.applies_to or cat.concepts is None:
                continue
            thr = lookup_threshold(cat.concepts.threshold, encoder.id)
            if thr is None:
                untuned.append(cid)
                continue
            p = (emb @ pos.T).max(axis=1)
            n = (emb @ neg.T).max(axis=1) if len(neg) else np.zeros_like(p)
            s = float((p - self.pack.counter_weight * n).max())
            scores[cid] = round(s, 4)
            if s >= thr:
                triggers.setdefault(cid, _Trigger(cid)).semantic = True
        if untuned:
            warnings.append(f"{label}.untuned:{encoder.id}")
        grant_ids: list[str] = []
        face_unchecked = ""
        if registry is not None:
            ids, mat = registry.face_embeddings(encoder.id)
            thr = lookup_threshold(self.pack.likeness.image_threshold, encoder.id)
            if ids and thr is None:
                warnings.append(f"likeness.{label}_untuned:{encoder.id}")
                face_unchecked = "no likeness threshold"
            elif ids and thr is not None and mat.shape[1] == emb.shape[1]:
                sims = emb @ mat.T  # (images, embeddings)
                scores["likeness"] = round(float(sims.max()), 4)
                matched = sorted({ids[j] for j in np.nonzero((sims >= thr).any(axis=0))[0]})
                for ident in matched:
                    grant = registry.find_grant(ident, user, use=use)
                    if grant is not None:
                        grant_ids.append(grant.id)
                        continue
                    t = triggers.setdefault("likeness", _Trigger("likeness"))
                    t.semantic = True
                    t.spans.append(
                        MatchedSpan(category="likeness", rule=f"face:{ident}", start=0, end=0, text="")
                    )
            elif ids:
                warnings.append(f"likeness.{label}_unchecked:dimension_mismatch")
                face_unchecked = "registry embeddings of another dimension"
            elif registry.has_face_embeddings():
                warnings.append(f"likeness.{label}_unchecked:no_embeddings_for:{encoder.id}")
                face_unchecked = "no registry embeddings for this encoder"
        if face_unchecked and spec.unchecked == "block":
            # protected faces are registered but could not be compared: a strict pack refuses rather than guess
            return self._fail_closed(
                code=likeness_code,
                stage=stage,
                scores=scores,
                warnings=[*warnings, f"likeness.{label}_unchecked"],
                reason=(
                    f"likeness of {label} not checked with {encoder.id} ({face_unchecked}); "
                    f"pack {self.id} fails closed on unchecked {label}"
                ),
            )
        if untuned and spec.unchecked == "block":
            return self._fail_closed(
                code=code,
                stage=stage,
                scores=scores,
                warnings=[*warnings, f"{label}.unchecked"],
                reason=(
                    f"image encoder {encoder.id} has no threshold in pack {self.id} for {', '.join(untuned)}; "
                    f"the pack fails closed on unchecked {label}"
                ),
            )
        return self._finish(
            triggers, scores, warnings, grant_ids, stage=stage, text_code=code, likeness_code=likeness_code
        )

    def check_image(
        self,
        image: np.ndarray | str | Path,
        *,
        user: str | None = None,
        likeness: LikenessRegistry | None = None,
        use: str | None = None,
    ) -> Decision:
        """Check a reference image (array (H, W, 3) uint8 RGB, or a path). MediaError if it cannot be read."""
        img = _as_image(image)
        registry = likeness if likeness is not None else self.likeness
        return self._guard(
            "input",
            lambda: self._media_decision([img], target="image", registry=registry, user=user, use=use),
        )

    def check_frames(
        self,
        frames: np.ndarray,
        *,
        likeness: LikenessRegistry | None = None,
        user: str | None = None,
        use: str | None = None,
    ) -> Decision:
        """Check output frames (T, H, W, 3) uint8: up to ``frames.sample_frames`` evenly spaced ones."""
        if (
            not isinstance(frames, np.ndarray)
            or frames.ndim != 4
            or frames.shape[-1] != 3
            or frames.shape[0] < 1
        ):
            shape = getattr(frames, "shape", None)
            raise InvalidRequestError(
                f"frames must be a (T, H, W, 3) uint8 array, got {shape}", field="frames"
            )
        n = min(self.pack.frames.sample_frames, frames.shape[0])
        idx = np.unique(np.linspace(0, frames.shape[0] - 1, n).round().astype(int))
        imgs = [_as_image(frames[i]) for i in idx]
        registry = likeness if likeness is not None else self.likeness
        return self._guard(
            "output",
            lambda: self._media_decision(imgs, target="frames", registry=registry, user=user, use=use),
        )

    # ------------------------------------------------------------------ the request
    def check_request(
        self,
        request: GenerationRequest,
        *,
        image: np.ndarray | None = None,
        likeness: LikenessRegistry | None = None,
        use: str | None = None,
    ) -> Decision:
        """Prompt, negative prompt, reference image (``image`` or ``request.image``) and likeness, as one decision.
        ``use`` defaults to ``request.use``."""
        use = use if use is not None else request.use
        registry = likeness if likeness is not None else self.likeness
        norm = normalize(request.prompt)
        img = None
        if image is not None:
            img = _as_image(image)
        elif request.image is not None:
            img = _as_image(request.image)

        def run() -> Decision:
            parts = [("prompt", self._text_decision(norm, None, request.user, registry, use))]
            if request.negative_prompt and request.negative_prompt.strip():
                parts.append(("negative", self._negative_decision(request.negative_prompt)))
            if img is not None:
                media = self._media_decision(
                    [img], target="image", registry=registry, user=request.user, use=use
                )
                parts.append(("image", media))
            return self._merge(parts)

        return self._guard("input", run)

    def _merge(self, parts: list[tuple[str, Decision]]) -> Decision:
        if len(parts) == 1:
            return parts[0][1]
        refused = [d for _, d in parts if not d.allowed]
        first = refused[0] if refused else None
        scores: dict[str, float] = {}
        for name, d in parts:
            for k, v in d.scores.items():
                scores[f"{name}:{k}" if name != "prompt" else k] = v
        ds = [d for _, d in parts]
        categories = list(dict.fromkeys(c for d in ds for c in d.categories))
        warnings = list(dict.fromkeys(w for d in ds for w in d.warnings))
        spans = [s for d in ds for s in d.spans]
        grants = [g for d in ds if d.grant_id for g in d.grant_id.split(",")]
        if first is not None:
            return self._decision(
                allowed=False,
                action="block",
                code=first.code,
                stage="input",
                categories=categories,
                scores=scores,
                spans=spans,
                warnings=warnings,
                reason="; ".join(d.reason for d in refused),
            )
        action: Literal["allow", "warn"] = "warn" if any(d.action == "warn" for d in ds) else "allow"
        return self._decision(
            allowed=True,
            action=action,
            stage="input",
            categories=categories,
            scores=scores,
            spans=spans,
            warnings=warnings,
            grant_id=",".join(dict.fromkeys(grants)) or None,
            reason="; ".join(d.reason for d in ds if d.reason and d.reason != "allowed") or "allowed",
        )
