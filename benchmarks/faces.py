"""Face module benchmark (gen4sdk.policy._faces, dlib): match rates under alterations, speed, cold start.

    python benchmarks/faces.py                # everything, about a minute on one core
    python benchmarks/faces.py --no-match     # speed and cold start only
    # more photos: the face_recognition sdist's test images (Obama and Biden, other shots and sizes)
    pip download --no-deps --no-binary :all: face_recognition==1.3.0 -d /tmp/frsdist
    mkdir -p ~/.cache/gen4sdk/face_recognition_sdist && tar xzf /tmp/frsdist/face_recognition-1.3.0.tar.gz \
        -C ~/.cache/gen4sdk/face_recognition_sdist --strip-components 3 face_recognition-1.3.0/tests/test_images

Photos: tests/data/faces, ../shared/faces, the sdist cache above when present (one copy per photo, the
largest), and skimage.data.astronaut() (Eileen Collins, NASA). Identity = file name up to the first digit or
underscore. Each photo is altered (original, mirrored, head crop, rescaled so the face is 40/60/80 px wide,
JPEG quality 30, greyscale, rotated +-10 and +-20 degrees) and its largest face is compared with the original
of every *other* photo: same person -> acceptance, other person -> false match, at the recommended cosine
threshold and its neighbours. The raw dlib descriptors are also checked against dlib's documented Euclidean
threshold 0.6: their norms, and how often "distance < 0.6" and "cosine >= threshold" agree.
Speed: one core (sched_setaffinity), 832x480 frames with no, one and three faces, and the face check of an
81-frame clip sampled at 2 fps of 16 fps (11 frames). Never passes or fails: it prints measured figures.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gen4sdk.policy._faces import DlibFaceEncoder

ROOT = Path(__file__).resolve().parents[1]
# This script's folder holds other benchmarks (watermark.py, ...) that must not shadow the packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
SOURCES = [
    ROOT / "tests" / "data" / "faces",
    ROOT.parent / "shared" / "faces",
    Path.home() / ".cache" / "gen4sdk" / "face_recognition_sdist",
]
SKIP = {"32bit"}  # the sdist's 32bit.png is obama2.jpg with an alpha channel
THRESHOLDS = [0.88, 0.89, 0.90, 0.91, 0.92, 0.93, 0.94]

from PIL import Image


def identity(stem: str) -> str:
    out = ""
    for c in stem:
        if c.isdigit() or c == "_":
            break
        out += c
    return out


def load_photos() -> dict[str, np.ndarray]:
    """One copy of each photo, the largest found, by file stem."""
    from skimage import data

    photos: dict[str, np.ndarray] = {"astronaut": data.astronaut()}
    for folder in SOURCES:
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in (".jpg", ".jpeg", ".png") or f.stem in SKIP:
                continue
            im = np.asarray(Image.open(f).convert("RGB"))
            if f.stem not in photos or im.size > photos[f.stem].size:
                photos[f.stem] = im
    return photos


def _resize(im: np.ndarray, s: float) -> np.ndarray:
    size = (max(1, round(im.shape[1] * s)), max(1, round(im.shape[0] * s)))
    return np.asarray(Image.fromarray(im).resize(size, Image.Resampling.LANCZOS))


def _jpeg(im: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(im).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(buf).convert("RGB"))


def _rot(im: np.ndarray, a: float) -> np.ndarray:
    return np.asarray(Image.fromarray(im).rotate(a, Image.Resampling.BILINEAR, expand=True))


def augmentations(box: tuple[int, int, int, int]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    left, top, right, bottom = box
    w = right - left

    def crop(im: np.ndarray) -> np.ndarray:
        m = w // 2
        return im[max(0, top - m) : bottom + m, max(0, left - m) : right + m]

    return {
        "original": lambda im: im,
        "mirrored": lambda im: np.ascontiguousarray(im[:, ::-1]),
        "head crop": crop,
        "face 80 px": lambda im: _resize(im, 80 / w),
        "face 60 px": lambda im: _resize(im, 60 / w),
        "face 40 px": lambda im: _resize(im, 40 / w),
        "jpeg q30": lambda im: _jpeg(im, 30),
        "greyscale": lambda im: np.asarray(Image.fromarray(im).convert("L")),
        "rotate +10": lambda im: _rot(im, 10),
        "rotate -10": lambda im: _rot(im, -10),
        "rotate +20": lambda im: _rot(im, 20),
        "rotate -20": lambda im: _rot(im, -20),
    }


def raw_descriptor(enc: DlibFaceEncoder, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """dlib's unnormalised descriptor of the face in ``box`` (for the Euclidean-threshold comparison)."""
    import dlib

    from gen4sdk.policy._faces import _as_rgb

    rgb = _as_rgb(image)
    shape = enc._landmarks(rgb, dlib.rectangle(*box))
    return np.asarray(enc._recognizer.compute_face_descriptor(rgb, shape))


