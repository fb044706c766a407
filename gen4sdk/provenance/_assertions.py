"""The gen4sdk assertions of a clip's C2PA manifest, as versioned pydantic models.

The same classes write an assertion (``to_data``) and read it back (``read``), so writer and reader cannot drift
apart as the hand-built dicts and chains of ``.get`` once did. Every assertion carries ``version``; a reader
accepts every version this release knows and refuses a newer one rather than guessing what its fields mean.
Forms written by earlier releases stay readable: the policy assertion had no ``version`` and reads as version 0.

Their JSON Schema is published for other verifiers in ``docs/assertions`` (see ``_schemas.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import Self

from gen4sdk.types import PolicySummary

__all__ = [
    "ASSERTIONS",
    "DISCLOSURE_LABEL",
    "LINEAGE_LABEL",
    "POLICY_LABEL",
    "DisclosureAssertion",
    "LineageAssertion",
    "LineageModel",
    "PolicyAssertion",
]

LINEAGE_LABEL = "com.gen4sdk.lineage"
POLICY_LABEL = "com.gen4sdk.policy"
DISCLOSURE_LABEL = "com.gen4sdk.disclosure"


class _Assertion(BaseModel):
    # Unknown fields are ignored, not refused: a later minor revision may add one without a version bump, and an
    # older reader should still read what it knows.
    model_config = ConfigDict(frozen=True, extra="ignore")

    LABEL: ClassVar[str]
    VERSION: ClassVar[int]
    # keys written only when they hold a value (older releases wrote them that way; readers take absence as None)
    _OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _known_version(cls, data: Any) -> Any:
        if isinstance(data, dict):
            version = data.get("version", 0)
            if isinstance(version, int) and not isinstance(version, bool) and version > cls.VERSION:
                raise ValueError(
                    f"{cls.LABEL} version {version} is newer than this release reads (up to {cls.VERSION})"
                )
        return data

    @classmethod
    def read(cls, data: Any) -> Self:
        """The assertion from its manifest data; raises ``ValueError`` (pydantic's ValidationError is one) when the
        data is not in a shape this release knows."""
        return cls.model_validate(data)

    def to_data(self) -> dict[str, Any]:
        """The assertion's data as it goes into the manifest definition (JSON types only)."""
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if not (v is None and k in self._OMIT_WHEN_NONE)}

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        schema = cls.model_json_schema(mode="validation")
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{cls.LABEL} (version {cls.VERSION})",
            **{k: v for k, v in schema.items() if k != "title"},
        }


class LineageModel(BaseModel):
    """The model that generated the clip, as the lineage records it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    model_id: str
    pipeline_class: str | None = None
    weights_sha256: str | None = Field(default=None, description="SHA-256 over the pipeline's weight tensors")


class LineageAssertion(_Assertion):
    """``com.gen4sdk.lineage``: where the clip came from. The prompt is recorded as a salted commitment (the salt
    stays in the operator's audit log) unless the operator opted in to disclosing it.

    Version 1 is the form every release so far has written."""

    LABEL: ClassVar[str] = LINEAGE_LABEL
    VERSION: ClassVar[int] = 1
    _OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"prompt", "negative_prompt", "likeness_grant_id"})

    version: Literal[1] = 1
    request_id: str
    created_at: str = Field(description="ISO 8601 time the request was made")
    manifest_short_id: str | None = Field(default=None, description="hex id carried by the watermark")
    commitment_scheme: str
    prompt_commitment: str
    negative_prompt_commitment: str | None = None
    seed: int
    parameters: dict[str, Any] = Field(description="the parameters the pipeline ran with (GenerationParams)")
    model: LineageModel
    generator: str = Field(description="the SDK and version that wrote the manifest")
    prompt: str | None = Field(default=None, description="only when the operator discloses prompts")
    negative_prompt: str | None = None
    likeness_grant_id: str | None = Field(
        default=None, description="the consent grant a likeness was used under"
    )


class PolicyAssertion(_Assertion):
    """``com.gen4sdk.policy``: the policy decisions' summaries (pack id, version and hash, outcome, categories;
    never the matched text).

    Version 0 is the unversioned form of the releases before versions were written; it has the same fields."""

    LABEL: ClassVar[str] = POLICY_LABEL
    VERSION: ClassVar[int] = 1

    version: Literal[0, 1] = Field(default=0, description="absent in the unversioned form, which reads as 0")
    decisions: list[PolicySummary] = Field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        # always written at the current version, whatever version it was read at
        return {**super().to_data(), "version": self.VERSION}


class DisclosureAssertion(_Assertion):
    """``com.gen4sdk.disclosure``: the latent disclosure the labelling-law profiles ask for, in one place a
    verifier can read without knowing C2PA's other assertions: the provider, the generating system's name and
    version, the creation time, the content's unique id, the profiles the operator holds the clip to, and the
    GB 45438 AIGC metadata block exactly as written into the file (so a verifier can compare the two).

    Written only by a Client with ``compliance`` profiles. Version 1 is the first form."""

    LABEL: ClassVar[str] = DISCLOSURE_LABEL
    VERSION: ClassVar[int] = 1
    _OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"aigc"})

    version: Literal[1] = 1
    profiles: list[str] = Field(
        description="the labelling-law profiles the clip was made under, e.g. eu-ai-act"
    )
    provider: str = Field(description="the provider (the operator's organisation)")
    system_name: str = Field(description="the generating system: the video model's id")
    system_version: str = Field(
        description="its version: the weights' SHA-256 when known, with the SDK's version"
    )
    created_at: str = Field(description="ISO 8601 creation time")
    content_id: str = Field(description="the manifest id, urn:c2pa:UUID")
    aigc: dict[str, str] | None = Field(
        default=None, description="the GB 45438 AIGC block written in the file"
    )


ASSERTIONS: tuple[type[_Assertion], ...] = (LineageAssertion, PolicyAssertion, DisclosureAssertion)
