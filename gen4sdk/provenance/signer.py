"""The operator's signer: a certificate chain plus a signing callback.

Signing is a callback (as in c2pa-python's examples) so the private key can stay in a KMS or HSM; ``from_files``
is the callback over a PEM key on disk. The same signer signs C2PA claims and the audit log's checkpoints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from gen4sdk._crypto import verify_signature
from gen4sdk.errors import KeyMaterialError, SigningError
from gen4sdk.provenance.keys import (
    check_key_matches,
    check_signing_certificate,
    load_certificate_chain,
    load_private_key,
)

logger = logging.getLogger(__name__)

__all__ = ["Algorithm", "Signer"]

Algorithm = Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"]

_C2PA_ALG = {
    "es256": c2pa.C2paSigningAlg.ES256,
    "es384": c2pa.C2paSigningAlg.ES384,
    "es512": c2pa.C2paSigningAlg.ES512,
    "ps256": c2pa.C2paSigningAlg.PS256,
    "ps384": c2pa.C2paSigningAlg.PS384,
    "ps512": c2pa.C2paSigningAlg.PS512,
    "ed25519": c2pa.C2paSigningAlg.ED25519,
}
_HASH: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


def _algorithm_for(key: PrivateKeyTypes) -> Algorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        bits = key.curve.key_size
        return {256: "es256", 384: "es384", 521: "es512"}.get(bits) or _unsupported(
            f"EC curve {key.curve.name}"
        )  # type: ignore[return-value]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    return _unsupported(type(key).__name__)


def _unsupported(what: str) -> Algorithm:
    raise KeyMaterialError(f"unsupported key for C2PA signing: {what}")


def _sign_with(key: PrivateKeyTypes, algorithm: Algorithm, data: bytes) -> bytes:
    digest: hashes.HashAlgorithm = _HASH.get(algorithm[-3:], hashes.SHA256)()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(digest))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size), digest)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise KeyMaterialError(f"unsupported key type {type(key).__name__}")


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


class Signer:
    """The operator's signing identity. Build it with :meth:`from_files` or :meth:`from_callback`."""

    def __init__(
        self,
        *,
        sign: Callable[[bytes], bytes],
        certificate_chain_pem: bytes,
        algorithm: Algorithm,
        tsa_url: str | None = None,
    ) -> None:
        if algorithm not in _C2PA_ALG:
            raise KeyMaterialError(f"unknown signing algorithm {algorithm!r}; use one of {sorted(_C2PA_ALG)}")
        if tsa_url is not None and not tsa_url.startswith(("http://", "https://")):
            raise KeyMaterialError(f"timestamp authority URL must be http(s): {tsa_url!r}")
        chain = load_certificate_chain(certificate_chain_pem)
        check_signing_certificate(chain)
        self._sign = sign
        self._chain = chain
        self._chain_pem = certificate_chain_pem
        self._algorithm: Algorithm = algorithm
        self._tsa_url = tsa_url

    @classmethod
    def from_files(
        cls,
        certificate: str | Path,
        private_key: str | Path,
        *,
        passphrase: str | bytes | None = None,
        tsa_url: str | None = None,
    ) -> Signer:
        """A signer over PEM files: the certificate chain (signing certificate first) and its private key."""
        try:
            chain_pem = Path(certificate).read_bytes()
            key_pem = Path(private_key).read_bytes()
        except OSError as exc:
            raise KeyMaterialError(f"cannot read key material: {exc}") from exc
        key = load_private_key(key_pem, passphrase)
        check_key_matches(load_certificate_chain(chain_pem)[0], key)
        algorithm = _algorithm_for(key)
        return cls(
            sign=lambda data: _sign_with(key, algorithm, data),
            certificate_chain_pem=chain_pem,
            algorithm=algorithm,
            tsa_url=tsa_url,
        )

    @classmethod
    def from_callback(
        cls,
        callback: Callable[[bytes], bytes],
        *,
        certificate_chain_pem: bytes,
        algorithm: Algorithm = "es256",
        tsa_url: str | None = None,
        probe: bool = True,
    ) -> Signer:
        """A signer whose private key lives elsewhere (KMS, HSM, signing service).

        ``callback(data)`` returns the signature over ``data`` (DER-encoded for ECDSA, as KMS APIs return it).
        With ``probe`` (the default) one test signature is made and checked against the certificate, so a
        mismatched key fails here and not in a verifier's hands.
        """
        signer = cls(
            sign=callback, certificate_chain_pem=certificate_chain_pem, algorithm=algorithm, tsa_url=tsa_url
        )
        if probe:
            probe_data = b"gen4sdk signer probe"
            if not verify_signature(certificate_chain_pem, probe_data, signer.sign(probe_data)):
                raise KeyMaterialError("the signing callback's key does not match the signing certificate")
        return signer

    # --- what the rest of the SDK uses -------------------------------------------------------------------------
    def sign(self, data: bytes) -> bytes:
        try:
            signature = self._sign(data)
        except Exception as exc:  # a KMS or callback failure of any kind must fail closed, typed
            raise SigningError(f"the signing callback failed: {exc}") from exc
        if not isinstance(signature, (bytes, bytearray)) or not signature:
            raise SigningError("the signing callback returned no signature bytes")
        return bytes(signature)

    @property
    def certificate_chain_pem(self) -> bytes:
        return self._chain_pem

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    @property
    def tsa_url(self) -> str | None:
        return self._tsa_url

    @property
    def organization(self) -> str | None:
        return _attr(self._chain[0].subject, NameOID.ORGANIZATION_NAME)

    @property
    def common_name(self) -> str | None:
        return _attr(self._chain[0].subject, NameOID.COMMON_NAME)

    def check_valid(self) -> None:
        """Re-check the certificate (it may have expired since the signer was built)."""
        check_signing_certificate(self._chain)

    def c2pa_signer(self) -> c2pa.Signer:
        """A new c2pa-python signer over this identity's callback, for one manifest: c2pa's Builder consumes
        the signer it signs with, so each manifest needs a fresh one."""
        return c2pa.Signer.from_callback(
            self.sign, _C2PA_ALG[self._algorithm], self._chain_pem.decode("ascii"), self._tsa_url
        )

    def __repr__(self) -> str:
        return f"Signer(common_name={self.common_name!r}, organization={self.organization!r}, alg={self._algorithm})"
