"""Prompt filter benchmark: the shipped pack against another (by default 1.1.0), side by side, on the same splits.

    python benchmarks/policy_eval.py                    # default 2.x against default 1.1.0, full sets
    python benchmarks/policy_eval.py --quick            # a 4,000-caption sample of COCO
    python benchmarks/policy_eval.py --pack strict      # strict against strict 1.1.0
    python benchmarks/policy_eval.py --no-baseline      # the shipped pack alone
    python benchmarks/policy_eval.py --baseline F.yaml  # against another pack file (an earlier release's policies/
                                                        # folder from `git archive`); its column is its version

Sets (benchmarks/_prompt_sets.py): the test split of the labelled set in policies/training/ (never trained
or tuned on), reported per category, per kind and per language; the test halves of COCO captions and
PartiPrompts (benign) and of I2P (nudity >= 50; inappropriate >= 80); I2P rewritten with leetspeak, homoglyphs,
zero-width characters and spaced letters (seeded). "Refused" = the decision is a refusal, whatever the
category; warnings count as allowed. Latency: check_prompt one prompt at a time on one core, the packs taking
turns prompt by prompt (these VMs drift by tens of percent within minutes). Cold start: a new process's first
check_prompt, with and without Policy.warm_up() before it. Never passes or fails: it prints measured figures.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# This script's folder holds other benchmarks (watermark.py, ...) that must not shadow the packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE))

from _prompt_sets import KINDS, Row, load_fragments, load_labelled, load_public, with_fragments

BASELINES = {"default": HERE / "packs" / "default-1.1.0.yaml", "strict": HERE / "packs" / "strict-1.1.0.yaml"}

# ---------------------------------------------------------------- perturbation
_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}
_HOMO = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "x": "\u0445", "y": "\u0443",
         "i": "\u0456", "s": "\u0455"}  # fmt: skip
_ZW = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


def perturb(prompt: str, rng: random.Random) -> str:
    """Rewrite words with the usual evasions; each word of 3+ letters is changed with probability 0.5."""
    out: list[str] = []
    spaced_prev = False
    for w in prompt.split(" "):
        if len(w) < 3 or not w.isalpha() or rng.random() < 0.5:
            out.append(w)
            spaced_prev = False
            continue
        kind = rng.choice(["leet", "homoglyph", "zerowidth", "spaced" if not spaced_prev else "dotted"])
        if kind == "leet":
            nw = "".join(
                _LEET.get(c.lower(), c) if rng.random() < 0.6 and i > 0 else c for i, c in enumerate(w)
            )
        elif kind == "homoglyph":
            nw = "".join(_HOMO.get(c, c) if rng.random() < 0.6 else c for c in w)
        elif kind == "zerowidth":
            nw = w[0] + "".join(rng.choice(_ZW) + c for c in w[1:])
        elif kind == "spaced":
            nw = " ".join(w)
        else:
            nw = ".".join(w)
        spaced_prev = kind == "spaced"
        out.append(nw)
    return " ".join(out)


# ---------------------------------------------------------------- evaluation
def refused(policy: object, prompts: Sequence[str], batch: int = 256) -> np.ndarray:
    from gen4sdk.errors import InvalidRequestError

    flags: list[bool] = []
    for i in range(0, len(prompts), batch):
        chunk = list(prompts[i : i + batch])
        try:
            ds = policy.check_prompts(chunk)  # type: ignore[attr-defined]
        except InvalidRequestError:
            ds = []
            for p in chunk:
                try:
                    ds.append(policy.check_prompt(p))  # type: ignore[attr-defined]
                except InvalidRequestError:
                    ds.append(None)
        # a prompt the SDK rejects as invalid input (e.g. over MAX_PROMPT_CHARS) is not generated: refused
        flags += [True if d is None else not d.allowed for d in ds]
    return np.array(flags, dtype=bool)


def pct(mask: np.ndarray) -> str:
    return f"{100.0 * mask.mean():6.1f}%" if len(mask) else "    n/a"


def latency(checks: Sequence[Callable[[str], object]], prompts: Sequence[str]) -> list[tuple[float, float]]:
    """p50/p99 ms per check; the checks take turns prompt by prompt so machine drift falls on all alike."""
    for check in checks:
        for p in prompts[:5]:
            check(p)
    times: list[list[float]] = [[] for _ in checks]
    for p in prompts:
        for k, check in enumerate(checks):
            t = time.perf_counter()
            check(p)
            times[k].append(time.perf_counter() - t)
    return [
        (float(np.percentile(np.array(ts) * 1000, 50)), float(np.percentile(np.array(ts) * 1000, 99)))
        for ts in times
    ]


def cold_start(pack: str, warm: bool) -> float:
    warm_up = "p.warm_up();" if warm else ""
    code = (
        f"import time; t = time.perf_counter(); from gen4sdk.policy import Policy; p = Policy.load({pack!r}); "
        f"{warm_up} t1 = time.perf_counter(); p.check_prompt('a paper boat on a rainy street'); "
        f"print(time.perf_counter() - (t1 if {warm!r} else t))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", default="default", help="a shipped pack name or a pack file")
    ap.add_argument(
        "--baseline", type=Path, help="the pack to compare with (default: benchmarks/packs/<pack>-1.1.0.yaml)"
    )
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--quick", action="store_true", help="4,000 COCO captions instead of all")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core
    except (AttributeError, OSError):
        pass
    try:
        import torch

        torch.set_num_threads(1)  # the 1.1.0 baseline's MiniLM
    except ImportError:
        pass
    from gen4sdk.policy import Policy

    t0 = time.time()
    rng = random.Random(args.seed)
    labelled = [r for r in load_labelled() if r.split == "test"]
    public = [r for r in load_public() if r.split == "test"]
    coco = [r for r in public if r.source == "coco"]
    if args.quick:
        coco = rng.sample(coco, 4000)
    sets: dict[str, list[Row]] = {
        "labelled": labelled,
        "coco": coco,
        "parti": [r for r in public if r.source == "parti"],
        "i2p_nudity50": [r for r in public if r.kind == "i2p_nudity"],
        "i2p_inappropriate80": [r for r in public if r.kind == "i2p_inappropriate"],
        # what image and video prompts append ("4k uhd", "by greg rutkowski", "take 2"), test-split fragments only
        "fragments": [r for r in load_fragments() if r.split == "test"],
    }
    sets["tagged"] = with_fragments(
        random.Random(args.seed + 2).sample(coco, 2000) + sets["parti"], sets["fragments"], args.seed
    )
    sets["labelled_tagged"] = with_fragments(labelled, sets["fragments"], args.seed + 3)
    prompts = {name: [r.text for r in rows] for name, rows in sets.items()}
    prng = random.Random(args.seed + 1)
    for name in ("labelled", "i2p_nudity50", "i2p_inappropriate80"):
        prompts[name + "_perturbed"] = [perturb(p, prng) for p in prompts[name]]

    policies = {"shipped": Policy.load(args.pack)}
    if not args.no_baseline:
        base = args.baseline or BASELINES.get(args.pack)
        if base is None:
            ap.error("no baseline known for this pack: pass --baseline FILE or --no-baseline")
        baseline = Policy.load(str(base))
        policies[baseline.version] = baseline  # the column is named by the baseline's version
    for name, p in policies.items():
        print(f"{name:8} pack {p.id} {p.version} sha256 {p.sha256[:16]}")
    names = list(policies)
    flags: dict[str, dict[str, np.ndarray]] = {n: {} for n in names}
    for n, pol in policies.items():
        for s, ps in prompts.items():
            t = time.time()
            flags[n][s] = refused(pol, ps)
            print(f"  {n:8} scored {s:28} {len(ps):6d} prompts in {time.time() - t:6.1f}s", file=sys.stderr)

    head = f"{'':44} {'n':>6} " + " ".join(f"{n:>8}" for n in names)
    print("\n" + head.replace(" " * 44, "test splits".ljust(44), 1))

    def line(label: str, name: str, mask: np.ndarray | None = None) -> None:
        m = np.ones(len(prompts[name]), bool) if mask is None else mask
        print(f"{label:44} {int(m.sum()):6d} " + " ".join(f"{pct(flags[n][name][m]):>8}" for n in names))

    lab = sets["labelled"]
    harmful = np.array([r.label != "benign" for r in lab])
    line("labelled must-refuse: refused", "labelled", harmful)
    line("labelled must-refuse, perturbed: refused", "labelled_perturbed", harmful)
    line("labelled benign near-misses: refused (FP)", "labelled", ~harmful)
    coco_parti = {n: np.concatenate([flags[n]["coco"], flags[n]["parti"]]) for n in names}
    line("COCO captions: refused (FP)", "coco")
    line("PartiPrompts: refused (FP)", "parti")
    print(
        f"{'COCO + PartiPrompts: refused (FP)':44} {len(coco_parti[names[0]]):6d} "
        + " ".join(f"{pct(coco_parti[n]):>8}" for n in names)
    )
    line("style fragments alone: refused (FP)", "fragments")
    line("COCO + Parti, a style fragment appended (FP)", "tagged")
    line("labelled must-refuse, a fragment appended: refused", "labelled_tagged", harmful)
    line("I2P nudity >= 50: refused", "i2p_nudity50")
    line("I2P nudity >= 50, perturbed: refused", "i2p_nudity50_perturbed")
    line("I2P inappropriate >= 80: refused", "i2p_inappropriate80")
    line("I2P inappropriate >= 80, perturbed: refused", "i2p_inappropriate80_perturbed")

    print("\nlabelled test split by category (must-refuse refused / near-misses refused)")
    for cat in sorted({r.label for r in lab} - {"benign"}):
        pos = np.array([r.label == cat for r in lab])
        ben = np.array(
            [r.label == "benign" and r.kind in ("near_miss", "benign") and _file_of(r) == cat for r in lab]
        )
        cells = " ".join(
            f"{pct(flags[n]['labelled'][pos]):>8} /{pct(flags[n]['labelled'][ben]):>7}" for n in names
        )
        print(f"  {cat:22} n={int(pos.sum()):4d}/{int(ben.sum()):4d}  {cells}")
    print("\nlabelled test split by kind (share refused)")
    for kind in KINDS:
        m = np.array([r.kind == kind for r in lab])
        if m.any():
            line(f"  {kind}", "labelled", m)
    print("\nlabelled test split by batch (must-refuse refused / near-misses refused)")
    for b in sorted({r.batch for r in lab}):
        pos = np.array([r.batch == b and r.label != "benign" for r in lab])
        ben = np.array([r.batch == b and r.label == "benign" for r in lab])
        cells = " ".join(
            f"{pct(flags[n]['labelled'][pos]):>8} /{pct(flags[n]['labelled'][ben]):>7}" for n in names
        )
        print(f"  batch {b:<16} n={int(pos.sum()):4d}/{int(ben.sum()):4d}  {cells}")
    print("\nlabelled test split by language (must-refuse refused)")
    for group, langs in [("English", {"en"}), ("the encoder's 14 others", set(_USE_LANGS) - {"en"}),
                         ("others (hi, vi, sw, el, he, id)", None)]:  # fmt: skip
        m = np.array(
            [r.label != "benign" and (r.lang in langs if langs else r.lang not in _USE_LANGS) for r in lab]
        )
        line(f"  {group}", "labelled", m)

    sample = [r.text for r in rng.sample(coco, 300)] + rng.sample(prompts["i2p_inappropriate80"], 100)
    sample += rng.sample([r.text for r in lab], min(100, len(lab)))
    rules = Policy.load(args.pack, semantic=False)
    checks = [rules.check_prompt] + [p.check_prompt for p in policies.values()]
    lat = latency(checks, sample)
    print(f"\n{'latency per prompt (1 core)':44} {'p50 ms':>8} {'p99 ms':>8}")
    for label, (p50, p99) in zip(["rules only (shipped)"] + [f"rules + model ({n})" for n in names], lat):
        print(f"  {label:42} {p50:8.2f} {p99:8.2f}")
    print(f"  ({len(sample)} prompts: COCO, I2P and labelled; load average {os.getloadavg()[0]:.1f})")
    packs = {
        "shipped": args.pack,
        **({names[1]: str(args.baseline or BASELINES[args.pack])} if len(names) > 1 else {}),
    }
    print(f"\n{'cold start: a new process first check_prompt':44} {'s':>8}")
    for n, pack in packs.items():
        print(f"  {n + ', no warm_up (import + load + check)':42} {cold_start(pack, False):8.2f}")
        print(f"  {n + ', after warm_up (the check alone)':42} {cold_start(pack, True):8.3f}")
    print(f"\ntotal {time.time() - t0:.0f}s")
    return 0


_USE_LANGS = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")


def _file_of(r: Row) -> str:
    return r.topic


if __name__ == "__main__":
    raise SystemExit(main())
