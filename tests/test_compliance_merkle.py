"""RFC 9162 Merkle tree: roots, inclusion and consistency proofs, checked against the RFC's recursive definitions."""

from __future__ import annotations

import hashlib

import pytest

from gen4sdk.store._merkle import (
    EMPTY_ROOT,
    RootAccumulator,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"record {i}".encode()) for i in range(n)]


def _reference_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 2.1.1, recursion and all."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _reference_root(leaves[:k]) + _reference_root(leaves[k:])).digest()


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_known_root_of_rfc_6962_test_vector() -> None:
    # The eight inputs of the CT reference implementation's tests (certificate-transparency merkle_tree_test).
    inputs = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    leaves = [leaf_hash(bytes.fromhex(x)) for x in inputs]
    assert root(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def test_accumulator_gives_every_prefix_root() -> None:
    leaves = _leaves(70)
    acc = RootAccumulator()
    assert acc.root() == EMPTY_ROOT
    for i, h in enumerate(leaves):
        acc.push(h)
        assert acc.root() == _reference_root(leaves[: i + 1])


def test_inclusion_proofs_verify_and_reject_tampering() -> None:
    for n in range(1, 34):
        leaves = _leaves(n)
        r = root(leaves)
        for i in range(n):
            proof = inclusion_proof(i, leaves)
            assert verify_inclusion(i, n, leaves[i], proof, r), (i, n)
            assert not verify_inclusion(i, n, leaf_hash(b"forged"), proof, r)
            if n > 1:
                assert not verify_inclusion((i + 1) % n, n, leaves[i], proof, r)
                assert not verify_inclusion(i, n, leaves[i], proof[:-1], r)
                assert not verify_inclusion(i, n, leaves[i], [*proof, proof[0]], r)
                bent = [bytes(32)] + proof[1:]
                assert not verify_inclusion(i, n, leaves[i], bent, r)
    assert not verify_inclusion(3, 3, _leaves(3)[0], [], root(_leaves(3)))
    with pytest.raises(ValueError):
        inclusion_proof(5, _leaves(5))


def test_consistency_proofs_verify_and_reject_rewrites() -> None:
    for n in range(1, 34):
        leaves = _leaves(n)
        new_root = root(leaves)
        for m in range(n + 1):
            proof = consistency_proof(m, leaves)
            old_root = root(leaves[:m])
            assert verify_consistency(m, n, old_root, new_root, proof), (m, n)
            if 0 < m < n:
                # A different history of the same size (one old record rewritten) is not a prefix.
                rewritten = list(leaves)
                rewritten[m - 1] = leaf_hash(b"rewritten")
                assert not verify_consistency(
                    m, n, old_root, root(rewritten), consistency_proof(m, rewritten)
                )
                assert not verify_consistency(m, n, old_root, new_root, proof[:-1])
                assert not verify_consistency(m, n, leaves[0] if m > 1 else leaf_hash(b"x"), new_root, proof)
    with pytest.raises(ValueError):
        consistency_proof(4, _leaves(3))
    assert not verify_consistency(3, 2, b"", b"", [])
