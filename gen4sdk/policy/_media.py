"""Media checks: reference images and sampled output frames against content detectors, CLIP concepts (when an
operator configures an image encoder) and the likeness registry's faces.

Which models run is the Policy's choice (built-in ones by default, the operator's, or none); which scores
refuse is the pack's (``detectors`` and ``concepts`` thresholds per category, ``likeness.face_threshold``).
A category the pack lists as ``required`` for a target that no model with a threshold covers is *unchecked*:
the pack warns or refuses (``unchecked: warn | block``). A model that was configured but cannot load makes
the whole check refuse with SAFETY.UNAVAILABLE, whatever the pack says: that is a broken install, not a choice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from gen4sdk.policy._detectors import ContentDetector
from gen4sdk.policy._encoders import ImageEncoder
from gen4sdk.policy._faces import Face, FaceEncoder
from gen4sdk.policy._likeness import LikenessRegistry
from gen4sdk.policy._schema import PolicyPack
from gen4sdk.policy._semantic import lookup_threshold
from gen4sdk.policy._verdict import Stage, Trigger, Verdicts
from gen4sdk.types import Decision, MatchedSpan, RefusalCode

__all__ = ["MediaChecker", "Target"]

Target = Literal["image", "frames"]


class MediaChecker:
    """The image and frame checks of one pack, with the models the Policy chose."""

    def __init__(
        self,
        pack: PolicyPack,
        verdicts: Verdicts,
        *,
        detectors: Sequence[ContentDetector],
        faces: FaceEncoder | None,
        image_encoder: ImageEncoder | None,
    ) -> None:
        self.pack = pack
        self.detectors = list(detectors)
        self.faces = faces
        self.image_encoder = image_encoder
        self._verdicts = verdicts
        self._by_id = {c.id: c for c in pack.categories}
        self._lock = threading.Lock()
        self._concepts: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def warm_up(self) -> None:
        for d in self.detectors:
            d.warm_up()
        if self.faces is not None:
            self.faces.warm_up()
        if self.image_encoder is not None:
            self._concept_table(self.image_encoder)

    def _concept_table(self, encoder: ImageEncoder) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if self._concepts is None:
            with self._lock:
                if self._concepts is None:
                    table = {}
                    for c in self.pack.categories:
                        if c.concepts is not None:
                            pos = encoder.encode_texts(c.concepts.positive)
                            neg = (
                                encoder.encode_texts(c.concepts.negative) if c.concepts.negative else pos[:0]
                            )
                            table[c.id] = (pos, neg)
                    self._concepts = table
        return self._concepts

    def check(
        self,
        images: list[np.ndarray],
        *,
        target: Target,
        registry: LikenessRegistry | None,
        user: str | None,
        use: str | None,
        scenes: Sequence[int] | None = None,
    ) -> Decision:
        """``scenes``: for frames, the scene each image belongs to (faces are tracked within a scene)."""
        stage: Stage = "input" if target == "image" else "output"
        code: RefusalCode = "SAFETY.INPUT.IMAGE" if target == "image" else "SAFETY.OUTPUT.FRAMES"
        likeness_code: RefusalCode = (
            "SAFETY.INPUT.LIKENESS" if target == "image" else "SAFETY.OUTPUT.LIKENESS"
        )
        spec = self.pack.images if target == "image" else self.pack.frames
        label = "image" if target == "image" else "frames"
        scores: dict[str, float] = {}
        warnings: list[str] = []
        triggers: dict[str, Trigger] = {}
        checked: set[str] = set()

        def flag(cid: str, rule: str) -> None:
            triggers.setdefault(cid, Trigger(cid, model=True)).spans.append(
                MatchedSpan(category=cid, rule=rule, start=0, end=0, text="")
            )

        for det in self.detectors:
            wanted = [
                c for c in det.categories
                if c in self._by_id and target in self._by_id[c].applies_to and det.id in self._by_id[c].detectors
            ]  # fmt: skip
            if not wanted:
                continue
            result = det.scores(images)
            for cid in wanted:
                checked.add(cid)
                s = float(np.max(result[cid]))
                scores[f"{cid}:{det.id}"] = round(s, 4)
                if s >= self._by_id[cid].detectors[det.id]:
                    flag(cid, f"detector:{det.id}")

        if self.image_encoder is not None:
            enc = self.image_encoder
            emb = enc.encode_images(images)
            for cid, (pos, neg) in self._concept_table(enc).items():
                cat = self._by_id[cid]
                thr = lookup_threshold(cat.concepts.threshold, enc.id) if cat.concepts is not None else None
                if target not in cat.applies_to or thr is None:
                    continue
                checked.add(cid)
                p = (emb @ pos.T).max(axis=1)
                n = (emb @ neg.T).max(axis=1) if len(neg) else np.zeros_like(p)
                s = float((p - self.pack.counter_weight * n).max())
                scores[f"{cid}:{enc.id}"] = round(s, 4)
                if s >= thr:
                    flag(cid, f"concept:{enc.id}")

        missing = [c for c in spec.required if c not in checked]
        if missing:
            warnings.append(f"{label}.unchecked")
            if spec.unchecked == "block":
                return self._verdicts.fail_closed(
                    code=code,
                    stage=stage,
                    scores=scores,
                    warnings=[*warnings, *(f"{label}.unchecked:{c}" for c in missing)],
                    reason=f"no configured model checks {', '.join(missing)} in {label}; "
                    f"pack {self.pack.id} fails closed on unchecked {label}",
                )

        grant_ids: list[str] = []
        if (
            registry is not None
            and "likeness" in self._by_id
            and target in self._by_id["likeness"].applies_to
        ):
            unchecked = self._faces(images, scenes, registry, user, use, scores, grant_ids, flag)
            if unchecked:
                warnings.append(f"likeness.{label}_unchecked:{unchecked}")
                if spec.unchecked == "block":
                    return self._verdicts.fail_closed(
                        code=likeness_code,
                        stage=stage,
                        scores=scores,
                        warnings=warnings,
                        reason=f"faces in {label} not compared with the likeness registry ({unchecked}); "
                        f"pack {self.pack.id} fails closed on unchecked {label}",
                    )
        return self._verdicts.finish(
            triggers, scores, warnings, grant_ids, stage=stage, content_code=code, likeness_code=likeness_code
        )

    def _faces(
        self,
        images: list[np.ndarray],
        scenes: Sequence[int] | None,
        registry: LikenessRegistry,
        user: str | None,
        use: str | None,
        scores: dict[str, float],
        grant_ids: list[str],
        flag: Callable[[str, str], None],
    ) -> str:
        """Compare every face found with the registry; returns why faces went unchecked ("" when they were not)."""
        stored = registry.has_face_embeddings()
        if not stored:
            return ""  # no protected faces: nothing to compare with
        if self.faces is None:
            return "no_face_encoder"
        enc = self.faces
        ids, mat = registry.face_embeddings(enc.id)
        thr = lookup_threshold(self.pack.likeness.face_threshold, enc.id)
        if thr is None:
            return f"untuned:{enc.id}"
        # identities whose faces were enrolled only with another encoder cannot be compared: say so, so the
        # pack's unchecked rule applies, and still compare everyone who can be
        enrolled = {i.id for i in registry.identities() if i.face_embeddings}
        missing = enrolled - set(ids)
        unchecked = f"no_embeddings_for:{enc.id}" if missing else ""
        if not ids:
            return unchecked
        best = -1.0
        matched: set[str] = set()
        for found in _faces_of(enc, images, scenes):
            for face in found:
                if face.embedding.shape[0] != mat.shape[1]:
                    return "dimension_mismatch"
                sims = mat @ face.embedding
                best = max(best, float(sims.max()))
                matched.update(ids[j] for j in np.nonzero(sims >= thr)[0])
        if best > -1.0:
            scores["likeness"] = round(best, 4)
        for ident in sorted(matched):
            grant = registry.find_grant(ident, user, use=use)
            if grant is not None:
                grant_ids.append(grant.id)
            else:
                flag("likeness", f"face:{ident}")
        return unchecked


# A face tracked across samples of one scene is embedded again after this many samples (1.5 s at two samples a
# second): embedding costs about 100 ms a face on one core, detection 40-60 ms a frame, and a face that stays
# in place within a shot is the same person; re-embedding bounds how long a change of identity goes unseen.
_REEMBED_EVERY = 3
_SAME_FACE_IOU = 0.5


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _faces_of(enc: FaceEncoder, images: list[np.ndarray], scenes: Sequence[int] | None) -> list[list[Face]]:
    """The faces of each image. For frames of a clip (``scenes`` given) with an encoder that can detect and
    embed separately, a face at the place of one in the previous sample of the same scene reuses its
    embedding (for at most ``_REEMBED_EVERY`` samples)."""
    detect = getattr(enc, "detect", None)
    embed = getattr(enc, "embed", None)
    # an encoder asked to try rotated copies does so only in faces(): tracking would skip those passes
    rotations: tuple[float, ...] = tuple(getattr(enc, "rotations", ()))
    if scenes is None or detect is None or embed is None or rotations:
        return [enc.faces(img) for img in images]
    out: list[list[Face]] = []
    tracks: list[
        tuple[Face, int]
    ] = []  # faces of the previous sample, and how many samples their embedding served
    previous_scene: int | None = None
    for img, scene in zip(images, scenes):
        if scene != previous_scene:
            tracks = []
        previous_scene = scene
        boxes = detect(img)
        kept: dict[int, tuple[Face, int]] = {}
        fresh: list[int] = []
        for i, box in enumerate(boxes):
            match = max(tracks, key=lambda t: _iou(t[0].box, box), default=None)
            if match is not None and _iou(match[0].box, box) >= _SAME_FACE_IOU and match[1] < _REEMBED_EVERY:
                kept[i] = (
                    Face(box=box, embedding=match[0].embedding, detection_score=match[0].detection_score),
                    match[1] + 1,
                )
            else:
                fresh.append(i)
        for i, face in zip(fresh, embed(img, [boxes[i] for i in fresh]) if fresh else []):
            kept[i] = (face, 1)
        tracks = [kept[i] for i in sorted(kept)]
        out.append([f for f, _ in tracks])
    return out
