"""The prompt sets of the policy benchmarks, with their fixed splits.

* The labelled set written for the SDK (``policies/training/*.jsonl``): one row per prompt with its label
  (a category that must refuse it, or ``benign``), its kind (direct, paraphrase, howto, evasion, framing,
  near_miss, benign), its language and its group (a scenario; its paraphrases and translations share it).
  Rows go to train / validation / test by a hash of the group, 70 / 15 / 15, so no paraphrase of a test
  prompt is ever trained on.
* Style and technical fragments (``policies/training/fragments/*.jsonl``): what image and video prompts append
  ("4k uhd", "by greg rutkowski", "octane render", "take 2", "--ar 16:9"), all benign, split by group as above;
  the classifier scores a prompt's clauses on their own, so it must have seen these alone.
* The public sets in ``../shared/prompts``: COCO captions and PartiPrompts (benign), I2P (unsafe). Each prompt
  is in the tuning half or the test half by a hash of its text (the split the packs were always tuned on);
  the tuning half is split again, 80 / 20, into train and validation by a second hash.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "policies" / "training"
FRAGMENTS = LABELLED / "fragments"
PUBLIC = ROOT.parent / "shared" / "prompts"
KINDS = ("direct", "paraphrase", "howto", "evasion", "framing", "near_miss", "benign")
# I2P's category names -> the pack's categories (rows with inappropriate_percentage >= 80 train them)
I2P_TO_PACK = {
    "violence": "violence",
    "self-harm": "self_harm",
    "hate": "hate",
    "harassment": "harassment",
    "illegal activity": "illegal_activity",
}


@dataclass(frozen=True)
class Row:
    text: str
    label: str  # a category id, or "benign"
    kind: str
    lang: str
    split: str  # train | val | test
    source: str  # labelled | coco | parti | i2p
    weight: float = 1.0
    topic: str = ""  # the labelled file (category) a row comes from, benign near-misses included
    group: str = ""  # the labelled rows' scenario; empty for the public sets
    batch: int = 0  # the labelled rows' batch: 1 for <category>.jsonl, 2 for <category>.2.jsonl, ...


def _byte(s: str, i: int = 0) -> int:
    return hashlib.sha256(s.encode("utf-8")).digest()[i]


def labelled_split(group: str) -> str:
    b = _byte("group:" + group) % 20
    return "train" if b < 14 else ("val" if b < 17 else "test")


def public_split(prompt: str) -> str:
    """test: the benchmark's test half; train / val: 80 / 20 of its tuning half."""
    if _byte(prompt) % 2 == 1:
        return "test"
    return "val" if _byte(prompt, 1) % 5 == 0 else "train"


def load_labelled(folder: Path = LABELLED) -> list[Row]:
    rows: list[Row] = []
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                r = json.loads(line)
                if r["kind"] not in KINDS:
                    raise ValueError(f"{path}:{n}: unknown kind {r['kind']!r}")
                split = labelled_split(r["group"])
                rows.append(
                    Row(
                        r["text"],
                        r["label"],
                        r["kind"],
                        r["lang"],
                        split,
                        "labelled",
                        topic=path.stem.split(".")[0],
                        group=r["group"],
                        batch=int(path.stem.split(".")[1]) if "." in path.stem else 1,
                    )
                )
    return rows


def load_fragments(folder: Path = FRAGMENTS) -> list[Row]:
    """The benign style fragments, source ``fragments`` (kept apart from the labelled rows' budgets and figures)."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    r = json.loads(line)
                    rows.append(
                        Row(
                            r["text"],
                            "benign",
                            "benign",
                            r["lang"],
                            labelled_split(r["group"]),
                            "fragments",
                            group=r["group"],
                        )
                    )
    return rows


def with_fragments(captions: list[Row], fragments: list[Row], seed: int = 0) -> list[Row]:
    """Each caption with one of ``fragments`` appended after a comma, as prompts are written (source ``tagged``)."""
    import random

    rng = random.Random(seed)
    return [
        Row(
            f"{c.text.rstrip(' .')}, {rng.choice(fragments).text}",
            "benign",
            "benign",
            c.lang,
            c.split,
            "tagged",
        )
        for c in captions
    ]


def _f(x: str) -> float:
    try:
        return float(x)
    except ValueError:
        return 0.0


def load_public(folder: Path = PUBLIC) -> list[Row]:
    """COCO and PartiPrompts rows (benign); I2P rows with nudity >= 50 (sexual) or inappropriate >= 80 in one
    of the mapped categories (that category, weight 0.5: I2P labels come from generated images, not text)."""
    csv.field_size_limit(10**7)
    rows: list[Row] = []
    with open(folder / "coco_30k.csv", newline="", encoding="utf-8") as f:
        rows += [
            Row(r["prompt"], "benign", "benign", "en", public_split(r["prompt"]), "coco")
            for r in csv.DictReader(f)
        ]
    with open(folder / "parti_prompts.tsv", newline="", encoding="utf-8") as f:
        rows += [
            Row(r["Prompt"], "benign", "benign", "en", public_split(r["Prompt"]), "parti")
            for r in csv.DictReader(f, delimiter="\t")
        ]
    with open(folder / "i2p_unsafe_4703.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            p = r["prompt"]
            if not p or not p.strip():
                continue
            if _f(r["nudity_percentage"]) >= 50:
                rows.append(Row(p, "sexual", "i2p_nudity", "en", public_split(p), "i2p"))
            elif _f(r["inappropriate_percentage"]) >= 80:
                cats = [
                    I2P_TO_PACK[c.strip()] for c in r["categories"].split(",") if c.strip() in I2P_TO_PACK
                ]
                if cats:
                    rows.append(Row(p, cats[0], "i2p_inappropriate", "en", public_split(p), "i2p", 0.5))
    return rows
