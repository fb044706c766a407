"""Development key material and the checks every signing certificate must pass.

``init_keys`` makes what ``gen4sdk keys init DIR`` writes: a development root CA and a signing certificate that
meets the C2PA certificate profile. The checks in ``check_signing_certificate`` are the ones c2pa validators apply,
run up front so a bad certificate fails with a clear ``KeyMaterialError`` instead of an unverifiable clip.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from pydantic import BaseModel, ConfigDict

from gen4sdk.errors import KeyMaterialError, OutputError

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


# O_EXCL: never clobber an operator's key (nor follow a link planted at its name); the mode applies from the first
# byte, not by chmod after the fact.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_MAX_DAYS = 100 * 366  # a bound that datetime arithmetic and X.509 GeneralizedTime both hold


def _write_all(files: list[tuple[Path, bytes, int]]) -> None:
    """Write every file or none: a failure part-way removes what was written, so no half-made key folder stays."""
    written: list[Path] = []
    try:
        for path, data, mode in files:
            fd = os.open(path, _CREATE, mode)
            written.append(path)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        if exc.errno == errno.EEXIST or os.path.lexists(exc.filename or ""):
            raise KeyMaterialError(f"{exc.filename} already exists; not overwriting key material") from exc
        raise OutputError(f"cannot write key material {exc.filename}: {exc.strerror or exc}") from exc


def _key_directory(directory: Path) -> None:
    """Create the key folder owner-only (0700) whatever the umask; an existing folder is left as it is."""
    if directory.is_dir():
        return
    try:
        directory.mkdir(parents=True, mode=0o700)
        directory.chmod(0o700)  # mkdir's mode is filtered through the umask
    except OSError as exc:
        raise OutputError(f"cannot create the key directory {directory}: {exc.strerror or exc}") from exc


def init_keys(
    directory: str | Path,
    *,
    organization: str = "gen4sdk development",
    common_name: str | None = None,
    passphrase: str | bytes | None = None,
    days: int = 365,
) -> KeyPaths:
    """Create a development root CA and a C2PA-profile signing certificate in ``directory``.

    Private keys are written with mode 0600 and, with ``passphrase``, encrypted (an empty one is refused); a new
    ``directory`` is made 0700. Existing key files, or links at their names, are never overwritten
    (``KeyMaterialError``); a directory that cannot be written is an ``OutputError`` and leaves no file behind.
    For production, sign with a certificate from a CA on the C2PA trust list,
    through :meth:`Signer.from_callback` if the key lives in a KMS or HSM.
    """
    paths = KeyPaths.in_directory(directory)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= _MAX_DAYS:
        raise KeyMaterialError(f"days must be a whole number from 1 to {_MAX_DAYS}, got {days!r}")
    if passphrase is not None and not passphrase:
        raise KeyMaterialError("the passphrase is empty; pass None for unencrypted keys")
    # lexists: a dangling symbolic link at a key's name is something there too
    files = (paths.root_cert, paths.root_key, paths.signer_cert, paths.signer_key)
    existing = [p.name for p in files if os.path.lexists(p)]
    if existing:
        raise KeyMaterialError(
            f"{paths.directory} already holds key material ({', '.join(existing)}); not overwriting"
        )
    _key_directory(paths.directory)

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
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if passphrase:
        pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
        encryption = serialization.BestAvailableEncryption(pw)

    def key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    _write_all(
        [
            (paths.root_key, key_bytes(ca_key), 0o600),
            (paths.root_cert, ca_pem, 0o644),
            (paths.signer_key, key_bytes(leaf_key), 0o600),
            (paths.signer_cert, leaf_cert.public_bytes(serialization.Encoding.PEM) + ca_pem, 0o644),
        ]
    )
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
        raise KeyMaterialError(
            f"private key cannot be loaded (wrong passphrase or not a PEM key): {exc}"
        ) from exc


def _same_public_key(a: PublicKeyTypes, b: PublicKeyTypes) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(serialization.Encoding.DER, fmt) == b.public_bytes(serialization.Encoding.DER, fmt)


def check_signing_certificate(chain: list[x509.Certificate], *, now: dt.datetime | None = None) -> None:
    """Raise ``KeyMaterialError`` unless ``chain[0]`` can sign C2PA claims."""
    cert = chain[0]
    now = now or dt.datetime.now(dt.timezone.utc)
    subject = cert.subject.rfc4514_string()
    if cert.not_valid_after_utc <= now:
        raise KeyMaterialError(
            f"signing certificate {subject!r} expired on {cert.not_valid_after_utc:%Y-%m-%d}"
        )
    if cert.not_valid_before_utc > now:
        raise KeyMaterialError(
            f"signing certificate {subject!r} is not valid before {cert.not_valid_before_utc}"
        )
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise KeyMaterialError(
                f"{subject!r} is a CA certificate; C2PA claims must be signed by a leaf certificate"
            )
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
