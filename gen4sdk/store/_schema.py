"""The store's schema, one per backend, its versions and the migrations between them.

Every table belongs to one of the store's parts and says so by its prefix (``audit_`` the audit log,
``manifests_`` the manifest store, ``likeness_`` the likeness registry); a database with other tables is someone
else's and is refused. The version lives in ``audit_meta`` (key ``version``); a writer upgrades an older store in
place, one step at a time, inside the transaction that opens it, and readers read every version listed in
``READABLE_VERSIONS`` as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = [
    "OWN_PREFIXES",
    "READABLE_VERSIONS",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "create_statements",
    "migrate",
]

logger = logging.getLogger(__name__)

SCHEMA_ID = "gen4sdk.compliance.store"
# 1: the hash-chained audit log, its checkpoints and the manifest store.
# 2: checkpoints are C2SP notes over the Merkle root (column audit_checkpoints.note); version 1 chain-head
#    checkpoints still verify.
# 3: the likeness registry's tables are part of the store's schema (the registry used to create them itself), so one
#    layer creates and upgrades everything; the first version PostgreSQL stores exist in.
# 4: the manifests' perceptual fingerprints (gen4sdk.fingerprint) and their band index, for a lookup by content.
# 5: the generation queue (gen4sdk.store._tasks): partner apps' API keys and their tasks.
SCHEMA_VERSION = "5"
READABLE_VERSIONS = ("1", "2", "3", "4", "5")
OWN_PREFIXES = ("audit_", "manifests_", "likeness_", "jobs_", "sqlite_")

_SQLITE_LOG = """
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
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    time TEXT NOT NULL,
    signature BLOB NOT NULL,
    certificate_pem BLOB NOT NULL,
    note TEXT
);
CREATE TABLE IF NOT EXISTS manifests_store (
    manifest_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    manifest_store BLOB NOT NULL,
    asset_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""

# The same tables in PostgreSQL's types; the column order is SQLite's, so a row reads the same on both.
# manifests_store gets an explicit "rowid": SQLite's implicit one orders manifests stored in the same microsecond.
_POSTGRES_LOG = """
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY,
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
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    id BIGSERIAL PRIMARY KEY,
    seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    time TEXT NOT NULL,
    signature BYTEA NOT NULL,
    certificate_pem BYTEA NOT NULL,
    note TEXT
);
CREATE TABLE IF NOT EXISTS manifests_store (
    manifest_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    manifest_store BYTEA NOT NULL,
    asset_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    rowid BIGSERIAL
);
"""

_INDEXES = """
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log(time_utc);
CREATE INDEX IF NOT EXISTS audit_log_caller ON audit_log(caller);
CREATE INDEX IF NOT EXISTS audit_log_outcome ON audit_log(outcome);
CREATE INDEX IF NOT EXISTS audit_log_manifest ON audit_log(manifest_id);
CREATE INDEX IF NOT EXISTS audit_log_request ON audit_log(request_id);
CREATE INDEX IF NOT EXISTS manifests_store_payload ON manifests_store(payload);
"""

# A manifest's fingerprint, and the index that finds candidates for a query (gen4sdk.fingerprint.band_keys): one
# row per distinct band value of its frames. The manifest's row comes first; both are written in its transaction.
_FINGERPRINTS = """
CREATE TABLE IF NOT EXISTS manifests_fingerprints (
    manifest_id TEXT PRIMARY KEY REFERENCES manifests_store(manifest_id),
    algorithm TEXT NOT NULL,
    fingerprint {blob} NOT NULL
);
CREATE TABLE IF NOT EXISTS manifests_fingerprint_bands (
    band_key INTEGER NOT NULL,
    manifest_id TEXT NOT NULL REFERENCES manifests_store(manifest_id),
    PRIMARY KEY (band_key, manifest_id)
);
"""

# The generation queue. Times are epoch seconds (float); an idempotency key is unique per API key (NULLs are not).
_JOBS = """
CREATE TABLE IF NOT EXISTS jobs_api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_sha256 TEXT NOT NULL UNIQUE,
    rate_limit INTEGER NOT NULL,
    created_at {real} NOT NULL,
    revoked_at {real}
);
CREATE TABLE IF NOT EXISTS jobs_tasks (
    id TEXT PRIMARY KEY,
    api_key_id TEXT NOT NULL REFERENCES jobs_api_keys(id),
    idempotency_key TEXT,
    request_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    request_json TEXT NOT NULL,
    image {blob},
    image_type TEXT,
    progress {real} NOT NULL DEFAULT 0,
    stage TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    failure_code TEXT,
    failure TEXT,
    result_json TEXT,
    created_at {real} NOT NULL,
    started_at {real},
    finished_at {real},
    heartbeat_at {real},
    UNIQUE (api_key_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS jobs_tasks_queue ON jobs_tasks(status, created_at);
CREATE INDEX IF NOT EXISTS jobs_tasks_by_key ON jobs_tasks(api_key_id, created_at)
"""

_LIKENESS = """
CREATE TABLE IF NOT EXISTS likeness_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS likeness_identities (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS likeness_aliases (
    identity_id TEXT NOT NULL REFERENCES likeness_identities(id) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    PRIMARY KEY (identity_id, alias)
);
CREATE TABLE IF NOT EXISTS likeness_embeddings (
    id {autoid},
    identity_id TEXT NOT NULL REFERENCES likeness_identities(id) ON DELETE CASCADE,
    encoder TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector {blob} NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS likeness_embeddings_encoder ON likeness_embeddings(encoder);
CREATE TABLE IF NOT EXISTS likeness_grants (
    id TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL,
    grantee TEXT NOT NULL,
    uses TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS likeness_grants_lookup ON likeness_grants(identity_id, grantee);
INSERT INTO likeness_meta(key, value) VALUES ('revision', '0') ON CONFLICT (key) DO NOTHING;
"""


def _split(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _likeness(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return _split(_LIKENESS.format(autoid="INTEGER PRIMARY KEY AUTOINCREMENT", blob="BLOB"))
    return _split(_LIKENESS.format(autoid="BIGSERIAL PRIMARY KEY", blob="BYTEA"))


def _fingerprints(dialect: str) -> list[str]:
    return _split(_FINGERPRINTS.format(blob="BLOB" if dialect == "sqlite" else "BYTEA"))


def _jobs(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return _split(_JOBS.format(real="REAL", blob="BLOB"))
    return _split(_JOBS.format(real="DOUBLE PRECISION", blob="BYTEA"))


def create_statements(dialect: str) -> list[str]:
    """The DDL of a new store at ``SCHEMA_VERSION``."""
    log = _SQLITE_LOG if dialect == "sqlite" else _POSTGRES_LOG
    return _split(log) + _split(_INDEXES) + _likeness(dialect) + _fingerprints(dialect) + _jobs(dialect)


def _v1_to_v2(conn: Any, dialect: str) -> None:
    conn.execute("ALTER TABLE audit_checkpoints ADD COLUMN note TEXT")


def _v2_to_v3(conn: Any, dialect: str) -> None:
    # A registry that shared the file already made these tables (the same DDL); IF NOT EXISTS keeps them.
    for statement in _likeness(dialect):
        conn.execute(statement)


def _v3_to_v4(conn: Any, dialect: str) -> None:
    # manifests stored before have no fingerprint: they are found by their watermark only
    for statement in _fingerprints(dialect):
        conn.execute(statement)


def _v4_to_v5(conn: Any, dialect: str) -> None:
    for statement in _jobs(dialect):
        conn.execute(statement)


# version -> the step to the next version
_MIGRATIONS: dict[str, tuple[str, Callable[[Any, str], None]]] = {
    "1": ("2", _v1_to_v2),
    "2": ("3", _v2_to_v3),
    "3": ("4", _v3_to_v4),
    "4": ("5", _v4_to_v5),
}


def migrate(conn: Any, dialect: str, version: str, where: str) -> None:
    """Upgrade the store from ``version`` to ``SCHEMA_VERSION`` in the caller's write transaction."""
    while version != SCHEMA_VERSION:
        target, step = _MIGRATIONS[version]
        step(conn, dialect)
        conn.execute("UPDATE audit_meta SET value = ? WHERE key = 'version'", (target,))
        logger.info("store %s upgraded from schema version %s to %s", where, version, target)
        version = target
