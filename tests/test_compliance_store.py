"""Audit log and manifest store: chain tamper detection, checkpoints, concurrency, crash safety, queries."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from compliance_helpers import FakeSigner, record
from postgres_server import raw_connection

from gen4sdk.compliance import Store, open_commitment, prompt_commitment, verify_jsonl
from gen4sdk.errors import StoreError
from gen4sdk.store._log import _chain_hash


def _filled(location: str, n: int = 10, **kwargs: object) -> Store:
    kwargs.setdefault("checkpoint_interval", None)  # count-based checkpoints only, unless a test asks
    store = Store(location, **kwargs)  # type: ignore[arg-type]
    for i in range(n):
        store.append(record(i))
    return store


def _raw(store: Store) -> Any:
    """A connection behind the store's back (either backend), as someone with write access to the database."""
    return raw_connection(store.database.target)


def _kinds(report) -> list[tuple[int | None, str]]:  # type: ignore[no-untyped-def]
    return sorted(((p.seq, p.kind) for p in report.problems), key=lambda k: (k[0] or -1, k[1]))


def test_intact_log_verifies_and_sequences(store_location: str) -> None:
    store = Store(store_location)
    seqs = [store.append(record(i)) for i in range(7)]
    assert seqs == list(range(1, 8))
    report = store.verify_log()
    assert report.ok and report.records == 7 and report.last_seq == 7 and report.problems == []
    entries = store.records()
    assert [e.seq for e in entries] == seqs
    assert entries[0].prev_hash == "0" * 64 and entries[1].prev_hash == entries[0].hash


def test_edit_via_raw_sql_is_detected_at_its_seq(store_location: str) -> None:
    store = _filled(store_location)
    with _raw(store) as db:
        (text,) = db.execute("SELECT record_json FROM audit_log WHERE seq = 4").fetchone()
        db.execute(
            "UPDATE audit_log SET record_json = ? WHERE seq = 4", (text.replace("red fox", "blue fox"),)
        )
    report = store.verify_log()
    assert not report.ok
    assert _kinds(report) == [(4, "edited")]


def test_edit_of_queryable_column_only_is_detected(store_location: str) -> None:
    store = _filled(store_location)
    with _raw(store) as db:
        db.execute("UPDATE audit_log SET outcome = 'refused' WHERE seq = 6")
    assert _kinds(store.verify_log()) == [(6, "edited")]


def test_edit_with_recomputed_hash_breaks_the_next_link(store_location: str) -> None:
    store = _filled(store_location)
    with _raw(store) as db:
        text, prev = db.execute("SELECT record_json, prev_hash FROM audit_log WHERE seq = 3").fetchone()
        forged = text.replace("red fox", "grey wolf")
        db.execute(
            "UPDATE audit_log SET record_json = ?, hash = ? WHERE seq = 3",
            (forged, _chain_hash(prev, forged)),
        )
    report = store.verify_log()
    assert not report.ok
    assert [(p.seq, p.kind) for p in report.problems] == [
        (4, "deleted")
    ]  # the chain breaks right after seq 3
    assert "replaced" in report.problems[0].message


def test_delete_is_detected(store_location: str) -> None:
    store = _filled(store_location)
    with _raw(store) as db:
        db.execute("DELETE FROM audit_log WHERE seq = 5")
    assert _kinds(store.verify_log()) == [(5, "deleted")]


def test_delete_with_renumbering_is_detected(store_location: str) -> None:
    store = _filled(store_location)
    with _raw(store) as db:
        db.execute("DELETE FROM audit_log WHERE seq = 5")
        db.execute("UPDATE audit_log SET seq = seq - 1 WHERE seq > 5")
        db.execute(
            "UPDATE audit_meta SET value = (SELECT seq || ':' || hash FROM audit_log ORDER BY seq DESC LIMIT 1)"
            " WHERE key = 'head'"
        )
    assert _kinds(store.verify_log()) == [(5, "deleted")]


