"""The manifest store: each generated clip's signed C2PA manifest store, kept under its watermark payload, so a clip
that lost its credentials (a remux, a re-encode) can be recovered from the watermark (``verify --store``, the
resolution service)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from gen4sdk import fingerprint as fp
from gen4sdk.errors import InvalidRequestError, StoreError
from gen4sdk.store._database import Database, StoreLocation
from gen4sdk.store._logmodel import StoredManifest, _utc_text

__all__ = ["ManifestTable"]

# a query's candidates (the stored clips sharing most band keys with it) scored by gen4sdk.fingerprint.match
_CANDIDATES = 50


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
        self,
        *,
        payload: bytes,
        manifest_id: str,
        manifest_store: bytes,
        asset_sha256: str,
        fingerprint: bytes | None = None,
    ) -> None:
        """Keep a clip's signed manifest store under its watermark payload, and its perceptual fingerprint
        (``gen4sdk.fingerprint``) when given. Idempotent for identical data."""
        _check_manifest(manifest_id, manifest_store)
        manifest = StoredManifest(
            manifest_id=manifest_id,
            payload=_payload_hex(payload),
            manifest_store=bytes(manifest_store),
            asset_sha256=asset_sha256,
            created_at=_utc_text(_dt.datetime.now(_dt.timezone.utc)),
            fingerprint=fingerprint,
        )
        with self.database.write() as conn:
            self._insert_manifest(conn, manifest)

    @staticmethod
    def _insert_manifest(conn: Any, m: StoredManifest) -> None:
        hashes = _fingerprint_hashes(m.fingerprint)
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
        if hashes is not None and m.fingerprint is not None:
            conn.execute(
                "INSERT INTO manifests_fingerprints(manifest_id, algorithm, fingerprint) VALUES (?, ?, ?)",
                (m.manifest_id, fp.ALGORITHM, bytes(m.fingerprint)),
            )
            conn.executemany(
                "INSERT INTO manifests_fingerprint_bands(band_key, manifest_id) VALUES (?, ?)",
                [(key, m.manifest_id) for key in fp.band_keys(hashes)],
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

    def find_by_content(
        self, query: dict[str, fp.Fingerprint] | fp.Fingerprint, *, limit: int = 10
    ) -> list[tuple[StoredManifest, fp.FingerprintMatch]]:
        """The manifests whose clips look like ``query`` (``gen4sdk.fingerprint.query_views`` of a clip, or one
        fingerprint), best match first; only matches within ``fingerprint.MATCH_DISTANCE``."""
        views = query if isinstance(query, dict) else {"as embedded": query}
        keys = sorted({k for v in views.values() for k in fp.band_keys(v.hashes)})
        if not keys or not self._has_fingerprints():
            return []
        marks = ", ".join("?" * len(keys))
        candidates = self.database.read(
            f"SELECT manifest_id, COUNT(*) AS votes FROM manifests_fingerprint_bands WHERE band_key IN ({marks}) "
            "GROUP BY manifest_id ORDER BY votes DESC, manifest_id LIMIT ?",
            (*keys, _CANDIDATES),
        )
        if not candidates:
            return []
        ids = [r[0] for r in candidates]
        rows = self.database.read(
            "SELECT manifest_id, fingerprint FROM manifests_fingerprints WHERE algorithm = ? AND manifest_id IN "
            f"({', '.join('?' * len(ids))})",
            (fp.ALGORITHM, *ids),
        )
        scored: list[tuple[fp.FingerprintMatch, str]] = []
        for manifest_id, data in rows:
            try:
                found = fp.match(views, fp.Fingerprint.from_bytes(bytes(data)))
            except InvalidRequestError:
                continue  # a row this release cannot read is no match, not a failed lookup
            if found is not None and found.is_match:
                scored.append((found, manifest_id))
        scored.sort(key=lambda m: (m[0].distance, -m[0].frames, m[1]))
        out: list[tuple[StoredManifest, fp.FingerprintMatch]] = []
        for found, manifest_id in scored[: max(1, int(limit))]:
            stored = self.get_manifest(manifest_id)
            if stored is not None:
                out.append((stored, found))
        return out

    def _has_fingerprints(self) -> bool:
        # a store of schema version 3 or older, opened read-only as it is, has no fingerprints yet
        rows = self.database.read("SELECT value FROM audit_meta WHERE key = 'version'")
        return bool(rows) and str(rows[0][0]).isdigit() and int(rows[0][0]) >= 4

    # --- gen4sdk.types.ManifestLookup: how verify() recovers a stripped clip's manifest -----------------
    @property
    def source(self) -> str:
        return self.location

    def manifest_store_for(self, payload: bytes) -> bytes | None:
        found = self.find_manifest(payload)
        return found.manifest_store if found is not None else None

    def manifest_store_for_content(
        self, query: dict[str, fp.Fingerprint]
    ) -> tuple[bytes, fp.FingerprintMatch] | None:
        """The best-matching manifest store for a clip's fingerprint views (gen4sdk.types.ContentLookup)."""
        found = self.find_by_content(query, limit=1)
        return (found[0][0].manifest_store, found[0][1]) if found else None

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


def _fingerprint_hashes(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return fp.Fingerprint.from_bytes(bytes(data)).hashes
    except InvalidRequestError as exc:
        raise StoreError(f"fingerprint: {exc}") from exc


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
