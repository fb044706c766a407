"""The C2PA manifest of a generated clip, built as data and signed with c2pa-python.

Assertions written (labels are what verifiers and other C2PA tools read):
- ``c2pa.actions.v2``: ``c2pa.created`` with digitalSourceType trainedAlgorithmicMedia and a softwareAgent naming
  gen4sdk and the model; ``c2pa.watermarked`` when an invisible watermark was embedded.
- ``stds.schema-org.CreativeWork``: ownership, as schema.org author/copyrightHolder (organisation and user), which
  C2PA viewers display. The CAWG identity assertion is not used: c2pa-python 0.38 only signs it from a private key
  placed in its settings, which defeats KMS-held keys (see README).
- ``com.gen4sdk.lineage``: prompt commitment (or the prompt, opt-in), seed, effective parameters, model id and
  weights hash, request id, timestamps (``_assertions.LineageAssertion``).
- ``com.gen4sdk.policy``: the policy decisions' summaries (pack, version, hash, outcome, categories; no matched text)
  (``_assertions.PolicyAssertion``). Both are versioned; their JSON Schema is in ``docs/assertions``.
- ``cawg.training-mining``: the operator's do-not-train choice.
- ``c2pa.soft-binding``: the watermark algorithm and payload, and the time span it covers.
- With labelling-law profiles (``Client(compliance=...)``): ``com.gen4sdk.disclosure`` (provider, system name and
  version, time, content id, the GB 45438 AIGC block as written), and a ``c2pa.edited`` action for a visible label
  burned into the frames, its text, place, size and time span in the action's parameters.
The reference image of an image-to-video request is an ingredient with relationship ``inputTo``.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import mimetypes
import uuid
from pathlib import Path
from typing import Any, Literal

import c2pa
from pydantic import BaseModel, ConfigDict, Field

from gen4sdk._version import __version__
from gen4sdk.errors import MediaError, SigningError
from gen4sdk.provenance._assertions import (
    DISCLOSURE_LABEL,
    LINEAGE_LABEL,
    POLICY_LABEL,
    DisclosureAssertion,
    LineageAssertion,
    LineageModel,
    PolicyAssertion,
)
from gen4sdk.types import ClaimSigner, GenerationParams, LabelRecord, ModelInfo, Owner, PolicySummary

logger = logging.getLogger(__name__)

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
OWNERSHIP_LABEL = "stds.schema-org.CreativeWork"
TRAINING_LABEL = "cawg.training-mining"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
# The key of a c2pa.edited action's parameters that records a burned-in visible label (LabelRecord's fields).
VISIBLE_LABEL_PARAMETER = "com.gen4sdk.visible_label"
COMMITMENT_SCHEME = "sha256(salt || utf8(prompt)), hex; salt kept in the operator's audit log"

TrainingUse = Literal["allowed", "notAllowed", "constrained"]
_TRAINING_ENTRIES = (
    "cawg.ai_training",
    "cawg.ai_generative_training",
    "cawg.ai_inference",
    "cawg.data_mining",
)


class SoftBinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    algorithm: str
    payload: bytes
    start_ms: int = 0
    end_ms: int


class ManifestSpec(BaseModel):
    """Everything the manifest of one clip records; the Client fills it, ``sign_file`` turns it into C2PA."""

    model_config = ConfigDict(frozen=True)

    manifest_uuid: uuid.UUID = Field(default_factory=uuid.uuid4)
    title: str
    owner: Owner
    model: ModelInfo
    params: GenerationParams
    request_id: str
    created_at: dt.datetime
    prompt_commitment: str
    negative_prompt_commitment: str | None = None
    prompt: str | None = Field(
        default=None, description="only when the operator opts in to disclosing prompts"
    )
    negative_prompt: str | None = None
    policy: list[PolicySummary] = Field(default_factory=list)
    grant_id: str | None = None
    training_mining: TrainingUse = "notAllowed"
    soft_binding: SoftBinding | None = None
    reference_image: Path | None = None
    profiles: list[str] = Field(
        default_factory=list, description="labelling-law profiles; adds the disclosure"
    )
    aigc: dict[str, str] | None = Field(
        default=None, description="the GB 45438 AIGC block written in the file"
    )
    visible_label: LabelRecord | None = None

    @property
    def manifest_label(self) -> str:
        return f"urn:c2pa:{self.manifest_uuid}"

    @property
    def short_id(self) -> bytes:
        """The 8-byte id carried by the watermark: the first half of the manifest's UUID."""
        return short_id_of(self.manifest_uuid)


def short_id_of(manifest_uuid: uuid.UUID) -> bytes:
    return manifest_uuid.bytes[:8]


def software_agent(model_id: str) -> str:
    return f"gen4sdk {__version__} ({model_id})"


def system_version(model: ModelInfo) -> str:
    """The generating system's version for a latent disclosure: the weights' hash pins the model exactly."""
    weights = f"weights sha256:{model.weights_sha256[:16]}" if model.weights_sha256 else "weights unknown"
    return f"{weights}; gen4sdk {__version__}"


