"""A throwaway local PostgreSQL server for the store's tests and benchmarks/store_backends.py.

``initdb`` into a temporary directory and ``pg_ctl start`` on a free TCP port of 127.0.0.1, with the unix socket in
the same directory, so nothing of the host's own PostgreSQL (if any) is used or touched. PostgreSQL refuses to run
as root: as root, the server runs as an unprivileged user (``postgres`` where Debian's package made one, else
``nobody``) through ``runuser``. Missing binaries are an error with the package to install, never a skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

__all__ = ["PostgresServer", "PostgresUnavailable", "raw_connection"]

SUPERUSER = "gen4sdk"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server would not start."""


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    # Debian's postgresql package keeps the server binaries off PATH, one directory per major version.
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]), reverse=True
    )
    if not candidates:
        raise PostgresUnavailable(
            f"the PostgreSQL server program {name!r} was not found (not on PATH, nor in /usr/lib/postgresql/*/bin);"
            " install Debian's 'postgresql' package (apt-get install postgresql), as .ci/run does"
        )
    return candidates[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """None when not root; otherwise an existing unprivileged account to run the server as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and neither a 'postgres' nor a 'nobody' account exists")


class PostgresServer:
    """One server; ``create_database()`` gives each test its own empty database (a ``postgresql://`` URL)."""

    def __init__(self, *, fsync: bool = False) -> None:
        self._fsync = fsync
        self._dir: Path | None = None
        self.port = 0
        self._options = ""
        self._user = _server_user()

    def _run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        argv = list(cmd) if self._user is None else ["runuser", "-u", self._user, "--", *cmd]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr or done.stdout}"
            )
        return done

    def start(self) -> PostgresServer:
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        self._dir = Path(tempfile.mkdtemp(prefix="gen4sdk-pg-"))
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self._dir, entry.pw_uid, entry.pw_gid)
        data = self._dir / "data"
        self._run(initdb, "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale")
        self.port = _free_port()
        options = f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c max_connections=200" + (
            "" if self._fsync else " -c fsync=off -c full_page_writes=off"
        )
        self._options = options
        self._run(pg_ctl, "-D", str(data), "-l", str(self._dir / "server.log"), "-o", options, "-w", "start")
        return self

    def halt(self) -> None:
        """Stop the server at once, as a crash or a lost network would (its data stays for :meth:`resume`)."""
        assert self._dir is not None
        self._run(_binary("pg_ctl"), "-D", str(self._dir / "data"), "-m", "immediate", "-w", "stop")

    def resume(self) -> None:
        assert self._dir is not None
        self._run(_binary("pg_ctl"), "-D", str(self._dir / "data"), "-l", str(self._dir / "server.log"),
                  "-o", self._options, "-w", "start")  # fmt: skip

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        import psycopg

        name = "store_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self._dir is None:
            return
        try:
            self._run(_binary("pg_ctl"), "-D", str(self._dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class _Sqlite:
    def __init__(self, path: str) -> None:
        import sqlite3

        self.conn = sqlite3.connect(path, isolation_level=None)

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def raw_connection(location: str) -> Any:
    """A connection behind the store's back, taking ``?`` parameters on both backends (for tampering tests):
    ``with raw_connection(store.database.target) as db: db.execute(...)``; every statement commits at once."""
    if location.startswith("postgresql://"):
        import psycopg

        from gen4sdk.store._postgres import PgConnection

        return PgConnection(psycopg.connect(location, autocommit=True))
    return _Sqlite(location)
