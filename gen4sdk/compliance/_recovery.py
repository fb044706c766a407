"""``gen4sdk.verify``: provenance's verifier with recovery from a manifest store given by path or URL.

``gen4sdk.provenance.verify`` receives a ``ManifestLookup`` and imports nothing of compliance; this layer, which
owns the store and the resolution service client, turns what a user passes as ``store`` into such a lookup.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gen4sdk.compliance._resolve import resolve_by_binding
from gen4sdk.fingerprint import Fingerprint, FingerprintMatch
from gen4sdk.provenance.verify import TrustAnchors
from gen4sdk.provenance.verify import verify as _verify
from gen4sdk.store import Store, StoreLocation, redact_location
from gen4sdk.types import ManifestLookup, VerificationReport

__all__ = ["ResolutionService", "manifest_lookup", "verify"]


class ResolutionService:
    """A C2PA Soft Binding Resolution API at ``url`` as a :class:`~gen4sdk.types.ManifestLookup`."""

    def __init__(self, url: str, *, algorithm: str | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self._algorithm = algorithm
        self._timeout = timeout

    @property
    def source(self) -> str:
        return self.url

    def manifest_store_for(self, payload: bytes) -> bytes | None:
        algorithm = self._algorithm
        if algorithm is None:
            # imported here: the codec's tables load only when a stripped clip is actually looked up
            from watermark import Watermarker

            algorithm = Watermarker.public().algorithm
        return resolve_by_binding(self.url, algorithm, payload, timeout=self._timeout)


class _StoreFile:
    """A store (database file or PostgreSQL URL) opened only when a lookup happens, and closed after it: most clips
    carry their credentials and never need it, and a missing database is then a problem of the report, not an
    exception."""

    def __init__(self, location: StoreLocation) -> None:
        self._location = location

    @property
    def source(self) -> str:
        return redact_location(self._location)

    def manifest_store_for(self, payload: bytes) -> bytes | None:
        store = Store(self._location, read_only=True)
        try:
            return store.manifest_store_for(payload)
        finally:
            store.close()

    def manifest_store_for_content(
        self, query: dict[str, Fingerprint]
    ) -> tuple[bytes, FingerprintMatch] | None:
        store = Store(self._location, read_only=True)
        try:
            return store.manifest_store_for_content(query)
        finally:
            store.close()


def manifest_lookup(store: ManifestLookup | str | os.PathLike[str] | None) -> ManifestLookup | None:
    """The lookup for what ``verify`` accepts as ``store``: a lookup as is, an http(s) URL as a resolution
    service, anything else as a store (a database path or a ``postgresql://`` URL)."""
    if store is None or isinstance(store, ManifestLookup):
        return store
    if isinstance(store, str) and store.startswith(("http://", "https://")):
        return ResolutionService(store)
    return _StoreFile(store)


def verify(
    path: str | Path,
    *,
    trust_anchors: TrustAnchors = None,
    store: ManifestLookup | str | Path | None = None,
    watermark_keys: Sequence[bytes] = (),
    detect_watermark: bool = True,
) -> VerificationReport:
    """Verify one file. Never raises on a bad file; see DESIGN.md for the ``status`` values.

    ``trust_anchors``: PEM file path(s) or PEM text of the CA certificates to trust. ``store``: a manifest store
    (``gen4sdk.Store``, its database path or its ``postgresql://`` URL) or a soft-binding resolution service URL, used to recover stripped
    credentials. ``watermark_keys``: operator watermark keys to try besides the public one.
    """
    return _verify(
        path,
        trust_anchors=trust_anchors,
        store=manifest_lookup(store),
        watermark_keys=watermark_keys,
        detect_watermark=detect_watermark,
    )
