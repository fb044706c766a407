"""A partner application: one Client for the process, a request per user action, refusals shown to the user.

python examples/partner_app.py --out /tmp/partner                      # tiny offline model
python examples/partner_app.py --out /tmp/partner --model /models/wan  # a local diffusers pipeline directory
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import gen4sdk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", help="local diffusers video pipeline directory (default: tiny offline model)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)

    args.out.mkdir(parents=True, exist_ok=True)
    keys = gen4sdk.KeyPaths.in_directory(args.out / "keys")
    if not keys.exist():
        keys = gen4sdk.init_keys(keys.directory, organization="Example Partner Inc.")
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)

    client = gen4sdk.Client(
        model=args.model or gen4sdk.tiny_model(),
        signer=signer,
        owner=gen4sdk.Owner(organization="Example Partner Inc.", website="https://partner.example"),
        store=args.out / "store.db",
    )
    requests = [
        ("user-1", "a hot air balloon over a misty valley at sunrise"),
        ("user-2", "graphic footage of a man being decapitated, blood everywhere"),
    ]
    for user, prompt in requests:
        try:
            result = client.generate(
                prompt=prompt,
                user=user,
                output=args.out / f"{user}.mp4",
                num_frames=17,
                height=144,
                width=256,
                fps=8,
                steps=4,
            )
        except gen4sdk.PolicyViolation as refusal:
            # Show the user a category, never the rule text; keep the code for support tickets.
            print(f"{user}: refused ({refusal.code}, {', '.join(refusal.categories)})")
            continue
        print(f"{user}: {result.path} sha256={result.sha256[:16]}... manifest={result.manifest_id}")


if __name__ == "__main__":
    main()
