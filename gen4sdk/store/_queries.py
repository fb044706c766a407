"""The audit log's reading side: queries by time, caller, outcome, category or id, and the JSON-lines export.

``Store`` (``_log.py``) adds appending, checkpoints, proofs and verification on top; both read the same rows through
the database layer, on either backend.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import uuid
from pathlib import Path
from typing import IO, Any

from gen4sdk.errors import InvalidRequestError, StoreError
from gen4sdk.store._database import SCHEMA_ID, SCHEMA_VERSION
from gen4sdk.store._logcheck import CheckpointRow
from gen4sdk.store._logmodel import LogEntry, _utc_text
from gen4sdk.store._manifests import ManifestTable
from gen4sdk.types import AuditRecord

__all__ = ["LogQueries"]


class LogQueries(ManifestTable):
    """Reading the audit log of a store (and, inherited, its manifest store)."""

    def _checkpoint_rows(self, conn: Any) -> list[CheckpointRow]:
        note = "note" if self.database.note_column else "NULL"
        return [
            (r[0], r[1], r[2], bytes(r[3]), bytes(r[4]), r[5])
            for r in conn.execute(
                f"SELECT seq, head_hash, time, signature, certificate_pem, {note} FROM audit_checkpoints "
                "ORDER BY id"
            )
        ]

    def __len__(self) -> int:
        return int(self.database.read("SELECT COUNT(*) FROM audit_log")[0][0])

    def _entries(self, rows: list[tuple[Any, ...]]) -> list[LogEntry]:
        out = []
        for r in rows:
            try:
                record = AuditRecord.model_validate_json(r[1])
            except ValueError as exc:
                raise StoreError(
                    f"audit record seq {r[0]} is not a valid record (run log verify): {exc}"
                ) from exc
            out.append(LogEntry(seq=r[0], prev_hash=r[2], hash=r[3], record=record))
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
            where.append(self.database.contains_json("audit_log.categories"))
            params.append(category)
        sql = "SELECT seq, record_json, prev_hash, hash FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq " + ("DESC" if newest_first else "ASC")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self._entries(self.database.read(sql, params))

    def find_record(self, key: str) -> LogEntry | None:
        """The latest record whose request id or manifest id is ``key``."""
        rows = self.database.read(
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
        with self.database.snapshot() as conn:
            fh.write(
                json.dumps(
                    {"log": {"log_id": self.database.log_id, "schema": SCHEMA_ID, "version": SCHEMA_VERSION}}
                )
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
