"""The operator's store: the audit log (a Merkle tree log with signed checkpoints) and the manifest store, in one
database (an SQLite file, or PostgreSQL for writers on several hosts).

The database (``_database.py``) is shared with the manifest store (``_manifests.py``) and the policy engine's
likeness registry; ``Store`` is the audit log over both.

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
from collections.abc import Callable
from typing import Any

from gen4sdk.errors import StoreError
from gen4sdk.store import _merkle
from gen4sdk.store._checkpoint import checkpoint_text, parse_checkpoint, proof_text, sign_checkpoint
from gen4sdk.store._database import StoreLocation
from gen4sdk.store._logcheck import check_against, origin_of, verify_jsonl, verify_rows
from gen4sdk.store._logmodel import (
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
from gen4sdk.store._manifests import _check_manifest
from gen4sdk.store._queries import LogQueries
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


class Store(LogQueries):
    """Audit log + manifest store in one database. Safe for several threads and processes at once.

    ``location``: an SQLite file path (created if missing; WAL mode, writers on one host) or a
    ``postgresql://user:password@host:port/dbname`` URL (the database must exist; needs ``gen4sdk[postgres]``),
    which writers on many hosts may share: appends serialise on a lock inside the database.

    ``signer`` (optional) signs log checkpoints: automatically every ``checkpoint_every`` appends and on the first
    append more than ``checkpoint_interval`` seconds after the last checkpoint (so a quiet log is protected too),
    and on :meth:`checkpoint` (call it when shutting down). Signing happens after the record is committed: when the
    signer fails, the record stays, the failure is noted in the store and the next append signs. ``durable=True``
    fsyncs every commit (SQLite ``synchronous=FULL``; PostgreSQL ``synchronous_commit``); with False a power cut
    may lose the last few commits, a killed process still loses nothing that was committed. ``read_only=True`` opens an existing store without writing to
    it at all (no schema, no journal switch; on PostgreSQL a read-only session): what reading commands use, and
    what works on a read-only mount or with a read-only database role.
    """

    def __init__(
        self,
        location: StoreLocation,
        signer: LogSigner | None = None,
        *,
        create: bool = True,
        read_only: bool = False,
        checkpoint_every: int | None = 100,
        checkpoint_interval: float | None = 3600.0,
        durable: bool = True,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(location, create=create, read_only=read_only, durable=durable, timeout=timeout)
        self.signer = signer
        self.checkpoint_every = checkpoint_every if checkpoint_every and checkpoint_every > 0 else None
        self.checkpoint_interval = (
            checkpoint_interval if checkpoint_interval and checkpoint_interval > 0 else None
        )

    # -- pickling: worker processes reopen the file (connections and signers stay behind)
    def __getstate__(self) -> dict[str, Any]:
        return {
            "location": self.database.target,
            "durable": self.database.durable,
            "timeout": self.database.timeout,
            "read_only": self.database.read_only,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        clone = Store(
            state["location"],
            None,
            create=False,
            read_only=state.get("read_only", False),
            durable=state["durable"],
            timeout=state["timeout"],
        )
        self.__dict__.update(clone.__dict__)

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    @property
    def origin(self) -> str:
        """The log's name in its checkpoints (their first line and their signature's key name)."""
        return origin_of(self.database.log_id)

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
        with self.database.write() as conn:
            # One appender at a time, on every host: the chain head read next is the one this record extends.
            self.database.lock(conn, "audit_log")
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
            _set_meta(conn, "head", f"{seq}:{digest}")
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
        rows = self.database.read("SELECT value FROM audit_meta WHERE key = 'checkpoint_pending'")
        if rows:
            return True  # the signer failed before: try again
        if self.checkpoint_interval is None:
            return False
        row = self.database.read("SELECT time FROM audit_checkpoints ORDER BY id DESC LIMIT 1")
        if not row:
            return True  # the first record of a signed log is checkpointed at once
        last = _dt.datetime.strptime(row[0][0], _ISO).replace(tzinfo=_dt.timezone.utc)
        return (_dt.datetime.now(_dt.timezone.utc) - last).total_seconds() >= self.checkpoint_interval

    def _leaf_rows(self, conn: Any, upto: int | None = None) -> list[tuple[int, str, str]]:
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
        with self.database.snapshot() as conn:
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
            with contextlib.suppress(StoreError), self.database.write() as conn:
                _set_meta(conn, "checkpoint_pending", reason)
            raise StoreError(f"signing the audit checkpoint failed: {exc}") from exc
        with self.database.write() as conn:
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
            log_id=self.database.log_id,
            signature=signature.hex(),
            certificate_sha256=_cert_sha256(cert),
            note=note,
        )

    def checkpoints(self) -> list[Checkpoint]:
        with self.database.snapshot() as conn:
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
        found = self.database.read(
            "SELECT seq FROM audit_log WHERE request_id = ? ORDER BY seq DESC LIMIT 1", (request_id,)
        )
        if not found:
            raise StoreError(f"the log has no record of request {request_id!r}")
        seq = int(found[0][0])
        cp = self.latest_checkpoint()
        if (cp is None or cp.seq < seq) and self.signer is not None and not self.database.read_only:
            cp = self.checkpoint()
        if cp is None or cp.seq < seq or cp.note is None:
            raise StoreError(
                f"record {seq} is not covered by a signed checkpoint yet (the newest covers "
                f"{cp.seq if cp else 0}); sign one with 'gen4sdk log checkpoint --cert ... --key ...'"
            )
        with self.database.snapshot() as conn:
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
        db = self.database
        try:
            # Bytes that are not UTF-8 (written behind the store's back) must read as an edit, not stop the check.
            with db.lenient_text(db.connection()), db.snapshot() as conn:
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
        except UnicodeDecodeError as exc:  # database errors are StoreErrors already (snapshot)
            raise StoreError(f"cannot read store {self.location}: {exc}") from exc
        pinned = trusted_certificates is not None
        if trusted_certificates is None and self.signer is not None:
            trusted_certificates = [bytes(self.signer.certificate_chain_pem)]
            pinned = True
        result = verify_rows(
            rows,
            checkpoints,
            log_id=self.database.log_id,
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


def _set_meta(conn: Any, key: str, value: str) -> None:
    # the upsert both SQLite (3.24+) and PostgreSQL take
    conn.execute(
        "INSERT INTO audit_meta(key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
