"""Policy filter benchmark: false positives, recall, robustness to perturbation, latency. Prints a table.

    python benchmarks/policy_eval.py --quick            # subsample of COCO, a few minutes on one core
    python benchmarks/policy_eval.py                    # full sets
    python benchmarks/policy_eval.py --tune             # also suggest semantic thresholds from the tuning half
    # how the default pack 1.1.0's thresholds were set:
    python benchmarks/policy_eval.py --tune --budget 0.002 --keep extremism,weapons_cbrne,illegal_activity
    python benchmarks/policy_eval.py --pack strict

Data: ../shared/prompts (COCO captions and PartiPrompts for false positives; I2P for recall). Every prompt is
assigned to the tuning half or the test half by a hash of its text (fixed split); thresholds and exemplars in
the packs are chosen on the tuning half, and the figures reported are from the test half (the README says where
test-half figures were seen before a choice was made).
Recall sets: I2P rows with nudity_percentage >= 50, and rows with inappropriate_percentage >= 80 per I2P
category. "Refused" = the decision is a refusal (block), whatever the category; warnings count as allowed.
Perturbed recall: each prompt is rewritten with leetspeak, Cyrillic homoglyphs, zero-width characters and
spaced-out letters (seeded), then checked again. Latency: check_prompt one prompt at a time, one core, one
thread, rules only, with the semantic scorer, and with the semantic scorer's model compiled
(MiniLMEncoder(compile=True)), and, as the baseline of pooling, with long prompts embedded whole as well
as clause by clause; the four taking turns prompt by prompt. Never passes or fails: it prints
measured figures.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
# This script's folder holds other benchmarks (watermark.py, ...) that must not shadow the packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
DATA = ROOT.parent / "shared" / "prompts"

I2P_CATEGORIES = ["sexual", "violence", "self-harm", "hate", "harassment", "illegal activity", "shocking"]


def half(prompt: str) -> str:
    return "tune" if hashlib.sha256(prompt.encode("utf-8")).digest()[0] % 2 == 0 else "test"


def load_sets(data: Path) -> dict[str, list[dict[str, str]]]:
    csv.field_size_limit(10**7)
    with open(data / "coco_30k.csv", newline="", encoding="utf-8") as f:
        coco = [{"prompt": r["prompt"]} for r in csv.DictReader(f)]
    with open(data / "parti_prompts.tsv", newline="", encoding="utf-8") as f:
        parti = [{"prompt": r["Prompt"]} for r in csv.DictReader(f, delimiter="\t")]
    with open(data / "i2p_unsafe_4703.csv", newline="", encoding="utf-8") as f:
        i2p = list(csv.DictReader(f))
    return {"coco": coco, "parti": parti, "i2p": i2p}


def _f(x: str) -> float:
    try:
        return float(x)
    except ValueError:
        return 0.0


# ---------------------------------------------------------------- perturbation
_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}
_HOMO = {
    "a": "\u0430",
    "e": "\u0435",
    "o": "\u043e",
    "p": "\u0440",
    "c": "\u0441",
    "x": "\u0445",
    "y": "\u0443",
    "i": "\u0456",
    "s": "\u0455",
}
_ZW = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


def perturb(prompt: str, rng: random.Random) -> str:
    """Rewrite words with the usual evasions; each word of 3+ letters is changed with probability 0.5."""
    words = prompt.split(" ")
    out: list[str] = []
    spaced_prev = False
    for w in words:
        if len(w) < 3 or not w.isalpha() or rng.random() < 0.5:
            out.append(w)
            spaced_prev = False
            continue
        kind = rng.choice(["leet", "homoglyph", "zerowidth", "spaced" if not spaced_prev else "dotted"])
        if kind == "leet":
            chars = [_LEET.get(c.lower(), c) if rng.random() < 0.6 and i > 0 else c for i, c in enumerate(w)]
            nw = "".join(chars)
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
def refused(
    policy: object, prompts: Sequence[str], batch: int = 256
) -> tuple[np.ndarray, list[dict[str, float]]]:
    from gen4sdk.errors import InvalidRequestError

    flags: list[bool] = []
    scores: list[dict[str, float]] = []
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
        for d in ds:
            # a prompt the SDK rejects as invalid input (e.g. over MAX_PROMPT_CHARS) is not generated: refused
            flags.append(True if d is None else not d.allowed)
            scores.append({} if d is None else dict(d.scores))
    return np.array(flags, dtype=bool), scores


def pct(mask: np.ndarray) -> str:
    return f"{100.0 * mask.mean():6.2f}%" if len(mask) else "   n/a "


def latency(checks: Sequence[Callable[[str], object]], prompts: Sequence[str]) -> list[tuple[float, float]]:
    """p50/p99 ms per check. Checks take turns prompt by prompt, so drifts in the machine's speed (these VMs
    vary by tens of percent within minutes) fall on all of them alike and their ratios stay comparable."""
    from gen4sdk.errors import InvalidRequestError

    for check in checks:
        for p in prompts[:5]:
            check(p)
    times: list[list[float]] = [[] for _ in checks]
    for p in prompts:
        for k, check in enumerate(checks):
            t = time.perf_counter()
            try:
                check(p)
            except InvalidRequestError:
                pass  # rejected input (empty after normalisation, too long): timed like any other prompt
            times[k].append(time.perf_counter() - t)
    out = []
    for ts in times:
        a = np.array(ts) * 1000
        out.append((float(np.percentile(a, 50)), float(np.percentile(a, 99))))
    return out


def tune(
    rule_flags: dict[str, np.ndarray],
    scores: dict[str, list[dict[str, float]]],
    benign: list[str],
    positive: list[str],
    budget: float,
) -> dict[str, float]:
    """Greedy per-category thresholds: repeatedly lower the one with the best recall gain per false positive
    while every benign set's false-positive rate (rules included) stays within ``budget``. Uses only the rows
    it is given (the tuning half)."""
    cats = sorted({c for name in scores for s in scores[name] for c in s})

    def matrix(name: str) -> np.ndarray:
        return np.array([[s.get(c, -9.0) for c in cats] for s in scores[name]], dtype=np.float32).reshape(
            -1, len(cats)
        )

    bens = [(matrix(n), rule_flags[n]) for n in benign]
    pos = np.concatenate([matrix(n) for n in positive])
    pos_rules = np.concatenate([rule_flags[n] for n in positive])
    thr = np.full(len(cats), 1.0, dtype=np.float32)
    grid = np.round(np.arange(0.95, 0.2, -0.01), 2)

    def flagged(m: np.ndarray, rules: np.ndarray, t: np.ndarray) -> np.ndarray:
        return rules | (m >= t).any(axis=1)

    def fp(t: np.ndarray) -> float:
        return max(float(flagged(m, r, t).mean()) for m, r in bens)

    def mean_fp(t: np.ndarray) -> float:
        return float(np.mean([flagged(m, r, t).mean() for m, r in bens]))

    while True:
        cur_fp = mean_fp(thr)
        cur_tp = flagged(pos, pos_rules, thr).mean()
        best = None
        for j in range(len(cats)):
            for g in grid:
                if g >= thr[j]:
                    continue
                t2 = thr.copy()
                t2[j] = g
                if fp(t2) > budget:
                    break
                tp = flagged(pos, pos_rules, t2).mean()
                gain = (tp - cur_tp) / max(mean_fp(t2) - cur_fp, 1e-5)
                if tp > cur_tp and (best is None or gain > best[0]):
                    best = (gain, j, g)
        if best is None:
            break
        thr[best[1]] = best[2]
    return {c: float(t) for c, t in zip(cats, thr)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", default="default", help="shipped pack name or pack file (default: default)")
    ap.add_argument(
        "--quick", action="store_true", help="subsample COCO (4,000 captions) and latency prompts"
    )
    ap.add_argument("--tune", action="store_true", help="print thresholds suggested by the tuning half")
    ap.add_argument(
        "--budget", type=float, default=0.004, help="false-positive budget for --tune (0.004 = 0.4%%)"
    )
    ap.add_argument(
        "--keep",
        default="",
        help="with --tune: comma-separated categories whose pack thresholds are kept, not tuned (their "
        "refusals still count against the budget); for categories no I2P row measures, which the tuner "
        "would switch off",
    )
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    try:
        import gen4sdk.policy  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(ROOT))  # a source checkout without installation
    try:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core
    except (AttributeError, OSError):
        pass
    import torch

    torch.set_num_threads(1)
    from gen4sdk.policy import Policy

    t0 = time.time()
    sets = load_sets(args.data)
    rng = random.Random(args.seed)
    coco = sets["coco"]
    if args.quick:
        coco = rng.sample(coco, 4000)
    i2p = sets["i2p"]
    nud = [r for r in i2p if _f(r["nudity_percentage"]) >= 50]
    inap = [r for r in i2p if _f(r["inappropriate_percentage"]) >= 80]

    rows: dict[str, list[str]] = {
        "coco": [r["prompt"] for r in coco],
        "parti": [r["prompt"] for r in sets["parti"]],
        "i2p_nudity50": [r["prompt"] for r in nud],
        "i2p_inappropriate80": [r["prompt"] for r in inap],
    }
    prng = random.Random(args.seed + 1)
    rows["i2p_nudity50_perturbed"] = [perturb(p, prng) for p in rows["i2p_nudity50"]]
    rows["i2p_inappropriate80_perturbed"] = [perturb(p, prng) for p in rows["i2p_inappropriate80"]]
    halves = {name: np.array([half(p) for p in rows[name.replace("_perturbed", "")]]) for name in rows}

    sem = Policy.load(args.pack)
    kw = Policy.load(args.pack, semantic=False)
    scorer = sem._get_scorer()
    known = scorer.thresholds if scorer else {}
    keep = [c for c in args.keep.split(",") if c]
    unknown = [c for c in keep if c not in known]
    if unknown:
        ap.error(f"--keep: no semantic threshold in pack {sem.id} for {', '.join(unknown)}")
    kept = {c: known[c] for c in keep}
    print(
        f"pack {sem.id} {sem.version} sha256 {sem.sha256[:16]}  encoder {sem.text_encoder.id if sem.text_encoder else '-'}"
    )
    print(
        f"mode {'quick' if args.quick else 'full'}; split by sha256(prompt)[0] parity; reporting the test half"
    )

    flags_sem: dict[str, np.ndarray] = {}
    flags_kw: dict[str, np.ndarray] = {}
    scores: dict[str, list[dict[str, float]]] = {}
    for name, prompts in rows.items():
        t = time.time()
        flags_sem[name], scores[name] = refused(sem, prompts)
        flags_kw[name], _ = refused(kw, prompts)
        print(f"  scored {name:32} {len(prompts):6d} prompts in {time.time() - t:6.1f}s", file=sys.stderr)

    def cell(name: str, flags: dict[str, np.ndarray], part: str = "test") -> str:
        m = halves[name] == part
        return pct(flags[name][m])

    print()
    print(f"{'set (test half)':34} {'n':>6} {'keywords':>9} {'+semantic':>10}")
    for name, label in [("coco", "FP  COCO captions"), ("parti", "FP  PartiPrompts")]:
        n = int((halves[name] == "test").sum())
        print(f"{label:34} {n:6d} {cell(name, flags_kw):>9} {cell(name, flags_sem):>10}")
    ben_kw = np.concatenate([flags_kw[n][halves[n] == "test"] for n in ("coco", "parti")])
    ben_sem = np.concatenate([flags_sem[n][halves[n] == "test"] for n in ("coco", "parti")])
    print(f"{'FP  COCO+Parti':34} {len(ben_kw):6d} {pct(ben_kw):>9} {pct(ben_sem):>10}")
    for name, label in [
        ("i2p_nudity50", "recall I2P nudity>=50"),
        ("i2p_inappropriate80", "recall I2P inappropriate>=80"),
    ]:
        n = int((halves[name] == "test").sum())
        print(f"{label:34} {n:6d} {cell(name, flags_kw):>9} {cell(name, flags_sem):>10}")
        pname = name + "_perturbed"
        print(
            f"{'  ' + label + ' perturbed':34} {n:6d} {cell(pname, flags_kw):>9} {cell(pname, flags_sem):>10}"
        )
        drop = 100 * (
            flags_sem[name][halves[name] == "test"].mean() - flags_sem[pname][halves[name] == "test"].mean()
        )
        print(f"{'  drop after perturbation (points)':34} {'':6} {'':9} {drop:10.2f}")
    print()
    print(
        f"{'I2P inappropriate>=80 by category':34} {'n':>6} {'keywords':>9} {'+semantic':>10} {'perturbed':>10}"
    )
    test_inap = [r for r, h in zip(inap, halves["i2p_inappropriate80"]) if h == "test"]
    mask_test = halves["i2p_inappropriate80"] == "test"
    for cat in I2P_CATEGORIES:
        sel = np.array(
            [cat in [c.strip() for c in r["categories"].split(",")] for r in test_inap], dtype=bool
        )
        k = flags_kw["i2p_inappropriate80"][mask_test][sel]
        s = flags_sem["i2p_inappropriate80"][mask_test][sel]
        pz = flags_sem["i2p_inappropriate80_perturbed"][mask_test][sel]
        print(f"{'  ' + cat:34} {int(sel.sum()):6d} {pct(k):>9} {pct(s):>10} {pct(pz):>10}")

    # latency, one prompt at a time
    lat_prompts = [r["prompt"] for r in rng.sample(sets["coco"], 150 if args.quick else 400)]
    lat_prompts += rng.sample(rows["i2p_inappropriate80"], 50 if args.quick else 100)
    from gen4sdk.policy import MiniLMEncoder

    t = time.time()
    compiled_encoder = MiniLMEncoder(compile=True)
    fast = Policy.load(args.pack, semantic=compiled_encoder)
    fast.check_prompt("load and compile the encoder")
    print(f"  compiled the encoder in {time.time() - t:.1f}s", file=sys.stderr)
    # Baseline for the pooled whole prompt: long prompts embedded whole as well as clause by clause.
    unpooled = Policy.load(args.pack)
    scorer = unpooled._get_scorer()
    if scorer is not None:
        scorer.pool_words = None
    checks = [kw.check_prompt, sem.check_prompt, fast.check_prompt, unpooled.check_prompt]
    (kw_p50, kw_p99), (sem_p50, sem_p99), (fast_p50, fast_p99), (whole_p50, whole_p99) = latency(
        checks, lat_prompts
    )
    print()
    print(f"{'latency per prompt (1 core, 1 thread)':40} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'  rules only':40} {kw_p50:8.2f} {kw_p99:8.2f}")
    print(f"{'  rules + semantic (MiniLM)':40} {sem_p50:8.2f} {sem_p99:8.2f}")
    label = "  rules + semantic (MiniLM, compile=True)" if compiled_encoder.compiled else "  (compile failed: eager)"
    print(f"{label:40} {fast_p50:8.2f} {fast_p99:8.2f}   {fast_p99 / sem_p99:.2f}x eager p99")
    print(
        f"{'  baseline: long prompts embedded whole':40} {whole_p50:8.2f} {whole_p99:8.2f}   "
        f"(pooled whole: {sem_p99 / whole_p99:.2f}x p99)"
    )
    print(
        f"  ({len(lat_prompts)} prompts: COCO and I2P, checks taking turns; "
        f"load average {os.getloadavg()[0]:.1f})"
    )

    if args.tune:
        sets4 = ("coco", "parti", "i2p_nudity50", "i2p_inappropriate80")
        tuned_flags = {
            n: np.array(
                [
                    bool(k) or any(s.get(c, -9.0) >= t for c, t in kept.items())
                    for k, s, h in zip(flags_kw[n], scores[n], halves[n])
                    if h == "tune"
                ]
            )
            for n in sets4
        }
        tuned_scores = {
            n: [
                {c: v for c, v in s.items() if c not in kept}
                for s, h in zip(scores[n], halves[n])
                if h == "tune"
            ]
            for n in sets4
        }
        thr = tune(
            tuned_flags, tuned_scores, ["coco", "parti"], ["i2p_nudity50", "i2p_inappropriate80"], args.budget
        )
        print()
        print(f"suggested thresholds (tuning half, FP budget {100 * args.budget:.2f}%):")
        for c, t in thr.items():
            print(f"  {c:20} {t:.2f}")
        for c, t in kept.items():
            print(f"  {c:20} {t:.2f} (kept)")
    print(f"\ntotal {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
