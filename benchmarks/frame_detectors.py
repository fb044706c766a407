"""Content detectors on frames: false positives on benign natural imagery, speed. Prints figures.

    python benchmarks/frame_detectors.py                 # open_nsfw, and NudeNet when installed
    python benchmarks/frame_detectors.py --no-nudenet
    python benchmarks/frame_detectors.py --fps 4 --threads 2

Data: ../shared/media/big_buck_bunny.mp4 (decoded with PyAV: --fps frames a second over the whole clip, plus
the first frame after each scene cut), scikit-image's photographs (colour ones, and greyscale ones converted to
RGB), ../shared/faces, and pans and zooms over those photographs. Every frame is brought to 832x480, the video
model's output size, before it is scored. Reported per set and overall: max, p99, p95 and median of the score,
and how many frames score at or above 0.5 / 0.6 / 0.7 / 0.8 / 0.9 (every frame here is benign, so each one
counted is a false positive); then the highest-scoring frames by name.
Speed: one 832x480 frame at a time and a batch of 11 (one request's sampled frames), preprocessing included,
on --threads intra-op threads; cold start = a new detector's warm_up (checksum, session load, first run) in this process,
and in a new process (imports of onnxruntime and PIL included; files already in the page cache).

Recall is NOT measured here: no labelled explicit imagery may be obtained or used on this machine, so how much
sexual content either detector catches is unknown from this benchmark. Published figures: Yahoo published no
precision/recall for open_nsfw (only the guidance that scores < 0.2 are likely safe and > 0.8 likely NSFW, and
that each application should pick its threshold from its own ROC curve); NudeNet's README publishes no
detection accuracy for the 320n model either. Neither is measured here. Never passes or fails.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# This script's folder holds other benchmarks (watermark.py, ...) that must not shadow the packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared"

W, H = 832, 480
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
COLOUR = ["astronaut", "coffee", "chelsea", "rocket", "cat", "immunohistochemistry", "hubble_deep_field",
          "retina", "stereo_motorcycle"]  # fmt: skip
GREY = ["camera", "moon", "coins", "cell"]


def fit(img: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).convert("RGB").resize((W, H), Image.Resampling.BILINEAR))


def bbb_frames(path: Path, fps: float) -> Iterator[tuple[str, np.ndarray]]:
    """Frames at ``fps`` and the first frame after each scene cut (mean absolute difference of 32x18 grey
    thumbnails above 40 grey levels)."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        rate = float(stream.average_rate or 24)
        step = max(1, round(rate / fps))
        prev: np.ndarray | None = None
        for i, frame in enumerate(c.decode(stream)):
            thumb = np.asarray(frame.to_image().convert("L").resize((32, 18)), dtype=np.float32)
            cut = prev is not None and float(np.abs(thumb - prev).mean()) > 40
            prev = thumb
            if i % step == 0 or cut:
                yield f"bbb@{i / rate:05.1f}s{' cut' if cut else ''}", fit(frame.to_ndarray(format="rgb24"))