@pytest.mark.parametrize("valid_hash", [True, False])
def test_insert_is_detected(store_location: str, valid_hash: bool) -> None:
    store = _filled(store_location)
    with _raw(store) as db:
        db.execute("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5")
        db.execute("UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000")
        template = db.execute("SELECT * FROM audit_log WHERE seq = 4").fetchone()
        forged = template[7].replace("red fox", "forged entry")
        prev = template[9]
        digest = _chain_hash(prev, forged) if valid_hash else "f" * 64
        db.execute(
            "INSERT INTO audit_log VALUES (5, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*template[1:7], forged, prev, digest),
        )
    report = store.verify_log()
    assert _kinds(report) == [(5, "inserted")]


def test_insert_at_end_outside_the_store_is_detected(store_location: str) -> None:
    store = _filled(store_location)
    with _raw(store) as db:
        last = db.execute("SELECT * FROM audit_log WHERE seq = 10").fetchone()
        forged = last[7].replace("red fox", "appended")
        db.execute(
            "INSERT INTO audit_log VALUES (11, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*last[1:7], forged, last[9], _chain_hash(last[9], forged)),
        )
    assert (11, "inserted") in _kinds(store.verify_log())


@pytest.mark.parametrize(("a", "b"), [(6, 7), (2, 8)])
def test_reorder_of_whole_rows_is_detected(store_location: str, a: int, b: int) -> None:
    store = _filled(store_location)
    with _raw(store) as db:
        db.execute("UPDATE audit_log SET seq = 100 WHERE seq = ?", (a,))
        db.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (a, b))
        db.execute("UPDATE audit_log SET seq = ? WHERE seq = 100", (b,))
    assert _kinds(store.verify_log()) == [(a, "reordered"), (b, "reordered")]


def test_reorder_of_contents_is_detected(store_location: str) -> None:
    store = _filled(store_location)
    with _raw(store) as db:
        a = db.execute("SELECT record_json FROM audit_log WHERE seq = 2").fetchone()[0]
        b = db.execute("SELECT record_json FROM audit_log WHERE seq = 3").fetchone()[0]
        db.execute("UPDATE audit_log SET record_json = ? WHERE seq = 2", (b,))
        db.execute("UPDATE audit_log SET record_json = ? WHERE seq = 3", (a,))
    assert _kinds(store.verify_log()) == [(2, "reordered"), (3, "reordered")]


def test_checkpoints_are_signed_and_checked(store_location: str) -> None:
    signer = FakeSigner()
    store = _filled(store_location, 25, signer=signer, checkpoint_every=10)
    cp = store.checkpoint()
    assert cp is not None and cp.seq == 25
    report = store.verify_log()
    assert report.ok, report.problems
    assert report.checkpoints == 3 and report.checkpoints_valid == 3
    assert report.last_checkpoint_seq == 25 and report.unprotected_tail == 0

    # A signature that does not verify.
    with _raw(store) as db:
        (sig,) = db.execute("SELECT signature FROM audit_checkpoints WHERE seq = 10").fetchone()
        broken = bytes(sig[:-1]) + bytes([sig[-1] ^ 1])
        db.execute("UPDATE audit_checkpoints SET signature = ? WHERE seq = 10", (broken,))
    assert (10, "bad_checkpoint_signature") in _kinds(store.verify_log())


def test_checkpoint_catches_a_fully_rewritten_chain(store_location: str) -> None:
    store = _filled(store_location, 10, signer=FakeSigner(), checkpoint_every=10)
    # A forger with write access rewrites record 3 and recomputes every later hash: links are all consistent.
    with _raw(store) as db:
        rows = db.execute("SELECT seq, record_json, prev_hash FROM audit_log ORDER BY seq").fetchall()
        prev = rows[1][2]
        prev = db.execute("SELECT hash FROM audit_log WHERE seq = 2").fetchone()[0]
        for seq, text, _ in rows[2:]:
            if seq == 3:
                text = text.replace("red fox", "rewritten")
            digest = _chain_hash(prev, text)
            db.execute(
                "UPDATE audit_log SET record_json = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (text, prev, digest, seq),
            )
            prev = digest
        db.execute("UPDATE audit_meta SET value = ? WHERE key = 'head'", (f"10:{prev}",))
    assert _kinds(store.verify_log()) == [(10, "checkpoint_mismatch")]


