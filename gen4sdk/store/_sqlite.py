"""The embedded backend: one SQLite file in WAL mode, which several threads and processes of one host may write.

Writers serialise on SQLite's own write lock (``BEGIN IMMEDIATE``), so the named locks the PostgreSQL backend takes
are no-ops here. A killed writer's uncommitted transaction is rolled back by the next opener (the WAL is only
applied up to its last commit record).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gen4sdk.errors import StoreError

__all__ = ["SQLiteBackend"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


class SQLiteBackend:
    """How the database layer opens, locks and inspects an SQLite store file."""

    dialect = "sqlite"
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(
        self, path: str | os.PathLike[str], *, read_only: bool, durable: bool, timeout: float
    ) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._read_only = read_only
        self._durable = durable
        self._timeout = timeout

    def check(self, create: bool) -> None:
        """Refuse a directory, a missing file (unless creating) and a file that is not SQLite, before opening."""
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

    def connect(self) -> sqlite3.Connection:
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

    # ------------------------------------------------------------------ transactions and locks
    @staticmethod
    def begin(conn: Any, *, write: bool) -> None:
        # IMMEDIATE takes the write lock at BEGIN, so two appenders never read the same chain head.
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    @staticmethod
    def lock(conn: Any, name: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the file's only write lock."""

    @staticmethod
    @contextlib.contextmanager
    def lenient_text(conn: Any) -> Iterator[None]:
        """Read TEXT as UTF-8 with surrogate escapes: bytes written behind the store's back must read as an edit
        (the hash no longer matches), not stop the check."""
        conn.text_factory = _lenient_text
        try:
            yield
        finally:
            conn.text_factory = str

    # ------------------------------------------------------------------ inspection
    @staticmethod
    def tables(conn: Any) -> list[str]:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]

    @staticmethod
    def columns(conn: Any, table: str) -> set[str]:
        return {r[1] for r in conn.execute(f"PRAGMA table_info({table})").fetchall()}

    @staticmethod
    def contains_json(column: str) -> str:
        """SQL that is true when the JSON array in ``column`` contains the parameter."""
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = ?)"

    @staticmethod
    def is_busy(exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError)


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
