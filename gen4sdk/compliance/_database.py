"""The store's SQLite file: opening it (read-write in WAL mode, or strictly read-only), its schema, its versions.

One file holds the audit log, the manifest store and the likeness registry (tables ``likeness_*``), so every table
here has the prefix ``audit_`` or ``manifests_``, and every write is one short ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gen4sdk.errors import StoreError

logger = logging.getLogger(__name__)

__all__ = ["SCHEMA_ID", "SCHEMA_VERSION", "Database"]

SCHEMA_ID = "gen4sdk.compliance.store"
# 2: checkpoints are C2SP notes over the Merkle root (column audit_checkpoints.note). Version 1 stores are read as
# they are and upgraded in place by the first Store that writes to them; their chain-head checkpoints still verify.
SCHEMA_VERSION = "2"
_READABLE_VERSIONS = ("1", "2")
_SQLITE_MAGIC = b"SQLite format 3\x00"
# Tables other modules of this SDK keep in the same file; anything else makes the file foreign.
_OWN_PREFIXES = ("audit_", "manifests_", "likeness_", "sqlite_")

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


class Database:
    """One store file, with a connection per thread (and per process after a fork)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        read_only: bool = False,
        durable: bool = True,
        timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self._read_only = read_only
        self._durable = durable
        self._timeout = timeout
        self._local = threading.local()
        self._check_file(create and not read_only)
        self._log_id = self._init_schema()
        self._note_column = "note" in {
            r[1] for r in self._conn().execute("PRAGMA table_info(audit_checkpoints)").fetchall()
        }

    @property
    def log_id(self) -> str:
        return self._log_id

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

    def __enter__(self) -> Database:  # noqa: PYI034
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
