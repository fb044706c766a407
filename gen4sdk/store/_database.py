"""The database layer under the audit log, the manifest store and the likeness registry: opening a store (an SQLite
file or a PostgreSQL URL; read-write, or strictly read-only), a connection per thread, short transactions, and
the schema with its versions (``_schema.py``).

The parts above it write their SQL once, with ``?`` parameters; the backend (``_sqlite.py``, ``_postgres.py``)
supplies what differs: connecting, beginning a transaction, the locks that serialise appends, and inspection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gen4sdk.errors import StoreError
from gen4sdk.store._postgres import PostgresBackend, is_postgres_url, redact_url
from gen4sdk.store._schema import (
    OWN_PREFIXES,
    READABLE_VERSIONS,
    SCHEMA_ID,
    SCHEMA_VERSION,
    create_statements,
    migrate,
)
from gen4sdk.store._sqlite import SQLiteBackend

logger = logging.getLogger(__name__)

__all__ = ["SCHEMA_ID", "SCHEMA_VERSION", "Database", "StoreLocation", "redact_location"]

# What every API that opens a store accepts: a file path, or a postgresql:// URL.
StoreLocation = str | os.PathLike[str]


def redact_location(location: StoreLocation) -> str:
    """How a store is named in messages and reports: its path, or its URL without the password."""
    return redact_url(str(location)) if is_postgres_url(location) else os.fspath(location)


class Database:
    """One store database, with a connection per thread (and per process after a fork)."""

    def __init__(
        self,
        location: StoreLocation,
        *,
        create: bool = True,
        read_only: bool = False,
        durable: bool = True,
        timeout: float = 60.0,
    ) -> None:
        self._target = str(location) if is_postgres_url(location) else os.fspath(location)
        self.read_only = read_only
        self.durable = durable
        self.timeout = timeout
        self._backend: SQLiteBackend | PostgresBackend
        if is_postgres_url(location):
            self._backend = PostgresBackend(
                str(location), read_only=read_only, durable=durable, timeout=timeout
            )
        else:
            self._backend = SQLiteBackend(location, read_only=read_only, durable=durable, timeout=timeout)
        self.errors = self._backend.errors
        self._local = threading.local()
        self._backend.check(create and not read_only)
        self.log_id = self._init_schema()
        with self.snapshot() as conn:
            self.note_column = "note" in self._backend.columns(conn, "audit_checkpoints")

    @property
    def path(self) -> Path | None:
        """The SQLite file; None for a PostgreSQL store."""
        return self._backend.path

    @property
    def location(self) -> str:
        """The file path or the URL (without its password): what messages name."""
        return self._backend.location

    @property
    def dialect(self) -> str:
        return self._backend.dialect

    @property
    def target(self) -> str:
        """What reopens this database elsewhere (a worker process): the path, or the URL with its password."""
        return self._target

    # ------------------------------------------------------------------ connections
    def connection(self) -> Any:
        """This thread's connection (sqlite3, or the psycopg wrapper that takes ``?`` parameters)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._backend.connect()
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with contextlib.suppress(*self.errors):
                conn.close()
            self._local.conn = None

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        """One short write transaction; readers keep reading the last commit meanwhile."""
        if self.read_only:
            raise StoreError(f"store {self.location} is open read-only")
        conn = self.connection()
        try:
            self._backend.begin(conn, write=True)
        except self.errors as exc:
            self._drop(conn)
            raise StoreError(f"cannot write to store {self.location}: {exc}") from exc
        try:
            yield conn
        except BaseException as exc:
            self._rollback(conn)
            if isinstance(exc, self.errors):
                raise StoreError(f"cannot write to store {self.location}: {exc}") from exc
            raise
        else:
            try:
                conn.execute("COMMIT")
            except self.errors as exc:
                self._rollback(conn)
                raise StoreError(f"cannot commit to store {self.location}: {exc}") from exc

    def _rollback(self, conn: Any) -> None:
        try:
            conn.execute("ROLLBACK")
        except self.errors:
            # a connection that cannot even roll back is broken (the server went away): the next use reconnects
            self._drop(conn)

    def _drop(self, conn: Any) -> None:
        if self.dialect == "postgresql" and getattr(conn.raw, "closed", False):
            self._local.conn = None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Any]:
        """One read transaction, so several queries see the same commit."""
        conn = self.connection()
        try:
            self._backend.begin(conn, write=False)
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except self.errors as exc:
            self._drop(conn)
            raise StoreError(f"cannot read store {self.location}: {exc}") from exc

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self.connection()
        try:
            return [tuple(r) for r in conn.execute(sql, tuple(params)).fetchall()]
        except self.errors as exc:
            self._drop(conn)
            raise StoreError(f"cannot read store {self.location}: {exc}") from exc

    def lock(self, conn: Any, name: str) -> None:
        """Serialise writers on ``name`` until the transaction ends (a no-op where the transaction already does)."""
        self._backend.lock(conn, name)

    def lenient_text(self, conn: Any) -> contextlib.AbstractContextManager[None]:
        return self._backend.lenient_text(conn)

    def contains_json(self, column: str) -> str:
        return self._backend.contains_json(column)

    # ------------------------------------------------------------------ schema
    def _init_schema(self) -> str:
        # Fast path without a write lock, so readers (workers, the service) also work on a read-only store.
        try:
            conn = self.connection()
            tables = self._backend.tables(conn)
            meta = (
                dict(conn.execute("SELECT key, value FROM audit_meta").fetchall())
                if "audit_meta" in tables
                else {}
            )
        except StoreError:
            raise
        except self.errors as exc:
            if self.read_only or not self._backend.is_busy(exc):
                raise StoreError(f"{self.location} is not a usable gen4sdk store: {exc}") from exc
            tables, meta = [], {}  # locked: the checked path below decides
        if meta.get("schema") == SCHEMA_ID and "log_id" in meta:
            version = meta.get("version")
            if version == SCHEMA_VERSION or (self.read_only and version in READABLE_VERSIONS):
                return str(meta["log_id"])
        if self.read_only:
            foreign = [t for t in tables if not t.startswith(OWN_PREFIXES)]
            if foreign or "audit_meta" not in tables:
                raise StoreError(f"{self.location} is not a gen4sdk store (no audit log in it)")
            raise StoreError(
                f"{self.location} has store schema {meta.get('schema')} version {meta.get('version')}; this "
                f"gen4sdk reads versions {', '.join(READABLE_VERSIONS)}"
            )
        with self.write() as conn:
            # two first openers at once must not both create (PostgreSQL's CREATE ... IF NOT EXISTS can race)
            self.lock(conn, "schema")
            return self._create_or_migrate(conn)

    def _create_or_migrate(self, conn: Any) -> str:
        tables = self._backend.tables(conn)
        if "audit_meta" in tables:
            meta = dict(conn.execute("SELECT key, value FROM audit_meta").fetchall())
            if meta.get("schema") != SCHEMA_ID:
                raise StoreError(f"{self.location} has an audit_meta table that is not gen4sdk's")
            version = str(meta.get("version"))
            if version not in READABLE_VERSIONS:
                raise StoreError(
                    f"{self.location} uses store schema version {version}; this gen4sdk reads versions "
                    f"{', '.join(READABLE_VERSIONS)}"
                )
            migrate(conn, self.dialect, version, self.location)
            return str(meta["log_id"])
        foreign = [t for t in tables if not t.startswith(OWN_PREFIXES)]
        if foreign:
            raise StoreError(
                f"{self.location} is a foreign database (tables: {', '.join(sorted(foreign)[:5])}); "
                "refusing to add gen4sdk tables to it"
            )
        for statement in create_statements(self.dialect):
            conn.execute(statement)
        log_id = str(uuid.uuid4())
        conn.executemany(
            "INSERT INTO audit_meta(key, value) VALUES (?, ?)",
            [("schema", SCHEMA_ID), ("version", SCHEMA_VERSION), ("log_id", log_id)],
        )
        logger.info("created store %s (schema version %s)", self.location, SCHEMA_VERSION)
        return log_id
