"""Many writers on one store, on both backends: threads, processes, and writers killed with SIGKILL mid-append.

Appends serialise inside the database (SQLite's write lock, PostgreSQL's advisory lock), so the chain stays one
chain whatever the interleaving, and a killed writer loses at most the record it was writing.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

from compliance_helpers import record

from gen4sdk.compliance import Store


def test_threads_append_concurrently(store_location: str) -> None:
    store = Store(store_location, durable=False)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(25):
                store.append(record(k * 100 + i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = store.verify_log()
    assert report.ok and report.records == 100 and report.last_seq == 100


def _append_loop(path: str, n: int, caller: str, durable: bool, fd: int) -> None:
    store = Store(path, durable=durable)
    i = 0
    while n < 0 or i < n:
        seq = store.append(record(i, caller=caller))
        os.write(fd, f"{seq}\n".encode())  # one small write: atomic on a pipe, so a kill never garbles it
        i += 1


def _writer(path: str, n: int, caller: str, durable: bool) -> tuple[multiprocessing.process.BaseProcess, int]:
    """A real OS process (forked, so it does not re-import the SDK) appending to the store; returns it and the
    read end of a pipe on which it acknowledges each committed sequence number."""
    rfd, wfd = os.pipe()
    proc = multiprocessing.get_context("fork").Process(
        target=_append_loop, args=(str(path), n, caller, durable, wfd)
    )
    proc.start()
    os.close(wfd)
    return proc, rfd


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def test_several_processes_append_concurrently(store_location: str) -> None:
    path = store_location
    Store(path)
    writers = [_writer(path, 40, f"proc-{k}", durable=False) for k in range(4)]
    outputs = [_read_all(fd) for _, fd in writers]
    for proc, _ in writers:
        proc.join(60)
        assert proc.exitcode == 0
    store = Store(path)
    report = store.verify_log()
    assert report.ok and report.records == 160
    assert sorted(int(s) for out in outputs for s in out.split()) == list(range(1, 161))
    assert {k: len(store.records(caller=f"proc-{k}")) for k in range(4)} == {k: 40 for k in range(4)}


def test_kill_9_mid_write_never_breaks_the_chain(store_location: str) -> None:
    path = store_location
    Store(path)
    acknowledged = 0
    for round_ in range(8):
        proc, fd = _writer(path, -1, f"round-{round_}", durable=True)
        # Wait for its first commit, then kill it at an arbitrary point of its append loop.
        first = os.read(fd, 64)
        assert first.strip()
        time.sleep(0.02 + 0.03 * round_)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        acked = [int(s) for s in (first.decode() + _read_all(fd)).split()]
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
        acknowledged = max(acked)
        report = Store(path).verify_log()
        assert report.ok, report.problems
        # Every acknowledged record survived; at most the one being written when killed is lost (or kept).
        assert acknowledged <= report.records <= acknowledged + 1
        # The next writer continues the same chain.
    assert acknowledged > 8