def test_time_based_checkpoints_protect_a_quiet_log(store_location: str) -> None:
    store = Store(store_location, signer=FakeSigner(), checkpoint_every=None, checkpoint_interval=1.5)
    store.append(record(1))  # the first record of a signed log is checkpointed at once
    store.append(record(2))  # too soon for another
    assert [c.seq for c in store.checkpoints()] == [1]
    time.sleep(1.6)
    store.append(record(3))
    assert [c.seq for c in store.checkpoints()] == [1, 3]
    report = store.verify_log()
    assert report.ok and report.last_checkpoint_seq == 3 and report.unprotected_tail == 0


def test_checkpoint_from_another_key_is_untrusted(store_location: str) -> None:
    store = _filled(store_location, 5, signer=FakeSigner(), checkpoint_every=5)
    other = Store(store.database.target, signer=FakeSigner("mallory"))
    other.append(record(99))
    other.checkpoint()  # validly signed, by the wrong key
    report = store.verify_log()  # trusts only its own signer's certificate
    assert _kinds(report) == [(6, "untrusted_checkpoint_signer")]
    assert (
        Store(store.database.target).verify_log().ok
    )  # without a trust list, any valid signature is accepted


def test_truncation_detection(store_location: str) -> None:
    store = _filled(store_location, 12, signer=FakeSigner(), checkpoint_every=10)
    # Naive tail deletion after the last checkpoint: the head marker gives it away.
    with _raw(store) as db:
        db.execute("DELETE FROM audit_log WHERE seq > 11")
    assert _kinds(store.verify_log()) == [(12, "truncated")]
    # Careful tail deletion (head marker fixed too) is not detectable while no checkpoint covers it ...
    with _raw(store) as db:
        h = db.execute("SELECT hash FROM audit_log WHERE seq = 11").fetchone()[0]
        db.execute("UPDATE audit_meta SET value = ? WHERE key = 'head'", (f"11:{h}",))
    report = store.verify_log()
    assert report.ok and report.unprotected_tail == 1
    # ... but deleting below a signed checkpoint is.
    with _raw(store) as db:
        db.execute("DELETE FROM audit_log WHERE seq > 8")
        h = db.execute("SELECT hash FROM audit_log WHERE seq = 8").fetchone()[0]
        db.execute("UPDATE audit_meta SET value = ? WHERE key = 'head'", (f"8:{h}",))
    assert _kinds(store.verify_log()) == [(10, "truncated")]


def test_real_provenance_signer_if_available(tmp_path: Path, store_location: str) -> None:
    from gen4sdk.provenance import Signer, init_keys

    paths = init_keys(tmp_path / "keys")
    signer = Signer.from_files(paths.signer_cert, paths.signer_key)
    store = _filled(store_location, 3, signer=signer)
    assert store.checkpoint() is not None
    report = store.verify_log()
    assert report.ok and report.checkpoints_valid == 1


def test_export_jsonl_roundtrip_and_offline_verify(tmp_path: Path, store_location: str) -> None:
    store = _filled(store_location, 6, signer=FakeSigner(), checkpoint_every=3)
    out = tmp_path / "log.jsonl"
    assert store.export_jsonl(out) == 6
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 6 + 2
    assert json.loads(lines[1])["record"]["request_id"] == store.records()[0].record.request_id
    assert verify_jsonl(out).ok
    buf = io.StringIO()
    store.export_jsonl(buf)
    assert buf.getvalue() == out.read_text()
    # Tamper with the export: an edited line is found offline too.
    edited = lines[:]
    edited[3] = edited[3].replace("red fox", "red cat")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(edited) + "\n")
    # The chain names the edited record; the Merkle checkpoints over 3 and 6 records no longer hold either.
    assert _kinds(verify_jsonl(bad)) == [
        (3, "checkpoint_mismatch"),
        (3, "edited"),
        (6, "checkpoint_mismatch"),
    ]


