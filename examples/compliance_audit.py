"""A compliance officer's routine: check the audit log, then audit every clip in a folder.

    python examples/compliance_audit.py --store /tmp/partner/store.db --clips /tmp/partner \
        --trust-anchors /tmp/partner/keys/root-ca.pem --report /tmp/partner/audit.html
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gen4sdk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--clips", type=Path, required=True)
    ap.add_argument("--trust-anchors", type=Path)
    ap.add_argument("--report", type=Path, default=Path("audit.html"))
    args = ap.parse_args()

    store = gen4sdk.Store(args.store, create=False)
    log = store.verify_log()
    print(f"audit log: {'intact' if log.ok else 'BROKEN'}, {log.records} records")
    for problem in log.problems:
        print(f"  {problem.kind} at record {problem.seq}: {problem.message}")

    refused = store.records(outcome="refused")
    print(f"{len(refused)} refused requests in the log")
    for entry in refused[:10]:
        rec = entry.record
        print(f"  {rec.time:%Y-%m-%d %H:%M} {rec.caller}: {[d.code for d in rec.decisions if not d.allowed]}")

    report = gen4sdk.audit_directory(args.clips, trust_anchors=args.trust_anchors, store=store)
    report.write_html(args.report)
    print(f"audit of {args.clips}: {report.counts} -> {args.report}")


if __name__ == "__main__":
    main()
