"""The store: one database layer (an SQLite file, embedded; or PostgreSQL, shared by many hosts) under the audit log
(an RFC 9162 Merkle tree log with C2SP checkpoints), the manifest store and the likeness registry.

```python
from gen4sdk.store import Store
store = Store("gen4sdk.db", signer=signer)                      # SQLite (WAL), one host
store = Store("postgresql://gen4sdk@db.internal:5432/gen4sdk")  # PostgreSQL, many hosts (gen4sdk[postgres])
seq = store.append(record)                                      # appends serialise inside the database
report = store.verify_log(checkpoint=kept_note)                 # chain, tree, checkpoints, consistency proof
```

One module per concern: ``_database`` (connections, transactions, schema setup) over the backends ``_sqlite``
and ``_postgres``; ``_schema`` (versions and migrations); ``_log`` (``Store``: appends, checkpoints, proofs,
verification) over ``_queries`` (reading and export) and ``_manifests``; ``_logmodel`` (the log's data),
``_logcheck`` (verification), ``_merkle`` and ``_checkpoint`` (RFC 9162 trees, C2SP notes and proofs); ``_tasks``
(``TaskQueue``: the generation queue and the partner apps' API keys).
"""

from gen4sdk.store._checkpoint import LogProofCheck, verify_log_proof
from gen4sdk.store._database import Database, StoreLocation, redact_location
from gen4sdk.store._log import (
    Checkpoint,
    LogEntry,
    LogProblem,
    LogSigner,
    LogVerification,
    Store,
    StoredManifest,
    open_commitment,
    prompt_commitment,
    verify_jsonl,
)
from gen4sdk.store._tasks import ApiKey, TaskQueue

__all__ = [
    "ApiKey",
    "Checkpoint",
    "Database",
    "LogEntry",
    "LogProblem",
    "LogProofCheck",
    "LogSigner",
    "LogVerification",
    "Store",
    "StoreLocation",
    "StoredManifest",
    "TaskQueue",
    "open_commitment",
    "prompt_commitment",
    "redact_location",
    "verify_jsonl",
    "verify_log_proof",
]
