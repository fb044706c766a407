"""Watermark benchmark: robustness, false positives, invisibility and speed, ours vs invisible-watermark.

    python benchmarks/watermark.py --quick          # a few clips, a couple of minutes
    python benchmarks/watermark.py                  # full run (~20 min on 2 cores)
    python benchmarks/watermark.py --clips 60       # choose the clip count
    python benchmarks/watermark.py --content bbb-cuts --clips 28 [--without-cut-gain]
                                                    # excerpts that contain a scene cut, with / without
                                                    # the key-frame gain at cuts (what it buys)
    python benchmarks/watermark.py --jod 6          # also how visible each mark is (ColorVideoVDP) on the
                                                    # first 6 baseline clips, ours at every strength
    python benchmarks/watermark.py --strength robust --attack "H.264 CRF 35" --baseline-every 1000 --no-speed
                                                    # the attacks at another strength (default robust)
    python benchmarks/watermark.py --seed 6000 --attack "H.264 CRF 35" --baseline-every 1000 --no-speed
                                                    # one attack only, on another clip set (~3 min)

Content: 2 s excerpts of Big Buck Bunny (640x360) and pan/zoom clips over scikit-image photographs at
640x360 and 1280x720, a random 64-bit payload per clip. Every attack is applied to the marked frames
(codec attacks are real PyAV libx264/libx265 encodes); a trial succeeds when the exact payload comes back.
Baselines (imwatermark dwtDct / dwtDctSvd): the same 64 bits embedded in every frame, decoded per frame on
up to --vote-frames evenly spaced frames and combined by a bitwise majority vote.
Visibility: luma PSNR for every clip; with --jod, ColorVideoVDP's JOD (10 = indistinguishable; it models
contrast masking and time, which PSNR does not) on the first second of the first N baseline clips, for each
mark, for our clip's first frame as a still picture (the key frame, marked strongest) and, as a reference
point, for a plain x264 CRF 23 re-encode of the same second.
Prints markdown tables; never passes or fails on a number.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _wm_media as M

from watermark import DEFAULT_STRENGTH, STRENGTHS, Watermarker

FPS = 24
CLIP_FRAMES = 48
KEY = b"benchmark operator key"
METHODS = ("ours", "dwtDct", "dwtDctSvd")


def make_clip(kind: str, rng: np.random.Generator, cache: dict[str, np.ndarray]) -> np.ndarray:
    if kind == "bbb 640x360":
        return M.bbb_excerpt(rng, CLIP_FRAMES, cache)
    if kind == "bbb cut 640x360":
        return M.bbb_cut_excerpt(rng, CLIP_FRAMES)
    name = M.PHOTOS[int(rng.integers(0, len(M.PHOTOS)))]
    h, w = (360, 640) if kind == "photo 640x360" else (720, 1280)
    return M.pan_zoom_clip(M.photo(name), h, w, CLIP_FRAMES, rng)


def _baseline_embed(frames: np.ndarray, payload: bytes, method: str) -> np.ndarray:
    from imwatermark import WatermarkEncoder

    enc = WatermarkEncoder()
    enc.set_watermark("bytes", payload)
    # imwatermark works on BGR; it touches only the chroma (YUV) planes.
    return np.stack(
        [np.clip(enc.encode(f[:, :, ::-1].copy(), method), 0, 255)[:, :, ::-1] for f in frames]
    ).astype(np.uint8)


def _baseline_decode(frames: np.ndarray, method: str, vote_frames: int) -> bytes | None:
    from imwatermark import WatermarkDecoder

    dec = WatermarkDecoder("bits", 64)
    idx = np.unique(np.linspace(0, len(frames) - 1, min(vote_frames, len(frames))).round().astype(int))
    votes = []
    for i in idx:
        if frames.shape[1] * frames.shape[2] < 256 * 256:  # imwatermark refuses these: no vote
            break
        votes.append(np.asarray(dec.decode(frames[i][:, :, ::-1].copy(), method), dtype=float))
    if not votes:
        return None
    bits = (np.mean(votes, axis=0) > 0.5).astype(np.uint8)
    return np.packbits(bits).tobytes()


def run_clip(job: tuple[str, int, bool, int, bool, bool, tuple[str, ...], str]) -> dict[str, object]:
    kind, seed, baselines, vote_frames, cut_gain, visibility, only, strength = job
    if not cut_gain:  # ablation: only a clip's first frame gets the key-frame gain (a cut never registers)
        from watermark import _embed

        _embed._CUT_LEVEL = float("inf")
    rng = np.random.default_rng(seed)
    cache: dict[str, np.ndarray] = {}
    frames = make_clip(kind, rng, cache)
    payload = rng.bytes(8)
    wm = Watermarker(key=KEY, strength=strength)  # type: ignore[arg-type]
    # (index, name, attack): the index seeds each attack's random draws, so --attack leaves them as in a full run
    attacks = [(i, n, f) for i, (n, f) in enumerate(M.attacks(FPS).items()) if not only or n in only]
    out: dict[str, object] = {"kind": kind, "seed": seed}
    results: dict[str, dict[str, bool]] = {}
    wrong: dict[str, int] = {}
    psnr: dict[str, float] = {}
    timing: dict[str, float] = {}
    detect_s: dict[str, float] = {}
    for method in METHODS if baselines else METHODS[:1]:
        t0 = time.perf_counter()
        marked = wm.embed(frames, payload) if method == "ours" else _baseline_embed(frames, payload, method)
        timing[f"{method} embed"] = time.perf_counter() - t0
        psnr[method] = float(np.mean([M.psnr_luma(a, b) for a, b in zip(frames, marked)]))
        if method == "ours":  # the key frame, which carries the stronger mark in its texture
            out["psnr0"] = M.psnr_luma(frames[0], marked[0])
        if visibility:  # the first second, which holds the key frame
            seen: dict[str, float] = out.setdefault("jod", {})  # type: ignore[assignment]
            if method != "ours":
                seen[method] = M.jod(frames[:FPS], marked[:FPS])
            else:  # every strength side by side (a few seconds each), whichever one the attacks use
                for level in STRENGTHS:
                    other = wm.with_strength(level).embed(frames[:FPS], payload)
                    seen[f"ours, {level}"] = M.jod(frames[:FPS], other)
                    seen[f"ours, {level}, frame 0 as a still"] = M.jod(frames[:1], other[:1])
                seen["x264 CRF 23 re-encode"] = M.jod(frames[:FPS], M.reencode(frames[:FPS], crf=23, fps=FPS))
        results[method] = {}
        wrong[method] = 0
        for i, name, attack in attacks:
            attacked = attack(marked, np.random.default_rng([seed, i]))
            t0 = time.perf_counter()
            if method == "ours":
                det = wm.detect(attacked)
                got = det.payload if det.found else None
                wrong[method] += int(det.found and det.payload != payload)
            else:
                got = _baseline_decode(attacked, method, vote_frames)
            took = time.perf_counter() - t0
            timing[f"{method} detect"] = timing.get(f"{method} detect", 0.0) + took
            if method == "ours":  # per attack: the geometry search runs only where the plain pass fails
                detect_s[name] = took
            results[method][name] = got == payload
    # False positives: unmarked content, as is and after a real encode; and the marked clip under another key.
    # On the baseline clips also unmarked content under every attack (a mark must not appear from processing).
    fp_trials = [frames, M.reencode(frames, crf=23, fps=FPS)]
    if baselines:
        fp_trials += [attack(frames, np.random.default_rng([seed, 99, i])) for i, _, attack in attacks]
    fp = sum(int(wm.detect(v).found) for v in fp_trials)
    fp += int(Watermarker(key=b"some other operator").detect(wm.embed(frames, payload)).found)
    out.update(
        results=results,
        wrong=wrong,
        psnr=psnr,
        fp=fp,
        fp_trials=len(fp_trials) + 1,
        timing=timing,
        detect_s=detect_s,
    )
    if kind == "photo 640x360" and baselines:
        out["flat"] = (frames[0], wm.embed(frames[:1], payload)[0])
    return out


def _lower_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson lower bound on a success rate: what k/n trials can claim."""
    from scipy.stats import beta

    return 0.0 if k == 0 else float(beta.ppf(1 - confidence, k, n - k + 1))


