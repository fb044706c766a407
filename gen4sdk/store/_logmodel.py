"""The audit log's data: its records' envelope, checkpoints, verification results, and the hashing they share.

Kept apart from the store (SQLite) and the verifier so both can import it without importing each other.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from gen4sdk.types import AuditRecord

__all__ = [
    "GENESIS",
    "Checkpoint",
    "LogEntry",
    "LogProblem",
    "LogSigner",
    "LogVerification",
    "StoredManifest",
    "canonical_json",
    "prompt_commitment",
]

GENESIS = "0" * 64
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
    "empty",
    "unprotected",
    "foreign_checkpoint",
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
    seq: int = Field(description="the tree size: the checkpoint covers records 1..seq")
    head_hash: str = Field(description="the hash chain's value at seq")
    time: str
    log_id: str
    signature: str = Field(description="hex")
    certificate_sha256: str
    note: str | None = Field(
        default=None,
        description="the C2SP checkpoint (signed note) to keep elsewhere; None for a version 1 one",
    )


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
    tree_size: int = Field(default=0, description="records in the Merkle tree (leaves)")
    root_hash: str | None = Field(default=None, description="base64 RFC 9162 root of the whole log")
    origin: str | None = Field(default=None, description="the log's checkpoint origin line")
    checkpoint_pending: str | None = Field(
        default=None,
        description="why the last due checkpoint was not signed (the signer failed), if it was not",
    )
    witnessed_size: int | None = Field(
        default=None, description="tree size of the checkpoint given to verify against, when one was"
    )
    consistency_proof: list[str] = Field(
        default_factory=list,
        description="base64 hashes proving that checkpoint's tree is a prefix of this one",
    )
    problems: list[LogProblem] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class StoredManifest(_Model):
    manifest_id: str
    payload: str = Field(description="hex of the watermark payload")
    manifest_store: bytes = Field(repr=False)
    asset_sha256: str
    created_at: str
    fingerprint: bytes | None = Field(
        default=None,
        repr=False,
        description="the clip's perceptual fingerprint (gen4sdk.fingerprint), if kept",
    )

    @classmethod
    def new(
        cls,
        *,
        payload: bytes,
        manifest_id: str,
        manifest_store: bytes,
        asset_sha256: str,
        fingerprint: bytes | None = None,
    ) -> StoredManifest:
        """A manifest to store now (``Store.append(record, manifest=...)``)."""
        return cls(
            manifest_id=manifest_id,
            payload=bytes(payload).hex(),
            manifest_store=bytes(manifest_store),
            asset_sha256=asset_sha256,
            created_at=_utc_text(_dt.datetime.now(_dt.timezone.utc)),
            fingerprint=fingerprint,
        )


# ----------------------------------------------------------------------------------------------- helpers


def prompt_commitment(prompt: str, salt: bytes) -> str:
    """The prompt commitment written into the credentials: ``sha256(salt || utf8(prompt))``, hex."""
    return hashlib.sha256(salt + prompt.encode("utf-8")).hexdigest()


def canonical_json(record: AuditRecord) -> str:
    return json.dumps(
        record.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _chain_hash(prev_hash: str, record_json: str) -> str:
    # surrogateescape: a record whose stored bytes are not UTF-8 hashes as those bytes (and reads as edited)
    return hashlib.sha256(
        prev_hash.encode("ascii", "surrogateescape") + b"\n" + record_json.encode("utf-8", "surrogateescape")
    ).hexdigest()


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
