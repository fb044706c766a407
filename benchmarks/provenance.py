"""Core-path figures: time per stage, the cost of provenance relative to encoding, and signing/verifying a large file.

    python benchmarks/provenance.py            # full run (about 5 minutes on 2 cores)
    python benchmarks/provenance.py --quick    # smaller clip and file

Prints three tables:
1. per-stage times of ``Client.generate`` with the tiny offline pipeline;
2. a 5 s 832x480 clip of synthetic (pan over a photograph) frames: encode, watermark, sign, verify, and sign as a
   ratio of the plain encode of the same frames;
3. signing and verifying a ~100 MB MP4 through gen4sdk and through c2pa-python directly, each in a fresh
   process so peak memory (max RSS) is that operation's own.
Figures are from one run on this machine; compare ratios, not absolute seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# Run as a script, this folder comes first on sys.path and benchmarks/watermark.py would shadow the watermark package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def pan_frames(n: int, height: int, width: int) -> np.ndarray:
    from skimage import data, transform

    photo = data.coffee()
    scale = max(height / photo.shape[0], (width + 2 * n) / photo.shape[1]) * 1.02
    big = (transform.rescale(photo, scale, channel_axis=2, anti_aliasing=True) * 255).astype(np.uint8)
    return np.stack([big[:height, 2 * i : 2 * i + width] for i in range(n)])


def _spec(title: str, soft_binding: bool = True):
    from gen4sdk.provenance.manifest import ManifestSpec, SoftBinding
    from gen4sdk.types import GenerationParams, ModelInfo, Owner

    params = GenerationParams(
        num_frames=120,
        height=480,
        width=832,
        fps=24.0,
        steps=30,
        guidance_scale=5.0,
        seed=1,
        device="cpu",
        dtype="float32",
        memory_mode="none",
        scheduler="-",
        pipeline_class="-",
        image_to_video=False,
    )
    return ManifestSpec(
        title=title,
        owner=Owner(organization="Bench Org"),
        model=ModelInfo(model_id="bench/model", pipeline_class="-", weights_sha256="0" * 64),
        params=params,
        request_id="bench",
        created_at=dt.datetime.now(dt.timezone.utc),
        prompt_commitment="0" * 64,
        soft_binding=SoftBinding(algorithm="com.gen4sdk.wm.v2", payload=b"\0" * 8, end_ms=5000)
        if soft_binding
        else None,
    )


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def bench_tiny(work: Path) -> None:
    import gen4sdk
    from gen4sdk.models import tiny_model

    keys = gen4sdk.init_keys(work / "keys-tiny")
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)
    client = gen4sdk.Client(model=tiny_model(), signer=signer, owner="Bench Org", store=work / "tiny.db")
    rows = []
    for i in range(3):
        r = client.generate(
            prompt="a lighthouse on a cliff at dawn",
            output=work / f"tiny{i}.mp4",
            num_frames=17,
            height=144,
            width=256,
            fps=16,
            steps=4,
            seed=i,
        )
        rows.append(r.timings)
    stages = list(rows[0])
    table(
        "Client.generate, tiny offline Wan pipeline, 256x144, 17 frames, 4 steps (median of 3)",
        ["stage", "seconds"],
        [[s, f"{np.median([r[s] for r in rows]):.3f}"] for s in stages]
        + [["total", f"{np.median([sum(r.values()) for r in rows]):.3f}"]],
    )


def bench_clip(work: Path, seconds: float) -> None:
    import gen4sdk
    from gen4sdk import media
    from gen4sdk.provenance.manifest import sign_file
    from watermark import Watermarker

    keys = gen4sdk.init_keys(work / "keys-clip")
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)
    n = int(24 * seconds)
    frames = pan_frames(n, 480, 832)
    wm = Watermarker.public()
    t = time.perf_counter()
    marked = wm.embed(frames, b"\x01" * wm.payload_bytes)
    t_wm = time.perf_counter() - t
    plain = work / "plain.mp4"
    t = time.perf_counter()
    media.encode_video(marked, plain, fps=24, crf=18, preset="medium")
    t_enc = time.perf_counter() - t
    signed = work / "signed.mp4"
    t = time.perf_counter()
    sign_file(plain, signed, _spec("signed.mp4"), signer)
    t_sign = time.perf_counter() - t
    t = time.perf_counter()
    rep = gen4sdk.verify(signed, trust_anchors=keys.root_cert, detect_watermark=False)
    t_ver = time.perf_counter() - t
    assert rep.status == "trusted", rep.reason
    t = time.perf_counter()
    rep = gen4sdk.verify(signed, trust_anchors=keys.root_cert)
    t_ver_wm = time.perf_counter() - t
    assert rep.watermark is not None and rep.watermark.found
    table(
        f"{seconds:g} s 832x480 clip at 24 fps ({n} frames of a pan over a photograph), {plain.stat().st_size / 1e6:.1f} MB",
        ["stage", "seconds", "relative to encode"],
        [
            ["watermark embed (numpy)", f"{t_wm:.3f}", f"{t_wm / t_enc:.2f}x"],
            ["encode (x264 medium, CRF 18)", f"{t_enc:.3f}", "1.00x"],
            ["sign (C2PA, gen4sdk)", f"{t_sign:.3f}", f"**{t_sign / t_enc:.3f}x**"],
            ["verify credentials", f"{t_ver:.3f}", f"{t_ver / t_enc:.3f}x"],
            ["verify credentials + watermark", f"{t_ver_wm:.3f}", f"{t_ver_wm / t_enc:.3f}x"],
        ],
    )


_CHILD = r"""
import json, sys, time
op, src, dst, cert, key, anchors = sys.argv[1:7]
sys.path.append(sys.argv[7])  # after site-packages: benchmarks/watermark.py must not shadow the package
import c2pa
if op.startswith("gen4sdk"):
    import provenance as bench
    import gen4sdk
    from gen4sdk.provenance.manifest import sign_file

