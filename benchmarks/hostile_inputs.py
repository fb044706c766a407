"""The hostile review's probes, as figures anyone can reproduce (issue 21).

    python benchmarks/hostile_inputs.py [--writers 8] [--kills 15] [--seconds 12]

1. Hostile files through ``gen4sdk.verify``: truncations, bit flips, corrupted boxes, junk, and clips whose frames
   are costly to decode. Each file is verified in a fresh child process: the figures are the worst wall time and the
   worst peak resident memory of one verification (the child's ru_maxrss, which includes the imported SDK).
2. Tampering with the audit log: every manipulation a person with write access to the database can make without
   the operator's key, each on a fresh copy of a signed log; caught = ``log verify`` is not OK. Counted twice: from
   the database alone, and with a checkpoint kept elsewhere (``log verify --checkpoint``).
3. Concurrent writers killed with SIGKILL: writer processes append (and sign checkpoints) in a loop while the
   parent kills one at random and starts a replacement; a record is acknowledged once ``append`` returned. Lost =
   acknowledged records missing from the log afterwards.

Prints tables; never fails on a time. Runs in one to two minutes on two cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import random
import resource
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

import gen4sdk
from gen4sdk import media
from gen4sdk.compliance import Store
from gen4sdk.store._logmodel import _chain_hash
from gen4sdk.types import AuditRecord

GOLDEN = ROOT / "tests" / "data" / "golden" / "0.1.0"


# ------------------------------------------------------------------------------------------------ 1. hostile files


def _hostile_files(work: Path) -> list[Path]:
    rng = random.Random(21)
    clip = (GOLDEN / "clip.mp4").read_bytes()
    files: dict[str, bytes] = {
        "empty.mp4": b"",
        "junk-1k.mp4": rng.randbytes(1024),
        "junk-1m.mp4": rng.randbytes(1 << 20),
        "text.mp4": b"this is not a video\n" * 100,
        "ftyp-only.mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
        "huge-box-size.mp4": b"\xff\xff\xff\xffmoov" + bytes(64),
    }
    for frac in (0.01, 0.1, 0.5, 0.9, 0.999):
        files[f"truncated-{frac}.mp4"] = clip[: int(len(clip) * frac)]
    for name in (b"moov", b"mdat", b"ftyp", b"uuid", b"trak", b"stsz", b"stco"):
        at = clip.find(name)
        if at < 0:
            continue
        for k, patch in enumerate((b"\xff" * 8, b"\x00" * 8, b"\x7f\xff\xff\xff")):
            data = bytearray(clip)
            data[max(0, at - 4) : max(0, at - 4) + len(patch)] = patch
            files[f"{name.decode()}-size-{k}.mp4"] = bytes(data)
        data = bytearray(clip)
        data[at + 40 : at + 80] = rng.randbytes(40)
        files[f"{name.decode()}-body.mp4"] = bytes(data)
    for k in range(10):
        data = bytearray(clip)
        for _ in range(1 + k * 3):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        files[f"bitflips-{k}.mp4"] = bytes(data)
    for name, data in files.items():
        (work / name).write_bytes(data)
    paths = [work / name for name in files]
    # Cheap to store, costly to decode: the two shapes the review found.
    solid = np.full((24, 4096, 4096, 3), 90, np.uint8)
    media.encode_video(solid, work / "4096x4096x24.mp4", fps=8, crf=51, preset="ultrafast")
    del solid
    big = np.full((2, 8192, 8192, 3), 30, np.uint8)
    media.encode_video(big, work / "8192x8192x2.mp4", fps=8, crf=51, preset="ultrafast")
    del big
    return [*paths, work / "4096x4096x24.mp4", work / "8192x8192x2.mp4"]


def _verify_child(path: str, conn: object) -> None:
    t0 = time.perf_counter()
    try:
        report = gen4sdk.verify(path, trust_anchors=str(GOLDEN / "root-ca.pem"))
        status = report.status
    except Exception as exc:  # noqa: BLE001 - a raise is a finding, reported as such
        status = f"RAISED {type(exc).__name__}"
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    conn.send((status, seconds, peak_kib))  # type: ignore[attr-defined]


def hostile_files(work: Path) -> None:
    files = _hostile_files(work)
    ctx = mp.get_context("fork")
    rows = []
    for path in files:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_verify_child, args=(str(path), child))
        proc.start()
        status, seconds, peak_kib = parent.recv() if parent.poll(300) else ("TIMEOUT", 300.0, 0)
        proc.join(10)
        rows.append((path.name, path.stat().st_size, status, seconds, peak_kib / 1024))
    print(f"\n1. hostile files through verify: {len(rows)} files")
    print(f"   {'file':28} {'bytes':>9} {'status':12} {'seconds':>8} {'peak MiB':>9}")
    for name, size, status, seconds, mib in sorted(rows, key=lambda r: -r[3])[:8]:
        print(f"   {name:28} {size:>9} {status:12} {seconds:>8.2f} {mib:>9.0f}")
    raised = [r for r in rows if r[2].startswith(("RAISED", "TIMEOUT"))]
    print(
        f"   worst time {max(r[3] for r in rows):.2f} s, worst peak memory {max(r[4] for r in rows):.0f} MiB, "
        f"raised or hung: {len(raised)}; statuses: "
        + ", ".join(f"{s} {sum(1 for r in rows if r[2] == s)}" for s in sorted({r[2] for r in rows}))
    )


# ------------------------------------------------------------------------------------------------ 2. tampering


class _Signer:
    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "benchmark log signer")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self._key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(self._key, hashes.SHA256())
        )  # fmt: skip
        self._pem = cert.public_bytes(serialization.Encoding.PEM)
        self._hashes, self._ec = hashes, ec

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, self._ec.ECDSA(self._hashes.SHA256()))

    @property
    def certificate_chain_pem(self) -> bytes:
        return self._pem


def _record(i: int, outcome: str = "allowed") -> AuditRecord:
    return AuditRecord(
        request_id=f"req-{i}-{uuid.uuid4().hex[:8]}",
        caller="partner-app",
        outcome=outcome,  # type: ignore[arg-type]
        prompt=f"a red fox running through snow, take {i}",
        parameters={"num_frames": 17, "seed": i},
        decisions=[],
        model_id="gen4sdk/tiny",
        weights_sha256="ab" * 32,
    )


def _rewrite(db: sqlite3.Connection, from_seq: int, edit: Callable[[int, str], str]) -> None:
    """Edit records from ``from_seq`` on and recompute the chain and the head marker, as a careful forger would."""
    rows = db.execute(
        "SELECT seq, record_json FROM audit_log WHERE seq >= ? ORDER BY seq", (from_seq,)
    ).fetchall()
    prev = db.execute(
        "SELECT hash FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT 1", (from_seq,)
    ).fetchone()
    prev_hash = prev[0] if prev else "0" * 64
    for seq, text in rows:
        text = edit(seq, text)
        digest = _chain_hash(prev_hash, text)
        db.execute(
            "UPDATE audit_log SET record_json = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (text, prev_hash, digest, seq),
        )
        prev_hash = digest
    last = db.execute("SELECT MAX(seq) FROM audit_log").fetchone()[0]
    db.execute("UPDATE audit_meta SET value = ? WHERE key = 'head'", (f"{last}:{prev_hash}",))


def _fix_head(db: sqlite3.Connection) -> None:
    seq, digest = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    db.execute("UPDATE audit_meta SET value = ? WHERE key = 'head'", (f"{seq}:{digest}",))


def _edit(seq: int, target: int) -> Callable[[int, str], str]:
    return lambda s, text: text.replace("red fox", "grey wolf") if s == target else text


def _tamper_cases() -> dict[str, Callable[[sqlite3.Connection, Path], None]]:
    def sql(*statements: str) -> Callable[[sqlite3.Connection, Path], None]:
        return lambda db, _p: [db.execute(s) for s in statements] and None

    def rewrite(target: int, *extra: str) -> Callable[[sqlite3.Connection, Path], None]:
        def apply(db: sqlite3.Connection, _p: Path) -> None:
            _rewrite(db, target, _edit(0, target))
            for s in extra:
                db.execute(s)

        return apply

    def renumbered_delete(db: sqlite3.Connection, _p: Path) -> None:
        db.execute("DELETE FROM audit_log WHERE seq = 20")
        db.execute("UPDATE audit_log SET seq = seq - 1 WHERE seq > 20")
        _rewrite(db, 20, lambda s, t: t)

    def swap_rows(db: sqlite3.Connection, _p: Path) -> None:
        a = db.execute("SELECT record_json FROM audit_log WHERE seq = 5").fetchone()[0]
        b = db.execute("SELECT record_json FROM audit_log WHERE seq = 6").fetchone()[0]
        db.execute("UPDATE audit_log SET record_json = ? WHERE seq = 5", (b,))
        db.execute("UPDATE audit_log SET record_json = ? WHERE seq = 6", (a,))

    def reorder_recomputed(db: sqlite3.Connection, _p: Path) -> None:
        texts = dict(db.execute("SELECT seq, record_json FROM audit_log WHERE seq IN (5, 6)").fetchall())
        _rewrite(db, 5, lambda s, t: texts[11 - s] if s in (5, 6) else t)

    def append_forged(db: sqlite3.Connection, _p: Path) -> None:
        seq, digest = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        text = db.execute("SELECT record_json FROM audit_log WHERE seq = 1").fetchone()[0]
        new = _chain_hash(digest, text)
        db.execute(
            "INSERT INTO audit_log(seq, request_id, time_utc, caller, outcome, manifest_id, categories, record_json,"
            " prev_hash, hash) SELECT ?, request_id, time_utc, caller, outcome, manifest_id, categories, record_json,"
            " ?, ? FROM audit_log WHERE seq = 1",
            (seq + 1, digest, new),
        )
        _fix_head(db)

    def delete_tail_careful(db: sqlite3.Connection, _p: Path) -> None:
        db.execute("DELETE FROM audit_log WHERE seq > 40")
        db.execute("DELETE FROM audit_checkpoints WHERE seq > 40")
        _fix_head(db)

    def truncate_all(db: sqlite3.Connection, _p: Path) -> None:
        db.execute("DELETE FROM audit_log")
        db.execute("DELETE FROM audit_checkpoints")
        db.execute("DELETE FROM audit_meta WHERE key = 'head'")

    def other_key_checkpoint(db: sqlite3.Connection, path: Path) -> None:
        db.execute("DELETE FROM audit_checkpoints")
        db.commit()
        _rewrite(db, 3, _edit(0, 3))
        db.commit()
        Store(path, signer=_Signer()).checkpoint()  # a validly signed checkpoint, by a key not the operator's

    def not_utf8(db: sqlite3.Connection, _p: Path) -> None:
        db.execute("UPDATE audit_log SET record_json = CAST(X'7B22FF22' AS TEXT) WHERE seq = 7")

    def zero_bytes(db: sqlite3.Connection, path: Path) -> None:
        db.close()
        path.write_bytes(b"")

    def foreign_db(db: sqlite3.Connection, path: Path) -> None:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        with sqlite3.connect(path) as other:
            other.execute("CREATE TABLE customers (id INTEGER)")

    return {
        "edit a record in place": sql("UPDATE audit_log SET record_json = replace(record_json, 'red fox', 'cat') WHERE seq = 12"),
        "edit a queryable column only": sql("UPDATE audit_log SET outcome = 'allowed' WHERE seq = 8"),
        "edit + recompute the chain": rewrite(30),
        "edit under a checkpoint + recompute": rewrite(3),
        "delete a record": sql("DELETE FROM audit_log WHERE seq = 15"),
        "delete + renumber + recompute": renumbered_delete,
        "insert a forged record at the end": append_forged,
        "swap two records' contents": swap_rows,
        "swap two records + recompute": reorder_recomputed,
        "delete the tail (naive)": sql("DELETE FROM audit_log WHERE seq > 45"),
        "delete the tail + its checkpoints (careful)": delete_tail_careful,
        "delete every checkpoint": sql("DELETE FROM audit_checkpoints"),
        "delete every checkpoint + rewrite": rewrite(3, "DELETE FROM audit_checkpoints"),
        "delete the newest checkpoint + rewrite after the older": rewrite(42, "DELETE FROM audit_checkpoints WHERE seq > 40"),
        "corrupt a checkpoint signature": sql("UPDATE audit_checkpoints SET signature = zeroblob(70) WHERE seq = 20"),
        "edit a checkpoint's note": sql("UPDATE audit_checkpoints SET note = replace(note, char(10) || '20' || char(10), char(10) || '19' || char(10)) WHERE seq = 20"),
        "checkpoint signed by another key": other_key_checkpoint,
        "a record that is not UTF-8": not_utf8,
        "empty the log": truncate_all,
        "replace the store by a 0-byte file": zero_bytes,
        "replace the store by a foreign database": foreign_db,
    }  # fmt: skip


def tampering(work: Path) -> None:
    signer = _Signer()
    base = work / "signed.db"
    store = Store(base, signer=signer, checkpoint_every=20, checkpoint_interval=None)
    for i in range(50):
        store.append(_record(i, "refused" if i % 7 == 0 else "allowed"))
    kept = (
        store.checkpoint()
    )  # at shutdown, over all 50 records; printed by `log checkpoint` and kept elsewhere
    store.close()
    assert kept is not None and kept.note is not None
    pem = [signer.certificate_chain_pem]
    assert Store(base, read_only=True).verify_log(trusted_certificates=pem, checkpoint=kept.note).ok
    caught_db = caught_kept = 0
    rows = []
    cases = _tamper_cases()
    for name, apply in cases.items():
        copy = work / f"t-{uuid.uuid4().hex[:8]}.db"
        shutil.copy(base, copy)
        db = sqlite3.connect(copy, isolation_level=None)
        apply(db, copy)
        db.close()
        verdicts = []
        for checkpoint in (None, kept.note):
            try:
                ok = (
                    Store(copy, read_only=True).verify_log(trusted_certificates=pem, checkpoint=checkpoint).ok
                )
            except gen4sdk.StoreError:
                ok = False  # refused to open: not OK either
            verdicts.append(not ok)
        caught_db += verdicts[0]
        caught_kept += verdicts[1]
        rows.append((name, verdicts))
    print(f"\n2. audit-log tampering without the operator's key: {len(cases)} cases")
    print(f"   {'case':56} {'database alone':>15} {'+ kept checkpoint':>18}")
    for name, (db_only, with_kept) in rows:
        print(
            f"   {name:56} {'caught' if db_only else 'MISSED':>15} {'caught' if with_kept else 'MISSED':>18}"
        )
    print(f"   caught/tried: {caught_db}/{len(cases)} from the database alone, {caught_kept}/{len(cases)} with a kept "
          "checkpoint (log verify --checkpoint)")  # fmt: skip


# ------------------------------------------------------------------------------------------------ 3. kill -9


def _writer(path: str, ack_path: str, seed: int) -> None:
    store = Store(path, signer=_Signer(), checkpoint_every=25, checkpoint_interval=None, durable=False)
    rng = random.Random(seed)
    with open(ack_path, "a", encoding="utf-8") as ack:
        while True:
            rec = _record(rng.randrange(10**6), rng.choice(["allowed", "refused"]))
            store.append(rec)
            ack.write(rec.request_id + "\n")  # acknowledged: append returned
            ack.flush()


def kill_nine(work: Path, writers: int, kills: int, seconds: float) -> None:
    path = work / "concurrent.db"
    Store(path).close()
    ctx = mp.get_context("fork")  # fast to start, so a kill lands mid-write, not mid-import
    acks = [work / f"ack-{i}.txt" for i in range(writers)]
    for a in acks:
        a.touch()
    procs = [ctx.Process(target=_writer, args=(str(path), str(acks[i]), i)) for i in range(writers)]
    for p in procs:
        p.start()
    while not all(a.stat().st_size for a in acks):  # every writer is appending
        time.sleep(0.05)
    rng = random.Random(9)
    deadline = time.monotonic() + seconds
    for k in range(kills):
        time.sleep(max(0.05, (deadline - time.monotonic()) / (kills - k + 1)))
        i = rng.randrange(writers)
        os.kill(procs[i].pid, signal.SIGKILL)  # type: ignore[arg-type]
        procs[i].join()
        procs[i] = ctx.Process(target=_writer, args=(str(path), str(acks[i]), 100 + k))
        procs[i].start()
    time.sleep(max(0.0, deadline - time.monotonic()))
    for p in procs:
        os.kill(p.pid, signal.SIGKILL)  # type: ignore[arg-type]
        p.join()
    acknowledged = {line for a in acks for line in a.read_text().split()}
    store = Store(path, read_only=True)
    present = {e.record.request_id for e in store.records()}
    report = store.verify_log()
    print(f"\n3. {writers} concurrent writers, {kills + writers} SIGKILLs over {seconds:g} s")
    print(f"   records acknowledged {len(acknowledged)}, lost {len(acknowledged - present)}, in the log {len(present)}; "
          f"log verify {'OK' if report.ok else 'BROKEN'} ({report.checkpoints_valid}/{report.checkpoints} valid "
          f"checkpoints, problems: {[p.kind for p in report.problems]})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--kills", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gen4sdk-hostile-") as tmp:
        work = Path(tmp)
        for sub in ("files", "log", "kill"):
            (work / sub).mkdir()
        t0 = time.perf_counter()
        hostile_files(work / "files")
        tampering(work / "log")
        kill_nine(work / "kill", args.writers, args.kills, args.seconds)
        print(f"\n(ran in {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
