"""What the SDK adds to a real-size model's wall time on a GPU: stage timings, the share of the stages after the
model, and peak GPU memory per memory mode; then the same in steady state, through a generation worker that
encodes and signs one clip while the model generates the next.

    python benchmarks/gpu_overhead.py                       # Wan 2.1 T2V 1.3B architecture, 81x480x832, cuda
    python benchmarks/gpu_overhead.py --steps 50 --tasks 4  # a 50-step clip, 4 tasks through the worker
    python benchmarks/gpu_overhead.py --tiny                # the tiny model on the CPU: checks the script runs

On a GPU the first memory mode also runs with its frames sent to the host before the watermark (the numpy path,
what the Client did before frames stayed on the device), as that run's baseline.

The model is the real-size Wan 2.1 1.3B architecture with random weights (no download): the transformer at its
published configuration (30 layers, 12 heads of 128, FFN 8960; 1.42 B parameters), the real VAE configuration, and
a 2-layer UMT5 text encoder of the real width (4096) in place of UMT5-XXL (the text encoder runs once per request
and its size does not change what this measures). Random weights compute what trained ones do. Prints tables;
never fails on a time. Not run by CI (it needs a CUDA GPU); `--tiny` is.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

AFTER_MODEL = ("frames_policy", "label", "watermark", "encode", "watermark_check", "sign", "record")


def wan_13b_pipeline(seed: int = 0) -> Any:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    from gen4sdk.models._tiny import _tokenizer

    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
        text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
    )  # fmt: skip
    vae = AutoencoderKLWan()  # the published VAE configuration
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer), d_model=4096, d_kv=64, d_ff=10240, num_layers=2, num_heads=64,
            relative_attention_num_buckets=32, feed_forward_proj="gated-gelu", pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
        )
    )  # fmt: skip
    modules = [cast(torch.nn.Module, m) for m in (transformer, vae, text_encoder)]
    for module in modules:
        module.eval()  # built in code, so still in training mode
    n = sum(p.numel() for p in modules[0].parameters())
    print(f"transformer: {n / 1e9:.2f} B parameters")
    return WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--tasks", type=int, default=3, help="tasks through the worker, in steady state")
    ap.add_argument("--modes", nargs="+", default=["none", "vae_tiling", "cpu_offload"])
    ap.add_argument(
        "--tiny", action="store_true", help="the tiny model on the CPU (a check that the script runs)"
    )
    args = ap.parse_args()

    import torch

    import gen4sdk
    from gen4sdk.models import DiffusersVideoModel, tiny_pipeline

    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        sys.exit("no CUDA device: run with --tiny to check the script on the CPU")
    frames, height, width = (81, 480, 832) if not args.tiny else (17, 144, 256)
    device, dtype = ("cuda", "bfloat16") if cuda else ("cpu", "float32")
    work = Path(tempfile.mkdtemp(prefix="gpu-overhead-"))
    keys = gen4sdk.init_keys(work / "keys", organization="Bench")
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)
    policy = gen4sdk.Policy.default()
    policy.warm_up()
    request: dict[str, Any] = {
        "prompt": "a lighthouse at dusk, waves on the rocks", "num_frames": frames, "height": height,
        "width": width, "fps": 16, "steps": args.steps, "seed": 1,
    }  # fmt: skip
    print(f"{'tiny model, cpu' if args.tiny else torch.cuda.get_device_name()}: {frames}x{height}x{width}, "
          f"{args.steps} steps, {dtype}")  # fmt: skip
    print()
    print("| memory mode | wall s | generate s | s per step | after the model s | SDK share | peak GPU GiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    # On a GPU the first mode runs twice more: as the Client runs it (frames watermarked on the GPU, the torch
    # path) and with the frames sent to the host first (the numpy watermark), the baseline of the same run.
    rows = [(m, False) for m in (args.modes if cuda else ["none"])]
    if cuda:
        rows.insert(1, (rows[0][0], True))
    for index, (mode, host_frames) in enumerate(rows):
        # a fresh pipeline per mode, so no mode inherits another's placement or hooks
        pipeline = wan_13b_pipeline() if not args.tiny else tiny_pipeline()
        model: Any = DiffusersVideoModel(pipeline, model_id=f"wan-1.3b-random-{mode}", device=device, dtype=dtype,
                                         memory_mode=mode)  # fmt: skip
        if host_frames:
            model = _HostFrames(model)
        name = f"{mode}, frames via the host" if host_frames else mode
        store = gen4sdk.Store(work / f"{index}.db", signer=signer)
        client = gen4sdk.Client(model=model, signer=signer, owner="Bench", store=store, policy=policy)
        client.generate(**{**request, "steps": 2}, output=work / f"warm-{index}.mp4")  # kernels, allocator
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = client.generate(**request, output=work / f"{index}.mp4")
        wall = time.perf_counter() - start
        t = result.timings
        after = sum(t.get(k, 0.0) for k in AFTER_MODEL)
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        print(f"| {name} | {wall:.2f} | {t['generate']:.2f} | {t['generate'] / args.steps:.3f} | {after:.2f} | "
              f"{100 * (wall - t['generate']) / wall:.1f}% | {peak:.1f} |")  # fmt: skip
        print("  stages: " + ", ".join(f"{k} {v:.3f}" for k, v in t.items()))
        if index == 0:
            steady = steady_state(client, request, args.tasks, work)
        del client, model, pipeline
        if cuda:
            torch.cuda.empty_cache()
    print()
    print(steady)


class _HostFrames:
    """A model without ``generate_on_device``: the Client gets its frames on the host and watermarks them with
    numpy, as it did before the torch path was wired in."""

    def __init__(self, model: Any) -> None:
        self._model = model

    @property
    def info(self) -> Any:
        return self._model.info

    def validate(self, *args: Any, **kwargs: Any) -> None:
        self._model.validate(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self._model.generate(*args, **kwargs)


def steady_state(client: Any, request: dict[str, Any], tasks: int, work: Path) -> str:
    """Tasks queued for one worker: the SDK's added share is the wall time beyond the model's own time."""
    from gen4sdk.server import GenerationWorker, TaskQueue

    scenes = ["a lighthouse at dusk", "a harbour at dawn", "a kite over green hills", "rain on a city street"]
    queue = TaskQueue(client.store)
    key, _ = queue.create_api_key("bench", rate_limit=10_000)
    ids = [queue.submit(key, {**request, "prompt": scenes[i % len(scenes)]})[0].id for i in range(tasks)]
    worker = GenerationWorker(client, work / "clips", lease=600)
    start = time.perf_counter()
    worker.start()
    while not all((task := queue.get(i)) is not None and task.finished for i in ids):
        time.sleep(0.05)
    wall = time.perf_counter() - start
    worker.stop()
    model_seconds = []
    for i in ids:
        entry = client.store.find_record(i)
        if entry is not None and entry.record.outcome == "allowed":
            model_seconds.append(entry.record.timings.get("generate", 0.0))
    model = sum(model_seconds)
    return (
        f"steady state, {tasks} tasks through one worker (overlap on), {len(model_seconds)} succeeded: wall "
        f"{wall:.2f} s, the model {model:.2f} s ({statistics.mean(model_seconds):.2f} s a task); the SDK adds "
        f"{100 * (wall - model) / model:.1f}% to the model's time (this includes the first task's policy check and "
        "the last task's encode and sign, which nothing overlaps)"
    )


if __name__ == "__main__":
    main()
