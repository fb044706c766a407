"""Client: the stages of DESIGN.md's data path, in order, and nothing more.

policy.check_request -> model.generate -> policy.check_frames -> watermark.embed -> media.encode
-> provenance.sign -> compliance.record -> move into place.

The clip is written to temporary files beside ``output`` and moved to ``output`` only once it is signed and its
audit record is stored, so a refusal or a failure at any stage leaves nothing at the output path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
from pydantic import ValidationError
from typing_extensions import Self

from gen4sdk import media
from gen4sdk.compliance import Store, StoredManifest, prompt_commitment
from gen4sdk.compliance._aigc import AIGC_KEY, aigc_block, encode_aigc
from gen4sdk.compliance._label import PreparedLabel, burn_label, prepare_label
from gen4sdk.compliance._profiles import check_configuration, resolve_profiles
from gen4sdk.errors import (
    Gen4Error,
    GenerationCancelled,
    InvalidRequestError,
    ModelLoadError,
    OutputError,
    PolicyViolation,
    ProgressCallbackError,
    StoreError,
    WatermarkFailure,
)
from gen4sdk.fingerprint import fingerprint_frames
from gen4sdk.models import DiffusersVideoModel, VideoModel, tiny_model
from gen4sdk.policy import LikenessRegistry, Policy
from gen4sdk.provenance.manifest import ManifestSpec, SoftBinding, TrainingUse, ingredient_mime, sign_file
from gen4sdk.types import (
    AuditRecord,
    ClaimSigner,
    ComplianceProfile,
    Decision,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    MemoryMode,
    Owner,
    ProgressEvent,
    SoftBindingCodec,
    VisibleLabel,
)
from watermark import DEFAULT_STRENGTH, STRENGTHS, Strength, Watermarker, WatermarkError

logger = logging.getLogger(__name__)

__all__ = ["AsyncClient", "Client"]

ProgressCallback = Callable[[ProgressEvent], None]
_T = TypeVar("_T")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# Models built in code that a string can name, so an API user gets the tiny offline model as the CLI's --model does.
_BUILT_IN_MODELS: dict[str, Callable[[], VideoModel]] = {
    "tiny": tiny_model,
    "tiny-i2v": lambda: tiny_model(image_to_video=True),
}


def _load_model(
    model: VideoModel | str | Path, *, device: str, dtype: str, memory_mode: MemoryMode
) -> VideoModel:
    if isinstance(model, str) and model in _BUILT_IN_MODELS:
        return _BUILT_IN_MODELS[model]()
    if isinstance(model, (str, Path)):
        directory = Path(model).expanduser()
        if not directory.is_dir():
            # Say every accepted form: a user who typed a name ("tny", "wan") must learn it is read as a path.
            names = ", ".join(repr(n) for n in _BUILT_IN_MODELS)
            raise ModelLoadError(
                f"model {str(model)!r} is neither a built-in model ({names}) nor a local diffusers pipeline "
                f"directory ({'not a directory' if directory.exists() else 'no such directory'}); "
                "pass one of those or a gen4sdk.models.VideoModel"
            )
        return DiffusersVideoModel.from_pretrained(
            directory, device=device, dtype=dtype, memory_mode=memory_mode
        )
    return model


def _check_output(output: Path) -> Path:
    if output.suffix.lower() != ".mp4":
        raise InvalidRequestError(f"output must be an .mp4 path, got {output.name!r}", field="output")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory {parent} is not writable")
    if output.is_dir():
        raise OutputError(f"output path {output} is a directory")
    return output


class Client:
    """Generates watermarked, signed clips behind the policy filter.

    ``model``: a :class:`~gen4sdk.models.VideoModel`, a local diffusers pipeline directory, or ``"tiny"``
    (``"tiny-i2v"`` for image-to-video): the tiny randomly initialised model built in code, always on the CPU, for
    trying the SDK offline (its pictures depict nothing).
    ``signer``: the operator's :class:`~gen4sdk.Signer`, or any :class:`~gen4sdk.types.ClaimSigner` (a key in a
    KMS). ``owner``: the operator's organisation (a string or :class:`~gen4sdk.types.Owner`). ``policy``:
    defaults to the shipped default pack. ``store``: a :class:`~gen4sdk.compliance.Store`, a database path or a
    ``postgresql://`` URL (``gen4sdk[postgres]``) for the audit log, manifest store and likeness registry.
    ``watermark_key``: an operator key; by default the public gen4sdk key, so any receiver can detect the mark.
    ``watermarker``: another soft-binding codec (any :class:`~gen4sdk.types.SoftBindingCodec`) in place of the
    gen4sdk watermark; not together with ``watermark_key`` or ``watermark_strength``.
    ``watermark_strength``: ``"robust"`` (the default), ``"balanced"`` or ``"invisible"``: how much compression and
    cropping the mark survives against how visible it may be (measured trade-off in docs/watermark.md).
    ``check_watermark``: read the mark back from each encoded clip before signing (default). Content the mark
    cannot hold (very flat, saturated or noise-like pictures) is marked again at ``"robust"``; if it still does
    not read, the clip is signed without claiming a watermark (its ``watermark_payload`` is None) and a warning
    logged, so no credentials ever declare a mark that is not there.
    ``disclose_prompts``: put the plaintext prompt in the credentials (default: only a salted commitment).
    ``compliance``: labelling-law profiles every clip must meet (``"eu-ai-act"``, ``"ca-sb-942"``,
    ``"cn-gb-45438"``): the latent disclosure in the credentials and, for cn-gb-45438, the AIGC metadata block in
    the MP4. A configuration that cannot meet one raises ``ComplianceError`` here, with the reason.
    ``label``: a :class:`~gen4sdk.types.VisibleLabel` burned into the first seconds of every clip before the
    watermark and recorded in the credentials; a text no installed font can draw is refused here.
    """

    def __init__(
        self,
        *,
        model: VideoModel | str | Path,
        signer: ClaimSigner,
        owner: Owner | str,
        policy: Policy | None = None,
        store: Store | str | Path | None = None,
        watermark_key: bytes | None = None,
        watermarker: SoftBindingCodec | None = None,
        watermark_strength: Strength | None = None,
        check_watermark: bool = True,
        disclose_prompts: bool = False,
        training_mining: TrainingUse = "notAllowed",
        crf: int = 18,
        preset: str = "medium",
        device: str = "cpu",
        dtype: str = "float32",
        memory_mode: MemoryMode = "none",
        on_progress: ProgressCallback | None = None,
        compliance: Sequence[str] = (),
        label: VisibleLabel | None = None,
    ) -> None:
        # configuration refusals first: they cost nothing, the model may take minutes to load
        profiles = resolve_profiles(compliance)
        if label is not None and not isinstance(label, VisibleLabel):
            raise InvalidRequestError("label must be a gen4sdk.VisibleLabel", field="label")
        check_configuration(
            profiles,
            # a codec the public detector cannot read (an operator key, another algorithm) fails a public-detector profile
            public_watermark=watermark_key is None
            and (watermarker is None or (isinstance(watermarker, Watermarker) and watermarker.is_public)),
            has_store=store is not None,
            label=label,
        )
        self._label: PreparedLabel | None = prepare_label(label) if label is not None else None
        self._profiles: list[ComplianceProfile] = profiles
        model = _load_model(model, device=device, dtype=dtype, memory_mode=memory_mode)
        if not isinstance(signer, ClaimSigner):
            raise InvalidRequestError("signer must be a ClaimSigner (a gen4sdk.Signer)", field="signer")
        if watermarker is not None and not isinstance(watermarker, SoftBindingCodec):
            raise InvalidRequestError("watermarker must be a SoftBindingCodec", field="watermarker")
        if watermarker is not None and watermark_key is not None:
            raise InvalidRequestError("give watermark_key or watermarker, not both", field="watermarker")
        if watermarker is not None and watermark_strength is not None:
            raise InvalidRequestError(
                "give watermark_strength to the Watermarker passed as watermarker", field="watermark_strength"
            )
        if watermark_strength is not None and watermark_strength not in STRENGTHS:
            raise InvalidRequestError(
                f"watermark_strength must be one of {', '.join(STRENGTHS)}, got {watermark_strength!r}",
                field="watermark_strength",
            )
        if not 0 <= crf <= 51:
            raise InvalidRequestError("crf must be between 0 and 51", field="crf")
        self._model: VideoModel = model
        self._signer = signer
        self._owner = Owner(organization=owner) if isinstance(owner, str) else owner
        self._policy = policy if policy is not None else Policy.default()
        try:
            # load the guards' models with the video model, so no request pays for them
            self._policy.warm_up()
        except ModelLoadError as exc:
            # not fatal here: every check that needs the model refuses with SAFETY.UNAVAILABLE (fail closed)
            # and is recorded in the audit log like any other refusal
            logger.error("a policy model cannot be loaded; requests will be refused: %s", exc)
        if store is not None and not isinstance(store, Store):
            store = Store(store, signer=signer)
        self._store: Store | None = store
        self._likeness = LikenessRegistry(store) if store is not None else None
        self._watermarker: SoftBindingCodec
        if watermarker is not None:
            self._watermarker = watermarker
        elif watermark_key is None:
            self._watermarker = Watermarker.public(strength=watermark_strength or DEFAULT_STRENGTH)
        else:
            try:
                self._watermarker = Watermarker(
                    key=watermark_key, strength=watermark_strength or DEFAULT_STRENGTH
                )
            except WatermarkError as exc:  # an empty or non-bytes key must not silently become the public one
                raise InvalidRequestError(f"watermark_key: {exc}", field="watermark_key") from exc
        self._check_watermark = check_watermark
        self._disclose_prompts = disclose_prompts
        self._training_mining: TrainingUse = training_mining
        self._crf = crf
        self._preset = preset
        self._on_progress = on_progress

    def close(self) -> None:
        """Sign a checkpoint over the audit log's newest records, so their deletion becomes detectable.

        A signer that fails here costs nothing recorded: the store notes the pending checkpoint (``log verify``
        says so) and the next append or close signs it.
        """
        if self._store is not None and self._store.signer is not None:
            try:
                self._store.checkpoint()
            except StoreError as exc:
                logger.error("the audit log's closing checkpoint is not signed yet: %s", exc)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def store(self) -> Store | None:
        return self._store

    @property
    def compliance(self) -> list[ComplianceProfile]:
        """The labelling-law profiles every clip is made to meet."""
        return list(self._profiles)

    @property
    def likeness(self) -> LikenessRegistry | None:
        """The likeness registry kept in the store (None without a store)."""
        return self._likeness

    def generate(
        self,
        *,
        prompt: str,
        output: str | Path,
        image: str | Path | None = None,
        negative_prompt: str | None = None,
        num_frames: int = 17,
        height: int = 144,
        width: int = 256,
        fps: float = 16.0,
        steps: int = 30,
        guidance_scale: float = 5.0,
        seed: int | None = None,
        user: str | None = None,
        use: str | None = None,
        request_id: str | None = None,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        """Generate one clip to ``output`` (an .mp4 path). Raises ``PolicyViolation`` on refusal and a
        ``Gen4Error`` subclass on any other failure; in every failure case nothing is written at ``output``."""
        return self._start(
            output=output, cancel=cancel, on_progress=on_progress, prompt=prompt, image=image,
            negative_prompt=negative_prompt, num_frames=num_frames, height=height, width=width, fps=fps, steps=steps,
            guidance_scale=guidance_scale, seed=seed, user=user, use=use, request_id=request_id,
        ).execute()  # fmt: skip

    def _start(
        self,
        *,
        output: str | Path,
        cancel: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
        **fields: Any,
    ) -> _Run:
        """A validated request, not yet run: the generation workers run its two halves on two threads, so that one
        request's encoding and signing overlap the next one's denoising. ``fields`` are ``GenerationRequest``'s
        (a missing seed or request id is drawn here, as ``generate`` documents)."""
        if fields.get("image") is not None:
            fields["image"] = Path(fields["image"])
        if fields.get("seed") is None:
            fields["seed"] = int.from_bytes(os.urandom(4), "big")
        fields["request_id"] = fields.get("request_id") or uuid.uuid4().hex
        try:
            request = GenerationRequest(**fields)
        except ValidationError as exc:
            raise InvalidRequestError.from_validation(exc) from exc
        return _Run(self, request, Path(output), cancel, on_progress or self._on_progress)


# Frames the watermark read-back decodes first; only a clip whose first frames do not read is read whole. After
# the Client's own encode 16 frames read at full confidence (0.36 s for decode and detect at 81x480x832 on one
# core, against 0.81 s for the 48 frames `verify` reads first), and `verify` reading more frames only adds signal.
_CHECK_FRAMES = 16


def _frames_stay_on_device(model: VideoModel, codec: SoftBindingCodec) -> bool:
    """Whether the model's frames are watermarked where it decoded them: a model that can hand them over there
    (``generate_on_device``) and runs off the CPU, and the gen4sdk watermark (whose torch path marks them there;
    another codec takes numpy)."""
    return (
        callable(getattr(model, "generate_on_device", None))
        and not str(getattr(model, "device", "cpu")).startswith("cpu")
        and isinstance(codec, Watermarker)
    )


class _Made(NamedTuple):
    """What the first half of a request hands the second, beside the frames."""

    params: GenerationParams
    created_at: dt.datetime
    manifest_uuid: uuid.UUID
    payload: bytes
    fingerprint: bytes | None
    label_record: Any
    # the frames before the mark, kept only while the mark may have to be embedded again at "robust"
    unmarked: np.ndarray | None


class _Run:
    """One request's trip through the stages; keeps what the audit record needs."""

    def __init__(
        self,
        client: Client,
        request: GenerationRequest,
        output: Path,
        cancel: threading.Event | None,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.c = client
        self.request = request
        self.output = output
        self.cancel = cancel
        self.on_progress = on_progress
        self.timings: dict[str, float] = {}
        self.decisions: list[Decision] = []
        self.salt = os.urandom(16)
        self.record_fields: dict[str, Any] = {}
        self.done = False  # the outcome is recorded: nothing after it may turn the request into another one
        self.temps: list[Path] = []
        self.frames: np.ndarray | None = None  # between the halves: the marked frames
        self.made: _Made | None = None

    def _progress(self, stage: str, step: int = 1, total: int = 1) -> None:
        if self.on_progress is None:
            return
        event = ProgressEvent(request_id=self.request.request_id, stage=stage, step=step, total=total)
        try:
            self.on_progress(event)
        except Exception as exc:
            if self.done:
                # The clip is recorded and in place: one outcome, already final. A late callback error is noise.
                logger.warning(
                    "progress callback raised after %s completed: %r", self.request.request_id, exc
                )
                return
            raise ProgressCallbackError(
                f"the progress callback raised at stage {stage!r}: {type(exc).__name__}: {exc}"
            ) from exc

    @contextmanager
    def _stage(self, name: str, *, done_event: bool = True) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - start
        if done_event:
            self._progress(name)

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise GenerationCancelled("generation cancelled by the caller; nothing was written")

    def _refuse(self, decision: Decision) -> PolicyViolation:
        return PolicyViolation.from_decision(decision, request_id=self.request.request_id)

    def _record(self, outcome: str, exc: BaseException | None = None) -> None:
        store = self.c._store
        if store is None:
            return
        store.append(self._audit_record(outcome, exc))

    def _audit_record(self, outcome: str, exc: BaseException | None = None) -> AuditRecord:
        model = self.c._model.info
        req = self.request
        fields = dict(self.record_fields)
        if outcome != "allowed":
            # No clip exists and no manifest was kept: a failed record names none (the watermark payload stays).
            for name in ("output_path", "output_sha256", "manifest_id"):
                fields.pop(name, None)
        return AuditRecord(
            request_id=req.request_id,
            caller=req.user,
            outcome=outcome,  # type: ignore[arg-type]
            prompt=req.prompt,
            negative_prompt=req.negative_prompt,
            prompt_salt=self.salt.hex(),
            parameters=req.model_dump(
                mode="json", exclude={"prompt", "negative_prompt", "request_id", "user"}
            ),
            decisions=self.decisions,
            model_id=model.model_id,
            weights_sha256=model.weights_sha256,
            timings=self.timings,
            failure=str(exc) if exc is not None else None,
            failure_code=getattr(exc, "code", None) or (type(exc).__name__ if exc is not None else None),
            **fields,
        )

    def execute(self) -> GenerationResult:
        self.produce()
        return self.finish()

    def produce(self) -> None:
        """The first half, where the model runs: policy, generate, frames policy, label, watermark. The marked
        frames wait in this object for :meth:`finish`. On failure, raises as ``execute`` does (recorded)."""
        self._guarded(self._produce)

    def finish(self) -> GenerationResult:
        """The second half, on the CPU: encode, sign, record, move into place."""
        try:
            return self._guarded(self._finish)
        finally:
            # the clip's frames (and the unmarked copy a weaker mark keeps) are the largest things a request holds
            self.frames = None
            if self.made is not None:
                self.made = self.made._replace(unmarked=None)

    def _guarded(self, stage: Callable[[], _T]) -> _T:
        """Run one half; a failure is recorded (one outcome per request) and every temporary file removed."""
        try:
            _check_output(self.output)
            try:
                return stage()
            except OSError as exc:
                # Disk full, permissions, a vanished directory: typed, and the temporaries are removed below.
                raise OutputError(f"cannot write the clip beside {self.output}: {exc}") from exc
        except BaseException as exc:
            if self.done:
                raise  # recorded and in place already: one outcome per request
            outcome = (
                "refused"
                if isinstance(exc, PolicyViolation)
                else "cancelled"
                if isinstance(exc, (GenerationCancelled, KeyboardInterrupt))
                else "failed"
            )
            self.done = True  # the failure is this request's outcome; the other half must not run or record
            try:
                self._record(outcome, exc)
            except Exception as store_exc:  # noqa: BLE001 - the request failed AND its record could not be kept: say both
                logger.error(
                    "audit record for %s could not be written: %s", self.request.request_id, store_exc
                )
                if isinstance(exc, Gen4Error):
                    raise StoreError(
                        f"{exc} (and its audit record could not be written: {store_exc})"
                    ) from exc
            raise
        finally:
            for t in self.temps:
                t.unlink(missing_ok=True)
            self.temps.clear()

    def _mark_reads(self, path: Path, payload: bytes) -> bool:
        """Whether the clip's codec reads ``payload`` back from the encoded file at ``path``: from its first
        frames (cheap; the key frame's mark is the strongest), else from the whole clip (streamed by the gen4sdk
        watermark). A codec whose detector fails is a WatermarkFailure: the check fails closed."""
        codec = self.c._watermarker
        try:
            head = media.read_frames(path, max_frames=_CHECK_FRAMES)
            detection = codec.detect(head)
            if not detection.found and len(head) == _CHECK_FRAMES:
                whole = media.iter_frames(path)
                detection = (
                    codec.detect_iter(whole)
                    if isinstance(codec, Watermarker)
                    else codec.detect(np.stack(list(whole)))
                )
        except Gen4Error:
            raise
        except Exception as exc:  # a custom codec's detector: any failure stops the clip, typed
            raise WatermarkFailure(
                f"cannot read the watermark back from the encoded clip ({type(exc).__name__}: {exc}); "
                "Client(check_watermark=False) skips this check"
            ) from exc
        return bool(detection.found) and detection.payload == payload

    def _commit(
        self,
        signed: Path,
        payload: bytes,
        manifest_id: str,
        manifest_store: bytes,
        sha256: str,
        fingerprint: bytes | None,
    ) -> None:
        """The record, the manifest and the clip's move into place, as one outcome: the move runs inside the
        store's transaction, so a failed move keeps neither, and a failed commit takes the clip back out."""
        moved = False

        def move() -> None:
            nonlocal moved
            try:
                os.replace(signed, self.output)
            except OSError as exc:
                raise OutputError(f"cannot move the signed clip into place at {self.output}: {exc}") from exc
            moved = True

        store = self.c._store
        try:
            if store is None:
                move()
            else:
                manifest = StoredManifest.new(
                    payload=payload,
                    manifest_id=manifest_id,
                    manifest_store=manifest_store,
                    asset_sha256=sha256,
                    fingerprint=fingerprint,
                )
                store.append(self._audit_record("allowed"), manifest=manifest, before_commit=move)
        except BaseException:
            if moved:
                self.output.unlink(missing_ok=True)
            raise
        self.done = True

    def _produce(self) -> None:
        c, req = self.c, self.request
        image: np.ndarray | None = None
        if req.image is not None:
            ingredient_mime(req.image)  # before any GPU work: signing would refuse this image type at the end
            image = media.load_image(req.image)
        # The model's own shape and input rules before the policy: a request the pipeline cannot produce exactly
        # is refused without a policy decision or any GPU work (a VideoModel without validate() checks in generate).
        check = getattr(c._model, "validate", None)
        if callable(check):
            check(req, image=image)

        with self._stage("policy"):
            decision = c._policy.check_request(req, image=image, likeness=c._likeness)
            self.decisions.append(decision)
        if not decision.allowed:
            raise self._refuse(decision)
        self._check_cancel()

        def on_step(step: int, total: int) -> None:
            self._progress("generate", step, total)

        # On an accelerator the frames stay there for the watermark (the torch path, tens of times faster than
        # numpy on the CPU); the policy and the label still need them on the host, so they cross twice: once
        # unmarked (now) and once marked (after the watermark).
        on_device: Any = None
        # the per-step events are the generate stage's progress; a 1/1 event after them would read as a reset
        with self._stage("generate", done_event=False):
            if _frames_stay_on_device(c._model, c._watermarker):
                on_device, params = c._model.generate_on_device(  # type: ignore[attr-defined]
                    req, image=image, on_step=on_step, cancel=self.cancel
                )
                frames = on_device.cpu().numpy()
            else:
                frames, params = c._model.generate(req, image=image, on_step=on_step, cancel=self.cancel)
        self._check_cancel()

        with self._stage("frames_policy"):
            frames_decision = c._policy.check_frames(
                frames, fps=params.fps, likeness=c._likeness, user=req.user, use=req.use
            )
            self.decisions.append(frames_decision)
        if not frames_decision.allowed:
            raise self._refuse(frames_decision)

        label_record = None
        if c._label is not None:
            # before the watermark, so the mark covers the labelled picture as it will be seen
            with self._stage("label"):
                frames, label_record = burn_label(frames, c._label, params.fps)
                if on_device is not None:
                    on_device = on_device.new_tensor(frames)  # same dtype and device

        created_at = dt.datetime.now(dt.timezone.utc)
        manifest_uuid = uuid.uuid4()
        payload = manifest_uuid.bytes[: c._watermarker.payload_bytes]
        fingerprint: bytes | None = None
        # kept for a second embedding at "robust", should a weaker mark not read back from the encoded clip
        wm = c._watermarker
        unmarked = (
            frames if c._check_watermark and isinstance(wm, Watermarker) and wm.strength != "robust" else None
        )
        with self._stage("watermark"):
            try:
                marked: np.ndarray | None = None
                if on_device is not None:
                    # out of device memory or a driver error: the host path still works, so use it
                    try:
                        on_device_marked: Any = c._watermarker.embed(
                            on_device, payload
                        )  # tensor in, tensor out
                        marked = on_device_marked.cpu().numpy()
                    except RuntimeError as exc:
                        logger.warning(
                            "watermarking on %s failed (%s); marking on the CPU", on_device.device, exc
                        )
                    on_device = None  # the device copy is not needed again; its memory goes back to the pool
                frames = marked if marked is not None else c._watermarker.embed(frames, payload)
            except WatermarkError as exc:
                raise WatermarkFailure(f"cannot watermark a {req.width}x{req.height} clip: {exc}") from exc
            if c._store is not None:
                # the second soft binding, kept with the manifest: finds it by content if the mark is destroyed
                # (a few milliseconds: four thumbnails a second)
                fingerprint = fingerprint_frames(frames, params.fps).to_bytes()
        self.record_fields["watermark_payload"] = payload.hex()
        self._check_cancel()
        self.frames = frames
        self.made = _Made(params, created_at, manifest_uuid, payload, fingerprint, label_record, unmarked)

    def _finish(self) -> GenerationResult:
        c, req = self.c, self.request
        if self.frames is None or self.made is None or self.done:
            raise RuntimeError("finish() runs once, after produce()")
        self._check_cancel()  # a request waiting for the encoder can still be cancelled
        frames, (params, created_at, manifest_uuid, payload, fingerprint, label_record, unmarked) = (
            self.frames,
            self.made,
        )

        # the random part keeps two requests that reuse a request id and output path off each other's files
        stem = f".{self.output.name}.{uuid.uuid4().hex[:12]}"
        unsigned = self.output.with_name(stem + ".unsigned.mp4")
        signed = self.output.with_name(stem + ".signed.mp4")
        self.temps += [unsigned, signed]
        aigc = None
        if "cn-gb-45438" in c._profiles:
            # written before signing, so the credentials' hash covers it and any later edit shows as tampering
            aigc = aigc_block(producer=c._owner.organization, manifest_uuid=manifest_uuid, payload=payload)

        def encode(marked: np.ndarray) -> None:
            media.encode_video(
                marked, unsigned, fps=params.fps, crf=c._crf, preset=c._preset,
                metadata={AIGC_KEY: encode_aigc(aigc)} if aigc is not None else None,
            )  # fmt: skip

        with self._stage("encode"):
            encode(frames)
        claims_mark = True
        if c._check_watermark:
            with self._stage("watermark_check"):
                claims_mark = self._mark_reads(unsigned, payload)
                wm = c._watermarker
                if not claims_mark and unmarked is not None and isinstance(wm, Watermarker):
                    logger.warning(
                        "the watermark does not read back from %s; marking it again at robust",
                        self.output.name,
                    )
                    frames = wm.with_strength("robust").embed(unmarked, payload)
                    encode(frames)
                    claims_mark = self._mark_reads(unsigned, payload)
                if not claims_mark:
                    # A mark that is not there must not be declared: the credentials (still signed, still
                    # disclosing AI generation) carry no soft binding, the result and audit record no payload,
                    # and the AIGC block no watermark id (so it is not taken for a forgery once credentials go).
                    logger.warning(
                        "the watermark does not read back from %s (content too flat, saturated or noise-like to "
                        "hold it); the clip is signed without claiming one",
                        self.output.name,
                    )
                    self.record_fields["watermark_payload"] = None
                    if aigc is not None:
                        aigc = aigc_block(
                            producer=c._owner.organization, manifest_uuid=manifest_uuid, payload=b""
                        )
                        encode(frames)
            self._check_cancel()  # the check can take a decode and a second encode

        grant_id = next((d.grant_id for d in self.decisions if d.grant_id), None)
        spec = ManifestSpec(
            manifest_uuid=manifest_uuid,
            title=self.output.name,
            owner=c._owner if req.user is None else c._owner.model_copy(update={"user": req.user}),
            model=c._model.info,
            params=params,
            request_id=req.request_id,
            created_at=created_at,
            prompt_commitment=prompt_commitment(req.prompt, self.salt),
            negative_prompt_commitment=(
                prompt_commitment(req.negative_prompt, self.salt) if req.negative_prompt else None
            ),
            prompt=req.prompt if c._disclose_prompts else None,
            negative_prompt=req.negative_prompt if c._disclose_prompts else None,
            policy=[d.summary() for d in self.decisions],
            grant_id=grant_id,
            training_mining=c._training_mining,
            soft_binding=SoftBinding(
                algorithm=c._watermarker.algorithm,
                payload=payload,
                end_ms=round(1000 * params.num_frames / params.fps),
            )
            if claims_mark
            else None,
            reference_image=req.image,
            profiles=list(c._profiles),
            aigc=aigc,
            visible_label=label_record,
        )
        with self._stage("sign"):
            manifest_store = sign_file(unsigned, signed, spec, c._signer)
        sha256 = _sha256_file(signed)
        self.record_fields.update(
            output_path=str(self.output), output_sha256=sha256, manifest_id=spec.manifest_label
        )

        with self._stage("record"):
            self._commit(signed, payload, spec.manifest_label, manifest_store, sha256, fingerprint)
        logger.info("generated %s (%s)", self.output, spec.manifest_label)
        return GenerationResult(
            request_id=req.request_id,
            path=self.output,
            sha256=sha256,
            manifest_id=spec.manifest_label,
            watermark_payload=payload.hex() if claims_mark else None,
            params=params,
            model=c._model.info,
            owner=spec.owner,
            policy=spec.policy,
            timings=self.timings,
            created_at=created_at,
        )


class AsyncClient:
    """The :class:`Client` for asyncio applications: the same keyword arguments, the same results and errors.

    Construction loads the models and blocks, as ``Client``'s does: make one at start-up, not per request.
    ``await generate(...)`` runs the request in a worker thread (``asyncio.to_thread``), so the event loop keeps
    serving while the model runs. Cancelling the awaiting task cancels the generation at its next check (between
    denoising steps), and the task's ``CancelledError`` comes once the worker has stopped: nothing is written at
    ``output`` and the cancellation is in the audit log. A request already past its last step (encoding, signing)
    completes, and its clip is written and recorded. Progress callbacks run in the worker thread.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._client = Client(**kwargs)

    @property
    def client(self) -> Client:
        """The synchronous client underneath (same models, store and policy)."""
        return self._client

    @property
    def policy(self) -> Policy:
        return self._client.policy

    @property
    def store(self) -> Store | None:
        return self._client.store

    @property
    def likeness(self) -> LikenessRegistry | None:
        return self._client.likeness

    async def generate(self, *, cancel: threading.Event | None = None, **kwargs: Any) -> GenerationResult:
        """:meth:`Client.generate` in a worker thread; takes the same keyword arguments."""
        event = cancel if cancel is not None else threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(self._client.generate, cancel=event, **kwargs))
        try:
            # shield: a cancelled caller must not abandon the thread mid-write; it is told to stop and awaited
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            event.set()
            try:
                await worker
            except GenerationCancelled:
                pass
            raise

    async def close(self) -> None:
        """Sign a checkpoint over the audit log's newest records (:meth:`Client.close`) off the event loop."""
        await asyncio.to_thread(self._client.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
