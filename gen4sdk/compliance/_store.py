"""The operator's store: a hash-chained, checkpoint-signed audit log and the manifest store, in one SQLite file.

The file is shared with the policy engine's likeness registry (tables ``likeness_*``), so every table here has the
prefix ``audit_`` or ``manifests_``, the journal is WAL and every write is one short ``BEGIN IMMEDIATE`` transaction.

Chain: ``hash[n] = sha256(hash[n-1] || "\\n" || canonical_json(record[n]))`` with ``hash[0]`` = 64 zeros. A checkpoint
signs ``(log id, seq, hash[seq], time)`` with the operator's key, so everything up to a checkpoint is protected against
someone who can write the database file but does not hold the key. What is *not* detectable is spelled out in
:meth:`Store.verify_log`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import hmac
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from gen4sdk._crypto import verify_signature
from gen4sdk.errors import InvalidRequestError, StoreError
from gen4sdk.types import AuditRecord

logger = logging.getLogger(__name__)

__all__ = [
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
SCHEMA_VERSION = "1"
GENESIS = "0" * 64
_SQLITE_MAGIC = b"SQLite format 3\x00"
# Tables other modules of this SDK keep in the same file; anything else makes the file foreign.
_OWN_PREFIXES = ("audit_", "manifests_", "likeness_", "sqlite_")
_CHECKPOINT_DOMAIN = "gen4sdk.audit.checkpoint.v1"

ProblemKind = Literal[
    "edited",
    "deleted",
    "inserted",
    "reordered",
    "truncated",
    "checkpoint_mismatch",
    "bad_checkpoint_signature",
    "untrusted_checkpoint_signer",
]


@runtime_checkable
class LogSigner(Protocol):
    """What the store needs from a signer: gen4sdk.provenance.Signer fits, so does a KMS-backed object."""

    def sign(self, data: bytes) -> bytes: ...

    @property
    def certificate_chain_pem(self) -> bytes: ...


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LogEntry(_Model):
    seq: int
    prev_hash: str
    hash: str
    record: AuditRecord


class Checkpoint(_Model):
    seq: int
    head_hash: str
    time: str
    log_id: str
    signature: str = Field(description="hex")
    certificate_sha256: str


class LogProblem(_Model):
    seq: int | None = Field(description="sequence number the problem is found at (None: the log as a whole)")
    kind: ProblemKind
    message: str


class LogVerification(_Model):
    ok: bool
    records: int
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str | None = None
    checkpoints: int = 0
    checkpoints_valid: int = 0
    last_checkpoint_seq: int | None = Field(
        default=None, description="highest seq covered by a valid checkpoint"
    )
    unprotected_tail: int = Field(
        default=0,
        description="records after the last valid checkpoint: their deletion is only partly detectable",
    )
    signer_certificates: list[str] = Field(
        default_factory=list, description="sha256 of checkpoint signer certs"
    )
    problems: list[LogProblem] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class StoredManifest(_Model):
    manifest_id: str
    payload: str = Field(description="hex of the watermark payload")
    manifest_store: bytes = Field(repr=False)
    asset_sha256: str
    created_at: str


# ----------------------------------------------------------------------------------------------- commitments


def prompt_commitment(prompt: str, salt: bytes) -> str:
    """The prompt commitment written into the credentials: ``sha256(salt || utf8(prompt))``, hex."""
    return hashlib.sha256(salt + prompt.encode("utf-8")).hexdigest()


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


# ----------------------------------------------------------------------------------------------- helpers


def canonical_json(record: AuditRecord) -> str:
    return json.dumps(
        record.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _chain_hash(prev_hash: str, record_json: str) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + record_json.encode("utf-8")).hexdigest()


def _utc_text(value: _dt.datetime | str) -> str:
    """Fixed-width UTC text, so time ranges are plain string comparisons in SQL."""
    if isinstance(value, str):
        value = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _index_columns(data: dict[str, Any]) -> tuple[Any, ...]:
    """The queryable columns, derived from the record's JSON (verify_log re-derives and compares them)."""
    categories = sorted({c for d in data.get("decisions") or [] for c in (d.get("categories") or [])})
    return (
        data.get("request_id"),
        _utc_text(data["time"]),
        data.get("caller"),
        data.get("outcome"),
        data.get("manifest_id"),
        json.dumps(categories, separators=(",", ":")),
    )


