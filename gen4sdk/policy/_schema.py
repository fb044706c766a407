"""Policy pack schema (pydantic) and the YAML loader that reports errors by file, line and field.

A pack is data a compliance team reads and reviews; see ``policies/default.yaml`` for a commented example.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gen4sdk.errors import PolicyPackError
from gen4sdk.types import RefusalCode

__all__ = [
    "MANDATORY_CATEGORY",
    "REQUIRED_CATEGORIES",
    "Action",
    "CategorySpec",
    "ClassifierSpec",
    "Combination",
    "ConceptSpec",
    "LikenessSpec",
    "LoadedPack",
    "MediaCheckSpec",
    "PackTestCase",
    "PolicyPack",
    "PublicFigure",
    "SemanticSpec",
    "Target",
    "load_pack_file",
]

Action = Literal["block", "warn", "allow"]
Target = Literal["prompt", "image", "frames"]

# Sexual content involving minors is always blocked, on every target: a pack cannot weaken it.
MANDATORY_CATEGORY = "sexual_minors"
REQUIRED_CATEGORIES = (
    "sexual_minors",
    "sexual",
    "likeness",
    "public_figures",
    "violence",
    "self_harm",
    "hate",
    "harassment",
    "extremism",
    "weapons_cbrne",
    "illegal_activity",
    "deceptive_news",
    "intellectual_property",
)
_ID = r"^[a-z][a-z0-9_]*$"
_SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Combination(_Model):
    """Fires when every item of ``all_of`` occurs, optionally within ``within`` words of each other.

    Items: a term group name (``minor``), a category id (its terms), ``semantic:<category>`` (that category's
    semantic score passes its threshold), ``@person`` (a protected identity or public figure is named),
    ``@minor_age`` (a stated age under 18).
    """

    all_of: list[str] = Field(min_length=2)
    within: int | None = Field(default=None, ge=0, le=50)
    ordered: bool = Field(default=False, description="items must occur in the order listed")
    note: str = ""


class SemanticSpec(_Model):
    """Paraphrase detection: cosine similarity of the prompt to exemplars, minus the best benign counter-exemplar."""

    exemplars: list[str] = Field(min_length=1)
    counter_exemplars: list[str] = Field(default_factory=list)
    # threshold per text encoder id ("minilm-l6-v2", "open_clip:ViT-B-32", ...); an encoder without a
    # threshold is not used for this category (and the decision carries a warning).
    threshold: dict[str, float] = Field(default_factory=dict)


class ConceptSpec(_Model):
    """Image and frame checks: image embedding vs text embeddings of concepts in a shared (CLIP) space."""

    positive: list[str] = Field(min_length=1)
    negative: list[str] = Field(default_factory=list)
    threshold: dict[str, float] = Field(default_factory=dict)  # per image encoder id or family ("open_clip")


class ClassifierSpec(_Model):
    """The trained prompt classifier (see ``gen4sdk/policy/_classifier.py``): weights in a file beside the pack,
    pinned by SHA-256, and a probability threshold per category it scores."""

    encoder: str = "use-multilingual-v3"
    file: str = Field(min_length=1, description="path of the .npz weights, relative to the pack file")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    thresholds: dict[str, float] = Field(min_length=1)
    # Prompts written mostly in a script the encoder was not trained on (Greek, Hebrew, Devanagari, ...):
    # warn = allowed on the rules alone with the warning text.unsupported_script; block = refused with
    # SAFETY.INPUT.LANGUAGE (the pack refuses what it cannot judge).
    unsupported_script: Literal["warn", "block"] = "warn"
    # per category: its context terms are overruled when the classifier's score for it is below this (set by
    # the training script at a low percentile of the harmful prompts' scores); a category not listed: no veto
    context_veto: dict[str, float] = Field(default_factory=dict)

    @field_validator("thresholds")
    @classmethod
    def _unit(cls, v: dict[str, float]) -> dict[str, float]:
        for k, t in v.items():
            if not 0.0 < t <= 1.0:
                raise ValueError(f"threshold of {k!r} must be in (0, 1], got {t}")
        return v


class CategorySpec(_Model):
    id: str = Field(pattern=_ID)
    title: str
    description: str = ""
    action: Action
    applies_to: list[Target] = Field(min_length=1)
    terms: list[str] = Field(default_factory=list)
    # words that name the harm but are everyday words too ("stalking" prey, a "nude" dress, an anti-"bullying"
    # talk): they refuse like terms unless the pack's classifier scores the prompt below
    # classifier.context_veto for this category (confidently benign). Without the classifier, plain terms.
    context_terms: list[str] = Field(default_factory=list)
    exceptions: list[str] = Field(default_factory=list, description="phrases that cancel a term inside them")
    combinations: list[Combination] = Field(default_factory=list)
    semantic: SemanticSpec | None = None
    concepts: ConceptSpec | None = None
    # content detectors on reference images and frames: detector id ("open_nsfw", "nudenet-320n") -> the score
    # at or above which this category is refused; a detector not listed is not used for this category
    detectors: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mandatory(self) -> CategorySpec:
        if self.id == MANDATORY_CATEGORY and (
            self.action != "block" or set(self.applies_to) != {"prompt", "image", "frames"}
        ):
            raise ValueError(
                f"category {MANDATORY_CATEGORY!r} is not configurable: it must have action 'block' and apply to "
                "prompt, image and frames"
            )
        return self

    @field_validator("terms", "context_terms", "exceptions")
    @classmethod
    def _terms_ok(cls, v: list[str]) -> list[str]:
        for t in v:
            if not re.search(r"[^\W_]", t):
                raise ValueError(f"term {t!r} has no letters or digits")
        return v


class PublicFigure(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str = Field(min_length=3)
    aliases: list[str] = Field(default_factory=list)


class LikenessSpec(_Model):
    # auto: naming a listed public figure is refused unless a consent grant covers the request.
    # low: naming one is allowed with a warning; sexual, violent or deceptive depictions are still refused.
    public_figure_threshold: Literal["auto", "low"] = "auto"
    public_figures: list[PublicFigure] = Field(default_factory=list)
    # cosine similarity of unit face embeddings at or above which a face matches a registered identity, per
    # face encoder id (see benchmarks/faces.py for how the shipped value was measured)
    face_threshold: dict[str, float] = Field(default_factory=dict)


class MediaCheckSpec(_Model):
    # What happens when a category listed in `required` has no detector or encoder to check it (none
    # configured, or none with a threshold in this pack): warn (the decision carries "<target>.unchecked") or
    # block (fail closed). A configured model that fails to load always refuses (SAFETY.UNAVAILABLE).
    unchecked: Literal["warn", "block"] = "warn"
    required: list[str] = Field(default_factory=lambda: ["sexual"])
    # frames: sampled by time when the frame rate is known (plus the first frame of every scene), at most
    # max_samples; sample_frames evenly spaced ones when it is not
    samples_per_second: float = Field(default=2.0, gt=0, le=60)
    max_samples: int = Field(default=64, ge=1, le=1024)
    sample_frames: int = Field(default=8, ge=1, le=256)


class NegativePromptSpec(_Model):
    """Negative prompts name what to avoid, so content terms are not checked there, except terms that undress
    ("clothes", "clothing") which steer a model towards nudity; those count as the given category."""

    category: str = "sexual"
    terms: list[str] = Field(default_factory=list)


class PackTestCase(_Model):
    prompt: str = Field(min_length=1)
    expect: Action
    categories: list[str] = Field(
        default_factory=list, description="categories that must be among those triggered"
    )
    code: RefusalCode | None = None
    negative_prompt: str | None = None
    note: str = ""


class PolicyPack(_Model):
    schema_version: Literal[1] = 1
    id: str = Field(pattern=r"^[a-z][a-z0-9_.-]*$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
    title: str
    description: str = ""
    semantic_enabled: bool = True
    counter_weight: float = Field(default=0.5, ge=0.0, le=2.0)
    # a prompt's closeness to a category is its mean cosine to the category's `semantic_neighbours` nearest
    # exemplars (1 = the nearest alone); see gen4sdk/policy/_semantic.py
    semantic_neighbours: int = Field(default=1, ge=1, le=8)
    # benign counter-exemplars shared by every category's semantic scorer (everyday scenes, short subjects)
    common_counter_exemplars: list[str] = Field(default_factory=list)
    term_groups: dict[str, list[str]] = Field(default_factory=dict)
    group_exceptions: dict[str, list[str]] = Field(default_factory=dict)
    categories: list[CategorySpec]
    classifier: ClassifierSpec | None = None
    likeness: LikenessSpec = Field(default_factory=LikenessSpec)
    images: MediaCheckSpec = Field(default_factory=MediaCheckSpec)
    frames: MediaCheckSpec = Field(default_factory=MediaCheckSpec)
    negative_prompt: NegativePromptSpec = Field(default_factory=NegativePromptSpec)
    tests: list[PackTestCase] = Field(default_factory=list)

    @field_validator("term_groups")
    @classmethod
    def _groups_ok(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in v:
            if not re.match(_ID, name):
                raise ValueError(f"term group name {name!r} must match {_ID}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> PolicyPack:
        ids = [c.id for c in self.categories]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate category ids: {sorted(dup)}")
        missing = [c for c in REQUIRED_CATEGORIES if c not in ids]
        if missing:
            raise ValueError(f"missing required categories: {missing}")
        clash = sorted(set(self.term_groups) & set(ids))
        if clash:
            raise ValueError(
                f"term_groups: names {clash} are also category ids; combinations would be ambiguous"
            )
        known = set(self.term_groups) | set(ids) | {"@person", "@minor_age"}
        for ci, c in enumerate(self.categories):
            for k, comb in enumerate(c.combinations):
                for item in comb.all_of:
                    name = item.split(":", 1)[1] if item.startswith("semantic:") else item
                    if name not in known:
                        raise ValueError(
                            f"categories[{ci}] ({c.id}).combinations[{k}]: unknown item {item!r} "
                            "(use a term group, a category id, semantic:<category>, @person or @minor_age)"
                        )
                    if item.startswith("semantic:"):
                        target = self.categories[ids.index(name)]
                        modelled = self.classifier is not None and name in self.classifier.thresholds
                        if target.semantic is None and not modelled:
                            raise ValueError(
                                f"{c.id}: {item!r} refers to a category neither the classifier nor a semantic "
                                "section scores"
                            )
        for name in self.group_exceptions:
            if name not in self.term_groups:
                raise ValueError(f"group_exceptions: unknown term group {name!r}")
        if self.negative_prompt.category not in ids:
            raise ValueError(f"negative_prompt.category: unknown category {self.negative_prompt.category!r}")
        for i, t in enumerate(self.tests):
            for cat in t.categories:
                if cat not in ids:
                    raise ValueError(f"tests[{i}]: unknown category {cat!r}")
        if self.classifier is not None:
            unknown = sorted(set(self.classifier.thresholds) - set(ids))
            if unknown:
                raise ValueError(f"classifier.thresholds: unknown categories {unknown}")
        for where, media in (("images", self.images), ("frames", self.frames)):
            unknown = sorted(set(media.required) - set(ids))
            if unknown:
                raise ValueError(f"{where}.required: unknown categories {unknown}")
        figs = [f.id for f in self.likeness.public_figures]
        if len(set(figs)) != len(figs):
            raise ValueError("likeness.public_figures: duplicate ids")
        return self

    def category(self, cid: str) -> CategorySpec:
        for c in self.categories:
            if c.id == cid:
                return c
        raise KeyError(cid)


class LoadedPack(_Model):
    pack: PolicyPack
    sha256: str
    source: str
    # where files the pack names (the classifier's weights) are looked up; None for a pack built in memory
    base: str | None = None


# ---------------------------------------------------------------- YAML with line numbers


class _Loader(yaml.SafeLoader):
    pass


def _line_map(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int], src: str) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            if key in seen:
                raise PolicyPackError(
                    f"{src}:{k.start_mark.line + 1}: duplicate key {key!r} (first at line {seen[key]})"
                )
            seen[key] = k.start_mark.line + 1
            out[path + (key,)] = k.start_mark.line + 1
            _line_map(v, path + (key,), out, src)
            out[path + (key,)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, path + (i,), out, src)


def _field_path(loc: tuple[Any, ...]) -> str:
    s = ""
    for part in loc:
        s += f"[{part}]" if isinstance(part, int) else (f".{part}" if s else str(part))
    return s or "<pack>"


def _locate(lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


def _model_error_path(msg: str) -> tuple[Any, ...] | None:
    m = re.search(r"categories\[(\d+)\]", msg)
    if m:
        return ("categories", int(m.group(1)))
    m = re.search(r"tests\[(\d+)\]", msg)
    if m:
        return ("tests", int(m.group(1)))
    for key in ("negative_prompt", "group_exceptions", "likeness", "classifier", "images", "frames"):
        if msg.startswith(key):
            return (key,)
    return None


def parse_pack(text: str, *, source: str) -> PolicyPack:
    """Validate the YAML text of a pack; PolicyPackError names the file, line and field of the first problems."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else 1
        raise PolicyPackError(f"{source}:{line}: not valid YAML: {e.problem}") from e
    except yaml.YAMLError as e:
        raise PolicyPackError(f"{source}: not valid YAML: {e}") from e
    if node is None:
        raise PolicyPackError(f"{source}:1: the pack is empty")
    lines: dict[tuple[Any, ...], int] = {}
    _line_map(node, (), lines, source)
    data = yaml.load(text, Loader=_Loader)
    if not isinstance(data, dict):
        raise PolicyPackError(f"{source}:1: a pack is a mapping (id, version, categories, ...)")
    try:
        return PolicyPack.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors()[:5]:
            loc = tuple(err["loc"])
            msg = err["msg"]
            if not loc:
                hint = _model_error_path(msg.removeprefix("Value error, "))
                line = _locate(lines, hint) if hint else 1
                problems.append(f"{source}:{line}: {msg.removeprefix('Value error, ')}")
                continue
            line = _locate(lines, loc)
            got = err.get("input")
            shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
            problems.append(f"{source}:{line}: {_field_path(loc)}: {msg}{shown}")
        more = f" (+{e.error_count() - 5} more)" if e.error_count() > 5 else ""
        raise PolicyPackError("invalid policy pack: " + "; ".join(problems) + more) from e


def load_pack_file(path: str | Path) -> LoadedPack:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise PolicyPackError(f"cannot read policy pack {p}: {e.strerror or e}") from e
    return load_pack_bytes(raw, source=str(p), base=str(p.resolve().parent))


def load_pack_bytes(raw: bytes, *, source: str, base: str | None = None) -> LoadedPack:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PolicyPackError(f"{source}: not UTF-8 text (byte {e.start})") from e
    pack = parse_pack(text, source=source)
    return LoadedPack(pack=pack, sha256=hashlib.sha256(raw).hexdigest(), source=source, base=base)
