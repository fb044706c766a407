"""The Client's seams: any ClaimSigner (a key held in a KMS) and any SoftBindingCodec plug in, not only
gen4sdk.Signer and watermark.Watermarker; objects that are neither are refused before any work."""

from __future__ import annotations

from pathlib import Path

import c2pa
import numpy as np
import pytest

import gen4sdk
from gen4sdk.errors import InvalidRequestError
from gen4sdk.models import tiny_model
from gen4sdk.types import ClaimSigner, SoftBindingCodec, WatermarkDetection
from watermark import Watermarker


class KmsSigner:
    """A signing identity whose key is reached only through a callback, as a KMS client is: not a gen4sdk.Signer."""

    def __init__(self, inner: gen4sdk.Signer) -> None:
        self._inner = inner
        self.signatures = 0

    @property
    def certificate_chain_pem(self) -> bytes:
        return self._inner.certificate_chain_pem

    def sign(self, data: bytes) -> bytes:
        self.signatures += 1
        return self._inner.sign(data)

    def check_valid(self) -> None:
        self._inner.check_valid()

    def c2pa_signer(self) -> c2pa.Signer:
        return c2pa.Signer.from_callback(
            self.sign, c2pa.C2paSigningAlg.ES256, self.certificate_chain_pem.decode("ascii"), None
        )


class CountingCodec:
    """Another soft-binding codec under its own algorithm name (here the gen4sdk mark under an operator key)."""

    algorithm = "com.example.mark.1"

    def __init__(self) -> None:
        self._wm = Watermarker(key=b"example operator key")
        self.payload_bytes = self._wm.payload_bytes
        self.embedded: list[bytes] = []

    def embed(self, frames: np.ndarray, payload: bytes) -> np.ndarray:
        self.embedded.append(payload)
        return self._wm.embed(frames, payload)

    def detect(self, frames: np.ndarray) -> WatermarkDetection:
        return self._wm.detect(frames)


def test_the_shipped_classes_satisfy_the_protocols(signer: gen4sdk.Signer) -> None:
    assert isinstance(signer, ClaimSigner)
    assert isinstance(Watermarker.public(), SoftBindingCodec)
    assert isinstance(KmsSigner(signer), ClaimSigner) and isinstance(CountingCodec(), SoftBindingCodec)
    assert not isinstance(object(), ClaimSigner) and not isinstance(b"key", SoftBindingCodec)


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return tiny_model()


def test_objects_that_are_not_seams_are_refused(model, signer: gen4sdk.Signer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequestError, match="ClaimSigner") as exc:
        gen4sdk.Client(model=model, signer=object(), owner="Acme")  # type: ignore[arg-type]
    assert exc.value.field == "signer"
    with pytest.raises(InvalidRequestError, match="SoftBindingCodec"):
        gen4sdk.Client(model=model, signer=signer, owner="Acme", watermarker=b"key")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="not both"):
        gen4sdk.Client(
            model=model, signer=signer, owner="Acme", watermarker=CountingCodec(), watermark_key=b"k"
        )


def test_a_kms_signer_and_another_codec_make_a_trusted_clip(
    tmp_path: Path,
    model,  # type: ignore[no-untyped-def]
    signer: gen4sdk.Signer,
    dev_keys,  # type: ignore[no-untyped-def]
) -> None:
    kms, codec = KmsSigner(signer), CountingCodec()
    with gen4sdk.Client(model=model, signer=kms, owner="Acme Studios", watermarker=codec) as client:
        result = client.generate(
            prompt="a paper boat on a pond",
            output=tmp_path / "clip.mp4",
            num_frames=9,
            height=144,
            width=256,
            steps=2,
        )
    assert kms.signatures >= 1 and codec.embedded == [bytes.fromhex(result.watermark_payload or "")]
    report = gen4sdk.verify(result.path, trust_anchors=dev_keys.root_cert, detect_watermark=False)
    assert report.status == "trusted", report.reason
    assert report.soft_binding is not None
    assert (
        report.soft_binding["alg"] == codec.algorithm
        and report.soft_binding["payload"] == result.watermark_payload
    )