def hwm_mb():
    # VmHWM is this process's own peak (ru_maxrss would include the parent's memory at fork).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
imports_mb = hwm_mb()
t = time.perf_counter()
if op == "gen4sdk-sign":
    sign_file(__import__("pathlib").Path(src), __import__("pathlib").Path(dst), bench._spec("big.mp4", False),
              gen4sdk.Signer.from_files(cert, key))
elif op == "c2pa-sign":
    info = c2pa.C2paSignerInfo(b"es256", open(cert, "rb").read(), open(key, "rb").read(), None)
    signer = c2pa.Signer.from_info(info)
    manifest = {"claim_generator_info": [{"name": "bench"}], "title": "big.mp4", "format": "video/mp4",
                "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [{"action": "c2pa.created",
                "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}]}}]}
    with open(src, "rb") as s, open(dst, "w+b") as d:
        c2pa.Builder(manifest).sign(signer, "video/mp4", s, d)
elif op == "gen4sdk-verify":
    r = gen4sdk.verify(src, trust_anchors=anchors, detect_watermark=False)
    assert r.status == "trusted", r.reason
elif op == "c2pa-verify":
    ctx = c2pa.Context(c2pa.Settings.from_dict({"verify": {"verify_trust": True}, "trust": {"trust_anchors": open(anchors).read()}}))
    with open(src, "rb") as s:
        r = c2pa.Reader("video/mp4", s, None, ctx)
        assert r.get_validation_state() == "Trusted"
        r.json()
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "max_rss_mb": hwm_mb(), "imports_mb": imports_mb}))
"""


def _child(
    op: str,
    src: Path,
    dst: Path,
    keys,
) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            op,
            str(src),
            str(dst),
            str(keys.signer_cert),
            str(keys.signer_key),
            str(keys.root_cert),
            str(HERE),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_big(work: Path, megabytes: int) -> None:
    import av

    import gen4sdk

    keys = gen4sdk.init_keys(work / "keys-big")
    big = work / "big.mp4"
    rng = np.random.default_rng(0)
    # Lossless noise grows a file fast, so a ~100 MB MP4 takes seconds to make.
    written = 0
    with av.open(str(big), "w") as c:
        s = c.add_stream("libx264", rate=24, options={"crf": "0", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 1280, 720, "yuv420p"
        while written < megabytes * 1_000_000:
            f = av.VideoFrame.from_ndarray(
                rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), format="rgb24"
            )
            for p in s.encode(f):
                written += p.size
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    size = big.stat().st_size / 1e6
    rows = []
    results = {}
    for op in ("c2pa-sign", "gen4sdk-sign"):
        results[op] = _child(op, big, work / f"{op}.mp4", keys)
    for op, signed in (("c2pa-verify", "gen4sdk-sign"), ("gen4sdk-verify", "gen4sdk-sign")):
        results[op] = _child(op, work / f"{signed}.mp4", work / "unused", keys)
    for kind in ("sign", "verify"):
        base, ours = results[f"c2pa-{kind}"], results[f"gen4sdk-{kind}"]
        rows.append(
            [
                kind,
                "c2pa-python directly",
                f"{base['seconds']:.2f}",
                f"{base['max_rss_mb']:.0f}",
                f"{base['max_rss_mb'] - base['imports_mb']:.0f}",
                "1.00x",
            ]
        )
        rows.append(
            [
                kind,
                "gen4sdk",
                f"{ours['seconds']:.2f}",
                f"{ours['max_rss_mb']:.0f}",
                f"{ours['max_rss_mb'] - ours['imports_mb']:.0f}",
                f"{ours['seconds'] / base['seconds']:.2f}x",
            ]
        )
    table(
        f"{size:.0f} MB MP4 (1280x720 lossless noise), each operation in a fresh process after its imports",
        ["operation", "via", "seconds", "peak RSS MB", "peak above imports MB", "time vs c2pa-python"],
        rows,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bench_tiny(work)
        bench_clip(work, 2.0 if args.quick else 5.0)
        bench_big(work, 20 if args.quick else 100)


if __name__ == "__main__":
    main()