def build_definition(spec: ManifestSpec) -> dict[str, Any]:
    """The manifest definition (c2pa-python's JSON form) for ``spec``."""
    agent = {"name": software_agent(spec.model.model_id), "version": __version__}
    actions: list[dict[str, Any]] = [
        {
            "action": "c2pa.created",
            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "softwareAgent": agent,
            "when": spec.created_at.isoformat(),
            "parameters": {"description": f"generated by {spec.model.model_id}"},
        }
    ]
    if spec.visible_label is not None:
        # burned in before the watermark, so it is listed before c2pa.watermarked
        actions.append(
            {
                "action": "c2pa.edited",
                "softwareAgent": agent,
                "when": spec.created_at.isoformat(),
                "parameters": {
                    "description": f"visible AI-disclosure label burned in: {spec.visible_label.text!r}",
                    VISIBLE_LABEL_PARAMETER: spec.visible_label.model_dump(mode="json"),
                },
            }
        )
    assertions: list[dict[str, Any]] = []
    if spec.profiles:
        disclosure = DisclosureAssertion(
            profiles=list(spec.profiles),
            provider=spec.owner.organization,
            system_name=spec.model.model_id,
            system_version=system_version(spec.model),
            created_at=spec.created_at.isoformat(),
            content_id=spec.manifest_label,
            aigc=spec.aigc,
        )
        assertions.append({"label": DISCLOSURE_LABEL, "data": disclosure.to_data()})
    if spec.soft_binding is not None:
        actions.append(
            {"action": "c2pa.watermarked", "softwareAgent": agent, "when": spec.created_at.isoformat()}
        )
        sb = spec.soft_binding
        assertions.append(
            {
                "label": SOFT_BINDING_LABEL,
                "data": {
                    "alg": sb.algorithm,
                    "blocks": [
                        {
                            "scope": {"timespan": {"start": sb.start_ms, "end": sb.end_ms}},
                            "value": base64.b64encode(sb.payload).decode("ascii"),
                        }
                    ],
                },
            }
        )
    authors: list[dict[str, Any]] = [{"@type": "Organization", "name": spec.owner.organization}]
    if spec.owner.website:
        authors[0]["url"] = spec.owner.website
    if spec.owner.user:
        authors.append({"@type": "Person", "name": spec.owner.user})
    lineage = LineageAssertion(
        request_id=spec.request_id,
        created_at=spec.created_at.isoformat(),
        manifest_short_id=spec.short_id.hex(),
        commitment_scheme=COMMITMENT_SCHEME,
        prompt_commitment=spec.prompt_commitment,
        negative_prompt_commitment=spec.negative_prompt_commitment,
        seed=spec.params.seed,
        parameters=spec.params.model_dump(mode="json"),
        model=LineageModel.model_validate(spec.model.model_dump(mode="json")),
        generator=f"gen4sdk {__version__}",
        prompt=spec.prompt,
        negative_prompt=spec.negative_prompt,
        likeness_grant_id=spec.grant_id,
    )
    assertions = [
        {"label": "c2pa.actions.v2", "data": {"actions": actions}},
        {
            "label": OWNERSHIP_LABEL,
            "data": {
                "@context": "https://schema.org",
                "@type": "CreativeWork",
                "author": authors,
                "copyrightHolder": {"@type": "Organization", "name": spec.owner.organization},
                "dateCreated": spec.created_at.isoformat(),
            },
        },
        {"label": LINEAGE_LABEL, "data": lineage.to_data()},
        {"label": POLICY_LABEL, "data": PolicyAssertion(decisions=spec.policy).to_data()},
        {
            "label": TRAINING_LABEL,
            "data": {"entries": {name: {"use": spec.training_mining} for name in _TRAINING_ENTRIES}},
        },
        *assertions,
    ]
    return {
        "claim_generator_info": [{"name": "gen4sdk", "version": __version__}],
        "label": spec.manifest_label,
        "title": spec.title,
        "format": "video/mp4",
        "assertions": assertions,
    }


def ingredient_mime(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0]
    if mime not in {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/tiff",
        "image/gif",
        "image/avif",
        "image/heic",
    }:
        raise MediaError(
            f"reference image {path.name!r} has a type C2PA cannot record as an ingredient ({mime})"
        )
    return mime


def sign_file(source: Path, destination: Path, spec: ManifestSpec, signer: ClaimSigner) -> bytes:
    """Sign ``source`` (an MP4) into ``destination`` and return the manifest store (JUMBF bytes).

    ``destination`` should be a temporary path: on failure it may hold a partial file, which the caller removes.
    """
    signer.check_valid()
    definition = build_definition(spec)
    try:
        builder = c2pa.Builder(definition)
        if spec.reference_image is not None:
            with spec.reference_image.open("rb") as image:
                builder.add_ingredient(
                    {"title": spec.reference_image.name, "relationship": "inputTo"},
                    ingredient_mime(spec.reference_image),
                    image,
                )
        with source.open("rb") as src, destination.open("w+b") as dst:
            manifest_store = builder.sign(signer.c2pa_signer(), "video/mp4", src, dst)
    except c2pa.C2paError as exc:
        raise SigningError(f"C2PA signing failed: {exc}") from exc
    except OSError as exc:
        raise SigningError(f"C2PA signing could not read or write a file: {exc}") from exc
    logger.info(
        "signed %s as %s (%d bytes of credentials)",
        destination.name,
        spec.manifest_label,
        len(manifest_store),
    )
    return bytes(manifest_store)