def test_queries(store_location: str) -> None:
    store = Store(store_location)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    store.append(record(0, time=t0, caller="app-a", manifest_id="urn:c2pa:1"))
    store.append(
        record(1, time=t0 + dt.timedelta(hours=1), caller="app-b", outcome="refused", categories=["violence"])
    )
    store.append(
        record(
            2,
            time=t0 + dt.timedelta(hours=2),
            caller="app-a",
            outcome="refused",
            categories=["sexual", "violence"],
        )
    )
    # a non-UTC timestamp is normalised
    store.append(
        record(3, time=dt.datetime(2026, 1, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))), caller="app-c")
    )
    assert [e.seq for e in store.records(caller="app-a")] == [1, 3]
    assert [e.seq for e in store.records(outcome="refused")] == [2, 3]
    assert [e.seq for e in store.records(category="violence")] == [2, 3]
    assert [e.seq for e in store.records(category="sexual")] == [3]
    assert [e.seq for e in store.records(manifest_id="urn:c2pa:1")] == [1]
    assert [
        e.seq for e in store.records(since=t0 + dt.timedelta(minutes=30), until=t0 + dt.timedelta(hours=2))
    ] == [2]
    assert [e.seq for e in store.records(since=t0 + dt.timedelta(hours=2, minutes=30))] == [4]  # 03:00 UTC
    assert [e.seq for e in store.records(outcome="refused", caller="app-b")] == [2]
    assert [e.seq for e in store.records(newest_first=True, limit=2)] == [4, 3]
    assert store.records(caller="nobody") == []
    first = store.records()[0]
    assert store.find_record(first.record.request_id) == first
    assert store.find_record("urn:c2pa:1") == first
    assert store.find_record("unknown") is None


def test_commitment_opening(store_location: str) -> None:
    store = Store(store_location)
    salt = os.urandom(16)
    prompt = "a lighthouse at dusk, waves crashing"
    commitment = prompt_commitment(prompt, salt)
    assert commitment == __import__("hashlib").sha256(salt + prompt.encode()).hexdigest()
    rec = record(1, prompt=prompt, salt=salt.hex(), manifest_id="urn:c2pa:abc")
    store.append(rec)
    assert open_commitment(store, rec.request_id, prompt, commitment=commitment)
    assert open_commitment(store, "urn:c2pa:abc", prompt, commitment=commitment.upper())
    assert open_commitment(store, "urn:c2pa:abc", prompt)
    assert not open_commitment(store, "urn:c2pa:abc", prompt + " ", commitment=commitment)
    assert not open_commitment(store, "urn:c2pa:abc", "something else")
    assert not open_commitment(store, "urn:c2pa:unknown", prompt, commitment=commitment)
    store.append(record(2, manifest_id="urn:c2pa:nosalt"))
    assert not open_commitment(store, "urn:c2pa:nosalt", "a red fox running through snow, take 2")


