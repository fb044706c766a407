"""Load, weights-hash, validate and generate times of each tiny family pipeline (tests/tiny_families.py).

    python benchmarks/model_families.py [--variants wan2.1-t2v,ltx-t2v] [--steps 2]

Each variant is built in code, saved with ``save_pretrained`` to a temporary folder and loaded back with
``DiffusersVideoModel.from_pretrained`` (CPU, float32), with an empty weights-hash cache so the load pays for the
hash; then the hash alone is timed again, one ``validate`` and one generation at the family test's shape (one torch
thread). The figures describe the SDK's overhead on tiny models, not the speed of the real checkpoints.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="", help="comma-separated variant names (default: all)")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch
    from family_checks import PROMPT, SEED, VARIANTS
    from tiny_families import build

    from gen4sdk.models import DiffusersVideoModel
    from gen4sdk.models._weights import _compute
    from gen4sdk.types import GenerationRequest

    torch.set_num_threads(1)
    wanted = {v for v in args.variants.split(",") if v}
    image = np.random.default_rng(0).integers(0, 256, (144, 256, 3), dtype=np.uint8)
    print(
        "| variant | pipeline class | params | folder MB | load s (with hash) | hash s | validate ms | generate s |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")  # no cached digests: every load hashes
        for v in VARIANTS:
            if wanted and v.name not in wanted:
                continue
            pipe = build(v.name)
            folder = Path(tmp) / v.name
            pipe.save_pretrained(folder)
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
            params = sum(
                p.numel()
                for c in pipe.components.values()
                if isinstance(c, torch.nn.Module)
                for p in c.parameters()
            )
            t0 = time.perf_counter()
            model = DiffusersVideoModel.from_pretrained(folder, cpu_threads=1)
            load = time.perf_counter() - t0
            t0 = time.perf_counter()
            _compute(model.pipeline)
            hash_s = time.perf_counter() - t0
            n, h, w = v.shape
            req = GenerationRequest(
                prompt=PROMPT,
                num_frames=n,
                height=h,
                width=w,
                steps=args.steps,
                seed=SEED,
                request_id="bench",
            )
            img = image if "t2v" not in v.modes else None
            t0 = time.perf_counter()
            model.validate(req, image=img)
            validate_ms = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            frames, _ = model.generate(req, image=img)
            gen = time.perf_counter() - t0
            assert frames.shape == (n, h, w, 3)
            print(
                f"| {v.name} | {v.pipeline_class} | {params / 1e3:.0f}k | {size:.1f} | {load:.2f} | {hash_s:.3f} "
                f"| {validate_ms:.2f} | {gen:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