def _checkpoint_message(log_id: str, seq: int, head_hash: str, time_text: str) -> bytes:
    body = {
        "domain": _CHECKPOINT_DOMAIN,
        "log_id": log_id,
        "seq": seq,
        "head_hash": head_hash,
        "time": time_text,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


def _cert_sha256(cert_pem: bytes) -> str:
    """Fingerprint of the leaf certificate (DER), or of the PEM bytes if it does not parse."""
    try:
        from cryptography import x509

        return x509.load_pem_x509_certificate(cert_pem).fingerprint(_sha256()).hex()
    except Exception:  # noqa: BLE001 - a bad certificate is reported by the signature check, not here
        return hashlib.sha256(cert_pem).hexdigest()


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


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
    certificate_pem BLOB NOT NULL
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
    and on :meth:`checkpoint` (call it when shutting down). ``durable=True`` fsyncs every commit
    (``synchronous=FULL``); with False a power cut may lose the last few commits, a killed process still loses
    nothing that was committed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        signer: LogSigner | None = None,
        *,
        create: bool = True,
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
        self._durable = durable
        self._timeout = timeout
        self._local = threading.local()
        self._check_file(create)
        self._log_id = self._init_schema()

    # -- pickling: worker processes reopen the file (connections and signers stay behind)
    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "durable": self._durable, "timeout": self._timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        clone = Store(state["path"], None, create=False, durable=state["durable"], timeout=state["timeout"])
        self.__dict__.update(clone.__dict__)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

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
        if head and head != _SQLITE_MAGIC:
            raise StoreError(f"{self.path} is not a gen4sdk store (not an SQLite database)")

    def _connect(self) -> sqlite3.Connection:
        try:
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
            meta = dict(self._conn().execute("SELECT key, value FROM audit_meta").fetchall())
            if meta.get("schema") == SCHEMA_ID and meta.get("version") == SCHEMA_VERSION and "log_id" in meta:
                return str(meta["log_id"])
        except sqlite3.OperationalError:
            pass  # no such table yet (or locked): the checked path below decides
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable gen4sdk store: {exc}") from exc
        try:
            with self._write() as conn:
                tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
                if "audit_meta" in tables:
                    meta = dict(conn.execute("SELECT key, value FROM audit_meta").fetchall())
                    if meta.get("schema") != SCHEMA_ID:
                        raise StoreError(f"{self.path} has an audit_meta table that is not gen4sdk's")
                    if meta.get("version") != SCHEMA_VERSION:
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
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable gen4sdk store: {exc}") from exc

    # ------------------------------------------------------------------ audit log
    def append(self, record: AuditRecord) -> int:
        """Append one record to the chain; returns its sequence number. Atomic: all or nothing."""
        record_json = canonical_json(record)
        index = _index_columns(json.loads(record_json))
        with self._write() as conn:
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
            if self.signer is not None and self._checkpoint_due(conn, seq):
                self._sign_checkpoint(conn, seq, digest)
        logger.debug("audit record %s appended as seq %d", record.request_id, seq)
        return seq

    def _checkpoint_due(self, conn: sqlite3.Connection, seq: int) -> bool:
        if self.checkpoint_every and seq % self.checkpoint_every == 0:
            return True
        if self.checkpoint_interval is None:
            return False
        row = conn.execute("SELECT time FROM audit_checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return True  # the first record of a signed log is checkpointed at once
        last = _dt.datetime.strptime(row[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc)
        return (_dt.datetime.now(_dt.timezone.utc) - last).total_seconds() >= self.checkpoint_interval

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current head of the log with the operator's key; None when the log is empty."""
        if self.signer is None:
            raise StoreError("this store has no signer; pass signer= to sign checkpoints")
        with self._write() as conn:
            row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            if row is None:
                return None
            return self._sign_checkpoint(conn, row[0], row[1])

    def _sign_checkpoint(self, conn: sqlite3.Connection, seq: int, head_hash: str) -> Checkpoint:
        assert self.signer is not None
        time_text = _utc_text(_dt.datetime.now(_dt.timezone.utc))
        message = _checkpoint_message(self._log_id, seq, head_hash, time_text)
        try:
            signature = bytes(self.signer.sign(message))
            cert = bytes(self.signer.certificate_chain_pem)
        except Exception as exc:
            raise StoreError(f"signing the audit checkpoint failed: {exc}") from exc
        conn.execute(
            "INSERT INTO audit_checkpoints(seq, head_hash, time, signature, certificate_pem) VALUES (?, ?, ?, ?, ?)",
            (seq, head_hash, time_text, signature, cert),
        )
        return Checkpoint(
            seq=seq,
            head_hash=head_hash,
            time=time_text,
            log_id=self._log_id,
            signature=signature.hex(),
            certificate_sha256=_cert_sha256(cert),
        )

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._read(
            "SELECT seq, head_hash, time, signature, certificate_pem FROM audit_checkpoints ORDER BY id"
        )
        return [
            Checkpoint(
                seq=r["seq"],
                head_hash=r["head_hash"],
                time=r["time"],
                log_id=self._log_id,
                signature=bytes(r["signature"]).hex(),
                certificate_sha256=_cert_sha256(bytes(r["certificate_pem"])),
            )
            for r in rows
        ]

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
        conn = self._conn()
        # One read transaction, so the records and checkpoints come from the same snapshot.
        conn.execute("BEGIN")
        try:
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
            for seq, head, t, sig, cert in conn.execute(
                "SELECT seq, head_hash, time, signature, certificate_pem FROM audit_checkpoints ORDER BY id"
            ):
                cp = {
                    "seq": seq,
                    "head_hash": head,
                    "time": t,
                    "signature": bytes(sig).hex(),
                    "certificate_pem": bytes(cert).decode("ascii", "replace"),
                }
                fh.write(json.dumps({"checkpoint": cp}, sort_keys=True) + "\n")
            return n
        finally:
            conn.execute("COMMIT")

    def verify_log(self, *, trusted_certificates: list[bytes] | None = None) -> LogVerification:
        """Check the whole chain and every checkpoint signature.

        Detected, with the sequence number and kind: a record edited in place (content or its queryable columns),
        a record deleted (a gap, or a chain that restarts), a record inserted (a row the chain skips), records
        reordered, a checkpoint whose head no longer matches, a checkpoint signature that does not verify or (with
        ``trusted_certificates``, default: this store's signer) comes from another key, and records deleted from
        under a checkpoint. Someone who can write the file can still rewrite the chain *after* the last checkpoint
        consistently (including removing the tail); the head marker catches a naive tail deletion, nothing catches a
        careful one until the next checkpoint: ``unprotected_tail`` says how many records that concerns.
        """
        try:
            rows = [
                (r[0], r[1], r[2], r[3], tuple(r[4:10]))
                for r in self._conn().execute(
                    "SELECT seq, record_json, prev_hash, hash, request_id, time_utc, caller, outcome, manifest_id, "
                    "categories FROM audit_log ORDER BY seq"
                )
            ]
            checkpoints = [
                (r[0], r[1], r[2], bytes(r[3]), bytes(r[4]))
                for r in self._conn().execute(
                    "SELECT seq, head_hash, time, signature, certificate_pem FROM audit_checkpoints ORDER BY id"
                )
            ]
            head = self._conn().execute("SELECT value FROM audit_meta WHERE key = 'head'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read store {self.path}: {exc}") from exc
        if trusted_certificates is None and self.signer is not None:
            trusted_certificates = [bytes(self.signer.certificate_chain_pem)]
        return _verify_rows(
            rows,
            checkpoints,
            log_id=self._log_id,
            head_marker=head[0] if head else None,
            trusted_certificates=trusted_certificates,
        )

    # ------------------------------------------------------------------ manifest store
    def put_manifest(
        self, *, payload: bytes, manifest_id: str, manifest_store: bytes, asset_sha256: str
    ) -> None:
        """Keep a clip's signed manifest store under its watermark payload. Idempotent for identical data."""
        if not manifest_id:
            raise StoreError("manifest_id is empty")
        if not isinstance(manifest_store, (bytes, bytearray)) or not manifest_store:
            raise StoreError("manifest_store must be non-empty bytes (the C2PA JUMBF manifest store)")
        payload_hex = _payload_hex(payload)
        created = _utc_text(_dt.datetime.now(_dt.timezone.utc))
        with self._write() as conn:
            row = conn.execute(
                "SELECT payload, manifest_store, asset_sha256 FROM manifests_store WHERE manifest_id = ?",
                (manifest_id,),
            ).fetchone()
            if row is not None:
                if (row[0], bytes(row[1]), row[2]) == (payload_hex, bytes(manifest_store), asset_sha256):
                    return
                raise StoreError(f"manifest {manifest_id} is already stored with different content")
            conn.execute(
                "INSERT INTO manifests_store(manifest_id, payload, manifest_store, asset_sha256, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (manifest_id, payload_hex, bytes(manifest_store), asset_sha256, created),
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


# ----------------------------------------------------------------------------------------------- verification

_Row = tuple[int, str, str, str, "tuple[Any, ...] | None"]


def _verify_rows(
    rows: Sequence[_Row],
    checkpoints: Sequence[tuple[int, str, str, bytes, bytes]],
    *,
    log_id: str,
    head_marker: str | None,
    trusted_certificates: list[bytes] | None,
) -> LogVerification:
    """The chain check shared by the SQLite store and exported JSON lines. ``rows`` sorted by seq."""
    problems: dict[tuple[int | None, str], LogProblem] = {}

    def report(seq: int | None, kind: ProblemKind, message: str) -> None:
        problems.setdefault((seq, kind), LogProblem(seq=seq, kind=kind, message=message))

    n = len(rows)
    seqs = [r[0] for r in rows]
    self_ok = [_chain_hash(r[2], r[1]) == r[3] for r in rows]
    by_hash: dict[str, int] = {}
    by_prev: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_hash.setdefault(r[3], i)
        by_prev.setdefault(r[2], []).append(i)

    # Gaps in the numbering: rows deleted in place.
    gap_before: set[int] = set()
    expected = seqs[0] if seqs else 1
    if seqs and seqs[0] != 1:
        report(1, "deleted", f"records 1..{seqs[0] - 1} are missing from the start of the log")
        gap_before.add(0)
    for i in range(1, n):
        if seqs[i] != seqs[i - 1] + 1:
            missing = f"{seqs[i - 1] + 1}" + (f"..{seqs[i] - 1}" if seqs[i] - 1 > seqs[i - 1] + 1 else "")
            report(
                seqs[i - 1] + 1,
                "deleted",
                f"record(s) {missing} deleted (numbering gap before seq {seqs[i]})",
            )
            gap_before.add(i)
    del expected

    # Follow the links from the genesis; a row the walk never reaches was spliced in, a walk that jumps back in
    # seq order means rows were reordered, a walk that stops early means rows were removed and numbers reused.
    visited = [False] * n
    chain: list[int] = []

    def walk(start_hash: str) -> None:
        cur = start_hash
        while True:
            candidates = [j for j in by_prev.get(cur, []) if not visited[j]]
            if not candidates:
                return
            # At a fork, the original row is the one the rest of the chain builds on.
            candidates.sort(key=lambda j: (not by_prev.get(rows[j][3]), seqs[j]))
            j = candidates[0]
            visited[j] = True
            chain.append(j)
            cur = rows[j][3]

    walk(GENESIS)
    for i in range(n):
        if visited[i]:
            continue
        if rows[i][2] in by_hash:
            continue  # reached (or not) from its predecessor's walk; handled below
        successors_unvisited = any(not visited[j] for j in by_prev.get(rows[i][3], []))
        neighbours_linked = 0 < i < n - 1 and rows[i + 1][2] == rows[i - 1][3]
        if not successors_unvisited and neighbours_linked:
            continue  # an isolated forged row between two linked rows: an insertion, reported below
        if i not in gap_before:
            report(
                seqs[i],
                "deleted",
                f"the chain breaks before seq {seqs[i]}: the record before it was deleted (and numbers reused) "
                f"or replaced with a recomputed hash",
            )
        visited[i] = True
        chain.append(i)
        walk(rows[i][3])
    for i in range(n):
        if not visited[i]:
            report(seqs[i], "inserted", f"record seq {seqs[i]} is not part of the chain (inserted)")

    # Reordering: rows whose place in the hash chain differs from their place in the numbering.
    chain_seqs = [seqs[j] for j in chain]
    for actual, expected_seq in zip(chain_seqs, sorted(chain_seqs)):
        if actual != expected_seq:
            report(
                actual,
                "reordered",
                f"record seq {actual} sits where seq {expected_seq} belongs in the hash chain",
            )

    inserted = {p.seq for p in problems.values() if p.kind == "inserted"}
    for i, r in enumerate(rows):
        if seqs[i] in inserted:
            continue
        if not self_ok[i]:
            # Content swapped between neighbouring rows (hashes left in place) is a reorder, not an edit.
            for j in range(max(0, i - 3), min(n, i + 4)):
                if j != i and _chain_hash(rows[j][2], r[1]) == rows[j][3]:
                    report(
                        seqs[i],
                        "reordered",
                        f"record seq {seqs[i]} holds the content chained at seq {seqs[j]}",
                    )
                    break
            else:
                report(
                    seqs[i], "edited", f"record seq {seqs[i]} was edited: its hash does not match its content"
                )
            continue
        if r[4] is not None:
            try:
                derived = _index_columns(json.loads(r[1]))
            except (ValueError, KeyError, TypeError):
                report(seqs[i], "edited", f"record seq {seqs[i]} is not valid JSON")
                continue
            if tuple(derived) != tuple(r[4]):
                report(
                    seqs[i],
                    "edited",
                    f"the queryable columns of seq {seqs[i]} were edited (content is intact)",
                )

    # The head marker is written in the same transaction as each append: a plain DELETE of the tail leaves it behind.
    if head_marker:
        head_seq_text, _, head_hash = head_marker.partition(":")
        if rows and rows[-1][3] == head_hash:
            pass  # the head is intact; rows added or removed before it are reported above
        elif head_hash in by_hash:
            after = seqs[by_hash[head_hash]] + 1
            report(
                after,
                "inserted",
                f"records from seq {after} on were added outside the store (after its head)",
            )
        elif not rows or (head_seq_text.isdigit() and int(head_seq_text) > seqs[-1]):
            last = seqs[-1] if rows else 0
            report(
                last + 1,
                "truncated",
                f"the log ends at seq {last} but its head marker says {head_seq_text}: the tail was deleted",
            )
        else:
            report(seqs[-1], "edited", f"the last record (seq {seqs[-1]}) does not match the head marker")

    # Checkpoints.
    index_of = {s: i for i, s in enumerate(seqs)}
    valid_upto: int | None = None
    valid = 0
    certs: list[str] = []
    trusted = {_cert_sha256(c) for c in trusted_certificates} if trusted_certificates else None
    for seq, head_hash, t, sig, cert in checkpoints:
        fp = _cert_sha256(cert)
        if fp not in certs:
            certs.append(fp)
        message = _checkpoint_message(log_id, seq, head_hash, t)
        if not verify_signature(cert, message, sig):
            report(
                seq, "bad_checkpoint_signature", f"the checkpoint at seq {seq} ({t}) has an invalid signature"
            )
            continue
        if trusted is not None and fp not in trusted:
            report(
                seq,
                "untrusted_checkpoint_signer",
                f"the checkpoint at seq {seq} was signed by another key ({fp})",
            )
            continue
        at = index_of.get(seq)
        if at is None:
            if not rows or seq > seqs[-1]:
                report(
                    seq,
                    "truncated",
                    f"a signed checkpoint covers seq {seq}, but the log ends at "
                    f"{seqs[-1] if rows else 0}: records were removed from its end",
                )
            else:
                report(seq, "deleted", f"the record at signed checkpoint seq {seq} is missing")
            continue
        if rows[at][3] != head_hash:
            report(
                seq,
                "checkpoint_mismatch",
                f"the chain at seq {seq} no longer matches the signed checkpoint ({t}): records up to it were "
                "rewritten",
            )
            continue
        valid += 1
        valid_upto = seq if valid_upto is None else max(valid_upto, seq)

    notes = [
        (
            "records appended after the last checkpoint can be removed or rewritten consistently by someone with "
            "write access to the database; only a naive deletion (head marker left behind) is detected"
        ),
    ]
    if not checkpoints:
        notes.append(
            "the log has no signed checkpoints: the chain shows accidents and naive edits, not forgery"
        )
    ordered = sorted(problems.values(), key=lambda p: (p.seq if p.seq is not None else -1, p.kind))
    return LogVerification(
        ok=not ordered,
        records=n,
        first_seq=seqs[0] if seqs else None,
        last_seq=seqs[-1] if seqs else None,
        head_hash=rows[-1][3] if rows else None,
        checkpoints=len(checkpoints),
        checkpoints_valid=valid,
        last_checkpoint_seq=valid_upto,
        unprotected_tail=(seqs[-1] - valid_upto if valid_upto is not None else len(seqs)) if seqs else 0,
        signer_certificates=certs,
        problems=ordered,
        notes=notes,
    )


def verify_jsonl(
    path_or_stream: str | os.PathLike[str] | IO[str], *, trusted_certificates: list[bytes] | None = None
) -> LogVerification:
    """Verify a log exported with :meth:`Store.export_jsonl`, without the database."""
    if isinstance(path_or_stream, (str, os.PathLike)):
        try:
            with open(path_or_stream, encoding="utf-8") as fh:
                return verify_jsonl(fh, trusted_certificates=trusted_certificates)
        except OSError as exc:
            raise StoreError(f"cannot read {path_or_stream}: {exc}") from exc
    rows: list[_Row] = []
    checkpoints: list[tuple[int, str, str, bytes, bytes]] = []
    log_id = ""
    decoder = json.JSONDecoder()
    for lineno, line in enumerate(path_or_stream, 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
            if "log" in obj:
                log_id = obj["log"]["log_id"]
            elif "checkpoint" in obj:
                cp = obj["checkpoint"]
                checkpoints.append(
                    (
                        cp["seq"],
                        cp["head_hash"],
                        cp["time"],
                        bytes.fromhex(cp["signature"]),
                        cp["certificate_pem"].encode("ascii"),
                    )
                )
            else:
                # The hash covers the record's exact bytes: cut them out of the line rather than re-serialising.
                start = line.index('"record":') + len('"record":')
                _, end = decoder.raw_decode(line, start)
                rows.append((int(obj["seq"]), line[start:end], obj["prev_hash"], obj["hash"], None))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"line {lineno} of the export is not a gen4sdk audit log line: {exc}") from exc
    rows.sort(key=lambda r: r[0])
    return _verify_rows(
        rows, checkpoints, log_id=log_id, head_marker=None, trusted_certificates=trusted_certificates
    )