def test_manifest_store_roundtrip_and_unknown_payload(store_location: str) -> None:
    store = Store(store_location)
    jumbf = os.urandom(3000)
    payload = bytes.fromhex("0102030405060708")
    store.put_manifest(
        payload=payload, manifest_id="urn:c2pa:m1", manifest_store=jumbf, asset_sha256="aa" * 32
    )
    store.put_manifest(
        payload=payload, manifest_id="urn:c2pa:m1", manifest_store=jumbf, asset_sha256="aa" * 32
    )
    found = store.find_manifest(payload)
    assert found is not None and found.manifest_id == "urn:c2pa:m1" and found.manifest_store == jumbf
    assert store.find_manifest(payload.hex()) == found
    assert store.get_manifest("urn:c2pa:m1") == found
    assert store.find_manifest(bytes(8)) is None
    assert store.find_manifest("not hex") is None
    assert store.get_manifest("urn:c2pa:nope") is None
    with pytest.raises(StoreError):
        store.put_manifest(
            payload=payload, manifest_id="urn:c2pa:m1", manifest_store=b"other", asset_sha256="aa" * 32
        )
    with pytest.raises(StoreError):
        store.put_manifest(
            payload=b"", manifest_id="urn:c2pa:m2", manifest_store=jumbf, asset_sha256="aa" * 32
        )
    # Reopened from another Store object (as another process would), the data is there.
    assert Store(store.database.target).get_manifest("urn:c2pa:m1") == found


def test_corrupt_and_foreign_databases(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(StoreError, match="not an SQLite"):
        Store(junk)
    assert junk.stat().st_size == 4096  # untouched

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    with pytest.raises(StoreError, match="foreign"):
        Store(foreign)
    with sqlite3.connect(foreign) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")] == [
            "customers"
        ]

    # A corrupted gen4sdk store: valid header, garbage pages.
    good_path = tmp_path / "store.db"
    _filled(str(good_path), 50).close()
    for suffix in ("-wal", "-shm"):
        Path(str(good_path) + suffix).unlink(missing_ok=True)
    data = bytearray(good_path.read_bytes())
    data[100:] = os.urandom(len(data) - 100)
    broken = tmp_path / "broken.db"
    broken.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        Store(broken).verify_log()

    with pytest.raises(StoreError):
        Store(tmp_path / "missing-dir" / "x.db")
    with pytest.raises(StoreError):
        Store(tmp_path / "absent.db", create=False)


def test_shares_the_file_with_likeness_tables(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE likeness_people (id INTEGER PRIMARY KEY, name TEXT)")
    store = Store(path)
    store.append(record(1))
    assert store.verify_log().ok


def test_shares_the_database_with_the_real_likeness_registry(store_location: str) -> None:
    from gen4sdk.policy import LikenessRegistry

    registry = LikenessRegistry(store_location)  # the registry first: it creates the whole store schema
    ident = registry.add_identity("Shared Person")
    store = Store(store_location)
    store.append(record(1))
    assert LikenessRegistry(store).get(ident.id) is not None  # a Store's database is shared as it is
    registry.grant(ident.id, "alice")
    store.append(record(2))
    report = Store(store_location).verify_log()
    assert report.ok and report.records == 2
    assert [g.grantee for g in LikenessRegistry(store_location).grants(identity_id=ident.id)] == ["alice"]


def test_empty_log_and_checkpoint_without_signer(store_location: str) -> None:
    store = Store(store_location)
    report = store.verify_log()  # an empty log vouches for nothing: never "OK"
    assert not report.ok and report.records == 0 and report.last_seq is None
    assert _kinds(report) == [(None, "empty")]
    with pytest.raises(StoreError, match="no signer"):
        store.checkpoint()
    assert Store(store_location, signer=FakeSigner()).checkpoint() is None  # nothing to sign yet
    # deleting every record is noticed through the head marker
    store.append(record(1))
    store.append(record(2))
    with _raw(store) as db:
        db.execute("DELETE FROM audit_log")
    assert _kinds(store.verify_log()) == [(None, "empty"), (1, "truncated")]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"since": "garbage"}, "since"),
        ({"until": 12}, "until"),
        ({"limit": "x"}, "limit"),
        ({"limit": -1}, "limit"),
    ],
)
def test_bad_query_arguments_are_typed_errors(store_location: str, kwargs: dict, field: str) -> None:
    from gen4sdk.errors import InvalidRequestError

    store = _filled(store_location, n=2)
    with pytest.raises(InvalidRequestError) as err:
        store.records(**kwargs)
    assert err.value.field == field
    assert len(store.records(since="2000-01-01T00:00:00Z", limit=1)) == 1
