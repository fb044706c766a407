"""Likeness registry and consent grants: names, aliases, face embeddings, grant / revoke / expiry."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from compliance_helpers import record
from PIL import Image

from gen4sdk.errors import InvalidRequestError, StoreError
from gen4sdk.policy import LikenessRegistry, Policy
from gen4sdk.store import Store
from gen4sdk.types import GenerationRequest

UTC = dt.timezone.utc


@pytest.fixture()
def registry(store_location: str) -> LikenessRegistry:
    return LikenessRegistry(store_location)  # on both backends: an SQLite file and a PostgreSQL database


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.default(semantic=False)


def _req(prompt: str, user: str | None = "alice") -> GenerationRequest:
    return GenerationRequest(prompt=prompt, user=user, request_id="req-1")


def test_named_identity_needs_a_grant(registry: LikenessRegistry, policy: Policy) -> None:
    ident = registry.add_identity("Jane Q. Example", aliases=["Janey Example"])
    for prompt in (
        "a portrait of Jane Q. Example in a garden",
        "JANEY  EXAMPLE waving",
        "j4ney ex4mple smiling",
    ):
        d = policy.check_request(_req(prompt), likeness=registry)
        assert not d.allowed and d.code == "SAFETY.INPUT.LIKENESS", prompt
        assert d.categories == ["likeness"]
        assert any(s.rule == f"person:{ident.id}" for s in d.spans)
    # not named: fine; a partial name is not the identity
    assert policy.check_request(_req("a portrait of Jane in a garden"), likeness=registry).allowed

    grant = registry.grant(ident.id, "alice", uses=["any"])
    d = policy.check_request(_req("a portrait of Jane Q. Example in a garden"), likeness=registry)
    assert d.allowed and d.grant_id == grant.id
    assert d.summary().grant_id == grant.id
    # the grant is alice's, not bob's, and not an anonymous request's
    assert not policy.check_request(_req("Jane Q. Example", user="bob"), likeness=registry).allowed
    assert not policy.check_request(_req("Jane Q. Example", user=None), likeness=registry).allowed
    # a grant never covers sexual, violent or deceptive depictions
    for bad in (
        "Jane Q. Example nude",
        "Jane Q. Example being stabbed",
        "cctv footage of Jane Q. Example arrested",
    ):
        d = policy.check_request(_req(bad), likeness=registry)
        assert not d.allowed and "likeness" in d.categories, bad


def test_revoke_and_expiry(registry: LikenessRegistry, policy: Policy) -> None:
    ident = registry.add_identity("Rosalind Testperson")
    req = _req("Rosalind Testperson reading a book")
    g = registry.grant(ident.id, "alice")
    assert policy.check_request(req, likeness=registry).grant_id == g.id
    revoked = registry.revoke(g.id)
    assert revoked.revoked_at is not None
    assert not policy.check_request(req, likeness=registry).allowed

    now = dt.datetime.now(UTC)
    expired = registry.grant(
        ident.id, "alice", valid_from=now - dt.timedelta(days=10), expires_at=now - dt.timedelta(seconds=1)
    )
    future = registry.grant(ident.id, "alice", valid_from=now + dt.timedelta(days=1))
    assert not expired.covers("alice") and not future.covers("alice")
    assert future.covers("alice", at=now + dt.timedelta(days=2))
    assert not policy.check_request(req, likeness=registry).allowed

    limited = registry.grant(ident.id, "alice", uses=["advertising"], expires_at=now + dt.timedelta(hours=1))
    assert not policy.check_request(req, likeness=registry).allowed  # no declared use
    d = policy.check_request(req, likeness=registry, use="advertising")
    assert d.allowed and d.grant_id == limited.id
    assert not policy.check_request(req, likeness=registry, use="satire").allowed
    assert [g.id for g in registry.grants(identity_id=ident.id)] == [g.id, expired.id, future.id, limited.id]
    with pytest.raises(InvalidRequestError):
        registry.revoke("grant_nope")
    with pytest.raises(InvalidRequestError):
        registry.grant(ident.id, "alice", expires_at=now - dt.timedelta(days=1))
    with pytest.raises(InvalidRequestError, match="timezone"):
        registry.grant(ident.id, "alice", expires_at=dt.datetime(2030, 1, 1))


def test_public_figures_protected_by_default(registry: LikenessRegistry, policy: Policy) -> None:
    assert "public:barack-obama" in policy.public_figures
    req = _req("Barack Obama playing basketball")
    d = policy.check_request(req, likeness=registry)
    assert not d.allowed and d.categories == ["public_figures"] and d.code == "SAFETY.INPUT.LIKENESS"
    assert not policy.check_prompt("obama playing basketball").allowed  # alias
    g = registry.grant("public:barack-obama", "alice", note="campaign video, signed release")
    d = policy.check_request(req, likeness=registry)
    assert d.allowed and d.grant_id == g.id
    # threshold "low": naming is a warning only, depictions that harm are still refused
    low = policy.pack.model_copy(
        update={"likeness": policy.pack.likeness.model_copy(update={"public_figure_threshold": "low"})}
    )
    p_low = Policy(low, semantic=False)
    d = p_low.check_prompt("Barack Obama playing basketball")
    assert d.allowed and "likeness.public_figure:public:barack-obama" in d.warnings
    assert not p_low.check_prompt("Barack Obama covered in blood, gore").allowed


def test_registry_shares_a_file_and_stores_no_images(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    # the audit log in the same file, written concurrently through its own connection
    store = Store(db)
    store.append(record(0))
    reg = LikenessRegistry(db)
    ident = reg.add_identity("Face Owner")
    with Image.open(Path(__file__).parent / "data" / "faces" / "biden.jpg") as im:
        face = np.asarray(im.convert("RGB"))
    reg.add_face(ident.id, face)  # the built-in dlib face encoder
    store.append(record(1))
    assert store.verify_log().ok and len(store) == 2
    other = sqlite3.connect(db)
    tables = {r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {t for t in tables if not t.startswith(("audit_", "manifests_", "jobs_", "sqlite_"))} == {
        "likeness_meta",
        "likeness_identities",
        "likeness_aliases",
        "likeness_embeddings",
        "likeness_grants",
    }
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    (size,) = other.execute("SELECT length(vector) FROM likeness_embeddings").fetchone()
    assert size == 128 * 4  # one float32 embedding, not an image
    raw = db.read_bytes()
    assert all(face[y].tobytes()[:64] not in raw for y in range(0, face.shape[0], 50))
    other.close()
    ids, mat = reg.face_embeddings("dlib-resnet-v1")
    assert ids == [ident.id] and mat.shape == (1, 128)
    assert reg.get(ident.id) is not None and reg.get(ident.id).face_embeddings == 1  # type: ignore[union-attr]


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    # one database layer for every part of the store: a file of someone else's tables is not written to
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as other:
        other.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="foreign database"):
        LikenessRegistry(foreign)


def test_registry_errors(tmp_path: Path) -> None:
    bad = tmp_path / "not.db"
    bad.write_bytes(b"this is not sqlite at all, just text")
    with pytest.raises(StoreError, match="not an SQLite"):
        LikenessRegistry(bad)
    with pytest.raises(StoreError, match="does not exist"):
        LikenessRegistry(tmp_path / "missing-dir" / "x.db")
    reg = LikenessRegistry(tmp_path / "ok.db")
    with pytest.raises(InvalidRequestError, match="at least 3"):
        reg.add_identity("Al")
    with pytest.raises(InvalidRequestError):
        reg.grant("id_missing", "alice")
    ident = reg.add_identity("Someone Real", identity_id="someone")
    with pytest.raises(InvalidRequestError, match="already exists"):
        reg.add_identity("Someone Else", identity_id="someone")
    with pytest.raises(InvalidRequestError):
        reg.add_face_embedding(ident.id, np.array([np.nan, 1.0]), encoder_id="x")
    reg.remove_identity(ident.id)
    assert reg.identities() == []


def test_name_cache_follows_registry_changes(registry: LikenessRegistry, policy: Policy) -> None:
    assert policy.check_prompt("Morgana Zylberstein at a cafe", likeness=registry).allowed
    ident = registry.add_identity("Morgana Zylberstein")
    assert not policy.check_prompt("Morgana Zylberstein at a cafe", likeness=registry).allowed
    registry.remove_identity(ident.id)
    assert policy.check_prompt("Morgana Zylberstein at a cafe", likeness=registry).allowed
