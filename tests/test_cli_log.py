"""`gen4sdk log ...`: checkpoints kept elsewhere, consistency, inclusion proofs, and read-only opening of stores."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from compliance_helpers import record
from postgres_server import raw_connection

import gen4sdk
from gen4sdk.cli import main


@pytest.fixture
def db(store_location: str, signer) -> str:  # type: ignore[no-untyped-def]
    """A signed store with 6 records, on each backend: what --store names (a file path or a postgresql:// URL)."""
    store = gen4sdk.Store(store_location, signer=signer, checkpoint_every=4, checkpoint_interval=None)
    for i in range(6):
        store.append(record(i, outcome="refused" if i == 2 else "allowed"))
    store.close()
    return store_location


def test_checkpoint_prove_and_check_proof_round_trip(db: str, dev_keys, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    kept = tmp_path / "kept.txt"
    assert main(["log", "checkpoint", "--store", db, "--out", str(kept)]) == 0
    assert kept.read_text().split("\n")[1] == "4"  # the newest stored checkpoint covers 4 records
    cert = str(dev_keys.signer_cert)
    assert main(["log", "checkpoint", "--store", db, "--cert", cert, "--key", str(dev_keys.signer_key)]) == 0
    assert capsys.readouterr().out.split("\n")[1] == "6"  # signed now, over the whole log

    assert main(["log", "verify", "--store", db, "--checkpoint", str(kept), "--certificate", cert]) == 0
    assert "contains the checkpoint's tree of 4 records" in capsys.readouterr().out

    rid = gen4sdk.Store(db, read_only=True).records()[2].record.request_id
    proof = tmp_path / "r.tlog-proof"
    assert main(["log", "prove", "--store", db, "--request-id", rid, "--out", str(proof)]) == 0
    if not db.startswith("postgresql://"):
        Path(db).unlink()  # the proof and the certificate are all a third party has
    assert main(["log", "check-proof", str(proof), "--certificate", cert, "--json"]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["ok"] and check["seq"] == 3 and check["record"]["outcome"] == "refused"
    assert main(["log", "check-proof", str(proof), "--certificate", str(dev_keys.root_cert)]) == 1


def test_deleted_checkpoints_and_a_rewrite_are_not_ok(db: str, dev_keys, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    kept = tmp_path / "kept.txt"
    assert main(["log", "checkpoint", "--store", db, "--out", str(kept)]) == 0
    with raw_connection(db) as raw:
        raw.execute("DELETE FROM audit_checkpoints")
        # A record under the kept checkpoint rewritten, chain and head recomputed.
        rows = raw.execute("SELECT seq, record_json FROM audit_log ORDER BY seq").fetchall()
        from gen4sdk.store._logmodel import _chain_hash

        prev = "0" * 64
        for seq, text in rows:
            text = text.replace("red fox", "grey wolf") if seq == 2 else text
            digest = _chain_hash(prev, text)
            raw.execute(
                "UPDATE audit_log SET record_json = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (text, prev, digest, seq),
            )
            prev = digest
        raw.execute("UPDATE audit_meta SET value = ? WHERE key = 'head'", (f"{rows[-1][0]}:{prev}",))
    cert = str(dev_keys.signer_cert)
    assert main(["log", "verify", "--store", db, "--certificate", cert]) == 1
    assert "unprotected" in capsys.readouterr().out
    assert main(["log", "verify", "--store", db, "--checkpoint", str(kept), "--certificate", cert]) == 1
    assert "checkpoint_mismatch: record 4" in capsys.readouterr().out


def test_an_empty_or_foreign_store_is_never_ok_and_is_left_untouched(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE customers (id INTEGER)")
    before = foreign.read_bytes()
    for path in (empty, foreign):
        for command in (
            ["log", "verify", "--store", str(path)],
            ["log", "export", "--store", str(path)],
            ["log", "query", "--store", str(path)],
            ["log", "checkpoint", "--store", str(path)],
        ):
            assert main(command) == 1, command
            assert "not a gen4sdk store" in capsys.readouterr().err
    assert empty.read_bytes() == b"" and foreign.read_bytes() == before
    with sqlite3.connect(foreign) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    # A gen4sdk store with no records vouches for nothing either.
    gen4sdk.Store(tmp_path / "new.db").close()
    assert main(["log", "verify", "--store", str(tmp_path / "new.db")]) == 1
    assert "empty" in capsys.readouterr().out


def test_verify_and_serve_open_a_store_read_only(tmp_path: Path) -> None:
    from gen4sdk.compliance._recovery import manifest_lookup

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE customers (id INTEGER)")
    before = foreign.read_bytes()
    for path in (empty, foreign):
        lookup = manifest_lookup(str(path))
        assert lookup is not None
        with pytest.raises(gen4sdk.StoreError):
            lookup.manifest_store_for(b"\x01" * 8)
        with pytest.raises(gen4sdk.StoreError):
            gen4sdk.create_app(str(path))
    assert empty.read_bytes() == b"" and foreign.read_bytes() == before


def test_log_query_csv_keeps_formulas_inert(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import csv
    import io

    store = gen4sdk.Store(tmp_path / "q.db", checkpoint_interval=None)
    store.append(record(1, caller='=HYPERLINK("http://evil.example","x")'))
    store.close()
    capsys.readouterr()
    assert main(["log", "query", "--store", str(store.path), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["caller"] == '\'=HYPERLINK("http://evil.example","x")'
