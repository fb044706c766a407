"""Shared helpers for the compliance tests: a small EC P-256 signer with the two members the Store uses."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path
from typing import Any

from conftest import BBB
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gen4sdk.types import AuditRecord, Decision


class FakeSigner:
    """Duck-typed like gen4sdk.provenance.Signer: sign(bytes) -> bytes and certificate_chain_pem."""

    def __init__(self, name: str = "audit test signer") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )
        self._pem = cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    @property
    def certificate_chain_pem(self) -> bytes:
        return self._pem


def decision(
    *, allowed: bool = True, categories: list[str] | None = None, code: str | None = None
) -> Decision:
    return Decision(
        allowed=allowed,
        action="allow" if allowed else "block",
        code=code,
        categories=categories or [],
        pack_id="default",
        pack_version="1",
        pack_sha256="0" * 64,
    )


def record(
    i: int = 0,
    *,
    outcome: str = "allowed",
    caller: str | None = "partner-app",
    categories: list[str] | None = None,
    manifest_id: str | None = None,
    time: dt.datetime | None = None,
    prompt: str | None = None,
    salt: str | None = None,
) -> AuditRecord:
    allowed = outcome != "refused"
    kwargs = {"time": time} if time is not None else {}
    return AuditRecord(
        request_id=f"req-{i}-{uuid.uuid4().hex[:8]}",
        caller=caller,
        outcome=outcome,  # type: ignore[arg-type]
        prompt=prompt or f"a red fox running through snow, take {i}",
        prompt_salt=salt,
        parameters={"num_frames": 17, "seed": i},
        decisions=[
            decision(allowed=allowed, categories=categories, code=None if allowed else "SAFETY.INPUT.TEXT")
        ],
        model_id="tiny",
        weights_sha256="ab" * 32,
        manifest_id=manifest_id,
        timings={"total": 0.5},
        **kwargs,
    )


def make_signed_clips(directory: Path, signer: Any) -> tuple[Any, bytes]:
    """signed.mp4 (credentials + watermark), tampered.mp4, stripped.mp4 (watermark only) and plain.mp4 in
    ``directory``, signed through gen4sdk's C2PA path. Returns (manifest spec, manifest store bytes)."""
    from gen4sdk.media import encode_video, read_frames
    from gen4sdk.provenance.manifest import ManifestSpec, SoftBinding, sign_file
    from gen4sdk.types import GenerationParams, ModelInfo, Owner
    from watermark import Watermarker

    wm = Watermarker.public()
    spec = ManifestSpec(
        title="signed.mp4",
        owner=Owner(organization="Acme Studios", user="alice"),
        model=ModelInfo(model_id="gen4sdk/tiny", pipeline_class="WanPipeline", weights_sha256="ab" * 32),
        params=GenerationParams(
            num_frames=24,
            height=360,
            width=640,
            fps=12,
            steps=2,
            guidance_scale=5,
            seed=1,
            device="cpu",
            dtype="float32",
            memory_mode="none",
            scheduler="euler",
            pipeline_class="WanPipeline",
            image_to_video=False,
        ),
        request_id="req-1",
        created_at=dt.datetime.now(dt.timezone.utc),
        prompt_commitment="00" * 32,
    )
    spec = spec.model_copy(
        update={"soft_binding": SoftBinding(algorithm=wm.algorithm, payload=spec.short_id, end_ms=2000)}
    )
    frames = read_frames(BBB, max_frames=24)
    directory.mkdir(parents=True, exist_ok=True)
    marked = directory.parent / f"{directory.name}-marked.mp4"
    encode_video(wm.embed(frames, spec.short_id), marked, fps=12, preset="veryfast")
    jumbf = sign_file(marked, directory / "signed.mp4", spec, signer)
    shutil.move(str(marked), directory / "stripped.mp4")
    data = bytearray((directory / "signed.mp4").read_bytes())
    data[-500] ^= 0xFF
    (directory / "tampered.mp4").write_bytes(bytes(data))
    encode_video(frames[:8], directory / "plain.mp4", fps=12, preset="veryfast")
    return spec, jumbf