def flat_region_png(path: Path, original: np.ndarray, marked: dict[str, np.ndarray], size: int = 96) -> Path:
    """Side by side: original | marked | difference x16 (grey = 0), flattest mid-grey window, 3x enlarged."""
    from PIL import Image

    y = original.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    best, pos = np.inf, (0, 0)
    for r in range(0, y.shape[0] - size, 8):
        for c in range(0, y.shape[1] - size, 8):
            win = y[r : r + size, c : c + size]
            s = float(win.std())
            # Mid-grey flat areas show a pattern most; black or white ones would hide it by clipping.
            if 40 <= float(win.mean()) <= 220 and s < best:
                best, pos = s, (r, c)
    r, c = pos
    rows = []
    for m in marked.values():
        a, b = original[r : r + size, c : c + size], m[r : r + size, c : c + size]
        diff = np.clip(128 + 16 * (b.astype(np.int16) - a.astype(np.int16)), 0, 255).astype(np.uint8)
        gap = np.full((size, 4, 3), 255, np.uint8)
        rows.append(np.concatenate([a, gap, b, gap, diff], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    img = np.concatenate(rows[:-1], axis=0)
    img = np.repeat(np.repeat(img, 3, axis=0), 3, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


# -- speed (runs in a child pinned to one core) -----------------------------------------------------------


def speed() -> dict[str, float]:
    import av

    rng = np.random.default_rng(5)
    frames = M.pan_zoom_clip(M.photo("astronaut"), 720, 1280, 96, rng)
    wm = Watermarker(key=KEY)
    payload = rng.bytes(8)
    wm.embed(frames[:2], payload)  # warm-up: pattern cache, imports
    t0 = time.perf_counter()
    for f in wm.embed_iter(iter(frames), payload):
        pass
    t_embed = time.perf_counter() - t0

    t0 = time.perf_counter()
    blob = M.encode_threads(frames, crf=23, fps=FPS, preset="medium", threads=1)
    t_x264 = time.perf_counter() - t0

    # Detection on a 10 s 720p clip vs decoding the same clip.
    clip = np.concatenate([frames, frames[::-1], frames[:48]])[: 10 * FPS]
    marked = wm.embed(clip, payload)
    blob = M.encode_threads(marked, crf=23, fps=FPS, preset="veryfast", threads=1)
    t0 = time.perf_counter()
    decoded = M.decode(blob)
    t_decode = time.perf_counter() - t0
    t0 = time.perf_counter()
    det = wm.detect_iter(iter(decoded))
    t_detect = time.perf_counter() - t0
    # The geometry search runs only when the plain pass fails: what it costs on a mirrored and on a rotated
    # clip (each re-encoded, as the attack table's rows), and on an unmarked one, where every view is tried.
    geometry: dict[str, float] = {}
    for name, frames_g in (
        ("mirrored", marked[:, :, ::-1]),
        ("rotated 5 degrees", M.rotate(marked, 5.0)),
        ("unmarked", clip),
    ):
        blob_g = M.encode_threads(frames_g, crf=M.GEOMETRY_CRF, fps=FPS, preset="veryfast", threads=1)
        t0 = time.perf_counter()
        dec_g = M.decode(blob_g)
        geometry[f"decode_s {name}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        det_g = wm.detect_iter(iter(dec_g))
        geometry[f"detect_s {name}"] = time.perf_counter() - t0
        ok = det_g.found and det_g.payload == payload if name != "unmarked" else not det_g.found
        geometry[f"detect_ok {name}"] = float(ok)
    _ = av
    return {
        **geometry,
        "embed_fps": len(frames) / t_embed,
        "embed_ms": 1000 * t_embed / len(frames),
        "x264_ms": 1000 * t_x264 / len(frames),
        "decode_s": t_decode,
        "detect_s": t_detect,
        "detect_ok": float(det.found and det.payload == payload),
        "frames_10s": float(len(decoded)),
    }


def speed_pinned() -> dict[str, float]:
    cmd = [sys.executable, __file__, "--speed-only"]
    if sys.platform.startswith("linux"):
        cmd = ["taskset", "-c", "0", *cmd]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return {
        k: float(v) for k, v in (line.split("=") for line in res.stdout.strip().splitlines() if "=" in line)
    }


# -- report ------------------------------------------------------------------------------------------------


def report(
    rows: list[dict[str, object]], elapsed: float, png: Path | None, sp: dict[str, float] | None
) -> str:
    attack_names = list(rows[0]["results"]["ours"]) if rows else []  # type: ignore[index]
    lines = []
    counts = {m: sum(1 for r in rows if m in r["results"]) for m in METHODS}  # type: ignore[operator]
    lines.append(
        f"### Exact 64-bit payload recovery (% of clips; trials: ours {counts['ours']}, "
        f"baselines {counts['dwtDct']})\n"
    )
    lines.append(
        "| attack | ours, all clips | ours, 95% lower bound | ours, baseline clips only | dwtDct | dwtDctSvd "
        "| ours, detect s/clip |"
    )
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    paired = [r for r in rows if "dwtDct" in r["results"]]  # type: ignore[operator]
    for name in attack_names:
        ok = [r["results"]["ours"][name] for r in rows]  # type: ignore[index]
        cells = [
            f"{100 * np.mean(ok):.1f} ({sum(ok)}/{len(ok)})",
            f"{100 * _lower_bound(sum(ok), len(ok)):.1f}",
        ]
        for m, subset in (("ours", paired), ("dwtDct", paired), ("dwtDctSvd", paired)):
            got = [r["results"][m][name] for r in subset]  # type: ignore[index]
            cells.append(f"{100 * np.mean(got):.1f} ({sum(got)}/{len(got)})" if got else "-")
        cells.append(f"{np.mean([r['detect_s'][name] for r in rows]):.2f}")  # type: ignore[index]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    psnr_of = {}
    for m in METHODS:
        ps = [r["psnr"][m] for r in rows if m in r["psnr"]]  # type: ignore[index,operator]
        psnr_of[m] = f"{np.mean(ps):.1f}, min {np.min(ps):.1f}" if ps else "-"
    ps_cells = [psnr_of["ours"], "", "", psnr_of["dwtDct"], psnr_of["dwtDctSvd"], ""]
    lines.append("| *mean luma PSNR dB (min clip)* | " + " | ".join(ps_cells) + " |")
    p0 = [float(r["psnr0"]) for r in rows if "psnr0" in r]  # type: ignore[arg-type]
    if p0:
        lines.append(
            f"| *ours, frame 0 only (key-frame gain)* | {np.mean(p0):.1f}, min {np.min(p0):.1f} | | | | | |"
        )
    jods = [r["jod"] for r in rows if "jod" in r]
    wrong = sum(r["wrong"]["ours"] for r in rows)  # type: ignore[index]
    fp = sum(int(r["fp"]) for r in rows)  # type: ignore[arg-type]
    fpn = sum(int(r["fp_trials"]) for r in rows)  # type: ignore[arg-type]
    lines.append(
        f"| *found on unmarked (incl. attacked) / foreign-key clips* | {fp}/{fpn} | | | n/a | n/a | |"
    )
    lines.append(f"| *found with a wrong payload* | {wrong} | | | n/a | n/a | |")
    lines.append("")
    if jods:
        lines.append(
            f"### Visibility: ColorVideoVDP JOD, first second of {len(jods)} clips (10 = indistinguishable; "
            'FHD 24" display at 60 cm, native pixels)\n'
        )
        lines.append("| what | mean JOD | lowest clip |")
        lines.append("| --- | ---: | ---: |")
        for name in jods[0]:  # type: ignore[union-attr]
            v = [float(j[name]) for j in jods]  # type: ignore[index]
            lines.append(f"| {name} | {np.mean(v):.2f} | {np.min(v):.2f} |")
        lines.append("")
    by_kind: dict[str, list[float]] = {}
    for r in rows:
        ok = list(r["results"]["ours"].values())  # type: ignore[index]
        by_kind.setdefault(str(r["kind"]), []).append(float(np.mean(ok)))
    lines.append(
        "Ours by content (mean over attacks): "
        + ", ".join(f"{k}: {100 * np.mean(v):.1f}% ({len(v)} clips)" for k, v in by_kind.items())
    )
    tm = {}
    for r in rows:
        for k, v in r["timing"].items():  # type: ignore[union-attr]
            tm.setdefault(k, []).append(v)
    lines.append(
        "Mean seconds per clip (2 s, every attack run): "
        + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in tm.items())
    )
    if sp:
        lines.append("")
        lines.append("### Speed (720p, one core: taskset -c 0, 1 thread)\n")
        lines.append("| figure | value | target |")
        lines.append("| --- | ---: | --- |")
        lines.append(
            f"| embed, numpy | {sp['embed_fps']:.0f} fps ({sp['embed_ms']:.1f} ms/frame) | >= 60 fps |"
        )
        lines.append(f"| x264 medium CRF 23, 1 thread | {sp['x264_ms']:.1f} ms/frame | |")
        lines.append(f"| embed time / x264 time | {sp['embed_ms'] / sp['x264_ms']:.2f} | <= 0.5 |")
        lines.append(f"| decode 10 s 720p clip ({sp['frames_10s']:.0f} frames) | {sp['decode_s']:.2f} s | |")
        lines.append(f"| detect same clip (found={bool(sp['detect_ok'])}) | {sp['detect_s']:.2f} s | |")
        lines.append(f"| detect time / decode time | {sp['detect_s'] / sp['decode_s']:.2f} | <= 1 |")
        for name in ("mirrored", "rotated 5 degrees", "unmarked"):
            if f"detect_s {name}" not in sp:
                continue
            want = "not found" if name == "unmarked" else "read"
            as_wanted = bool(sp[f"detect_ok {name}"])
            lines.append(
                f"| same clip {name}, CRF {M.GEOMETRY_CRF}: detect / decode ({want}: {as_wanted}) | "
                f"{sp[f'detect_s {name}']:.2f} s / {sp[f'decode_s {name}']:.2f} s = "
                f"{sp[f'detect_s {name}'] / sp[f'decode_s {name}']:.2f} | geometry search: several passes |"
            )
    if png:
        lines.append(
            f"\nFlat-region side by side, frame 0 (original | marked | difference x16; rows: {', '.join(METHODS)}):"
            f" {png}"
        )
    lines.append(f"\nWall time {elapsed / 60:.1f} min.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few clips (a couple of minutes)")
    ap.add_argument("--clips", type=int, default=None, help="clips for our codec (default 4 quick, 35 full)")
    ap.add_argument("--baseline-every", type=int, default=None, help="baselines on every Nth 640x360 clip")
    ap.add_argument(
        "--seed", type=int, default=1000, help="first clip seed (runs with other seeds add trials)"
    )
    ap.add_argument("--vote-frames", type=int, default=12, help="frames decoded per clip by the baselines")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/gen4sdk-wm-bench"))
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument(
        "--content",
        choices=("mixed", "bbb-cuts"),
        default="mixed",
        help="mixed: Big Buck Bunny and photo pans (default); bbb-cuts: excerpts that contain a scene cut",
    )
    ap.add_argument(
        "--without-cut-gain", action="store_true", help="ablation: no key-frame gain at scene cuts"
    )
    ap.add_argument(
        "--jod",
        type=int,
        default=0,
        metavar="N",
        help="also measure visibility with ColorVideoVDP on the first N baseline clips (~3 min a clip)",
    )
    ap.add_argument(
        "--attack",
        action="append",
        choices=list(M.attacks(FPS)),
        metavar="NAME",
        help="run only this attack (repeatable; e.g. --attack 'H.264 CRF 35' for more clip sets of the hardest one)",
    )
    ap.add_argument(
        "--strength",
        choices=STRENGTHS,
        default=DEFAULT_STRENGTH,
        help=f"our mark's strength for the attacks (default {DEFAULT_STRENGTH}; --jod measures every strength)",
    )
    ap.add_argument("--speed-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.speed_only:
        for k, v in speed().items():
            print(f"{k}={v}")
        return
    n = args.clips or (4 if args.quick else 35)
    every = args.baseline_every or (1 if args.quick else 4)
    # 3/7 Big Buck Bunny, 3/7 photo pans at 640x360, 1/7 photo pans at 1280x720 (the 720p encodes are the
    # expensive part). The baselines run on every `every`-th 640x360 clip (at 720p they take minutes a clip).
    cycle = (
        "bbb 640x360",
        "photo 640x360",
        "photo 720p",
        "bbb 640x360",
        "photo 640x360",
        "bbb 640x360",
        "photo 640x360",
    )
    if args.content == "bbb-cuts":
        cycle = ("bbb cut 640x360",)
    kinds = [cycle[i % len(cycle)] for i in range(n)]
    # every `every`-th clip of each 640x360 kind, so the baselines (and the flat-region picture, and --jod) see
    # photos as well as Big Buck Bunny (a plain stride over the cycle of seven landed on Big Buck Bunny only)
    by_kind: dict[str, list[int]] = {}
    for i in range(n):
        if kinds[i] != "photo 720p":
            by_kind.setdefault(kinds[i], []).append(i)
    with_baselines = {i for clips in by_kind.values() for i in clips[::every]}
    visibility = set(sorted(with_baselines)[: args.jod])
    jobs = [
        (
            kinds[i],
            args.seed + i,
            i in with_baselines,
            args.vote_frames,
            not args.without_cut_gain,
            i in visibility,
            tuple(args.attack or ()),
            args.strength,
        )
        for i in range(n)
    ]
    t0 = time.perf_counter()
    rows: list[dict[str, object]] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for r in pool.map(run_clip, jobs):
            rows.append(r)
            print(
                f"clip {len(rows)}/{n} {r['kind']}: ours {sum(r['results']['ours'].values())}/"
                f"{len(r['results']['ours'])}",
                file=sys.stderr,
                flush=True,
            )  # type: ignore[index]
    png = None
    flat = [r["flat"] for r in rows if "flat" in r]
    if flat:
        orig, ours = flat[0]  # type: ignore[misc]
        payload = bytes(8)
        marked = {"ours": ours}
        marked["dwtDct"] = _baseline_embed(orig[None], payload, "dwtDct")[0]
        marked["dwtDctSvd"] = _baseline_embed(orig[None], payload, "dwtDctSvd")[0]
        png = flat_region_png(args.out / "flat_region.png", orig, marked)
    sp = None if args.no_speed else speed_pinned()
    print(f"Our mark at strength {args.strength!r}.\n")
    print(report(rows, time.perf_counter() - t0, png, sp))


if __name__ == "__main__":
    main()
