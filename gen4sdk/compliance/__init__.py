"""Compliance: the operator's audit log and manifest store (kept in :mod:`gen4sdk.store`, re-exported here), batch
audits with reports, the soft-binding resolution client, and the labelling-law profiles (EU AI Act, California SB 942, China GB 45438) with their checks.

```python
from gen4sdk.compliance import Store
store = Store("gen4sdk.db", signer=signer)     # SQLite (WAL) or a postgresql:// URL; shared with the likeness registry
seq = store.append(record)                      # a Merkle tree log; checkpoints signed with the operator's key
report = store.verify_log(checkpoint=kept_note) # LogVerification: ok, problems (seq + kind), consistency proof
proof = store.prove(request_id)                 # inclusion proof; verify_log_proof(proof, certificates=pem)
```
"""

from gen4sdk.compliance._audit import AuditEntry, AuditReport, audit_directory, find_videos, render_html
from gen4sdk.compliance._check import check_compliance
from gen4sdk.compliance._resolve import resolve_by_binding
from gen4sdk.store import (
    Checkpoint,
    LogEntry,
    LogProblem,
    LogProofCheck,
    LogSigner,
    LogVerification,
    Store,
    StoredManifest,
    open_commitment,
    prompt_commitment,
    verify_jsonl,
    verify_log_proof,
)

__all__ = [
    "AuditEntry",
    "AuditReport",
    "Checkpoint",
    "LogEntry",
    "LogProblem",
    "LogProofCheck",
    "LogSigner",
    "LogVerification",
    "Store",
    "StoredManifest",
    "audit_directory",
    "check_compliance",
    "find_videos",
    "open_commitment",
    "prompt_commitment",
    "render_html",
    "resolve_by_binding",
    "verify_jsonl",
    "verify_log_proof",
]
