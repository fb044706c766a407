"""Checking the audit log: the hash chain (where a record was edited, deleted, inserted or reordered), the signed
checkpoints (legacy chain-head signatures and C2SP Merkle checkpoints), and exported JSON lines offline.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from typing import IO, Any

from gen4sdk._crypto import verify_signature
from gen4sdk.errors import StoreError
from gen4sdk.store import _merkle
from gen4sdk.store._checkpoint import (
    CheckpointFormatError,
    parse_checkpoint,
    verify_checkpoint_signature,
)
from gen4sdk.store._logmodel import (
    GENESIS,
    LogProblem,
    LogVerification,
    ProblemKind,
    _cert_sha256,
    _chain_hash,
    _checkpoint_message,
    _index_columns,
)

__all__ = ["CheckpointRow", "Row", "check_against", "origin_of", "verify_jsonl", "verify_rows"]


def origin_of(log_id: str) -> str:
    """The checkpoint origin (and key name) of a log: a schema-less name, as the C2SP specs recommend."""
    return f"gen4sdk.audit/{log_id}"


# ----------------------------------------------------------------------------------------------- verification

# (seq, record_json, prev_hash, hash, queryable columns or None for an export)
Row = tuple[int, str, str, str, "tuple[Any, ...] | None"]
# (seq, head_hash, time, signature, certificate_pem, note or None for a version 1 checkpoint)
CheckpointRow = tuple[int, str, str, bytes, bytes, "str | None"]


def verify_rows(
    rows: Sequence[Row],
    checkpoints: Sequence[CheckpointRow],
    *,
    log_id: str,
    origin: str,
    head_marker: str | None,
    trusted_certificates: list[bytes] | None,
    pinned: bool = False,
    pending: str | None = None,
) -> LogVerification:
    """The check shared by the SQLite store and exported JSON lines. ``rows`` sorted by seq.

    ``pinned``: the caller named the operator's certificate, so a log it signed no checkpoint of is a problem.
    ``pending``: why a due checkpoint was not signed (the store's note of a failed signer).
    """
    problems: dict[tuple[int | None, str], LogProblem] = {}

    def report(seq: int | None, kind: ProblemKind, message: str) -> None:
        problems.setdefault((seq, kind), LogProblem(seq=seq, kind=kind, message=message))

    n = len(rows)
    seqs = [r[0] for r in rows]
    self_ok = [_chain_hash(r[2], r[1]) == r[3] for r in rows]
    by_hash: dict[str, int] = {}
    by_prev: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_hash.setdefault(r[3], i)
        by_prev.setdefault(r[2], []).append(i)

    # Gaps in the numbering: rows deleted in place.
    gap_before: set[int] = set()
    expected = seqs[0] if seqs else 1
    if seqs and seqs[0] != 1:
        report(1, "deleted", f"records 1..{seqs[0] - 1} are missing from the start of the log")
        gap_before.add(0)
    for i in range(1, n):
        if seqs[i] != seqs[i - 1] + 1:
            missing = f"{seqs[i - 1] + 1}" + (f"..{seqs[i] - 1}" if seqs[i] - 1 > seqs[i - 1] + 1 else "")
            report(
                seqs[i - 1] + 1,
                "deleted",
                f"record(s) {missing} deleted (numbering gap before seq {seqs[i]})",
            )
            gap_before.add(i)
    del expected

    # Follow the links from the genesis; a row the walk never reaches was spliced in, a walk that jumps back in
    # seq order means rows were reordered, a walk that stops early means rows were removed and numbers reused.
    visited = [False] * n
    chain: list[int] = []

    def walk(start_hash: str) -> None:
        cur = start_hash
        while True:
            candidates = [j for j in by_prev.get(cur, []) if not visited[j]]
            if not candidates:
                return
            # At a fork, the original row is the one the rest of the chain builds on.
            candidates.sort(key=lambda j: (not by_prev.get(rows[j][3]), seqs[j]))
            j = candidates[0]
            visited[j] = True
            chain.append(j)
            cur = rows[j][3]

    walk(GENESIS)
    for i in range(n):
        if visited[i]:
            continue
        if rows[i][2] in by_hash:
            continue  # reached (or not) from its predecessor's walk; handled below
        successors_unvisited = any(not visited[j] for j in by_prev.get(rows[i][3], []))
        neighbours_linked = 0 < i < n - 1 and rows[i + 1][2] == rows[i - 1][3]
        if not successors_unvisited and neighbours_linked:
            continue  # an isolated forged row between two linked rows: an insertion, reported below
        if i not in gap_before:
            report(
                seqs[i],
                "deleted",
                f"the chain breaks before seq {seqs[i]}: the record before it was deleted (and numbers reused) "
                f"or replaced with a recomputed hash",
            )
        visited[i] = True
        chain.append(i)
        walk(rows[i][3])
    for i in range(n):
        if not visited[i]:
            report(seqs[i], "inserted", f"record seq {seqs[i]} is not part of the chain (inserted)")

    # Reordering: rows whose place in the hash chain differs from their place in the numbering.
    chain_seqs = [seqs[j] for j in chain]
    for actual, expected_seq in zip(chain_seqs, sorted(chain_seqs)):
        if actual != expected_seq:
            report(
                actual,
                "reordered",
                f"record seq {actual} sits where seq {expected_seq} belongs in the hash chain",
            )

    inserted = {p.seq for p in problems.values() if p.kind == "inserted"}
    for i, r in enumerate(rows):
        if seqs[i] in inserted:
            continue
        if not self_ok[i]:
            # Content swapped between neighbouring rows (hashes left in place) is a reorder, not an edit.
            for j in range(max(0, i - 3), min(n, i + 4)):
                if j != i and _chain_hash(rows[j][2], r[1]) == rows[j][3]:
                    report(
                        seqs[i],
                        "reordered",
                        f"record seq {seqs[i]} holds the content chained at seq {seqs[j]}",
                    )
                    break
            else:
                report(
                    seqs[i], "edited", f"record seq {seqs[i]} was edited: its hash does not match its content"
                )
            continue
        if r[4] is not None:
            try:
                derived = _index_columns(json.loads(r[1]))
            except (ValueError, KeyError, TypeError):
                report(seqs[i], "edited", f"record seq {seqs[i]} is not valid JSON")
                continue
            if tuple(derived) != tuple(r[4]):
                report(
                    seqs[i],
                    "edited",
                    f"the queryable columns of seq {seqs[i]} were edited (content is intact)",
                )

    # The head marker is written in the same transaction as each append: a plain DELETE of the tail leaves it behind.
    if head_marker:
        head_seq_text, _, head_hash = head_marker.partition(":")
        if rows and rows[-1][3] == head_hash:
            pass  # the head is intact; rows added or removed before it are reported above
        elif head_hash in by_hash:
            after = seqs[by_hash[head_hash]] + 1
            report(
                after,
                "inserted",
                f"records from seq {after} on were added outside the store (after its head)",
            )
        elif not rows or (head_seq_text.isdigit() and int(head_seq_text) > seqs[-1]):
            last = seqs[-1] if rows else 0
            report(
                last + 1,
                "truncated",
                f"the log ends at seq {last} but its head marker says {head_seq_text}: the tail was deleted",
            )
        else:
            report(seqs[-1], "edited", f"the last record (seq {seqs[-1]}) does not match the head marker")

    # Checkpoints. The Merkle root of every prefix comes from one pass over the leaves.
    roots: dict[int, bytes] = {}
    wanted = {c[0] for c in checkpoints if c[5] is not None}
    acc = _merkle.RootAccumulator()
    for r in rows:
        acc.push(_merkle.leaf_hash(r[1].encode("utf-8", "surrogateescape")))
        if acc.size in wanted:
            roots[acc.size] = acc.root()
    index_of = {s: i for i, s in enumerate(seqs)}
    valid_upto: int | None = None
    valid = signed_by_trusted = 0
    certs: list[str] = []
    trusted = {_cert_sha256(c) for c in trusted_certificates} if trusted_certificates else None
    for seq, head_hash, t, sig, cert, note in checkpoints:
        fp = _cert_sha256(cert)
        if fp not in certs:
            certs.append(fp)
        if note is None:  # a version 1 checkpoint: a signature over the chain head
            signed_ok = verify_signature(cert, _checkpoint_message(log_id, seq, head_hash, t), sig)
            signed_root: bytes | None = None
        else:
            try:
                parsed = parse_checkpoint(note)
            except CheckpointFormatError as exc:
                report(seq, "bad_checkpoint_signature", f"the checkpoint at seq {seq} is malformed: {exc}")
                continue
            if parsed.origin != origin or parsed.size != seq:
                report(
                    seq,
                    "foreign_checkpoint",
                    f"the checkpoint stored at seq {seq} is for {parsed.origin} at size {parsed.size}",
                )
                continue
            # The signature column must be the note's own: a row whose copy differs was edited.
            signed_ok = verify_checkpoint_signature(parsed, [cert]) is not None and any(
                sig == line_sig for _, _, line_sig in parsed.signatures
            )
            signed_root = parsed.root
        if not signed_ok:
            report(
                seq, "bad_checkpoint_signature", f"the checkpoint at seq {seq} ({t}) has an invalid signature"
            )
            continue
        if trusted is not None and fp not in trusted:
            report(
                seq,
                "untrusted_checkpoint_signer",
                f"the checkpoint at seq {seq} was signed by another key ({fp})",
            )
            continue
        signed_by_trusted += 1
        at = index_of.get(seq)
        if at is None or (signed_root is not None and seq > n):
            if not rows or seq > seqs[-1]:
                report(
                    seq,
                    "truncated",
                    f"a signed checkpoint covers seq {seq}, but the log ends at "
                    f"{seqs[-1] if rows else 0}: records were removed from its end",
                )
            else:
                report(seq, "deleted", f"the record at signed checkpoint seq {seq} is missing")
            continue
        if rows[at][3] != head_hash or (signed_root is not None and roots.get(seq) != signed_root):
            report(
                seq,
                "checkpoint_mismatch",
                f"the log's first {seq} records no longer match the signed checkpoint ({t}): records up to it "
                "were removed or rewritten",
            )
            continue
        valid += 1
        valid_upto = seq if valid_upto is None else max(valid_upto, seq)

    if n == 0:
        report(None, "empty", "the log holds no records: there is nothing to vouch for")
    elif trusted is not None and pinned and signed_by_trusted == 0:
        # With the operator's key named, a log none of whose checkpoints that key signed is unprotected: the
        # checkpoints were deleted, or the log is someone else's.
        report(
            None,
            "unprotected",
            f"no checkpoint signed by the given certificate covers this log ({len(checkpoints)} stored): "
            "checkpoints were deleted, never signed, or signed by another key",
        )
    notes = [
        (
            "records after the last checkpoint can be removed or rewritten consistently by someone with write "
            "access to the database, and so can everything after an older checkpoint if the newer ones are "
            "deleted: keep checkpoints elsewhere (gen4sdk log checkpoint) and verify with --checkpoint"
        ),
    ]
    if not checkpoints:
        notes.append(
            "the log has no signed checkpoints: the chain shows accidents and naive edits, not forgery"
        )
    if pending:
        notes.append(f"a due checkpoint was not signed and waits for a working signer: {pending}")
    ordered = sorted(problems.values(), key=lambda p: (p.seq if p.seq is not None else -1, p.kind))
    return LogVerification(
        ok=not ordered,
        records=n,
        first_seq=seqs[0] if seqs else None,
        last_seq=seqs[-1] if seqs else None,
        head_hash=rows[-1][3] if rows else None,
        checkpoints=len(checkpoints),
        checkpoints_valid=valid,
        last_checkpoint_seq=valid_upto,
        unprotected_tail=(seqs[-1] - valid_upto if valid_upto is not None else len(seqs)) if seqs else 0,
        signer_certificates=certs,
        tree_size=n,
        root_hash=base64.b64encode(acc.root()).decode("ascii"),
        origin=origin,
        checkpoint_pending=pending,
        problems=ordered,
        notes=notes,
    )


def check_against(
    result: LogVerification,
    rows: Sequence[Row],
    checkpoint: str,
    *,
    origin: str,
    certificates: list[bytes],
) -> LogVerification:
    """``result`` with the outcome of proving that the log still contains the tree of ``checkpoint`` (a note kept
    outside the database): its signature, its origin, and an RFC 9162 consistency proof from its tree to the log's."""
    extra: list[LogProblem] = []
    proof: list[bytes] = []
    size: int | None = None
    try:
        parsed = parse_checkpoint(checkpoint)
    except CheckpointFormatError as exc:
        extra.append(LogProblem(seq=None, kind="foreign_checkpoint", message=f"not a checkpoint: {exc}"))
    else:
        size = parsed.size
        leaves = [_merkle.leaf_hash(r[1].encode("utf-8", "surrogateescape")) for r in rows]
        if parsed.origin != origin:
            extra.append(
                LogProblem(
                    seq=None,
                    kind="foreign_checkpoint",
                    message=f"the checkpoint is for log {parsed.origin}, this store is {origin}",
                )
            )
        elif verify_checkpoint_signature(parsed, certificates) is None:
            why = (
                "does not verify with the operator's certificate"
                if certificates
                else "cannot be checked: no certificate was given and the store holds none"
            )
            extra.append(
                LogProblem(
                    seq=parsed.size,
                    kind="bad_checkpoint_signature",
                    message=f"the checkpoint's signature {why}",
                )
            )
        elif parsed.size > len(leaves):
            extra.append(
                LogProblem(
                    seq=len(leaves) + 1,
                    kind="truncated",
                    message=f"the checkpoint covers {parsed.size} records, the log now holds {len(leaves)}: "
                    "records were removed",
                )
            )
        else:
            proof = _merkle.consistency_proof(parsed.size, leaves)
            if not _merkle.verify_consistency(
                parsed.size, len(leaves), parsed.root, _merkle.root(leaves), proof
            ):
                extra.append(
                    LogProblem(
                        seq=parsed.size,
                        kind="checkpoint_mismatch",
                        message=f"the log no longer contains the checkpoint's tree of {parsed.size} records: "
                        "records up to it were removed or rewritten",
                    )
                )
    problems = sorted([*result.problems, *extra], key=lambda p: (p.seq if p.seq is not None else -1, p.kind))
    return result.model_copy(
        update={
            "ok": not problems,
            "problems": problems,
            "witnessed_size": size,
            "consistency_proof": [base64.b64encode(h).decode("ascii") for h in proof],
        }
    )


def verify_jsonl(
    path_or_stream: str | os.PathLike[str] | IO[str], *, trusted_certificates: list[bytes] | None = None
) -> LogVerification:
    """Verify a log exported with :meth:`Store.export_jsonl`, without the database.

    ``trusted_certificates``: the operator's signing certificate(s); with them, an export none of whose checkpoints
    they signed is not OK.
    """
    if isinstance(path_or_stream, (str, os.PathLike)):
        try:
            with open(path_or_stream, encoding="utf-8") as fh:
                return verify_jsonl(fh, trusted_certificates=trusted_certificates)
        except OSError as exc:
            raise StoreError(f"cannot read {path_or_stream}: {exc}") from exc
    rows: list[Row] = []
    checkpoints: list[CheckpointRow] = []
    log_id = ""
    decoder = json.JSONDecoder()
    for lineno, line in enumerate(path_or_stream, 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
            if "log" in obj:
                log_id = obj["log"]["log_id"]
            elif "checkpoint" in obj:
                cp = obj["checkpoint"]
                checkpoints.append(
                    (
                        cp["seq"],
                        cp["head_hash"],
                        cp["time"],
                        bytes.fromhex(cp["signature"]),
                        cp["certificate_pem"].encode("ascii"),
                        cp.get("note"),
                    )
                )
            else:
                # The hash covers the record's exact bytes: cut them out of the line rather than re-serialising.
                start = line.index('"record":') + len('"record":')
                _, end = decoder.raw_decode(line, start)
                rows.append((int(obj["seq"]), line[start:end], obj["prev_hash"], obj["hash"], None))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"line {lineno} of the export is not a gen4sdk audit log line: {exc}") from exc
    rows.sort(key=lambda r: r[0])
    return verify_rows(
        rows,
        checkpoints,
        log_id=log_id,
        origin=origin_of(log_id),
        head_marker=None,
        trusted_certificates=trusted_certificates,
        pinned=trusted_certificates is not None,
    )
