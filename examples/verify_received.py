"""Someone received a video: is it generated, by whom, and was it changed?

python examples/verify_received.py clip.mp4 [--trust-anchors operator-root-ca.pem] [--store store.db]
"""

from __future__ import annotations

import argparse

import gen4sdk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--trust-anchors")
    ap.add_argument(
        "--store", help="a manifest store or resolution service URL, to recover stripped credentials"
    )
    args = ap.parse_args()

    report = gen4sdk.verify(args.file, trust_anchors=args.trust_anchors, store=args.store)
    print(f"status: {report.status} - {report.reason}")
    if report.status in {"trusted", "untrusted", "recovered"}:
        print(
            f"AI-generated: {report.ai_generated}; by {report.owner.organization if report.owner else 'unknown'}"
        )
        print(f"signed by: {report.signer.common_name if report.signer else '-'}")
    if report.status == "tampered":
        print("the credentials no longer match the content: this file was changed after signing")
    if report.watermark and report.watermark.found:
        print(f"gen4sdk watermark found (payload {report.watermark.payload})")


if __name__ == "__main__":
    main()