def pans_zooms(name: str, img: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """Four zooms into the centre and a pan across at 1.6x: what a camera move over the photograph shows."""
    h, w = img.shape[:2]
    for z in (1.25, 1.6, 2.0, 3.0):
        ch, cw = int(h / z), int(w / z)
        y, x = (h - ch) // 2, (w - cw) // 2
        yield f"{name} zoom{z}", fit(img[y : y + ch, x : x + cw])
    ch, cw = int(h / 1.6), int(w / 1.6)
    for k in range(5):
        x = (w - cw) * k // 4
        yield f"{name} pan{k}", fit(img[(h - ch) // 2 : (h - ch) // 2 + ch, x : x + cw])


def benign_sets(data: Path, fps: float) -> dict[str, list[tuple[str, np.ndarray]]]:
    from PIL import Image
    from skimage import data as sk

    photos: list[tuple[str, np.ndarray]] = []
    for n in COLOUR:
        img = getattr(sk, n)()
        photos.append((n, img[0] if isinstance(img, tuple) else img))
    for n in GREY:
        photos.append((n, np.stack([getattr(sk, n)()] * 3, axis=2)))
    faces = [
        (p.name, np.asarray(Image.open(p).convert("RGB"))) for p in sorted((data / "faces").glob("*.jpg"))
    ]
    return {
        "big_buck_bunny": list(bbb_frames(data / "media" / "big_buck_bunny.mp4", fps)),
        "skimage photos": [(n, fit(im)) for n, im in photos],
        "faces": [(n, fit(im)) for n, im in faces],
        "pans/zooms": [f for n, im in photos + faces for f in pans_zooms(n, im)],
    }


def score_all(det: object, frames: list[np.ndarray]) -> np.ndarray:
    out = [det.scores(frames[i : i + 11])["sexual"] for i in range(0, len(frames), 11)]  # type: ignore[attr-defined]
    return np.concatenate(out) if out else np.zeros(0)


def row(label: str, s: np.ndarray) -> str:
    q = np.percentile(s, [99, 95, 50])
    fps = "  ".join(f"{int((s >= t).sum()):>4d}" for t in THRESHOLDS)
    return f"  {label:<16s}{len(s):>5d}  {s.max():.4f}  {q[0]:.4f}  {q[1]:.4f}  {q[2]:.4f}   {fps}"


def fresh_process_start(cls: str, threads: int) -> float:
    """Seconds from a new interpreter's first import to a warmed-up detector (imports onnxruntime too)."""
    code = (
        "import time; t = time.perf_counter(); from gen4sdk.policy._detectors import " + cls + "; "
        f"d = {cls}(threads={threads}); d.warm_up(); print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def speed(make: type, frames: list[np.ndarray], threads: int) -> None:
    fresh = fresh_process_start(make.__name__, threads)
    started = time.perf_counter()
    det = make(threads=threads)
    det.warm_up()
    cold = time.perf_counter() - started
    batch = frames[:11]
    det.scores(batch)
    t_batch = []
    for _ in range(5):
        t0 = time.perf_counter()
        det.scores(batch)
        t_batch.append((time.perf_counter() - t0) / len(batch))
    t_one = []
    for f in batch:
        t0 = time.perf_counter()
        det.scores([f])
        t_one.append(time.perf_counter() - t0)
    t_pre = []
    for f in batch:
        t0 = time.perf_counter()
        det._preprocess(f)
        t_pre.append(time.perf_counter() - t0)
    print(
        f"  {det.id:<14s} cold start {cold * 1e3:4.0f} ms ({fresh * 1e3:4.0f} ms in a new process)   single frame {statistics.median(t_one) * 1e3:6.1f} ms"
        f"   batch of 11 {statistics.median(t_batch) * 1e3:6.1f} ms/frame"
        f"   (preprocessing {statistics.median(t_pre) * 1e3:.1f} ms/frame)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--fps", type=float, default=2.0, help="Big Buck Bunny frames sampled per second")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--no-nudenet", action="store_true")
    ap.add_argument("--top", type=int, default=5, help="highest-scoring frames listed per detector")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from gen4sdk.policy._detectors import NudeNetDetector, OpenNsfwDetector

    makers: list[type] = [OpenNsfwDetector]
    if not args.no_nudenet:
        try:
            NudeNetDetector()
            makers.append(NudeNetDetector)
        except Exception as e:  # noqa: BLE001 - optional extra; say why it is skipped
            print(f"NudeNet skipped: {e}")

    t0 = time.perf_counter()
    sets = benign_sets(args.data, args.fps)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in sets.items())
    print(f"benign frames at {W}x{H}: {sizes} (decoded and resized in {time.perf_counter() - t0:.1f} s)")
    print(
        "every frame is benign: each one at or above a threshold is a false positive. Recall: NOT measured.\n"
    )

    for make in makers:
        det = make(threads=args.threads)
        header = "  ".join(f">={t:.1f}" for t in THRESHOLDS)
        print(f"{det.id}: score of 'sexual'")
        print(f"  {'set':<16s}{'n':>5s}  {'max':>6s}  {'p99':>6s}  {'p95':>6s}  {'p50':>6s}   {header}")
        names: list[str] = []
        allscores = []
        for label, items in sets.items():
            s = score_all(det, [f for _, f in items])
            names += [n for n, _ in items]
            allscores.append(s)
            print(row(label, s))
        s = np.concatenate(allscores)
        print(row("all", s))
        top = np.argsort(-s)[: args.top]
        print("  highest: " + ", ".join(f"{names[i]} {s[i]:.3f}" for i in top) + "\n")

    print(f"speed, one {W}x{H} frame, {args.threads} intra-op thread(s), this machine (shared cores: noisy):")
    frames = [f for _, f in sets["big_buck_bunny"][:11]]
    for make in makers:
        speed(make, frames, args.threads)
    print(
        "\nNot measured here: recall (no labelled explicit imagery may be used on this machine). Published: Yahoo"
        "\ngives no precision/recall for open_nsfw, only '< 0.2 likely safe, > 0.8 likely NSFW'; NudeNet publishes"
        "\nno accuracy for 320n. Neither figure was measured here."
    )


if __name__ == "__main__":
    main()
