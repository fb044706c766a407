"""The manifest store: each generated clip's signed C2PA manifest store, kept under its watermark payload, so a clip
that lost its credentials (a remux, a re-encode) can be recovered from the watermark (``verify --store``, the
resolution service)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from gen4sdk.errors import StoreError
from gen4sdk.store._database import Database, StoreLocation
from gen4sdk.store._logmodel import StoredManifest, _utc_text

__all__ = ["ManifestTable"]


class ManifestTable:
    """The ``manifests_store`` table of a store; also a :class:`gen4sdk.types.ManifestLookup`."""

    def __init__(
        self,
        location: StoreLocation,
        *,
        create: bool = True,
        read_only: bool = False,
        durable: bool = True,
        timeout: float = 60.0,
    ) -> None:
        self.database = Database(
            location, create=create, read_only=read_only, durable=durable, timeout=timeout
        )

    @property
    def path(self) -> Path | None:
        """The store's SQLite file; None for a PostgreSQL store (see :attr:`location`)."""
        return self.database.path

    @property
    def location(self) -> str:
        """The store's file path or database URL, without its password."""
        return self.database.location

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        self.database.close()

    def __enter__(self) -> ManifestTable:  # noqa: PYI034 - Store inherits it; both close the same way
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        with self.database.write() as conn:
            self._insert_manifest(conn, manifest)

    @staticmethod
    def _insert_manifest(conn: Any, m: StoredManifest) -> None:
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
        rows = self.database.read(
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
        return self.location

    def manifest_store_for(self, payload: bytes) -> bytes | None:
        found = self.find_manifest(payload)
        return found.manifest_store if found is not None else None

    def get_manifest(self, manifest_id: str) -> StoredManifest | None:
        rows = self.database.read(
            "SELECT manifest_id, payload, manifest_store, asset_sha256, created_at FROM manifests_store "
            "WHERE manifest_id = ?",
            (manifest_id,),
        )
        return _stored(rows[0]) if rows else None


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


def _stored(r: tuple[Any, ...]) -> StoredManifest:
    return StoredManifest(
        manifest_id=r[0], payload=r[1], manifest_store=bytes(r[2]), asset_sha256=r[3], created_at=r[4]
    )
