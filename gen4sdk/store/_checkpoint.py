"""The audit log's checkpoints and inclusion proofs in the public transparency-log text formats.

- A checkpoint is a C2SP signed note (c2sp.org/signed-note) whose text is a C2SP checkpoint
  (c2sp.org/tlog-checkpoint): the log's origin, its tree size and its RFC 9162 root hash in base64, then a blank
  line and ``— <key name> base64(key id || signature)``. The key name is the origin. Key ids follow the
  signed-note spec: ECDSA keys (type 0x02) hash their DER SubjectPublicKeyInfo, Ed25519 keys (type 0x01) hash
  ``name || 0x0A || 0x01 || key``; RSA-PSS keys, which have no assigned type, use 0xff and a gen4sdk label.
- An inclusion proof is a C2SP tlog-proof (c2sp.org/tlog-proof@v1) whose ``extra`` line carries the record's
  exact bytes (the leaf), so one file holds everything a third party needs: the record, the audit path and the
  signed checkpoint. :func:`verify_log_proof` checks it with nothing but the operator's certificate.

These are plain text files made to be kept outside the database: in a ticket, another system, with a witness.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gen4sdk._crypto import verify_signature
from gen4sdk.store._merkle import leaf_hash, verify_inclusion
from gen4sdk.types import AuditRecord

__all__ = [
    "LogProofCheck",
    "ParsedCheckpoint",
    "checkpoint_text",
    "key_id",
    "parse_checkpoint",
    "parse_proof",
    "proof_text",
    "sign_checkpoint",
    "verify_checkpoint_signature",
    "verify_log_proof",
]

PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_DASH = "\u2014 "
_MAX_NOTE = 1 << 20  # a checkpoint is a few hundred bytes; anything near this is not one
_MAX_SIGNATURES = 100
_RSA_TYPE = b"\xffgen4sdk.rsa-pss-sha256"


class CheckpointFormatError(ValueError):
    """Text that is not a well-formed checkpoint or proof; the store turns it into a StoreError with context."""


class ParsedCheckpoint(BaseModel):
    """A checkpoint note taken apart; nothing in it is trusted before :func:`verify_checkpoint_signature`."""

    model_config = ConfigDict(frozen=True)

    text: str = Field(description="the whole note, signatures included")
    body: str = Field(description="the signed text: origin, size, root, each ending in a newline")
    origin: str
    size: int
    root: bytes
    signatures: list[tuple[str, bytes, bytes]] = Field(description="(key name, key id, signature)")


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The note text of a checkpoint (what is signed)."""
    if not origin or any(c.isspace() or c == "+" for c in origin):
        raise CheckpointFormatError(f"origin {origin!r} must be non-empty, without spaces or '+'")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def _public_key_der(certificate_pem: bytes) -> tuple[bytes, bytes, bytes]:
    """(signature type, SPKI DER, raw Ed25519 key or b'') of the first certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    pub = x509.load_pem_x509_certificates(certificate_pem)[0].public_key()
    spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return b"\x01", spki, raw
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return b"\x02", spki, b""
    return _RSA_TYPE, spki, b""


def key_id(name: str, certificate_pem: bytes) -> bytes:
    """The 4-byte signed-note key id of the certificate's key under ``name``."""
    kind, spki, raw = _public_key_der(certificate_pem)
    if kind == b"\x01":
        return hashlib.sha256(name.encode() + b"\n" + kind + raw).digest()[:4]
    if kind == b"\x02":
        return hashlib.sha256(spki).digest()[:4]
    return hashlib.sha256(name.encode() + b"\n" + kind + spki).digest()[:4]


def sign_checkpoint(origin: str, size: int, root: bytes, signature: bytes, certificate_pem: bytes) -> str:
    """The signed note: ``signature`` must be the signer's signature over :func:`checkpoint_text`."""
    body = checkpoint_text(origin, size, root)
    sig = base64.b64encode(key_id(origin, certificate_pem) + signature).decode("ascii")
    return f"{body}\n{_DASH}{origin} {sig}\n"


