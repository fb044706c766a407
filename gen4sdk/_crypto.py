"""The one signature verifier, shared by provenance (a signing callback's probe) and compliance (the audit log's
checkpoints).

It depends on `cryptography` alone, not on c2pa, so reading and checking a log needs no C2PA library. It is
strict on purpose: it accepts exactly the forms ``Signer`` produces (DER ECDSA with the curve's hash, RSA-PSS with
SHA-256 and a 32-byte salt, Ed25519). A second, lenient copy once accepted raw r||s ECDSA and PKCS#1 v1.5 RSA too,
so a checkpoint could verify in one place and not the other.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

__all__ = ["verify_signature"]

_EC_HASH: dict[int, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    256: hashes.SHA256,
    384: hashes.SHA384,
    521: hashes.SHA512,
}


def verify_signature(certificate_pem: bytes, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` over ``data`` verifies with the public key of the first certificate in the PEM.

    Never raises on bad input: an unreadable certificate, an unsupported key or a malformed signature has not
    verified anything, so each is ``False``.
    """
    try:
        certs = x509.load_pem_x509_certificates(certificate_pem)
        pub = certs[0].public_key()
        if isinstance(pub, ec.EllipticCurvePublicKey):
            digest = _EC_HASH.get(pub.curve.key_size)
            if digest is None:
                return False
            pub.verify(signature, data, ec.ECDSA(digest()))
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(
                signature,
                data,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256(),
            )
        elif isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, IndexError):
        return False
    return True
