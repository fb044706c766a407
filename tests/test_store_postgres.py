"""What only the PostgreSQL backend has: the extra it needs, connection failures, the advisory lock that serialises
appends across hosts, read-only sessions, and every command that takes --store given a postgresql:// URL.

The behaviour both backends share (tamper detection, checkpoints, concurrency, kill -9) is tested on both by the
``store_location`` fixture in tests/test_compliance_store.py, test_compliance_log.py, test_cli_log.py and
test_policy_likeness.py.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import av
import pytest
from compliance_helpers import record
from postgres_server import PostgresServer, raw_connection

import gen4sdk
from gen4sdk.cli import main
from gen4sdk.errors import MissingDependencyError, StoreError
from gen4sdk.store import Store
from gen4sdk.store._postgres import _lock_key


def test_a_url_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import gen4sdk._extras as extras

    monkeypatch.setattr(extras, "installed", lambda module: module != "psycopg")
    with pytest.raises(MissingDependencyError) as err:
        Store("postgresql://gen4sdk@127.0.0.1:5432/gen4sdk")
    assert err.value.extra == "postgres" and err.value.missing == ["psycopg[binary]"]
    assert "pip install 'gen4sdk[postgres]'" in str(err.value)


def test_an_unreachable_database_is_named_without_its_password(postgres_server: PostgresServer) -> None:
    # a port nothing listens on: the server of this session, stopped databases aside, is on another one
    url = f"postgresql://auditor:s3cret-pw@127.0.0.1:{postgres_server.port}/no_such_database"
    with pytest.raises(StoreError) as err:
        Store(url)
    message = str(err.value)
    assert "postgresql://auditor:***@127.0.0.1" in message and "no_such_database" in message
    assert "s3cret-pw" not in message


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()


def test_a_foreign_postgres_database_is_refused_and_untouched(pg_url: str) -> None:
    with raw_connection(pg_url) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match="foreign database"):
        Store(pg_url)
    with pytest.raises(StoreError, match="not a gen4sdk store"):
        Store(pg_url, read_only=True)
    with raw_connection(pg_url) as db:
        tables = [r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert tables == ["customers"]


def test_read_only_opening_is_a_read_only_session(pg_url: str) -> None:
    with pytest.raises(StoreError, match="not a gen4sdk store"):
        Store(pg_url, read_only=True)  # an empty database: nothing is created in it
    with raw_connection(pg_url) as db:
        assert db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
    writer = Store(pg_url)
    writer.append(record(1))
    reader = Store(pg_url, read_only=True)
    assert len(reader) == 1 and reader.verify_log().ok
    with pytest.raises(StoreError, match="read-only"):
        reader.append(record(2))
    # the server itself refuses writes on the reader's session, not only the Store's own check
    with pytest.raises(StoreError, match="read-only transaction"):
        reader.database.read("DELETE FROM audit_log")
    assert len(writer) == 1


def test_appends_wait_for_the_advisory_lock_of_another_host(pg_url: str) -> None:
    """Another host's appender holds the log's lock: this one waits for it, then extends the chain it left."""
    store = Store(pg_url)
    store.append(record(1))
    holder = raw_connection(pg_url)
    holder.execute("BEGIN")
    holder.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key("audit_log"),))
    seqs: list[int] = []
    appender = threading.Thread(target=lambda: seqs.append(Store(pg_url).append(record(2))))
    appender.start()
    with raw_connection(pg_url) as watcher:
        # wait until the appender is queued on exactly that lock (a condition, not a timing)
        while not watcher.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()[0]:
            assert appender.is_alive(), "the append finished without waiting for the lock"
            threading.Event().wait(0.02)
    # meanwhile the other host appends, as the lock's holder, at the head it read under the lock
    from gen4sdk.store._logmodel import _chain_hash, canonical_json

    assert seqs == []
    head = holder.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    other = canonical_json(record(99))
    holder.execute(
        "INSERT INTO audit_log(seq, request_id, time_utc, caller, outcome, manifest_id, categories, record_json,"
        " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (head[0] + 1, "req-other-host", "2026-01-01T00:00:00.000000Z", None, "allowed", None, "[]", other,
         head[1], _chain_hash(head[1], other)),
    )  # fmt: skip
    holder.execute("COMMIT")
    holder.close()
    appender.join(30)
    assert seqs == [3]  # after the other host's record, not beside it
    entries = store.records()
    assert [e.seq for e in entries] == [1, 2, 3] and entries[2].prev_hash == entries[1].hash


def test_every_store_command_takes_a_postgresql_url(
    pg_url: str, signer, dev_keys, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from gen4sdk.models import tiny_model

    with gen4sdk.Client(model=tiny_model(), signer=signer, owner="Acme Studios", store=pg_url) as client:
        assert client.store is not None and client.store.location == pg_url
        ident = client.likeness.add_identity("Pat Example")  # type: ignore[union-attr]
        result = client.generate(prompt="a red kite over green hills", output=tmp_path / "clip.mp4",
                                 num_frames=17, height=144, width=256, fps=8, steps=2, seed=3)  # fmt: skip
    assert gen4sdk.LikenessRegistry(pg_url).get(ident.id) is not None
    clip_dir = tmp_path / "received"
    clip_dir.mkdir()
    stripped = clip_dir / "stripped.mp4"  # remuxed without its credentials, as `ffmpeg -c copy` does
    with av.open(str(result.path)) as src, av.open(str(stripped), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for packet in src.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                dst.mux(packet)
    root = str(dev_keys.root_cert)
    capsys.readouterr()
    main(["verify", str(stripped), "--store", pg_url, "--trust-anchors", root, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "recovered" and report["manifest_id"] == result.manifest_id
    assert main(["audit", str(clip_dir), "--store", pg_url, "--json", str(tmp_path / "a.json"),
                 "--trust-anchors", root, "--workers", "1"]) in (0, 1)  # fmt: skip
    audited = json.loads((tmp_path / "a.json").read_text())
    assert [e["status"] for e in audited["entries"]] == ["recovered"]

    cert, key = str(dev_keys.signer_cert), str(dev_keys.signer_key)
    assert main(["log", "checkpoint", "--store", pg_url, "--cert", cert, "--key", key]) == 0
    assert main(["log", "verify", "--store", pg_url, "--certificate", cert]) == 0
    assert main(["log", "query", "--store", pg_url, "--json"]) == 0
    assert main(["log", "export", "--store", pg_url, "--out", str(tmp_path / "log.jsonl")]) == 0
    assert main(["log", "prove", "--store", pg_url, "--request-id", result.request_id]) == 0
    out = capsys.readouterr().out
    assert result.request_id in out and out.count("c2sp.org/tlog-proof@v1") == 1
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) >= 2

    from fastapi.testclient import TestClient

    app = gen4sdk.create_app(pg_url)  # what `gen4sdk serve --store URL` runs, read-only
    with TestClient(app) as http:
        reply = http.get(f"/manifests/{result.manifest_id}")
    stored = Store(pg_url, read_only=True).get_manifest(result.manifest_id)
    assert stored is not None and reply.status_code == 200 and reply.content == stored.manifest_store


def test_a_forked_child_reconnects_and_leaves_its_parents_session_alone(pg_url: str) -> None:
    """A child forked with the parent's open Store (a worker pool, a forking server) connects anew: the parent's
    socket is shared, and closing it from the child would end the parent's session."""
    import os

    store = Store(pg_url)
    store.append(record(1))
    parent_pid = store.database.read("SELECT pg_backend_pid()")[0][0]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            child_pid = store.database.read("SELECT pg_backend_pid()")[0][0]
            store.append(record(2))
            store.close()
            os._exit(0 if child_pid != parent_pid else 3)
        except BaseException:  # noqa: BLE001 - anything at all must show up in the exit status
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.database.read("SELECT pg_backend_pid()")[0][0] == parent_pid  # the same session, still open
    assert store.append(record(3)) == 3 and store.verify_log().ok


def test_a_lost_connection_fails_the_write_closed_and_the_next_one_reconnects(pg_url: str) -> None:
    store = Store(pg_url)
    store.append(record(1))
    session = store.database.read("SELECT pg_backend_pid()")[0][0]
    # the server ends the store's session, as a restart or a failover would
    with raw_connection(pg_url) as admin:
        admin.execute("SELECT pg_terminate_backend(?)", (session,))
    with pytest.raises(StoreError, match="cannot write to store postgresql://"):
        store.append(record(2))
    assert len(Store(pg_url, read_only=True)) == 1  # nothing half-written
    assert store.append(record(3)) == 2  # a new session, the same chain
    assert store.verify_log().ok


def test_without_postgresql_the_tests_fail_saying_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store tests never skip the PostgreSQL backend: no server binaries is an error naming the package."""
    import postgres_server

    monkeypatch.setattr(postgres_server.shutil, "which", lambda name: None)
    monkeypatch.setattr(postgres_server.glob, "glob", lambda pattern: [])
    with pytest.raises(postgres_server.PostgresUnavailable, match=r"apt-get install postgresql"):
        postgres_server.PostgresServer().start()
