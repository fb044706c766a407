"""Policy packs: schema validation with file/line/field errors, shipped packs and their own test cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from gen4sdk.errors import PolicyPackError
from gen4sdk.policy import Policy, PolicyPack, parse_pack, run_pack_tests, shipped_packs

PACKS_DIR = Path(__file__).resolve().parents[1] / "policies"


def _default_text() -> str:
    return (PACKS_DIR / "default.yaml").read_text("utf-8")


def test_shipped_packs_load_and_are_identified() -> None:
    assert {"default", "strict"} <= set(shipped_packs())
    d = Policy.default(semantic=False)
    s = Policy.load("strict", semantic=False)
    assert (d.id, s.id) == ("gen4sdk.default", "gen4sdk.strict")
    assert (d.version, s.version) == ("2.3.0", "2.3.0")
    assert len(d.sha256) == 64 and d.sha256 != s.sha256
    # loading the same file by path gives the same hash (the hash is of the file's bytes)
    assert Policy.load(PACKS_DIR / "default.yaml", semantic=False).sha256 == d.sha256
    assert s.pack.frames.unchecked == "block" and d.pack.frames.unchecked == "warn"
    # the packs pin their classifier's weights by hash, and the shipped file has that hash
    import hashlib

    assert d.pack.classifier is not None and s.pack.classifier is not None
    weights = PACKS_DIR / d.pack.classifier.file
    assert (
        hashlib.sha256(weights.read_bytes()).hexdigest()
        == d.pack.classifier.sha256
        == s.pack.classifier.sha256
    )


@pytest.mark.parametrize("name", ["default", "strict"])
def test_pack_own_cases_pass_with_semantic_scorer(name: str) -> None:
    report = run_pack_tests(Policy.load(name))  # semantic=True: the trained classifier over multilingual USE
    assert report.semantic == "use-multilingual-v3"
    assert len(report.results) >= 30
    assert report.passed, report.table()


@pytest.mark.parametrize("name", ["default", "strict"])
def test_pack_own_cases_pass_with_rules_only(name: str) -> None:
    # Every shipped case is written so the rules alone decide it: the semantic scorer only adds recall.
    report = run_pack_tests(name, semantic=False)
    assert report.semantic is None
    assert report.passed, report.table()


def test_pack_test_failure_is_reported(tmp_path: Path) -> None:
    text = _default_text().replace(
        '  - {prompt: "a cottage in Sussex at dawn", expect: allow}',
        '  - {prompt: "a cottage in Sussex at dawn", expect: block}',
    )
    p = tmp_path / "edited.yaml"
    p.write_text(text, "utf-8")
    report = run_pack_tests(p, semantic=False)
    assert not report.passed
    [fail] = report.failures
    assert "Sussex" in fail.prompt and fail.got == "allow"
    assert "FAIL" in report.table()


def _line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_bad_action_names_line_and_field(tmp_path: Path) -> None:
    text = _default_text()
    # the violence category's action, a few hundred lines into the file
    start = text.index("  - id: violence")
    bad = text[:start] + text[start:].replace("action: block", "action: blok", 1)
    p = tmp_path / "bad.yaml"
    p.write_text(bad, "utf-8")
    with pytest.raises(PolicyPackError) as e:
        Policy.load(p)
    msg = str(e.value)
    line = _line_of(bad, "action: blok")
    assert f"bad.yaml:{line}:" in msg
    index = [c.id for c in Policy.default(semantic=False).pack.categories].index("violence")
    assert f"categories[{index}].action" in msg
    assert "blok" in msg


def test_csam_category_is_not_configurable() -> None:
    text = _default_text()
    start = text.index("  - id: sexual_minors")
    bad = text[:start] + text[start:].replace("action: block", "action: warn", 1)
    with pytest.raises(PolicyPackError, match="not configurable") as e:
        parse_pack(bad, source="p.yaml")
    assert f"p.yaml:{_line_of(bad, '- id: sexual_minors')}:" in str(e.value)
    bad2 = text[:start] + text[start:].replace(
        "applies_to: [prompt, image, frames]", "applies_to: [prompt]", 1
    )
    with pytest.raises(PolicyPackError, match="not configurable"):
        parse_pack(bad2, source="p.yaml")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t.replace("version: 2.3.0", "version: one"), r"p.yaml:\d+: version: String should match"),
        (
            lambda t: t.replace("  - id: hate\n", "  - id: Hate Speech\n"),
            r"p.yaml:\d+: categories\[\d+\]\.id",
        ),
        (
            lambda t: t.replace("id: gen4sdk.default\n", "id: gen4sdk.default\nid: again\n"),
            "duplicate key 'id'",
        ),
        (lambda t: t.replace("semantic_enabled: true", "semantic_enabled: [true"), "not valid YAML"),
        (lambda t: t.replace("[minor, sexual]", "[minor, sexxual]"), "unknown item 'sexxual'"),
        (
            lambda t: t.replace("counter_weight: 0.5", "counter_weight: 0.5\ncolour: blue"),
            "colour: Extra inputs",
        ),
        (
            lambda t: t.replace("  - id: intellectual_property", "  - id: ip_renamed"),
            "missing required categories",
        ),
        (lambda t: "", "the pack is empty"),
        (lambda t: "- just\n- a list\n", "a pack is a mapping"),
    ],
)
def test_schema_errors(mutate: object, expected: str) -> None:
    text = mutate(_default_text())  # type: ignore[operator]
    with pytest.raises(PolicyPackError, match=expected):
        parse_pack(text, source="p.yaml")


def test_unreadable_and_non_utf8_pack(tmp_path: Path) -> None:
    with pytest.raises(PolicyPackError, match="cannot read"):
        Policy.load(tmp_path / "missing.yaml")
    p = tmp_path / "latin1.yaml"
    p.write_bytes("id: caf\xe9\n".encode("latin-1"))
    with pytest.raises(PolicyPackError, match="not UTF-8"):
        Policy.load(p)
    with pytest.raises(PolicyPackError, match="no shipped policy pack"):
        Policy.load("no-such-pack")


def test_pack_model_round_trip() -> None:
    pack = Policy.default(semantic=False).pack
    again = PolicyPack.model_validate(pack.model_dump())
    assert again == pack
    assert pack.category("sexual_minors").action == "block"


def test_cli_helpers() -> None:
    from gen4sdk.policy import check_text

    d = check_text("a gory beheading", "default", semantic=False)
    assert not d.allowed and d.pack_id == "gen4sdk.default"
    assert check_text("a cat on a sofa", "strict", semantic=False).allowed
