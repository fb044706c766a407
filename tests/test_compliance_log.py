"""The audit log as a Merkle tree log: C2SP checkpoints, consistency with a kept checkpoint, inclusion proofs,
schema version 1 stores, read-only opening, and records kept when the signer fails."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from pathlib import Path

import pytest
from compliance_helpers import FakeSigner, record
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from postgres_server import raw_connection

from gen4sdk.compliance import Store, verify_log_proof
from gen4sdk.errors import StoreError
from gen4sdk.store._checkpoint import parse_checkpoint
from gen4sdk.store._logmodel import _chain_hash, _checkpoint_message
from gen4sdk.store._merkle import leaf_hash, root, verify_consistency


def _store(location: str | Path, n: int, signer: FakeSigner | None = None, **kwargs: object) -> Store:
    kwargs.setdefault("checkpoint_interval", None)
    store = Store(location, signer=signer, **kwargs)  # type: ignore[arg-type]
    for i in range(n):
        store.append(record(i))
    return store


def _kinds(report) -> list[tuple[int | None, str]]:  # type: ignore[no-untyped-def]
    return sorted(((p.seq, p.kind) for p in report.problems), key=lambda k: (k[0] or -1, k[1]))


def _rewrite_from(location: str, seq: int, old: str, new: str) -> None:
    """What a forger without the key does: edit record ``seq`` and recompute the chain and head after it."""
    with raw_connection(location) as db:
        rows = db.execute("SELECT seq, record_json FROM audit_log ORDER BY seq").fetchall()
        prev = db.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq - 1,)).fetchone()
        prev_hash = prev[0] if prev else "0" * 64
        for s, text in rows[seq - 1 :]:
            if s == seq:
                text = text.replace(old, new)
            digest = _chain_hash(prev_hash, text)
            db.execute(
                "UPDATE audit_log SET record_json = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (text, prev_hash, digest, s),
            )
            prev_hash = digest
        db.execute("UPDATE audit_meta SET value = ? WHERE key = 'head'", (f"{rows[-1][0]}:{prev_hash}",))


def test_checkpoints_are_c2sp_signed_notes_over_the_merkle_root(store_location: str) -> None:
    signer = FakeSigner()
    store = _store(store_location, 7, signer, checkpoint_every=None)
    cp = store.checkpoint()
    assert cp is not None and cp.note is not None
    lines = cp.note.split("\n")
    assert lines[0] == store.origin and lines[1] == "7"
    with raw_connection(store.database.target) as db:
        leaves = [
            leaf_hash(r[0].encode()) for r in db.execute("SELECT record_json FROM audit_log ORDER BY seq")
        ]
    assert base64.b64decode(lines[2]) == root(leaves)
    assert lines[3] == "" and lines[4].startswith(f"\u2014 {store.origin} ") and cp.note.endswith("\n")
    # The key id of an ECDSA key is the first four bytes of the SHA-256 of its SubjectPublicKeyInfo (signed-note).
    spki = (
        x509.load_pem_x509_certificate(signer.certificate_chain_pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    parsed = parse_checkpoint(cp.note)
    assert parsed.signatures[0][1] == hashlib.sha256(spki).digest()[:4]
    assert store.latest_checkpoint() == cp


def test_deleting_every_checkpoint_is_not_ok_with_the_operators_certificate(store_location: str) -> None:
    signer = FakeSigner()
    store = _store(store_location, 12, signer, checkpoint_every=5)
    _rewrite_from(store.database.target, 3, "red fox", "grey wolf")
    with raw_connection(store.database.target) as db:
        db.execute("DELETE FROM audit_checkpoints")
    report = Store(store.database.target, read_only=True).verify_log(
        trusted_certificates=[signer.certificate_chain_pem]
    )
    assert not report.ok and _kinds(report) == [(None, "unprotected")]


def test_a_kept_checkpoint_catches_a_rewrite_after_the_newest_stored_one_is_deleted(
    store_location: str,
) -> None:
    signer = FakeSigner()
    store = _store(store_location, 12, signer, checkpoint_every=5)
    kept = store.checkpoint()  # over 12 records; printed by `gen4sdk log checkpoint` and kept elsewhere
    assert kept is not None and kept.note is not None
    for i in range(3):
        store.append(record(100 + i))
    # The forger deletes the checkpoints over 12 and 15 records and rewrites record 11 (after the one over 10).
    with raw_connection(store.database.target) as db:
        db.execute("DELETE FROM audit_checkpoints WHERE seq > 10")
    _rewrite_from(store.database.target, 11, "red fox", "grey wolf")
    reader = Store(store.database.target, read_only=True)
    pem = [signer.certificate_chain_pem]
    # From the database alone this rewrite cannot be told from an honest tail (docs/storage.md says so) ...
    assert reader.verify_log(trusted_certificates=pem).ok
    # ... the kept checkpoint proves it.
    report = reader.verify_log(trusted_certificates=pem, checkpoint=kept.note)
    assert not report.ok and _kinds(report) == [(12, "checkpoint_mismatch")]


def test_consistency_with_a_kept_checkpoint_comes_with_its_proof(store_location: str) -> None:
    signer = FakeSigner()
    store = _store(store_location, 6, signer, checkpoint_every=None)
    kept = store.checkpoint()
    assert kept is not None and kept.note is not None
    for i in range(5):
        store.append(record(50 + i))
    report = store.verify_log(checkpoint=kept.note)
    assert report.ok and report.witnessed_size == 6 and report.tree_size == 11
    old_root = parse_checkpoint(kept.note).root
    proof = [base64.b64decode(h) for h in report.consistency_proof]
    assert proof and verify_consistency(6, 11, old_root, base64.b64decode(report.root_hash or ""), proof)

    # Records removed since the kept checkpoint, head marker fixed: truncated.
    with raw_connection(store.database.target) as db:
        db.execute("DELETE FROM audit_log WHERE seq > 4")
        h = db.execute("SELECT hash FROM audit_log WHERE seq = 4").fetchone()[0]
        db.execute("UPDATE audit_meta SET value = ? WHERE key = 'head'", (f"4:{h}",))
        db.execute("DELETE FROM audit_checkpoints")
    reader = Store(store.database.target, read_only=True)
    report = reader.verify_log(trusted_certificates=[signer.certificate_chain_pem], checkpoint=kept.note)
    assert not report.ok and (5, "truncated") in _kinds(report)
    # With no certificate at all (the store's own deleted too), a kept checkpoint cannot vouch for anything.
    assert (6, "bad_checkpoint_signature") in _kinds(reader.verify_log(checkpoint=kept.note))


def test_a_checkpoint_of_another_log_or_key_is_refused(tmp_path: Path) -> None:
    signer = FakeSigner()
    store = _store(tmp_path / "log.db", 3, signer, checkpoint_every=3)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = _store(other_dir / "log.db", 3, signer, checkpoint_every=3)
    foreign = other.latest_checkpoint()
    assert foreign is not None and foreign.note is not None
    assert _kinds(store.verify_log(checkpoint=foreign.note)) == [(None, "foreign_checkpoint")]
    assert _kinds(store.verify_log(checkpoint="not a checkpoint\n")) == [(None, "foreign_checkpoint")]
    own = store.latest_checkpoint()
    assert own is not None and own.note is not None
    report = store.verify_log(trusted_certificates=[FakeSigner().certificate_chain_pem], checkpoint=own.note)
    assert (3, "bad_checkpoint_signature") in _kinds(report)


def test_inclusion_proof_checks_without_the_database(tmp_path: Path) -> None:
    signer = FakeSigner()
    store = _store(tmp_path / "log.db", 9, signer, checkpoint_every=None)
    wanted = store.records()[4].record
    proof = store.prove(wanted.request_id)  # signs a checkpoint first: none covers record 5 yet
    assert proof.startswith("c2sp.org/tlog-proof@v1\nextra ")
    (tmp_path / "r5.tlog-proof").write_text(proof)
    (tmp_path / "log.db").unlink()  # the proof and the certificate are all a third party has
    check = verify_log_proof(tmp_path / "r5.tlog-proof", certificates=signer.certificate_chain_pem)
    assert check.ok and check.seq == 5 and check.tree_size == 9 and check.record == wanted

    assert not verify_log_proof(proof, certificates=FakeSigner().certificate_chain_pem).ok
    assert not verify_log_proof(proof, certificates=signer.certificate_chain_pem, origin="elsewhere").ok
    head, _, rest = proof.partition("\nindex ")
    extra = base64.b64decode(head.split("extra ")[1]).replace(b"red fox", b"red cat")
    forged = head.split("extra ")[0] + "extra " + base64.b64encode(extra).decode() + "\nindex " + rest
    assert "audit path" in verify_log_proof(forged, certificates=signer.certificate_chain_pem).reason
    assert not verify_log_proof("garbage", certificates=signer.certificate_chain_pem).ok


def test_prove_refuses_unknown_requests_and_unsigned_records(store_location: str) -> None:
    store = _store(store_location, 2)
    with pytest.raises(StoreError, match="no record"):
        store.prove("nope")
    with pytest.raises(StoreError, match="not covered by a signed checkpoint"):
        store.prove(store.records()[0].record.request_id)


class _FlakySigner(FakeSigner):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def sign(self, data: bytes) -> bytes:
        if self.down:
            raise ConnectionError("key service unreachable")
        return super().sign(data)


def test_a_failing_signer_never_costs_a_record_and_signs_later(store_location: str) -> None:
    signer = _FlakySigner()
    store = Store(store_location, signer=signer, checkpoint_every=2, checkpoint_interval=None)
    assert store.append(record(1)) == 1
    assert (
        store.append(record(2, outcome="refused")) == 2
    )  # a checkpoint was due and failed: the record stays
    assert len(store) == 2 and store.checkpoints() == []
    report = store.verify_log()
    assert report.checkpoint_pending and "key service unreachable" in report.checkpoint_pending
    assert any("waits for a working signer" in n for n in report.notes)
    with pytest.raises(StoreError, match="signing the audit checkpoint failed"):
        store.checkpoint()
    signer.down = False
    store.append(record(3))  # the pending checkpoint is signed with the next append
    assert [c.seq for c in store.checkpoints()] == [3]
    report = store.verify_log()
    assert report.ok and report.checkpoint_pending is None


def _v1_store(path: Path, signer: FakeSigner, n: int) -> None:
    """A store as gen4sdk 0.x (schema version 1) wrote it: chain-head checkpoints, no notes."""
    store = Store(path, checkpoint_every=None, checkpoint_interval=None)
    for i in range(n):
        store.append(record(i))
    store.close()
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("ALTER TABLE audit_checkpoints DROP COLUMN note")
        db.execute("UPDATE audit_meta SET value = '1' WHERE key = 'version'")
        log_id = db.execute("SELECT value FROM audit_meta WHERE key = 'log_id'").fetchone()[0]
        head = db.execute("SELECT hash FROM audit_log WHERE seq = ?", (n,)).fetchone()[0]
        t = "2026-01-01T00:00:00.000000Z"
        sig = signer.sign(_checkpoint_message(log_id, n, head, t))
        db.execute(
            "INSERT INTO audit_checkpoints(seq, head_hash, time, signature, certificate_pem) VALUES (?, ?, ?, ?, ?)",
            (n, head, t, sig, signer.certificate_chain_pem),
        )


def test_a_version_1_store_is_read_as_is_and_upgraded_by_a_writer(tmp_path: Path) -> None:
    signer = FakeSigner()
    path = tmp_path / "v1.db"
    _v1_store(path, signer, 4)
    before = path.read_bytes()
    report = Store(path, read_only=True).verify_log(trusted_certificates=[signer.certificate_chain_pem])
    assert report.ok and report.checkpoints_valid == 1 and report.records == 4
    assert path.read_bytes() == before  # reading changed nothing

    writer = Store(path, signer=signer, checkpoint_interval=None)
    writer.append(record(9))
    cp = writer.checkpoint()
    assert cp is not None and cp.note is not None
    with sqlite3.connect(path) as db:
        # upgraded step by step: 1 -> 2 (checkpoint notes) -> 3 (the likeness registry's tables) -> 4 (fingerprints)
        # -> 5 (the generation queue)
        assert db.execute("SELECT value FROM audit_meta WHERE key = 'version'").fetchone()[0] == "5"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"likeness_identities", "likeness_grants", "likeness_embeddings"} <= tables
        assert {"manifests_fingerprints", "manifests_fingerprint_bands"} <= tables
        assert {"jobs_api_keys", "jobs_tasks"} <= tables
    report = writer.verify_log()
    assert report.ok and report.checkpoints_valid == 2 and report.last_checkpoint_seq == 5


def test_read_only_opening_never_writes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(StoreError, match="empty file"):
        Store(empty, read_only=True)
    assert empty.read_bytes() == b""

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    before = foreign.read_bytes()
    with pytest.raises(StoreError, match="not a gen4sdk store"):
        Store(foreign, read_only=True)
    assert foreign.read_bytes() == before  # still in its own journal mode, no tables added
    with sqlite3.connect(foreign) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"

    store = _store(tmp_path / "log.db", 2)
    store.close()
    reader = Store(tmp_path / "log.db", read_only=True)
    assert len(reader) == 2
    with pytest.raises(StoreError, match="read-only"):
        reader.append(record(3))


def test_a_store_of_a_newer_schema_is_refused_and_never_written(store_location: str) -> None:
    store = _store(store_location, 2)
    store.close()
    with raw_connection(store.database.target) as db:
        db.execute("UPDATE audit_meta SET value = '6' WHERE key = 'version'")
    for read_only in (False, True):
        with pytest.raises(StoreError, match="version 6; this gen4sdk reads versions 1, 2, 3, 4, 5"):
            Store(store_location, read_only=read_only)
    with raw_connection(store.database.target) as db:
        assert db.execute("SELECT value FROM audit_meta WHERE key = 'version'").fetchone()[0] == "6"
        assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 2


def test_a_version_2_store_with_the_registrys_tables_keeps_them_when_upgraded(tmp_path: Path) -> None:
    from gen4sdk.policy import LikenessRegistry

    path = tmp_path / "v2.db"
    _store(path, 2).close()
    registry = LikenessRegistry(path)
    ident = registry.add_identity("Kept Person")
    registry.close()
    with sqlite3.connect(
        path
    ) as db:  # as gen4sdk wrote it before version 3: the registry made its own tables
        db.execute("UPDATE audit_meta SET value = '2' WHERE key = 'version'")
    assert Store(path, read_only=True).verify_log().ok  # read as it is
    writer = Store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM audit_meta WHERE key = 'version'").fetchone()[0] == "5"
    assert LikenessRegistry(writer).get(ident.id) is not None and writer.verify_log().ok
