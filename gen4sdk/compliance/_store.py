"""The operator's store: the audit log (a Merkle tree log with signed checkpoints) and the manifest store, in one
SQLite file.

The file is shared with the policy engine's likeness registry (tables ``likeness_*``), so every table here has the
prefix ``audit_`` or ``manifests_``, the journal is WAL and every write is one short ``BEGIN IMMEDIATE`` transaction.

Records are leaves of an RFC 9162 Merkle tree, in sequence order (leaf data: the record's canonical JSON). A
checkpoint is a C2SP signed note over the tree size and root, signed with the operator's key; it can be printed and
kept elsewhere, and any later state of the log can be proven consistent with it. Each row also keeps a hash chain
``hash[n] = sha256(hash[n-1] || "\\n" || record_json[n])``, which says *where* the log was edited. Signing is never
part of an append: a record is kept when the signer fails, and the checkpoint is signed later. What is *not*
detectable is spelled out in :meth:`Store.verify_log` and docs/storage.md.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hmac
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from gen4sdk.compliance import _merkle
from gen4sdk.compliance._checkpoint import checkpoint_text, parse_checkpoint, proof_text, sign_checkpoint
from gen4sdk.compliance._logcheck import CheckpointRow, check_against, origin_of, verify_jsonl, verify_rows
from gen4sdk.compliance._logmodel import (
    GENESIS,
    Checkpoint,
    LogEntry,
    LogProblem,
    LogSigner,
    LogVerification,
    StoredManifest,
    _cert_sha256,
    _chain_hash,
    _index_columns,
    _utc_text,
    canonical_json,
    prompt_commitment,
)
from gen4sdk.errors import InvalidRequestError, StoreError
from gen4sdk.types import AuditRecord

logger = logging.getLogger(__name__)

__all__ = [
    "GENESIS",
    "Checkpoint",
    "LogEntry",
    "LogProblem",
    "LogSigner",
    "LogVerification",
    "Store",
    "StoredManifest",
    "open_commitment",
    "prompt_commitment",
    "verify_jsonl",
]

SCHEMA_ID = "gen4sdk.compliance.store"
# 2: checkpoints are C2SP notes over the Merkle root (column audit_checkpoints.note). Version 1 stores are read as
# they are and upgraded in place by the first Store that writes to them; their chain-head checkpoints still verify.
SCHEMA_VERSION = "2"
_READABLE_VERSIONS = ("1", "2")
_SQLITE_MAGIC = b"SQLite format 3\x00"
# Tables other modules of this SDK keep in the same file; anything else makes the file foreign.
_OWN_PREFIXES = ("audit_", "manifests_", "likeness_", "sqlite_")
_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


# ----------------------------------------------------------------------------------------------- commitments


def open_commitment(store: Store, key: str, prompt: str, *, commitment: str | None = None) -> bool:
    """Open a prompt commitment with the salt the audit log keeps.

    ``key`` is a request id or a manifest id. ``commitment`` is the value read from the credentials
    (``VerificationReport.lineage.prompt_commitment``); without it, the check is against the commitment of the
    prompt the log recorded for that request. Returns False when the log does not know the key or has no salt.
    """
    entry = store.find_record(key)
    if entry is None or entry.record.prompt_salt is None:
        return False
    try:
        salt = bytes.fromhex(entry.record.prompt_salt)
    except ValueError:
        return False
    expected = commitment
    if expected is None:
        expected = prompt_commitment(entry.record.prompt, salt)
    return hmac.compare_digest(prompt_commitment(prompt, salt), expected.lower())


# ----------------------------------------------------------------------------------------------- store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    time_utc TEXT NOT NULL,
    caller TEXT,
    outcome TEXT NOT NULL,
    manifest_id TEXT,
    categories TEXT NOT NULL DEFAULT '[]',
    record_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log(time_utc);
CREATE INDEX IF NOT EXISTS audit_log_caller ON audit_log(caller);
CREATE INDEX IF NOT EXISTS audit_log_outcome ON audit_log(outcome);
CREATE INDEX IF NOT EXISTS audit_log_manifest ON audit_log(manifest_id);
CREATE INDEX IF NOT EXISTS audit_log_request ON audit_log(request_id);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    time TEXT NOT NULL,
    signature BLOB NOT NULL,
    certificate_pem BLOB NOT NULL,
    note TEXT
);
CREATE TABLE IF NOT EXISTS manifests_store (
    manifest_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    manifest_store BLOB NOT NULL,
    asset_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS manifests_store_payload ON manifests_store(payload);
"""


