"""Speed of the synthetic (tiny, random) model and of video I/O: prints figures, never passes or fails.

    python benchmarks/_synthetic.py [--quick]

Measures tiny_model() generation at the demo size (256x144) for several step counts and thread settings, and
PyAV encode / streaming-decode throughput and round-trip PSNR on a real clip (Big Buck Bunny excerpt).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BBB = Path(__file__).resolve().parents[2] / "shared" / "media" / "big_buck_bunny.mp4"


def _timed(fn, repeat: int) -> tuple[float, float, object]:
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def bench_model(quick: bool) -> None:
    import torch

    from gen4sdk.models import DiffusersVideoModel, tiny_model, tiny_pipeline
    from gen4sdk.types import GenerationRequest

    repeat = 1 if quick else 3
    print(f"tiny model (torch {torch.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
    t = time.perf_counter()
    model = tiny_model()
    print(f"  build: {time.perf_counter() - t:.2f}s  weights digest: {model.info.weights_sha256[:16]}...")
    default_threads = DiffusersVideoModel(tiny_pipeline(), model_id="tiny-default-threads")
    img = np.random.default_rng(0).integers(0, 256, (144, 256, 3), dtype=np.uint8)
    i2v = tiny_model(image_to_video=True)
    for frames in (17, 25):
        for steps in (4, 8) if quick else (4, 8, 10):
            req = GenerationRequest(
                prompt="a fox in the snow", request_id="b", num_frames=frames, steps=steps
            )
            wall, cpu, out = _timed(lambda r=req: model.generate(r), repeat)
            arr = out[0]  # type: ignore[index]
            std = arr.reshape(frames, -1).std(axis=1)
            line = f"  t2v 256x144x{frames} {steps:2d} steps, 1 thread : wall {wall:5.2f}s cpu {cpu:5.2f}s"
            print(f"{line}  frame std {np.median(std):.0f} (min {std.min():.0f})")
            if steps == 4:
                wall, cpu, _ = _timed(lambda r=req: default_threads.generate(r), repeat)
                print(
                    f"  t2v 256x144x{frames} {steps:2d} steps, {torch.get_num_threads()} threads: wall {wall:5.2f}s"
                )
                wall, cpu, _ = _timed(lambda r=req: i2v.generate(r, image=img), repeat)
                print(
                    f"  i2v 256x144x{frames} {steps:2d} steps, 1 thread : wall {wall:5.2f}s cpu {cpu:5.2f}s"
                )


def bench_media(quick: bool) -> None:
    from gen4sdk import media

    seconds = 4.0 if quick else 10.0
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    n = sum(1 for _ in media.iter_frames(BBB, start_seconds=10.0, duration_seconds=seconds))
    dt = time.perf_counter() - t
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"media: streaming decode 640x360: {n / dt:.0f} frames/s; peak RSS grew {(rss1 - rss0) / 1024:.0f} MiB"
    )
    clip = media.read_frames(BBB, start_seconds=30.0, duration_seconds=2.0)
    with tempfile.TemporaryDirectory() as d:
        for preset, crf in (("veryfast", 23), ("medium", 18), ("slow", 18)):
            out = Path(d) / f"{preset}.mp4"
            t = time.perf_counter()
            media.encode_video(clip, out, fps=24, crf=crf, preset=preset)
            dt = time.perf_counter() - t
            back = media.read_frames(out)
            mse = float(((back.astype(np.float64) - clip) ** 2).mean())
            psnr = 10 * np.log10(255.0**2 / mse)
            kbps = out.stat().st_size * 8 / 1000 / (len(clip) / 24)
            print(
                f"  encode {preset:8s} crf {crf}: {len(clip) / dt:5.0f} frames/s, "
                f"{kbps:5.0f} kbit/s, RGB PSNR {psnr:.2f} dB"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    bench_media(args.quick)  # first, so its peak-RSS figure is not hidden by the model's
    bench_model(args.quick)


if __name__ == "__main__":
    main()
