"""C2PA Content Credentials: keys and signers, manifest building and signing, verification and trust anchors."""

from gen4sdk.provenance.keys import KeyPaths, init_keys
from gen4sdk.provenance.signer import Signer
from gen4sdk.provenance.verify import verify

__all__ = ["KeyPaths", "Signer", "init_keys", "verify"]
