"""The gen4sdk assertions: one versioned pydantic model each, used by both the writer and the reader; forms
written by earlier releases still read; the JSON Schema files in docs/assertions match the models."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gen4sdk.provenance._assertions import LINEAGE_LABEL, POLICY_LABEL, LineageAssertion, PolicyAssertion
from gen4sdk.provenance._manifest_read import _lineage, _policy
from gen4sdk.provenance._schemas import main, schema_files
from gen4sdk.provenance.manifest import ManifestSpec, build_definition
from gen4sdk.types import GenerationParams, ModelInfo, Owner, PolicySummary

DOCS = Path(__file__).resolve().parents[1] / "docs" / "assertions"

# Exactly what gen4sdk 0.1.0 wrote (build_definition of that release, for _spec() below): kept verbatim, because
# clips signed then must read the same forever.
LINEAGE_0_1_0: dict[str, Any] = {
    "version": 1,
    "request_id": "req-1",
    "created_at": "2026-12-01T12:00:00+00:00",
    "manifest_short_id": "1234567812345678",
    "commitment_scheme": "sha256(salt || utf8(prompt)), hex; salt kept in the operator's audit log",
    "prompt_commitment": "cd" * 32,
    "negative_prompt_commitment": None,
    "seed": 42,
    "parameters": {
        "num_frames": 16,
        "height": 144,
        "width": 256,
        "fps": 16.0,
        "steps": 4,
        "guidance_scale": 5.0,
        "seed": 42,
        "device": "cpu",
        "dtype": "float32",
        "memory_mode": "none",
        "scheduler": "UniPC",
        "pipeline_class": "WanPipeline",
        "image_to_video": False,
    },
    "model": {"model_id": "acme/wan", "pipeline_class": "WanPipeline", "weights_sha256": "ab" * 32},
    "generator": "gen4sdk 0.1.0",
    "likeness_grant_id": "grant-7",
}
POLICY_0_1_0: dict[str, Any] = {
    "decisions": [
        {
            "stage": "input",
            "pack_id": "default",
            "pack_version": "2.0.0",
            "pack_sha256": "ef" * 32,
            "core_sha256": None,
            "outcome": "allowed",
            "categories": ["violence"],
            "grant_id": None,
            "code": None,
            "warnings": ["frames.unchecked"],
        }
    ]
}


def _spec() -> ManifestSpec:
    params = GenerationParams(
        num_frames=16,
        height=144,
        width=256,
        fps=16,
        steps=4,
        guidance_scale=5.0,
        seed=42,
        device="cpu",
        dtype="float32",
        memory_mode="none",
        scheduler="UniPC",
        pipeline_class="WanPipeline",
        image_to_video=False,
    )
    return ManifestSpec(
        manifest_uuid=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        title="clip.mp4",
        owner=Owner(organization="Acme"),
        model=ModelInfo(model_id="acme/wan", pipeline_class="WanPipeline", weights_sha256="ab" * 32),
        params=params,
        request_id="req-1",
        created_at=dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc),
        prompt_commitment="cd" * 32,
        grant_id="grant-7",
        policy=[
            PolicySummary(
                pack_id="default",
                pack_version="2.0.0",
                pack_sha256="ef" * 32,
                outcome="allowed",
                categories=["violence"],
                warnings=["frames.unchecked"],
            )
        ],
    )


def _written(label: str) -> dict[str, Any]:
    data = next(a["data"] for a in build_definition(_spec())["assertions"] if a["label"] == label)
    assert isinstance(data, dict)
    return data


def _manifest(label: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"assertions": [{"label": label, "data": data}]}


def test_lineage_is_written_as_before_and_reads_back() -> None:
    written = _written(LINEAGE_LABEL)
    generator = written["generator"]
    assert written == {**LINEAGE_0_1_0, "generator": generator}  # the shape has not moved: still version 1
    assert LineageAssertion.read(written).to_data() == written


def test_the_old_forms_still_read() -> None:
    lineage = _lineage(_manifest(LINEAGE_LABEL, LINEAGE_0_1_0))
    assert lineage is not None
    assert (lineage.request_id, lineage.seed, lineage.model_id, lineage.grant_id) == (
        "req-1",
        42,
        "acme/wan",
        "grant-7",
    )
    assert (
        lineage.weights_sha256 == "ab" * 32 and lineage.prompt is None and lineage.parameters["fps"] == 16.0
    )
    policy = _policy(_manifest(POLICY_LABEL, POLICY_0_1_0))
    assert [(p.pack_id, p.categories, p.warnings) for p in policy] == [
        ("default", ["violence"], ["frames.unchecked"])
    ]
    assert PolicyAssertion.read(POLICY_0_1_0).version == 0


def test_policy_is_now_versioned_and_round_trips() -> None:
    written = _written(POLICY_LABEL)
    assert written == {"version": 1, **POLICY_0_1_0}
    assert PolicyAssertion.read(written) == PolicyAssertion.read(POLICY_0_1_0).model_copy(
        update={"version": 1}
    )
    assert PolicyAssertion.read(POLICY_0_1_0).to_data() == written  # re-written at the current version


def test_disclosed_prompt_is_written_only_when_given() -> None:
    spec = _spec().model_copy(update={"prompt": "a red fox", "grant_id": None})
    data = next(a["data"] for a in build_definition(spec)["assertions"] if a["label"] == LINEAGE_LABEL)
    assert data["prompt"] == "a red fox" and "likeness_grant_id" not in data and "negative_prompt" not in data
    assert LineageAssertion.read(data).prompt == "a red fox"


@pytest.mark.parametrize("cls", [LineageAssertion, PolicyAssertion])
def test_a_newer_version_is_refused_not_guessed(cls: type[LineageAssertion | PolicyAssertion]) -> None:
    data = {**(LINEAGE_0_1_0 if cls is LineageAssertion else POLICY_0_1_0), "version": cls.VERSION + 1}
    with pytest.raises(ValidationError, match="newer than this release reads"):
        cls.read(data)


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(ValidationError):
        LineageAssertion.read({**LINEAGE_0_1_0, "model": "not an object"})
    with pytest.raises(ValidationError):
        LineageAssertion.read({**LINEAGE_0_1_0, "seed": "forty-two"})
    with pytest.raises(ValidationError):
        PolicyAssertion.read({"version": 1, "decisions": [{"outcome": "whatever"}]})


def test_json_schema_files_are_up_to_date() -> None:
    expected = schema_files()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in DOCS.glob("*.schema.json")}
    assert on_disk == expected, "run: python -m gen4sdk.provenance._schemas --write docs/assertions"


def test_schema_describes_the_written_form(tmp_path: Path) -> None:
    assert main(["--write", str(tmp_path)]) == 0
    lineage = json.loads((tmp_path / f"{LINEAGE_LABEL}.schema.json").read_text(encoding="utf-8"))
    assert set(LINEAGE_0_1_0) <= set(lineage["properties"])
    assert set(lineage["required"]) <= set(LINEAGE_0_1_0)
    policy = json.loads((tmp_path / f"{POLICY_LABEL}.schema.json").read_text(encoding="utf-8"))
    assert policy["properties"]["version"]["enum"] == [0, 1]
