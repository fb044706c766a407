"""The two store backends side by side: appends per second from 1 and N writer processes, and `log verify` time,
SQLite against PostgreSQL, as ratios from one run on one machine.

    python benchmarks/store_backends.py [--records 10000] [--appends 1000] [--processes 8]

Both backends are durable as configured by default (SQLite synchronous=FULL, PostgreSQL fsync and
synchronous_commit on); each append is the Store's real path, its own transaction (SQLite BEGIN IMMEDIATE,
PostgreSQL pg_advisory_xact_lock). PostgreSQL is a throwaway local server this script starts (initdb + pg_ctl,
tests/postgres_server.py) and stops, reached over TCP on 127.0.0.1, so its figures include a network round trip per
statement that SQLite does not pay. The log to verify is built with durable=False on both (the build is not what is
measured). Prints tables; never fails on a time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from audit_log import _record
from postgres_server import PostgresServer

from gen4sdk.store import Store


def _writer(location: str, n: int, start: mp.Event) -> None:  # type: ignore[valid-type]
    store = Store(location)
    records = [_record(i, f"proc-{os.getpid()}") for i in range(n)]
    len(store)  # connects now, before the clock starts
    start.wait()  # type: ignore[attr-defined]
    for r in records:
        store.append(r)


def appends_per_second(new_location: Callable[[], str], processes: int, total: int) -> float:
    location = new_location()
    Store(location).close()
    ctx = mp.get_context("fork")
    start = ctx.Event()
    per = total // processes
    procs = [ctx.Process(target=_writer, args=(location, per, start)) for _ in range(processes)]
    for p in procs:
        p.start()
    time.sleep(0.5 + 0.15 * processes)  # let every writer build its records and connect
    t0 = time.perf_counter()
    start.set()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    report = Store(location, read_only=True).verify_log()
    assert report.ok and report.records == per * processes, report
    return per * processes / elapsed


def verify_seconds(new_location: Callable[[], str], records: int) -> float:
    store = Store(new_location(), durable=False)
    for i in range(records):
        store.append(_record(i, "bench"))
    reader = Store(store.database.target, read_only=True)
    t0 = time.perf_counter()
    report = reader.verify_log()
    elapsed = time.perf_counter() - t0
    assert report.ok and report.records == records
    return elapsed


@contextmanager
def backends() -> Iterator[dict[str, Callable[[], str]]]:
    server = PostgresServer(fsync=True).start()
    try:
        with tempfile.TemporaryDirectory() as d:
            counter = iter(range(1_000_000))
            yield {
                "SQLite": lambda: str(Path(d) / f"bench-{next(counter)}.db"),
                "PostgreSQL": server.create_database,
            }
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--records", type=int, default=10_000, help="records in the log to verify (issue: 100000)"
    )
    ap.add_argument("--appends", type=int, default=1000, help="appends per measurement, over all writers")
    ap.add_argument("--processes", type=int, default=8, help="writer processes of the second measurement")
    args = ap.parse_args()
    import sqlite3

    import psycopg

    print(f"machine: {os.cpu_count()} CPUs; SQLite {sqlite3.sqlite_version}; psycopg {psycopg.__version__}")
    with backends() as make:
        print(f"\nappends per second ({args.appends} records per measurement, each its own transaction)")
        print(f"{'writers':>8} | {'SQLite':>10} | {'PostgreSQL':>10} | PostgreSQL / SQLite")
        for procs in (1, args.processes):
            rates = {name: appends_per_second(fn, procs, args.appends) for name, fn in make.items()}
            ratio = rates["PostgreSQL"] / rates["SQLite"]
            print(f"{procs:>8} | {rates['SQLite']:>8.0f}/s | {rates['PostgreSQL']:>8.0f}/s | {ratio:.2f}x")
        seconds = {name: verify_seconds(fn, args.records) for name, fn in make.items()}
        ratio = seconds["PostgreSQL"] / seconds["SQLite"]
        print(
            f"\nlog verify of {args.records} records: SQLite {seconds['SQLite']:.2f} s, "
            f"PostgreSQL {seconds['PostgreSQL']:.2f} s (PostgreSQL / SQLite {ratio:.2f}x)"
        )


if __name__ == "__main__":
    main()
