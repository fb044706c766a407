"""The one signature verifier (gen4sdk._crypto), used by the signer's probe and the audit log's checkpoints.

It must be strict: the lenient copy it replaced accepted raw r||s ECDSA and PKCS#1 v1.5 RSA signatures, forms
``Signer`` never produces, so a checkpoint could pass the log check yet fail everywhere else."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from compliance_helpers import FakeSigner, record
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from gen4sdk._crypto import verify_signature
from gen4sdk.compliance import Store

DATA = b"checkpoint body"


def _cert(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crypto test")])
    now = dt.datetime.now(dt.timezone.utc)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, algorithm)
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _raw_rs(der: bytes, size: int) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@pytest.mark.parametrize(("curve", "digest", "size"), [(ec.SECP256R1(), hashes.SHA256(), 32),
                                                       (ec.SECP384R1(), hashes.SHA384(), 48)])  # fmt: skip
def test_ecdsa_der_verifies_and_raw_r_s_does_not(
    curve: ec.EllipticCurve, digest: hashes.HashAlgorithm, size: int
) -> None:
    key = ec.generate_private_key(curve)
    pem = _cert(key)
    der = key.sign(DATA, ec.ECDSA(digest))
    assert verify_signature(pem, DATA, der)
    assert not verify_signature(pem, DATA + b"!", der)
    assert not verify_signature(pem, DATA, _raw_rs(der, size))  # the old fallback accepted this


def test_ecdsa_with_another_hash_than_the_curves_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    assert not verify_signature(_cert(key), DATA, key.sign(DATA, ec.ECDSA(hashes.SHA512())))


def test_rsa_pss_verifies_and_pkcs1v15_does_not() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = _cert(key)
    pss = key.sign(DATA, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    assert verify_signature(pem, DATA, pss)
    assert not verify_signature(pem, DATA, key.sign(DATA, padding.PKCS1v15(), hashes.SHA256()))


def test_ed25519_and_bad_input() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = _cert(key)
    assert verify_signature(pem, DATA, key.sign(DATA))
    assert not verify_signature(pem, DATA, b"")
    assert not verify_signature(b"not a certificate", DATA, key.sign(DATA))
    assert not verify_signature(b"", DATA, key.sign(DATA))


class _RawSignatureSigner(FakeSigner):
    """Signs checkpoints with the right key, but as raw r||s (COSE's form), which the log must not accept."""

    def sign(self, data: bytes) -> bytes:
        return _raw_rs(super().sign(data), 32)


def test_log_rejects_a_checkpoint_signed_in_a_form_the_signer_never_makes(tmp_path: Path) -> None:
    store = Store(
        tmp_path / "raw.db", signer=_RawSignatureSigner(), checkpoint_every=3, checkpoint_interval=None
    )
    for i in range(3):
        store.append(record(i))
    report = store.verify_log()
    assert not report.ok
    assert (3, "bad_checkpoint_signature") in [(p.seq, p.kind) for p in report.problems]
