"""Development key material and the checks every signing certificate must pass.

``init_keys`` makes what ``gen4sdk keys init DIR`` writes: a development root CA and a signing certificate that
meets the C2PA certificate profile. The checks in ``check_signing_certificate`` are the ones c2pa validators apply,
run up front so a bad certificate fails with a clear ``KeyMaterialError`` instead of an unverifiable clip.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from pydantic import BaseModel, ConfigDict

from gen4sdk.errors import KeyMaterialError

logger = logging.getLogger(__name__)

__all__ = ["KeyPaths", "check_signing_certificate", "init_keys", "load_certificate_chain", "load_private_key"]

# EKUs the C2PA certificate profile accepts for claim signers.
_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
_C2PA_CLAIM_SIGNING = ObjectIdentifier("1.3.6.1.4.1.62558.2.1")
_ALLOWED_EKUS = {ExtendedKeyUsageOID.EMAIL_PROTECTION, _DOCUMENT_SIGNING, _C2PA_CLAIM_SIGNING}

ROOT_CERT = "root-ca.pem"
ROOT_KEY = "root-ca.key"
SIGNER_CERT = "signer.pem"
SIGNER_KEY = "signer.key"


class KeyPaths(BaseModel):
    """Where ``init_keys`` put the files. ``signer_cert`` holds the chain: the signing certificate, then the CA."""

    model_config = ConfigDict(frozen=True)

    directory: Path
    root_cert: Path
    root_key: Path
    signer_cert: Path
    signer_key: Path

    @classmethod
    def in_directory(cls, directory: str | Path) -> KeyPaths:
        d = Path(directory)
        return cls(
            directory=d,
            root_cert=d / ROOT_CERT,
            root_key=d / ROOT_KEY,
            signer_cert=d / SIGNER_CERT,
            signer_key=d / SIGNER_KEY,
        )

    def exist(self) -> bool:
        return all(p.is_file() for p in (self.root_cert, self.root_key, self.signer_cert, self.signer_key))


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, data: bytes) -> None:
    # O_EXCL: never clobber an operator's key; 0600 from the first byte, not chmod after the fact.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_public(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def init_keys(
    directory: str | Path,
    *,
    organization: str = "gen4sdk development",
    common_name: str | None = None,
    passphrase: str | bytes | None = None,
    days: int = 365,
) -> KeyPaths:
    """Create a development root CA and a C2PA-profile signing certificate in ``directory``.

    Private keys are written with mode 0600 and, with ``passphrase``, encrypted. Existing key files are never
    overwritten (``KeyMaterialError``). For production, sign with a certificate from a CA on the C2PA trust list,
    through :meth:`Signer.from_callback` if the key lives in a KMS or HSM.
    """
    paths = KeyPaths.in_directory(directory)
    paths.directory.mkdir(parents=True, exist_ok=True)
    existing = [p.name for p in (paths.root_cert, paths.root_key, paths.signer_cert, paths.signer_key) if p.exists()]
    if existing:
        raise KeyMaterialError(f"{paths.directory} already holds key material ({', '.join(existing)}); not overwriting")
    if days < 1:
        raise KeyMaterialError("days must be at least 1")

    now = dt.datetime.now(dt.timezone.utc)
    # Backdate slightly so a verifier whose clock runs a little behind still sees a valid certificate.
    start = now - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{organization} development root CA", organization)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=max(days, 3650)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(digital_signature=False, cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name or f"{organization} content signer", organization))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, _DOCUMENT_SIGNING]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if passphrase:
        pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
        encryption = serialization.BestAvailableEncryption(pw)

    def key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    _write_private(paths.root_key, key_bytes(ca_key))
    _write_public(paths.root_cert, ca_pem)
    _write_private(paths.signer_key, key_bytes(leaf_key))
    _write_public(paths.signer_cert, leaf_cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    logger.info("wrote development keys to %s", paths.directory)
    return paths


def load_certificate_chain(data: bytes) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise KeyMaterialError(f"certificate chain is not valid PEM: {exc}") from exc
    if not chain:
        raise KeyMaterialError("certificate chain is empty")
    return chain


def load_private_key(data: bytes, passphrase: str | bytes | None = None) -> PrivateKeyTypes:
    pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        return serialization.load_pem_private_key(data, password=pw or None)
    except TypeError as exc:
        # cryptography raises TypeError both for "needs a password" and "was given one it does not need".
        raise KeyMaterialError(f"private key passphrase problem: {exc}") from exc
    except ValueError as exc:
        raise KeyMaterialError(f"private key cannot be loaded (wrong passphrase or not a PEM key): {exc}") from exc


def _same_public_key(a: PublicKeyTypes, b: PublicKeyTypes) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(serialization.Encoding.DER, fmt) == b.public_bytes(serialization.Encoding.DER, fmt)


def check_signing_certificate(chain: list[x509.Certificate], *, now: dt.datetime | None = None) -> None:
    """Raise ``KeyMaterialError`` unless ``chain[0]`` can sign C2PA claims."""
    cert = chain[0]
    now = now or dt.datetime.now(dt.timezone.utc)
    subject = cert.subject.rfc4514_string()
    if cert.not_valid_after_utc <= now:
        raise KeyMaterialError(f"signing certificate {subject!r} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if cert.not_valid_before_utc > now:
        raise KeyMaterialError(f"signing certificate {subject!r} is not valid before {cert.not_valid_before_utc}")
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise KeyMaterialError(f"{subject!r} is a CA certificate; C2PA claims must be signed by a leaf certificate")
    except x509.ExtensionNotFound:
        pass
    if cert.issuer == cert.subject:
        raise KeyMaterialError(f"signing certificate {subject!r} is self-signed; it must be issued by a CA")
    try:
        if not cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            raise KeyMaterialError(f"signing certificate {subject!r} lacks the digitalSignature key usage")
    except x509.ExtensionNotFound as exc:
        raise KeyMaterialError(f"signing certificate {subject!r} has no key usage extension") from exc
    try:
        ekus = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound as exc:
        raise KeyMaterialError(f"signing certificate {subject!r} has no extended key usage") from exc
    if not ekus & _ALLOWED_EKUS:
        raise KeyMaterialError(
            f"signing certificate {subject!r} has no EKU allowed for C2PA (emailProtection, documentSigning, "
            "c2pa claimSigning)"
        )
    try:
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound as exc:
        raise KeyMaterialError(f"signing certificate {subject!r} has no authority key identifier") from exc


def check_key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> None:
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise KeyMaterialError(f"unsupported private key type {type(key).__name__}; use EC, RSA or Ed25519")
    if not _same_public_key(cert.public_key(), key.public_key()):
        raise KeyMaterialError("the private key does not match the signing certificate")