class Store:
    """Audit log + manifest store in one SQLite (WAL) file. Safe for several threads and processes at once.

    ``signer`` (optional) signs log checkpoints: automatically every ``checkpoint_every`` appends and on the first
    append more than ``checkpoint_interval`` seconds after the last checkpoint (so a quiet log is protected too),
    and on :meth:`checkpoint` (call it when shutting down). Signing happens after the record is committed: when the
    signer fails, the record stays, the failure is noted in the store and the next append signs. ``durable=True``
    fsyncs every commit (``synchronous=FULL``); with False a power cut may lose the last few commits, a killed
    process still loses nothing that was committed. ``read_only=True`` opens an existing store without writing to
    it at all (no schema, no journal switch): what reading commands use, and what works on a read-only mount.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        signer: LogSigner | None = None,
        *,
        create: bool = True,
        read_only: bool = False,
        checkpoint_every: int | None = 100,
        checkpoint_interval: float | None = 3600.0,
        durable: bool = True,
        timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.signer = signer
        self.checkpoint_every = checkpoint_every if checkpoint_every and checkpoint_every > 0 else None
        self.checkpoint_interval = (
            checkpoint_interval if checkpoint_interval and checkpoint_interval > 0 else None
        )
        self._read_only = read_only
        self._durable = durable
        self._timeout = timeout
        self._local = threading.local()
        self._check_file(create and not read_only)
        self._log_id = self._init_schema()
        self._note_column = "note" in {
            r[1] for r in self._conn().execute("PRAGMA table_info(audit_checkpoints)").fetchall()
        }

    # -- pickling: worker processes reopen the file (connections and signers stay behind)
    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "durable": self._durable,
            "timeout": self._timeout,
            "read_only": self._read_only,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        clone = Store(
            state["path"],
            None,
            create=False,
            read_only=state.get("read_only", False),
            durable=state["durable"],
            timeout=state["timeout"],
        )
        self.__dict__.update(clone.__dict__)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def log_id(self) -> str:
        return self._log_id

    @property
    def origin(self) -> str:
        """The log's name in its checkpoints (their first line and their signature's key name)."""
        return origin_of(self._log_id)

    # ------------------------------------------------------------------ connection handling
    def _check_file(self, create: bool) -> None:
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a store file")
        if not self.path.exists():
            if not create:
                raise StoreError(f"store {self.path} does not exist")
            if not self.path.parent.is_dir():
                raise StoreError(
                    f"cannot create store {self.path}: directory {self.path.parent} does not exist"
                )
            return
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise StoreError(f"cannot read store {self.path}: {exc}") from exc
        if not head and self._read_only:
            raise StoreError(f"{self.path} is an empty file, not a gen4sdk store")
        if head and head != _SQLITE_MAGIC:
            raise StoreError(f"{self.path} is not a gen4sdk store (not an SQLite database)")

    def _connect(self) -> sqlite3.Connection:
        try:
            if self._read_only:
                return self._connect_read_only()
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=True
            )
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
            conn.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable gen4sdk store: {exc}") from exc
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        uri = "file:" + quote(str(self.path.resolve()), safe="/")
        conn = sqlite3.connect(
            uri + "?mode=ro", uri=True, timeout=self._timeout, isolation_level=None, check_same_thread=True
        )
        conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # A WAL database on a read-only mount cannot make its -shm file; nothing can be writing it either,
            # so SQLite may read it as an immutable file.
            conn.close()
            conn = sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, isolation_level=None)
        return conn

    def _retry(self, fn: Any) -> Any:
        # journal_mode changes need a moment without other writers; busy_timeout does not cover them.
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        pid = getattr(self._local, "pid", None)
        if conn is None or pid != os.getpid():
            conn = self._connect()
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __enter__(self) -> Store:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; readers keep reading the last commit meanwhile (WAL)."""
        if self._read_only:
            raise StoreError(f"store {self.path} is open read-only")
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot write to store {self.path}: {exc}") from exc
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise StoreError(f"cannot commit to store {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so several queries see the same commit."""
        conn = self._conn()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read store {self.path}: {exc}") from exc

    def _read(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        conn = self._conn()
        try:
            cur = conn.execute(sql, params)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read store {self.path}: {exc}") from exc

    def _init_schema(self) -> str:
        # Fast path without a write lock, so readers (workers, the service) also work on a read-only file.
        try:
            conn = self._conn()
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            meta = (
                dict(conn.execute("SELECT key, value FROM audit_meta").fetchall())
                if "audit_meta" in tables
                else {}
            )
        except sqlite3.DatabaseError as exc:
            if self._read_only or not isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"{self.path} is not a usable gen4sdk store: {exc}") from exc
            tables, meta = [], {}  # locked: the checked path below decides
        if meta.get("schema") == SCHEMA_ID and "log_id" in meta:
            version = meta.get("version")
            if version == SCHEMA_VERSION or (self._read_only and version in _READABLE_VERSIONS):
                return str(meta["log_id"])
        if self._read_only:
            foreign = [t for t in tables if not t.startswith(_OWN_PREFIXES)]
            if foreign or "audit_meta" not in tables:
                raise StoreError(f"{self.path} is not a gen4sdk store (no audit log in it)")
            raise StoreError(
                f"{self.path} has store schema {meta.get('schema')} version {meta.get('version')}; this gen4sdk "
                f"reads versions {', '.join(_READABLE_VERSIONS)}"
            )
        try:
            with self._write() as conn:
                return self._create_or_migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable gen4sdk store: {exc}") from exc

    def _create_or_migrate(self, conn: sqlite3.Connection) -> str:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if "audit_meta" in tables:
            meta = dict(conn.execute("SELECT key, value FROM audit_meta").fetchall())
            if meta.get("schema") != SCHEMA_ID:
                raise StoreError(f"{self.path} has an audit_meta table that is not gen4sdk's")
            if meta.get("version") == "1":
                # Version 1 -> 2: checkpoints gain their C2SP note; old rows keep verifying as chain-head ones.
                conn.execute("ALTER TABLE audit_checkpoints ADD COLUMN note TEXT")
                conn.execute("UPDATE audit_meta SET value = ? WHERE key = 'version'", (SCHEMA_VERSION,))
                logger.info("store %s upgraded from schema version 1 to %s", self.path, SCHEMA_VERSION)
            elif meta.get("version") != SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} uses store schema version {meta.get('version')}; "
                    f"this gen4sdk reads version {SCHEMA_VERSION}"
                )
            return str(meta["log_id"])
        foreign = [t for t in tables if not t.startswith(_OWN_PREFIXES)]
        if foreign:
            raise StoreError(
                f"{self.path} is a foreign SQLite database (tables: {', '.join(sorted(foreign)[:5])}); "
                "refusing to add gen4sdk tables to it"
            )
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        log_id = str(uuid.uuid4())
        conn.executemany(
            "INSERT INTO audit_meta(key, value) VALUES (?, ?)",
            [("schema", SCHEMA_ID), ("version", SCHEMA_VERSION), ("log_id", log_id)],
        )
        return log_id

    # ------------------------------------------------------------------ audit log
    def append(
        self,
        record: AuditRecord,
        *,
        manifest: StoredManifest | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> int:
        """Append one record; returns its sequence number. Atomic: all or nothing.

        ``manifest`` is stored in the same transaction (a clip's record and its manifest are one outcome), and
        ``before_commit`` runs inside it, last (the Client moves the clip into place there): when it raises, neither
        the record nor the manifest is kept and its exception propagates.

        A due checkpoint is signed after the record is committed, so a failing signer never costs a record: the
        failure is logged, noted in the store (``log verify`` says so) and signing is tried again on the next
        append or :meth:`checkpoint`.
        """
        record_json = canonical_json(record)
        index = _index_columns(json.loads(record_json))
        if manifest is not None:
            _check_manifest(manifest.manifest_id, manifest.manifest_store)
        with self._write() as conn:
            if manifest is not None:
                self._insert_manifest(conn, manifest)
            row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev_hash = (row[0] + 1, row[1]) if row else (1, GENESIS)
            digest = _chain_hash(prev_hash, record_json)
            conn.execute(
                "INSERT INTO audit_log(seq, request_id, time_utc, caller, outcome, manifest_id, categories, "
                "record_json, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, *index, record_json, prev_hash, digest),
            )
            conn.execute(
                "INSERT OR REPLACE INTO audit_meta(key, value) VALUES ('head', ?)", (f"{seq}:{digest}",)
            )
            if before_commit is not None:
                before_commit()
        logger.debug("audit record %s appended as seq %d", record.request_id, seq)
        if self.signer is not None and self._checkpoint_due(seq):
            try:
                self.checkpoint()
            except StoreError as exc:
                logger.error("audit record %d kept, but its checkpoint is not signed yet: %s", seq, exc)
        return seq

    def _checkpoint_due(self, seq: int) -> bool:
        if self.checkpoint_every and seq % self.checkpoint_every == 0:
            return True
        rows = self._read("SELECT value FROM audit_meta WHERE key = 'checkpoint_pending'")
        if rows:
            return True  # the signer failed before: try again
        if self.checkpoint_interval is None:
            return False
        row = self._read("SELECT time FROM audit_checkpoints ORDER BY id DESC LIMIT 1")
        if not row:
            return True  # the first record of a signed log is checkpointed at once
        last = _dt.datetime.strptime(row[0][0], _ISO).replace(tzinfo=_dt.timezone.utc)
        return (_dt.datetime.now(_dt.timezone.utc) - last).total_seconds() >= self.checkpoint_interval

    def _leaf_rows(self, conn: sqlite3.Connection, upto: int | None = None) -> list[tuple[int, str, str]]:
        sql = "SELECT seq, record_json, hash FROM audit_log"
        if upto is not None:
            sql += f" WHERE seq <= {int(upto)}"
        return list(conn.execute(sql + " ORDER BY seq"))

    def checkpoint(self) -> Checkpoint | None:
        """Sign a checkpoint over the whole log now (C2SP note over tree size and root); None when it is empty.

        Raises StoreError when the signer fails; the log is unchanged then, and the failure is noted in the store.
        """
        if self.signer is None:
            raise StoreError("this store has no signer; pass signer= to sign checkpoints")
        with self._snapshot() as conn:
            rows = self._leaf_rows(conn)
        if not rows:
            return None
        size, head_hash = rows[-1][0], rows[-1][2]
        root = _merkle.root([_merkle.leaf_hash(r[1].encode("utf-8")) for r in rows])
        time_text = _utc_text(_dt.datetime.now(_dt.timezone.utc))
        # Signed outside any transaction: a slow key service must not hold the write lock for every appender.
        try:
            signature = bytes(self.signer.sign(checkpoint_text(self.origin, size, root).encode("utf-8")))
            cert = bytes(self.signer.certificate_chain_pem)
            note = sign_checkpoint(self.origin, size, root, signature, cert)
        except Exception as exc:
            reason = f"{time_text}: signing the checkpoint over {size} records failed: {exc}"
            with contextlib.suppress(StoreError), self._write() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO audit_meta(key, value) VALUES ('checkpoint_pending', ?)",
                    (reason,),
                )
            raise StoreError(f"signing the audit checkpoint failed: {exc}") from exc
        with self._write() as conn:
            conn.execute(
                "INSERT INTO audit_checkpoints(seq, head_hash, time, signature, certificate_pem, note) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (size, head_hash, time_text, signature, cert, note),
            )
            conn.execute("DELETE FROM audit_meta WHERE key = 'checkpoint_pending'")
        return self._checkpoint(size, head_hash, time_text, signature, cert, note)

    def _checkpoint(
        self, seq: int, head_hash: str, t: str, signature: bytes, cert: bytes, note: str | None
    ) -> Checkpoint:
        return Checkpoint(
            seq=seq,
            head_hash=head_hash,
            time=t,
            log_id=self._log_id,
            signature=signature.hex(),
            certificate_sha256=_cert_sha256(cert),
            note=note,
        )

    def _checkpoint_rows(self, conn: sqlite3.Connection) -> list[CheckpointRow]:
        note = "note" if self._note_column else "NULL"
        return [
            (r[0], r[1], r[2], bytes(r[3]), bytes(r[4]), r[5])
            for r in conn.execute(
                f"SELECT seq, head_hash, time, signature, certificate_pem, {note} FROM audit_checkpoints "
                "ORDER BY id"
            )
        ]

    def checkpoints(self) -> list[Checkpoint]:
        with self._snapshot() as conn:
            rows = self._checkpoint_rows(conn)
        return [self._checkpoint(*r) for r in rows]

    def latest_checkpoint(self) -> Checkpoint | None:
        """The signed checkpoint over the largest tree (the one to keep elsewhere), or None."""
        notes = [c for c in self.checkpoints() if c.note is not None]
        return max(notes, key=lambda c: c.seq) if notes else None

    def prove(self, request_id: str) -> str:
        """An inclusion proof (C2SP tlog-proof text) of the newest record of ``request_id`` in the latest signed
        checkpoint, checkable with :func:`gen4sdk.verify_log_proof` and the operator's certificate alone.

        Signs a checkpoint first when none covers the record yet and the store has a signer.
        """
        found = self._read(
            "SELECT seq FROM audit_log WHERE request_id = ? ORDER BY seq DESC LIMIT 1", (request_id,)
        )
        if not found:
            raise StoreError(f"the log has no record of request {request_id!r}")
        seq = int(found[0][0])
        cp = self.latest_checkpoint()
        if (cp is None or cp.seq < seq) and self.signer is not None and not self._read_only:
            cp = self.checkpoint()
        if cp is None or cp.seq < seq or cp.note is None:
            raise StoreError(
                f"record {seq} is not covered by a signed checkpoint yet (the newest covers "
                f"{cp.seq if cp else 0}); sign one with 'gen4sdk log checkpoint --cert ... --key ...'"
            )
        with self._snapshot() as conn:
            rows = self._leaf_rows(conn, upto=cp.seq)
        leaves = [_merkle.leaf_hash(r[1].encode("utf-8")) for r in rows]
        parsed = parse_checkpoint(cp.note)
        record_bytes = rows[seq - 1][1].encode("utf-8") if len(rows) >= seq else b""
        path = _merkle.inclusion_proof(seq - 1, leaves) if len(leaves) >= seq else []
        if not _merkle.verify_inclusion(seq - 1, cp.seq, _merkle.leaf_hash(record_bytes), path, parsed.root):
            raise StoreError(
                f"the log no longer matches its checkpoint over {cp.seq} records; run 'gen4sdk log verify'"
            )
        return proof_text(seq - 1, path, record_bytes, cp.note)

    def __len__(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM audit_log")[0][0])

    def _entries(self, rows: list[sqlite3.Row]) -> list[LogEntry]:
        out = []
        for r in rows:
            try:
                record = AuditRecord.model_validate_json(r["record_json"])
            except ValueError as exc:
                raise StoreError(
                    f"audit record seq {r['seq']} is not a valid record (run log verify): {exc}"
                ) from exc
            out.append(LogEntry(seq=r["seq"], prev_hash=r["prev_hash"], hash=r["hash"], record=record))
        return out

    def records(
        self,
        *,
        since: _dt.datetime | str | None = None,
        until: _dt.datetime | str | None = None,
        caller: str | None = None,
        outcome: str | None = None,
        category: str | None = None,
        manifest_id: str | None = None,
        request_id: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[LogEntry]:
        """Query the log; every filter is optional and they combine with AND. ``since`` inclusive, ``until`` exclusive."""
        where: list[str] = []
        params: list[Any] = []
        for name, bound, op in (("since", since, ">="), ("until", until, "<")):
            if bound is None:
                continue
            try:
                params.append(_utc_text(bound))
            except (TypeError, ValueError, AttributeError) as exc:
                raise InvalidRequestError(
                    f"{name} must be a datetime or ISO 8601 text, got {bound!r}", field=name
                ) from exc
            where.append(f"time_utc {op} ?")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidRequestError(f"limit must be a non-negative integer, got {limit!r}", field="limit")
        for column, value in (
            ("caller", caller),
            ("outcome", outcome),
            ("manifest_id", manifest_id),
            ("request_id", request_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if category is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(audit_log.categories) WHERE json_each.value = ?)")
            params.append(category)
        sql = "SELECT seq, record_json, prev_hash, hash FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq " + ("DESC" if newest_first else "ASC")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self._entries(self._read(sql, params))

    def find_record(self, key: str) -> LogEntry | None:
        """The latest record whose request id or manifest id is ``key``."""
        rows = self._read(
            "SELECT seq, record_json, prev_hash, hash FROM audit_log WHERE request_id = ? OR manifest_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            (key, key),
        )
        entries = self._entries(rows)
        return entries[0] if entries else None

    def export_jsonl(self, path_or_stream: str | os.PathLike[str] | IO[str]) -> int:
        """Write the log as JSON lines (``{"seq","prev_hash","hash","record"}`` and ``{"checkpoint": ...}`` lines).

        Returns the number of records written. A path is written atomically (temp file + rename); the export can be
        checked offline with :func:`verify_jsonl`.
        """
        if isinstance(path_or_stream, (str, os.PathLike)):
            target = Path(path_or_stream)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            try:
                with open(tmp, "w", encoding="utf-8") as fh:
                    n = self._export(fh)
                os.replace(tmp, target)
            except OSError as exc:
                raise StoreError(f"cannot write {target}: {exc}") from exc
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            return n
        return self._export(path_or_stream)

    def _export(self, fh: IO[str]) -> int:
        # One read transaction, so the records and checkpoints come from the same snapshot.
        with self._snapshot() as conn:
            fh.write(
                json.dumps({"log": {"log_id": self._log_id, "schema": SCHEMA_ID, "version": SCHEMA_VERSION}})
            )
            fh.write("\n")
            n = 0
            cur = conn.execute("SELECT seq, record_json, prev_hash, hash FROM audit_log ORDER BY seq")
            for seq, record_json, prev_hash, digest in cur:
                # record_json is embedded verbatim so the exported hashes recompute byte for byte.
                fh.write(
                    f'{{"seq":{seq},"prev_hash":"{prev_hash}","hash":"{digest}","record":{record_json}}}\n'
                )
                n += 1
            for seq, head, t, sig, cert, note in self._checkpoint_rows(conn):
                cp = {
                    "seq": seq,
                    "head_hash": head,
                    "time": t,
                    "signature": sig.hex(),
                    "certificate_pem": cert.decode("ascii", "replace"),
                    "note": note,
                }
                fh.write(json.dumps({"checkpoint": cp}, sort_keys=True) + "\n")
            return n

    def verify_log(
        self, *, trusted_certificates: list[bytes] | None = None, checkpoint: str | None = None
    ) -> LogVerification:
        """Check the whole log: the hash chain, the Merkle tree and every checkpoint.

        Detected, with the sequence number and kind: a record edited in place (content or its queryable columns),
        a record deleted (a gap, or a chain that restarts), a record inserted (a row the chain skips), records
        reordered, a checkpoint whose tree no longer matches the log, a checkpoint signature that does not verify
        or (with ``trusted_certificates``, default: this store's signer) comes from another key, records deleted
        from under a checkpoint, an empty log, and, with ``trusted_certificates``, a log none of whose checkpoints
        that key signed.

        ``checkpoint``: a checkpoint note kept outside the database (``gen4sdk log checkpoint``); the log must
        still contain its tree, shown by an RFC 9162 consistency proof (returned in ``consistency_proof``).

        Not detectable from the database alone: someone who can write the file can remove or rewrite records
        after the newest checkpoint they leave in place (deleting newer checkpoints too). Only a checkpoint kept
        elsewhere catches that; ``unprotected_tail`` counts the records after the last valid checkpoint.
        """
        conn = self._conn()
        # Bytes that are not UTF-8 (written behind the store's back) must read as an edit, not stop the check.
        conn.text_factory = _lenient_text
        try:
            with self._snapshot() as conn:
                rows = [
                    (r[0], r[1], r[2], r[3], tuple(r[4:10]))
                    for r in conn.execute(
                        "SELECT seq, record_json, prev_hash, hash, request_id, time_utc, caller, outcome, "
                        "manifest_id, categories FROM audit_log ORDER BY seq"
                    )
                ]
                checkpoints = self._checkpoint_rows(conn)
                meta = dict(
                    conn.execute(
                        "SELECT key, value FROM audit_meta WHERE key IN ('head', 'checkpoint_pending')"
                    ).fetchall()
                )
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read store {self.path}: {exc}") from exc
        finally:
            conn.text_factory = str
        pinned = trusted_certificates is not None
        if trusted_certificates is None and self.signer is not None:
            trusted_certificates = [bytes(self.signer.certificate_chain_pem)]
            pinned = True
        result = verify_rows(
            rows,
            checkpoints,
            log_id=self._log_id,
            origin=self.origin,
            head_marker=meta.get("head"),
            trusted_certificates=trusted_certificates,
            pinned=pinned,
            pending=meta.get("checkpoint_pending"),
        )
        if checkpoint is None:
            return result
        # The kept checkpoint is checked with the operator's key; without one named, with the keys of the
        # checkpoints stored here (a forger who swaps those in still cannot make the kept note verify).
        candidates = trusted_certificates or list(dict.fromkeys(c[4] for c in checkpoints))
        return check_against(result, rows, checkpoint, origin=self.origin, certificates=candidates)

    # ------------------------------------------------------------------ manifest store
    def put_manifest(
        self, *, payload: bytes, manifest_id: str, manifest_store: bytes, asset_sha256: str
    ) -> None:
        """Keep a clip's signed manifest store under its watermark payload. Idempotent for identical data."""
        _check_manifest(manifest_id, manifest_store)
        manifest = StoredManifest(
            manifest_id=manifest_id,
            payload=_payload_hex(payload),
            manifest_store=bytes(manifest_store),
            asset_sha256=asset_sha256,
            created_at=_utc_text(_dt.datetime.now(_dt.timezone.utc)),
        )
        with self._write() as conn:
            self._insert_manifest(conn, manifest)

    @staticmethod
    def _insert_manifest(conn: sqlite3.Connection, m: StoredManifest) -> None:
        row = conn.execute(
            "SELECT payload, manifest_store, asset_sha256 FROM manifests_store WHERE manifest_id = ?",
            (m.manifest_id,),
        ).fetchone()
        if row is not None:
            if (row[0], bytes(row[1]), row[2]) == (m.payload, m.manifest_store, m.asset_sha256):
                return
            raise StoreError(f"manifest {m.manifest_id} is already stored with different content")
        conn.execute(
            "INSERT INTO manifests_store(manifest_id, payload, manifest_store, asset_sha256, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (m.manifest_id, m.payload, m.manifest_store, m.asset_sha256, m.created_at),
        )

    def find_manifests(self, payload: bytes | str, *, limit: int = 10) -> list[StoredManifest]:
        """Every manifest stored under a watermark payload, newest first."""
        try:
            payload_hex = _payload_hex(payload)
        except StoreError:
            return []
        rows = self._read(
            "SELECT manifest_id, payload, manifest_store, asset_sha256, created_at FROM manifests_store "
            "WHERE payload = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (payload_hex, int(limit)),
        )
        return [_stored(r) for r in rows]

    def find_manifest(self, payload: bytes | str) -> StoredManifest | None:
        """The newest manifest stored under a watermark payload (bytes or hex), or None."""
        found = self.find_manifests(payload, limit=1)
        return found[0] if found else None

    # --- gen4sdk.types.ManifestLookup: how verify() recovers a stripped clip's manifest -----------------
    @property
    def source(self) -> str:
        return str(self.path)

    def manifest_store_for(self, payload: bytes) -> bytes | None:
        found = self.find_manifest(payload)
        return found.manifest_store if found is not None else None

    def get_manifest(self, manifest_id: str) -> StoredManifest | None:
        rows = self._read(
            "SELECT manifest_id, payload, manifest_store, asset_sha256, created_at FROM manifests_store "
            "WHERE manifest_id = ?",
            (manifest_id,),
        )
        return _stored(rows[0]) if rows else None


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _check_manifest(manifest_id: str, manifest_store: bytes) -> None:
    if not manifest_id:
        raise StoreError("manifest_id is empty")
    if not isinstance(manifest_store, (bytes, bytearray)) or not manifest_store:
        raise StoreError("manifest_store must be non-empty bytes (the C2PA JUMBF manifest store)")


def _payload_hex(payload: bytes | str) -> str:
    if isinstance(payload, str):
        try:
            payload = bytes.fromhex(payload)
        except ValueError as exc:
            raise StoreError(f"payload {payload!r} is not hex") from exc
    if not isinstance(payload, (bytes, bytearray)) or not payload:
        raise StoreError("payload must be non-empty bytes")
    return bytes(payload).hex()


def _stored(r: sqlite3.Row) -> StoredManifest:
    return StoredManifest(
        manifest_id=r["manifest_id"],
        payload=r["payload"],
        manifest_store=bytes(r["manifest_store"]),
        asset_sha256=r["asset_sha256"],
        created_at=r["created_at"],
    )
