"""The shared backend: a PostgreSQL database (psycopg 3), which writers on many hosts may append to at once.

The store's SQL is written once, with ``?`` parameters as SQLite takes them; the connection wrapper here turns them
into psycopg's ``%s``. Appends serialise on a transaction-scoped advisory lock (``pg_advisory_xact_lock``): it is
released by COMMIT, ROLLBACK or the server noticing the connection is gone, so a writer killed with SIGKILL holds
it no longer than its dead connection and leaves no half-written record (its transaction never committed).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gen4sdk._extras import require
from gen4sdk.errors import StoreError

__all__ = ["PostgresBackend", "is_postgres_url", "redact_url"]

logger = logging.getLogger(__name__)

_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.lower().startswith(_SCHEMES)


def redact_url(url: str) -> str:
    """The URL without its password, for messages and ``Store.location``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _lock_key(name: str) -> int:
    # A stable signed 64-bit key per lock name (advisory locks are scoped to the current database).
    return int.from_bytes(hashlib.sha256(b"gen4sdk.store." + name.encode()).digest()[:8], "big", signed=True)


class PgConnection:
    """A psycopg connection that takes the store's ``?`` placeholders (and is used like an sqlite3 one)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    @staticmethod
    def _sql(sql: str) -> str:
        # The store's SQL has no '?' or '%' inside string literals, so a plain replacement is exact.
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(self._sql(sql), tuple(params) if params else None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(self._sql(sql), [tuple(r) for r in rows])

    def close(self) -> None:
        self.raw.close()

    # ``with connect_raw(url) as db:`` reads like sqlite3's; autocommit, so there is nothing to commit here.
    def __enter__(self) -> PgConnection:  # noqa: PYI034 - final in practice; typing_extensions.Self is not needed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PostgresBackend:
    """How the database layer opens, locks and inspects a PostgreSQL store."""

    dialect = "postgresql"

    def __init__(self, url: str, *, read_only: bool, durable: bool, timeout: float) -> None:
        require("a PostgreSQL store", ["psycopg"], extra="postgres")
        import psycopg

        self._psycopg = psycopg
        self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
        self.path = None
        self.url = url
        self.location = redact_url(url)
        self._read_only = read_only
        self._durable = durable
        self._timeout = timeout

    def check(self, create: bool) -> None:
        """Nothing to check before connecting: the database itself must exist (it is not created here)."""

    def connect(self) -> PgConnection:
        options = [f"-c lock_timeout={int(self._timeout * 1000)}"]
        if self._read_only:
            # enforced by the server for every statement of the session, not only inside our transactions
            options.append("-c default_transaction_read_only=on")
        if not self._durable:
            options.append("-c synchronous_commit=off")
        try:
            raw = self._psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, int(min(self._timeout, 30))),
                options=" ".join(options),
            )
        except self._psycopg.Error as exc:
            message = str(exc).strip()
            parts = urlsplit(self.url)
            if parts.password:
                message = message.replace(parts.password, "***")
            raise StoreError(f"cannot connect to the store database {self.location}: {message}") from exc
        return PgConnection(raw)

    # ------------------------------------------------------------------ transactions and locks
    def begin(self, conn: Any, *, write: bool) -> None:
        if write:
            conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        else:
            # one snapshot for every query of a read (export, verify), whatever commits meanwhile
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    @staticmethod
    def lock(conn: Any, name: str) -> None:
        """Hold the named lock until this transaction ends: one appender at a time on every host."""
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(name),))

    @staticmethod
    @contextmanager
    def lenient_text(conn: Any) -> Iterator[None]:
        """Nothing to do: PostgreSQL stores only valid text in TEXT columns."""
        yield

    # ------------------------------------------------------------------ inspection
    @staticmethod
    def tables(conn: Any) -> list[str]:
        return [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        ]

    @staticmethod
    def columns(conn: Any, table: str) -> set[str]:
        return {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ?",
                (table,),
            )
        }

    @staticmethod
    def contains_json(column: str) -> str:
        """SQL that is true when the JSON array in ``column`` contains the parameter."""
        return f"({column})::jsonb @> jsonb_build_array(?::text)"

    def is_busy(self, exc: Exception) -> bool:
        return isinstance(exc, self._psycopg.errors.LockNotAvailable)