def parse_checkpoint(text: str) -> ParsedCheckpoint:
    """Split a signed checkpoint note; raises CheckpointFormatError when it is not one."""
    if len(text) > _MAX_NOTE:
        raise CheckpointFormatError("too large to be a checkpoint")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise CheckpointFormatError("control characters are not allowed in a signed note")
    if not text.endswith("\n") or "\n\n" not in text:
        raise CheckpointFormatError("not a signed note (no blank line before the signatures)")
    split = text.rindex("\n\n")
    body, sig_block = text[: split + 1], text[split + 2 :]
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise CheckpointFormatError("a checkpoint has origin, tree size and root hash lines")
    origin, size_text, root_text = lines[:3]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointFormatError(f"tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointFormatError(f"root hash {root_text!r} is not base64") from exc
    if len(root) != 32:
        raise CheckpointFormatError("the root hash is not 32 bytes")
    signatures = []
    for line in sig_block[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise CheckpointFormatError(f"malformed signature line {line[:40]!r}")
        name, _, sig_text = line[len(_DASH) :].partition(" ")
        try:
            raw = base64.b64decode(sig_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CheckpointFormatError("a signature is not base64") from exc
        if not name or len(raw) < 5:
            raise CheckpointFormatError("a signature line lacks its key name or signature")
        signatures.append((name, raw[:4], raw[4:]))
    if not signatures or len(signatures) > _MAX_SIGNATURES:
        raise CheckpointFormatError("a checkpoint carries 1 to 100 signatures")
    return ParsedCheckpoint(
        text=text, body=body, origin=origin, size=int(size_text), root=root, signatures=signatures
    )


def verify_checkpoint_signature(checkpoint: ParsedCheckpoint, certificates: list[bytes]) -> bytes | None:
    """The certificate whose key signed the checkpoint under its origin, or None.

    As the signed-note spec asks, lines from unknown keys are ignored, and a line from a known key that fails to
    verify rejects the whole note.
    """
    verified = None
    for cert in certificates:
        try:
            kid = key_id(checkpoint.origin, cert)
        except Exception:  # noqa: BLE001, S112 - an unreadable certificate knows no key
            continue
        for name, line_kid, sig in checkpoint.signatures:
            if name != checkpoint.origin or line_kid != kid:
                continue
            if not verify_signature(cert, checkpoint.body.encode("utf-8"), sig):
                return None
            verified = cert
    return verified


# ------------------------------------------------------------------------------------------------ proofs


def proof_text(index: int, path: list[bytes], record: bytes, checkpoint: str) -> str:
    """A C2SP tlog-proof carrying the record's bytes in its ``extra`` line."""
    lines = [PROOF_HEADER, "extra " + base64.b64encode(record).decode("ascii"), f"index {index}"]
    lines += [base64.b64encode(h).decode("ascii") for h in path]
    return "\n".join(lines) + "\n\n" + checkpoint


def parse_proof(text: str) -> tuple[int, list[bytes], bytes, ParsedCheckpoint]:
    """(index, audit path, record bytes, checkpoint) of a proof; raises CheckpointFormatError."""
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or not lines or lines[0] != PROOF_HEADER:
        raise CheckpointFormatError(f"not a {PROOF_HEADER} proof")
    if len(lines) < 3 or not lines[1].startswith("extra ") or not lines[2].startswith("index "):
        raise CheckpointFormatError("a gen4sdk log proof has an extra line (the record) and an index line")
    try:
        record = base64.b64decode(lines[1][len("extra ") :], validate=True)
        path = [base64.b64decode(x, validate=True) for x in lines[3:]]
    except (binascii.Error, ValueError) as exc:
        raise CheckpointFormatError("a proof line is not base64") from exc
    index_text = lines[2][len("index ") :]
    if not index_text.isdigit():
        raise CheckpointFormatError(f"index {index_text!r} is not a decimal number")
    if any(len(h) != 32 for h in path) or len(path) > 64:
        raise CheckpointFormatError("the inclusion proof is not a list of SHA-256 hashes")
    return int(index_text), path, record, parse_checkpoint(note)


class LogProofCheck(BaseModel):
    """What :func:`verify_log_proof` found. ``ok`` only when the signature, the path and the record all hold."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    reason: str
    origin: str | None = None
    tree_size: int | None = None
    seq: int | None = Field(default=None, description="the record's sequence number (leaf index + 1)")
    record: AuditRecord | None = None


def verify_log_proof(
    proof: str | os.PathLike[str], *, certificates: bytes | list[bytes], origin: str | None = None
) -> LogProofCheck:
    """Check an inclusion proof from ``gen4sdk log prove`` without the database.

    ``proof``: the proof text or a path to it. ``certificates``: the operator's signing certificate(s) (PEM), the
    only thing trusted. ``origin``: the log's origin (``gen4sdk log checkpoint`` prints it), to insist on one log.
    The record is returned only when the checkpoint is signed by one of the certificates and the audit path leads
    from the record's own bytes to the checkpoint's root. Never raises on a bad proof.
    """
    if isinstance(proof, os.PathLike) or (isinstance(proof, str) and not proof.startswith(PROOF_HEADER)):
        try:
            proof = Path(proof).read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            return LogProofCheck(ok=False, reason=f"cannot read the proof: {exc}")
    certs = [certificates] if isinstance(certificates, bytes) else list(certificates)
    try:
        index, path, record, checkpoint = parse_proof(str(proof))
    except CheckpointFormatError as exc:
        return LogProofCheck(ok=False, reason=f"malformed proof: {exc}")
    found = LogProofCheck(
        ok=False, reason="", origin=checkpoint.origin, tree_size=checkpoint.size, seq=index + 1
    )

    def failed(reason: str) -> LogProofCheck:
        return found.model_copy(update={"reason": reason})

    if origin is not None and checkpoint.origin != origin:
        return failed(f"the proof is for log {checkpoint.origin}, not {origin}")
    if verify_checkpoint_signature(checkpoint, certs) is None:
        return failed("the checkpoint is not signed by the given certificate")
    if not verify_inclusion(index, checkpoint.size, leaf_hash(record), path, checkpoint.root):
        return failed("the audit path does not lead from the record to the signed root")
    try:
        parsed = AuditRecord.model_validate_json(record)
    except ValueError as exc:
        return failed(f"the logged bytes are not an audit record: {exc}")
    return found.model_copy(
        update={
            "ok": True,
            "reason": f"record {index + 1} is in the log's signed tree of {checkpoint.size} records",
            "record": parsed,
        }
    )
