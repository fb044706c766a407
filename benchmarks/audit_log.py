"""Audit-log figures: appends per second from 1 and from N processes (SQLite WAL), and `log verify` time.

    python benchmarks/audit_log.py [--records 100000] [--appends 2000] [--processes 8]

Prints tables; never fails on a time. Each append is its own BEGIN IMMEDIATE transaction (the Store's real path),
measured with durable=True (synchronous=FULL, an fsync per commit, the default) and durable=False (NORMAL).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen4sdk.compliance import Store
from gen4sdk.types import AuditRecord, Decision

_DECISION = Decision(
    allowed=True,
    action="allow",
    pack_id="gen4sdk.default",
    pack_version="1.0.0",
    pack_sha256="0" * 64,
    scores={"sexual": 0.01, "violence": 0.02},
)


def _record(i: int, caller: str) -> AuditRecord:
    # A realistic size: prompt, parameters, two policy decisions, timings (about 1.3 kB of JSON).
    return AuditRecord(
        request_id=uuid.uuid4().hex,
        caller=caller,
        outcome="allowed",
        prompt=f"a slow cinematic pan over a mountain lake at dawn, mist on the water, take {i}",
        prompt_salt=os.urandom(16).hex(),
        parameters={"num_frames": 49, "height": 480, "width": 832, "fps": 16.0, "steps": 30, "seed": i},
        decisions=[_DECISION, _DECISION.model_copy(update={"stage": "output"})],
        model_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        weights_sha256="ab" * 32,
        output_sha256="cd" * 32,
        manifest_id=f"urn:c2pa:{uuid.uuid4()}",
        watermark_payload=os.urandom(8).hex(),
        timings={"policy": 0.01, "generate": 40.0, "watermark": 0.5, "encode": 0.4, "sign": 0.1},
    )


def _writer(path: str, n: int, durable: bool, start: mp.Event) -> None:  # type: ignore[valid-type]
    store = Store(path, durable=durable)
    records = [_record(i, f"proc-{os.getpid()}") for i in range(n)]
    start.wait()  # type: ignore[attr-defined]
    for r in records:
        store.append(r)


def appends_per_second(processes: int, total: int, durable: bool) -> float:
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "bench.db")
        Store(path)
        ctx = mp.get_context("fork")
        start = ctx.Event()
        per = total // processes
        procs = [ctx.Process(target=_writer, args=(path, per, durable, start)) for _ in range(processes)]
        for p in procs:
            p.start()
        time.sleep(0.5 + 0.1 * processes)  # let every writer build its records and open the store
        t0 = time.perf_counter()
        start.set()
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - t0
        report = Store(path).verify_log()
        assert report.ok and report.records == per * processes, report
        return per * processes / elapsed


def verify_time(records: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "big.db", durable=False)
        t0 = time.perf_counter()
        for i in range(records):
            store.append(_record(i, "bench"))
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = store.verify_log()
        elapsed = time.perf_counter() - t0
        assert report.ok and report.records == records
        size = sum(f.stat().st_size for f in Path(d).iterdir())
        return build, elapsed, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--appends", type=int, default=2000)
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="10k records and 500 appends (well under a minute)")
    args = ap.parse_args()
    if args.quick:
        args.records, args.appends = min(args.records, 10_000), min(args.appends, 500)
    print(f"machine: {os.cpu_count()} CPUs, SQLite {__import__('sqlite3').sqlite_version}")
    print("\nAudit-log appends (one BEGIN IMMEDIATE transaction per record)")
    print(f"{'processes':>9} | {'durable (FULL)':>16} | {'NORMAL':>16}")
    for procs in (1, args.processes):
        full = appends_per_second(procs, args.appends, durable=True)
        normal = appends_per_second(procs, args.appends, durable=False)
        print(f"{procs:>9} | {full:>11.0f} /s   | {normal:>11.0f} /s")
    build, elapsed, size = verify_time(args.records)
    print(
        f"\nlog verify of {args.records} records: {elapsed:.2f} s "
        f"({args.records / elapsed:,.0f} records/s; file {size / 1e6:.0f} MB; built in {build:.0f} s)"
    )


if __name__ == "__main__":
    main()