def match_rates(enc: DlibFaceEncoder, threshold: float) -> None:
    photos = load_photos()
    print(
        f"\n## Match rates: {len(photos)} photos: "
        + ", ".join(f"{k} {v.shape[1]}x{v.shape[0]}" for k, v in photos.items())
    )
    refs: dict[str, np.ndarray] = {}
    raws: dict[str, np.ndarray] = {}
    probes: dict[tuple[str, str], tuple[np.ndarray, np.ndarray] | None] = {}
    for stem, im in photos.items():
        found = enc.faces(im)
        if not found:
            print(f"  {stem}: no face in the original, skipped")
            continue
        main = max(found, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        refs[stem] = main.embedding
        raws[stem] = raw_descriptor(enc, im, main.box)
        for aug, fn in augmentations(main.box).items():
            img = fn(im)
            got = enc.faces(img)
            if got:
                f = max(got, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
                probes[(stem, aug)] = (f.embedding, raw_descriptor(enc, img, f.box))
            else:
                probes[(stem, aug)] = None
    augs = list(augmentations((0, 0, 1, 1)))
    same: dict[str, list[float]] = {a: [] for a in augs}
    diff: dict[str, list[float]] = {a: [] for a in augs}
    agree = total = 0
    norms = [float(np.linalg.norm(r)) for r in raws.values()]
    for (stem, aug), probe in probes.items():
        for other, ref in refs.items():
            if other == stem:
                continue
            sim = float(probe[0] @ ref) if probe is not None else -1.0  # no face = no match
            (same if identity(stem) == identity(other) else diff)[aug].append(sim)
            if probe is not None:
                norms.append(float(np.linalg.norm(probe[1])))
                dist = float(np.linalg.norm(probe[1] - raws[other]))
                agree += (dist < 0.6) == (sim >= threshold)
                total += 1
    print(f"\nidentities: {sorted({identity(s) for s in refs})}")
    print(
        f"{'alteration':12} {'detected':>9} {'same pairs':>10} {'diff pairs':>10}   accept / false match at "
        + " ".join(f"{t:.2f}" for t in THRESHOLDS)
    )
    for aug in [*augs, "all"]:
        s = [x for a in augs for x in same[a]] if aug == "all" else same[aug]
        d = [x for a in augs for x in diff[a]] if aug == "all" else diff[aug]
        keys = [k for k in probes if aug == "all" or k[1] == aug]
        det = sum(probes[k] is not None for k in keys)
        rates = " ".join(
            f"{np.mean(np.array(s) >= t) * 100:5.1f}/{np.mean(np.array(d) >= t) * 100:4.1f}"
            for t in THRESHOLDS
        )
        print(f"{aug:12} {det:4d}/{len(keys):<4d} {len(s):10d} {len(d):10d}   {rates}")
    s_all = np.array([x for a in augs for x in same[a] if x > -1])
    d_all = np.array([x for a in augs for x in diff[a] if x > -1])
    print(
        f"\ncosine, detected probes: same person min {s_all.min():.3f} p5 {np.percentile(s_all, 5):.3f} "
        f"median {np.median(s_all):.3f}; other person max {d_all.max():.3f} p95 {np.percentile(d_all, 95):.3f} "
        f"median {np.median(d_all):.3f}"
    )
    n = np.array(norms)
    implied = 1 - 0.6**2 / (2 * float(np.mean(n)) ** 2)
    print(
        f"raw dlib descriptor norms: mean {n.mean():.4f} sd {n.std():.4f} (min {n.min():.4f}, max {n.max():.4f}); "
        f"Euclidean 0.6 <-> cosine {implied:.4f} at the mean norm"
    )
    print(f"decisions 'distance < 0.6' and 'cosine >= {threshold}' agree on {agree}/{total} pairs")


# ---------------------------------------------------------------- speed
def _frame_with(faces: Sequence[tuple[np.ndarray, int]], seed: int = 0) -> np.ndarray:
    """An 832x480 frame: the coffee photo as background, each (photo, face width) pasted head and shoulders."""
    from skimage import data

    frame = np.asarray(Image.fromarray(data.coffee()).resize((832, 480), Image.Resampling.BILINEAR)).copy()
    x = 20
    for photo, width in faces:
        s = width / 180  # the repo's obama/biden/astronaut crops have faces of about 110-180 px; close enough
        small = _resize(photo, s)
        h, w = min(small.shape[0], 470), min(small.shape[1], 832 - x)
        frame[5 : 5 + h, x : x + w] = small[:h, :w]
        x += w + 10
    return frame


def _time(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts), max(ts)


def speed(enc: DlibFaceEncoder, reps: int) -> None:
    from skimage import data

    from gen4sdk.policy._faces import DlibFaceEncoder as Encoder

    faces_dir = SOURCES[0]
    obama = np.asarray(Image.open(faces_dir / "obama.jpg").convert("RGB"))
    biden = np.asarray(Image.open(faces_dir / "biden.jpg").convert("RGB"))
    astro = data.astronaut()[:300, 60:400]
    print(
        f"\n## Speed, one core (affinity {sorted(os.sched_getaffinity(0))}), median / max of {reps} runs, ms"
    )
    frames = {
        "no face": _frame_with([]),
        "one face (~150 px)": _frame_with([(obama, 150)]),
        "three faces (~120 px)": _frame_with([(obama, 120), (biden, 160), (astro, 120)]),
    }
    up1 = Encoder(upsample=1)
    up1.warm_up()
    print(f"{'832x480 frame':28} {'faces':>5} {'default (up 0)':>16} {'upsample=1':>16}")
    for name, fr in frames.items():
        n = len(enc.faces(fr))
        m0, x0 = _time(partial(enc.faces, fr), reps)
        m1, x1 = _time(partial(up1.faces, fr), max(3, reps // 3))
        print(f"{name:28} {n:5d} {m0:8.1f} /{x0:6.1f} {m1:8.1f} /{x1:6.1f}")
    print("\nsmallest face found in an 832x480 frame (obama pasted at width W):")
    for w in (30, 40, 50, 60, 70, 80, 100):
        fr = _frame_with([(obama, w)])
        print(f"  W={w:3d} px: default {len(enc.faces(fr))}, upsample=1 {len(up1.faces(fr))}")
    # an 81-frame clip at 16 fps, checked at 2 fps: frames 0, 8, ..., 80
    sampled = list(range(0, 81, 8))
    rng = np.random.default_rng(0)
    for label, base in (
        ("no face", frames["no face"]),
        ("one face in every frame", frames["one face (~150 px)"]),
    ):
        clip = [
            np.clip(base.astype(np.int16) + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
            for _ in sampled
        ]
        for enc_label, e in (("default", enc), ("upsample=1", up1)):
            t = time.perf_counter()
            per = []
            for fr in clip:
                t1 = time.perf_counter()
                e.faces(fr)
                per.append((time.perf_counter() - t1) * 1000)
            total = (time.perf_counter() - t) * 1000
            print(
                f"clip 81 frames, {len(sampled)} checked, {label:24} {enc_label:10}: "
                f"{statistics.median(per):6.1f} ms/frame, total {total:7.1f} ms"
            )
    # what the SDK runs: Policy.check_frames samples by time (2 a second of 16 fps, plus scene starts) and
    # tracks a face within a scene (embedded again every third sample), against a registry with one face
    import tempfile

    from gen4sdk.policy import LikenessRegistry, Policy

    with tempfile.TemporaryDirectory() as tmp:
        reg = LikenessRegistry(Path(tmp) / "r.db")
        reg.add_face(reg.add_identity("Barack Obama").id, obama, encoder=enc)
        policy = Policy.default(semantic=False, detectors=False, faces=enc)
        for label, base in (
            ("no face", frames["no face"]),
            ("one face in every frame", frames["one face (~150 px)"]),
        ):
            clip81 = np.stack(
                [
                    np.clip(base.astype(np.int16) + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
                    for _ in range(81)
                ]
            )
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                policy.check_frames(clip81, fps=16, likeness=reg)
                runs.append((time.perf_counter() - t) * 1000)
            print(
                f"Policy.check_frames, 81 frames 832x480 at 16 fps, {label:24}: {statistics.median(runs):7.1f} ms (median of 3)"
            )


def cold_start() -> None:
    code = (
        "import time; t=time.perf_counter(); import dlib; t1=time.perf_counter();"
        "from gen4sdk.policy._faces import DlibFaceEncoder; e=DlibFaceEncoder(); t2=time.perf_counter();"
        "e.warm_up(); t3=time.perf_counter();"
        "print(f'{(t1-t)*1000:.0f} {(t2-t1)*1000:.0f} {(t3-t2)*1000:.0f}')"
    )
    out = []
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
        out.append([float(x) for x in r.stdout.split()])
    med = np.median(np.array(out), axis=0)
    print(
        f"\n## Cold start (fresh process, median of 3): import dlib {med[0]:.0f} ms, import gen4sdk.policy "
        f"{med[1]:.0f} ms, warm_up (load both models + first forward pass) {med[2]:.0f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-match", action="store_true", help="skip the match rates")
    ap.add_argument("--no-speed", action="store_true", help="skip speed and cold start")
    ap.add_argument("--reps", type=int, default=10, help="timed runs per speed figure")
    ap.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the highest allowed)")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(
            0, {args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))}
        )  # one core
    os.environ["OMP_NUM_THREADS"] = "1"

    from gen4sdk.policy._faces import DLIB_COSINE_THRESHOLD, DlibFaceEncoder

    enc = DlibFaceEncoder()
    enc.warm_up()
    print(f"# Face module benchmark: {enc.id}, threshold {DLIB_COSINE_THRESHOLD}")
    if not args.no_match:
        match_rates(enc, DLIB_COSINE_THRESHOLD)
    if not args.no_speed:
        speed(enc, args.reps)
        cold_start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
