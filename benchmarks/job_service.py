"""The generation job service with the tiny model on CPU workers: tasks a second, time in the queue (p50 / p99), and
the overlap of one task's encoding, signing and recording with the next one's generation against running the two
halves strictly one after the other, all in one run.

    python benchmarks/job_service.py [--tasks 16] [--frames 33] [--steps 8]

Each configuration gets a fresh SQLite store and the same burst of tasks, submitted through the HTTP API
(FastAPI's TestClient) with one API key, then drained by the workers. Configurations: 1 worker serial,
1 worker with overlap, 2 workers with overlap (two Clients in one process, sharing its cores). Prints a table;
never fails on a time. With a GPU the overlap matters more: the CPU stages then leave the GPU's wall time entirely.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = [
    "a lighthouse at dusk",
    "a harbour at dawn with fishing boats",
    "a red kite over green hills",
    "rain on a city street at night",
    "a slow pan across a mountain lake",
    "a cat asleep on a windowsill",
    "waves breaking on a rocky shore",
    "a field of sunflowers in the wind",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run(config: str, workers: int, overlap: bool, args: argparse.Namespace, policy: Any, keys: Any) -> dict:
    from fastapi.testclient import TestClient

    import gen4sdk
    from gen4sdk.server import GenerationService, GenerationWorker, TaskQueue, create_app

    work = Path(tempfile.mkdtemp(prefix=f"jobs-{config.replace(' ', '-')}-"))
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)
    store = gen4sdk.Store(str(work / "store.db"), signer=signer)
    api = TestClient(create_app(store, generations=GenerationService(store, policy=policy)))
    _, key = TaskQueue(store).create_api_key("bench", rate_limit=100_000)
    headers = {"Authorization": f"Bearer {key}"}
    clients = [
        gen4sdk.Client(model="tiny", signer=signer, owner="Bench", store=store, policy=policy)
        for _ in range(workers)
    ]
    pool = [GenerationWorker(c, work / "clips", overlap=overlap, lease=120) for c in clients]
    body = {"num_frames": args.frames, "steps": args.steps, "fps": 16, "height": 144, "width": 256, "seed": 1}
    start = time.perf_counter()
    ids = []
    for i in range(args.tasks):
        r = api.post("/v1/generations", json={**body, "prompt": PROMPTS[i % len(PROMPTS)]}, headers=headers)
        r.raise_for_status()
        ids.append(r.json()["id"])
    for w in pool:
        w.start()
    queue = TaskQueue(store)
    while True:
        tasks = [queue.get(i) for i in ids]
        if all(t is not None and t.finished for t in tasks):
            break
        time.sleep(0.05)
    wall = time.perf_counter() - start
    for w in pool:
        w.stop()
    statuses = [t.status for t in tasks if t is not None]
    waits = [t.started_at - t.created_at for t in tasks if t is not None and t.started_at is not None]
    busy = [t.finished_at - t.started_at for t in tasks if t is not None and t.finished_at and t.started_at]
    return {
        "config": config,
        "succeeded": statuses.count("SUCCEEDED"),
        "wall": wall,
        "rate": args.tasks / wall,
        "p50": percentile(waits, 0.5),
        "p99": percentile(waits, 0.99),
        "in_worker": statistics.median(busy),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()

    import torch

    import gen4sdk

    keys = gen4sdk.init_keys(Path(tempfile.mkdtemp(prefix="jobs-keys-")), organization="Bench")
    policy = gen4sdk.Policy.default()
    policy.warm_up()
    # one clip alone, through Client.generate, for the split between the model and the stages after it
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)
    with tempfile.TemporaryDirectory() as tmp:
        client = gen4sdk.Client(
            model="tiny", signer=signer, owner="Bench", store=gen4sdk.Store(Path(tmp) / "s.db"), policy=policy
        )
        client.generate(prompt="warm-up", output=Path(tmp) / "w.mp4", num_frames=args.frames, steps=2, fps=16)
        result = client.generate(
            prompt="a lighthouse at dusk", output=Path(tmp) / "a.mp4", num_frames=args.frames, steps=args.steps,
            fps=16, seed=1,
        )  # fmt: skip
    t = result.timings
    first = sum(t.get(k, 0.0) for k in ("policy", "generate", "frames_policy", "label", "watermark"))
    second = sum(t.get(k, 0.0) for k in ("encode", "watermark_check", "sign", "record"))
    print(
        f"one task ({args.frames} frames 256x144, {args.steps} steps, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} cores): first half {first:.2f} s "
        f"(generate {t['generate']:.2f}), second half {second:.2f} s (encode {t['encode']:.2f}, "
        f"sign {t['sign']:.2f}, record {t['record']:.3f})"
    )
    print()
    rows = [
        run("1 worker, serial", 1, False, args, policy, keys),
        run("1 worker, overlap", 1, True, args, policy, keys),
        run("2 workers, overlap", 2, True, args, policy, keys),
    ]
    base = rows[0]["rate"]
    print(f"{args.tasks} tasks submitted at once through POST /v1/generations, drained by the workers:")
    print()
    print("| configuration | succeeded | tasks/s | vs serial | queue p50 | queue p99 | in worker (median) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['config']} | {r['succeeded']}/{args.tasks} | {r['rate']:.2f} | {r['rate'] / base:.2f}x | "
            f"{r['p50']:.1f} s | {r['p99']:.1f} s | {r['in_worker']:.2f} s |"
        )


if __name__ == "__main__":
    main()
