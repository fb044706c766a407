"""The implicit label of China's GB 45438-2025: the ``AIGC`` metadata block of a file.

The block is one metadata entry named ``AIGC`` whose value is a JSON object of seven string fields, in this order:
``Label`` (the content's AI-generation attribute; "1" generated or synthesised, and, by the issue's reading, not
confirmed in any source found, "2" possibly and "3" suspected),
``ContentProducer`` (the provider's name or code), ``ProduceID`` (the producer's content number),
``ReservedCode1`` (the producer's own protection field), ``ContentPropagator`` and ``PropagateID`` (filled by a
platform that redistributes the file) and ``ReservedCode2`` (the propagator's field). In an MP4 it is written as a
QuickTime metadata key (``moov/udta/meta``, an ``mdta`` key), the form ``ffmpeg -metadata AIGC=... -movflags
use_metadata_tags`` makes; docs/compliance.md says which sources this rests on.

gen4sdk writes the block before the clip is signed, so the C2PA hard binding covers it: a changed block makes the
credentials fail as ``tampered``. ProduceID is the manifest's UUID and ReservedCode1 the watermark's payload (the
manifest's short id), so a block copied onto another clip, or one whose ids do not match the clip's credentials or
watermark, is reported as not this clip's.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

from gen4sdk.errors import MediaError

logger = logging.getLogger(__name__)

__all__ = [
    "AIGC_FIELDS",
    "AIGC_KEY",
    "AigcFinding",
    "aigc_block",
    "claims_gen4sdk_ids",
    "encode_aigc",
    "matches_manifest",
    "parse_aigc",
    "read_aigc",
]

AIGC_KEY = "AIGC"
AIGC_FIELDS = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)
LABEL_VALUES = {"1": "generated or synthesised", "2": "possibly generated", "3": "suspected generated"}


def aigc_block(*, producer: str, manifest_uuid: uuid.UUID, payload: bytes) -> dict[str, str]:
    """The block gen4sdk writes: generated ("1"), the operator as producer, the manifest's ids; the propagation
    fields are left for a platform that redistributes the clip."""
    return {
        "Label": "1",
        "ContentProducer": producer,
        "ProduceID": str(manifest_uuid),
        "ReservedCode1": payload.hex(),
        "ContentPropagator": "",
        "PropagateID": "",
        "ReservedCode2": "",
    }


def encode_aigc(block: dict[str, str]) -> str:
    # ensure_ascii=False: a Chinese provider name stays readable to the tools platforms use to read the block
    return json.dumps({k: block[k] for k in AIGC_FIELDS}, ensure_ascii=False, separators=(",", ":"))


class AigcFinding:
    """What a file holds under ``AIGC``: the block (when its JSON parses to an object) and what is wrong with it."""

    def __init__(self, block: dict[str, str] | None, problems: list[str], present: bool) -> None:
        self.block = block
        self.problems = problems
        self.present = present


def parse_aigc(raw: str) -> AigcFinding:
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        return AigcFinding(None, [f"the AIGC entry is not JSON ({exc.msg})"], present=True)
    if not isinstance(data, dict):
        return AigcFinding(None, ["the AIGC entry is not a JSON object"], present=True)
    problems: list[str] = []
    missing = [f for f in AIGC_FIELDS if f not in data]
    if missing:
        problems.append(f"the AIGC block lacks {', '.join(missing)}")
    extra = sorted(k for k in data if k not in AIGC_FIELDS)
    if extra:
        problems.append(f"the AIGC block has fields the standard does not define: {', '.join(extra)}")
    block = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items() if k in AIGC_FIELDS}
    wrong_type = [k for k, v in data.items() if k in AIGC_FIELDS and not isinstance(v, str)]
    if wrong_type:
        problems.append(f"AIGC fields that are not strings: {', '.join(wrong_type)}")
    if "Label" in block and block["Label"] not in LABEL_VALUES:
        problems.append(f"AIGC Label {block['Label']!r} is none of 1, 2, 3")
    if not block.get("ContentProducer"):
        problems.append("AIGC ContentProducer is empty")
    if not block.get("ProduceID"):
        problems.append("AIGC ProduceID is empty")
    return AigcFinding(block, problems, present=True)


def read_aigc(path: str | Path) -> AigcFinding:
    """The AIGC block of a media file. A file without one, or one that does not open, is ``present=False``."""
    from gen4sdk import media

    try:
        tags = media.container_metadata(path)
    except MediaError as exc:
        logger.info("no container metadata in %s: %s", path, exc)
        return AigcFinding(None, [], present=False)
    raw = next((v for k, v in tags.items() if k.upper() == AIGC_KEY), None)
    if raw is None:
        return AigcFinding(None, [], present=False)
    return parse_aigc(raw)


def matches_manifest(block: dict[str, str], manifest_id: str | None, payload_hex: str | None) -> str | None:
    """Why the block's ids are not this clip's (None when they are): ProduceID must be the credentials' manifest
    UUID, or, without credentials, begin with the watermark's payload; ReservedCode1 must be that payload."""
    produce_id = block.get("ProduceID", "")
    if manifest_id is not None:
        expected = manifest_id.removeprefix("urn:c2pa:")
        if produce_id != expected:
            return f"AIGC ProduceID {produce_id!r} is not the credentials' manifest id {expected!r}"
    if payload_hex is not None:
        try:
            prefix = uuid.UUID(produce_id).bytes[: len(payload_hex) // 2].hex()
        except ValueError:
            prefix = None
        if manifest_id is None and prefix != payload_hex:
            return f"AIGC ProduceID {produce_id!r} does not carry the watermark's id {payload_hex}"
        code = block.get("ReservedCode1", "")
        if code and code != payload_hex:
            return f"AIGC ReservedCode1 {code!r} is not the watermark's id {payload_hex}"
    return None


def claims_gen4sdk_ids(block: dict[str, str]) -> bool:
    """True for a block in the form gen4sdk writes: ProduceID a UUID whose first bytes are ReservedCode1 (the
    watermark payload). Such a block on a clip without that watermark was not made with it."""
    code = block.get("ReservedCode1", "")
    try:
        return bool(code) and uuid.UUID(block.get("ProduceID", "")).bytes.hex().startswith(code.lower())
    except ValueError:
        return False
