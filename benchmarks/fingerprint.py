"""Fingerprint benchmark: does a clip's perceptual fingerprint still find its manifest where the watermark is gone?

    python benchmarks/fingerprint.py                # 11 clips x 12 attacks, about 15 min on 2 loaded cores
    python benchmarks/fingerprint.py --distractors 20000   # a bigger store for the lookup's speed

Content: 11 stored clips of 4 s at 640x360: the 7 disjoint 4 s excerpts of Big Buck Bunny's first 28 s and pan/zoom
clips over 4 of scikit-image's photographs, each marked with the public watermark and fingerprinted as the Client
does (the marked frames, before encoding), stored with a manifest in a real store (SQLite) beside --distractors
random fingerprints. The unrelated clips share no source with them: the film from 32 s on, the other 4
photographs (excerpts of one shot, or two pans over one photograph, do look alike, and would match). Every attack is applied to the
marked clip; then, side by side: is the exact watermark payload read (the plain pass and the geometry search, as
``verify`` runs them), and does the store's lookup by content name the right manifest first? A false match is a
lookup that names any other manifest, for the attacked clips and for --unrelated clips that were never stored
(other excerpts, other photographs). Prints markdown tables; never passes or fails on a number.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _wm_media as M
import cv2

from gen4sdk import fingerprint as fp
from gen4sdk.store import Store
from watermark import Watermarker

FPS = 24
CLIP_FRAMES = 96
JUMBF = (
    Path(__file__).resolve().parents[1] / "tests" / "data" / "golden" / "0.1.0" / "manifest.c2pa"
).read_bytes()


def blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def noise(frames: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(frames + rng.normal(0, sigma, frames.shape), 0, 255).astype(np.uint8)


def attacks() -> dict[str, M.Attack]:
    re = M.reencode
    return {
        "H.264 CRF 23": lambda v, r: re(v, crf=23, fps=FPS),
        "H.264 CRF 45": lambda v, r: re(v, crf=45, fps=FPS),
        "H.264 CRF 51 (the codec's worst)": lambda v, r: re(v, crf=51, fps=FPS),
        "downscale to 160x90 + CRF 35": lambda v, r: re(M.resize(v, 0.25), crf=35, fps=FPS),
        "Gaussian blur sigma 3 + CRF 35": lambda v, r: re(blur(v, 3.0), crf=35, fps=FPS),
        "noise sigma 25 + CRF 35": lambda v, r: re(noise(v, 25.0, r), crf=35, fps=FPS),
        "flip H + CRF 40": lambda v, r: re(v[:, :, ::-1], crf=40, fps=FPS),
        "rotate 20 degrees + CRF 26": lambda v, r: re(M.rotate(v, 20.0 * r.choice([-1, 1])), crf=26, fps=FPS),
        "crop to 40% of the side + CRF 26": lambda v, r: re(M.crop_side(v, 0.40, r), crf=26, fps=FPS),
        "crop to 80% of the side + CRF 26": lambda v, r: re(M.crop_side(v, 0.80, r), crf=26, fps=FPS),
        "filmed screen: perspective 8%, blur, gamma, CRF 30": lambda v, r: re(
            M.gamma(blur(M.perspective(v, 0.08, r), 1.2), 1.15), crf=30, fps=FPS
        ),
        "2 s excerpt at 15 fps + CRF 35": lambda v, r: re(
            M.change_fps(M.excerpt(v, 2 * FPS, r), FPS, 15), crf=35, fps=15
        ),
    }


def sources(rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(stored clips, unrelated clips): no film second and no photograph in both."""
    film = [M.read_video(M.BBB, start=k * CLIP_FRAMES, count=CLIP_FRAMES) for k in range(7)]
    later = [M.read_video(M.BBB, start=32 * FPS + k * CLIP_FRAMES, count=CLIP_FRAMES) for k in range(7)]
    pans = [M.pan_zoom_clip(M.photo(name), 360, 640, CLIP_FRAMES, rng) for name in M.PHOTOS]
    return film + pans[:4], [c for c in later if len(c) == CLIP_FRAMES] + pans[4:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--distractors", type=int, default=5000, help="random fingerprints stored beside the clips"
    )
    ap.add_argument("--seed", type=int, default=3000)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    stored, unrelated = sources(rng)
    wm = Watermarker.public()
    tmp = Path(tempfile.mkdtemp(prefix="gen4sdk-fp-bench-"))
    store = Store(tmp / "store.db", durable=False)

    t0 = time.perf_counter()
    clips, ids, fp_seconds, frames_done = [], [], 0.0, 0
    for i, frames in enumerate(stored):
        payload = rng.bytes(wm.payload_bytes)
        marked = wm.embed(frames, payload)
        t = time.perf_counter()
        print_ = fp.fingerprint_frames(marked, FPS)
        fp_seconds += time.perf_counter() - t
        frames_done += len(marked)
        manifest_id = f"urn:c2pa:clip-{i:03d}"
        store.put_manifest(
            payload=payload, manifest_id=manifest_id, manifest_store=JUMBF, asset_sha256="00" * 32,
            fingerprint=print_.to_bytes(),
        )  # fmt: skip
        clips.append((marked, payload))
        ids.append(manifest_id)
    # distractors: random 63-bit frame hashes, 8 s each, to give the index and the lookup a realistic load
    for j in range(args.distractors):
        hashes = rng.integers(0, 1 << 63, size=32, dtype=np.uint64)
        store.put_manifest(
            payload=rng.bytes(8), manifest_id=f"urn:c2pa:distractor-{j:05d}", manifest_store=JUMBF,
            asset_sha256="00" * 32, fingerprint=fp.Fingerprint(hashes).to_bytes(),
        )  # fmt: skip
    print(
        f"{len(stored)} clips of {CLIP_FRAMES} frames (640x360, {FPS} fps) marked and stored, "
        f"{args.distractors} distractors, in {time.perf_counter() - t0:.0f} s"
    )
    print(
        f"fingerprinting: {1000 * fp_seconds / frames_done:.2f} ms a frame of the clip "
        f"({fp.TICKS_PER_SECOND} thumbnails a second)\n"
    )

    rows = []
    lookups: list[float] = []
    same: dict[str, list[float]] = {}
    for name, attack in attacks().items():
        marks = found_right = false = 0
        for i, (marked, payload) in enumerate(clips):
            attacked = attack(marked, np.random.default_rng(args.seed + 7 * i))
            det = wm.detect(attacked)
            marks += bool(det.found and det.payload == payload)
            views = fp.query_views(attacked, FPS if "15 fps" not in name else 15)
            t = time.perf_counter()
            hits = store.find_by_content(views, limit=3)
            lookups.append(time.perf_counter() - t)
            found_right += bool(hits) and hits[0][0].manifest_id == ids[i]
            false += any(m.manifest_id != ids[i] for m, _ in hits[:1])
            best = fp.match(views, fp.Fingerprint.from_bytes(_stored_print(store, ids[i])))
            same.setdefault(name, []).append(best.distance if best is not None else 64.0)
        rows.append((name, marks, found_right, false))
        print(f"  {name}: mark {marks}/{len(clips)}, fingerprint {found_right}/{len(clips)}", flush=True)

    unrelated_false = 0
    nearest: list[float] = []
    for other in unrelated:
        views = fp.query_views(M.reencode(other, crf=28, fps=FPS), FPS)
        unrelated_false += bool(store.find_by_content(views, limit=1))
        dists = [
            m.distance
            for i in range(len(clips))
            if (m := fp.match(views, fp.Fingerprint.from_bytes(_stored_print(store, ids[i])))) is not None
        ]
        nearest.append(min(dists) if dists else 64.0)

    n = len(clips)
    print("\n| attack | watermark: exact payload | fingerprint: right manifest first | false match | "
          "same clip: median / max distance (bits of 63) |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, marks, right, false in rows:
        d = np.array(same[name])
        print(f"| {name} | {marks} / {n} | {right} / {n} | {false} / {n} | {np.median(d):g} / {d.max():g} |")
    print(
        f"\nunrelated clips (never stored, re-encoded at CRF 28): {unrelated_false} / {len(unrelated)} matched "
        f"anything; their nearest stored clip at median {np.median(nearest):g}, min {min(nearest):g} bits "
        f"(a match needs at most {fp.MATCH_DISTANCE})"
    )
    lk = np.array(lookups) * 1000
    print(
        f"lookup by content in a store of {n + args.distractors} fingerprints: p50 {np.percentile(lk, 50):.1f} ms, "
        f"p99 {np.percentile(lk, 99):.1f} ms"
    )


def _stored_print(store: Store, manifest_id: str) -> bytes:
    rows = store.database.read(
        "SELECT fingerprint FROM manifests_fingerprints WHERE manifest_id = ?", (manifest_id,)
    )
    return bytes(rows[0][0])


if __name__ == "__main__":
    main()
