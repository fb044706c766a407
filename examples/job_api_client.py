"""A partner app on the job API: queue a generation, follow its progress, fetch the signed clip, check it.

    gen4sdk keys api-key create --store store.db --name my-app          # prints the key once
    gen4sdk serve --store store.db --model tiny --port 8000              # in another terminal
    GEN4SDK_API_KEY=g4k_... python examples/job_api_client.py "a paper boat on a rainy street" --out boat.mp4

Only httpx and the standard library talk to the service; gen4sdk is used at the end to verify the clip received.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import httpx

import gen4sdk


def generate(
    base_url: str, api_key: str, prompt: str, out: str, *, steps: int = 4, timeout: float = 600
) -> int:
    """Submit, poll, download; returns a process exit code (0 when the clip is at ``out``)."""
    headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": uuid.uuid4().hex}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as api:
        r = api.post(
            "/v1/generations", json={"prompt": prompt, "steps": steps, "fps": 8, "user": "example-user"}
        )
        if r.status_code == 429:  # the key's rate limit: the service says when to come back
            print(f"rate limited; retry in {r.headers.get('retry-after')} s", file=sys.stderr)
            return 1
        if r.status_code >= 400:
            error = r.json()["error"]  # every error has this body: a code from a closed set and a message
            print(f"refused: {error['code']}: {error['message']}", file=sys.stderr)
            return 1
        task = r.json()
        deadline = time.monotonic() + timeout
        while task["status"] in ("PENDING", "RUNNING"):
            if time.monotonic() > deadline:
                api.delete(f"/v1/generations/{task['id']}")  # give up: cancel it, so no GPU time is wasted
                print("timed out; cancelled", file=sys.stderr)
                return 1
            time.sleep(0.5)
            task = api.get(f"/v1/generations/{task['id']}").json()
            print(f"\r{task['status']:9} {task.get('stage') or '':14} {100 * task['progress']:5.1f}%", end="")
        print()
        if task["status"] != "SUCCEEDED":
            print(f"{task['status']}: {task.get('failure_code')}: {task.get('failure')}", file=sys.stderr)
            return 1
        with open(out, "wb") as fh, api.stream("GET", task["output"]["url"]) as body:
            body.raise_for_status()
            fh.writelines(body.iter_bytes())
    report = gen4sdk.verify(out)
    print(
        f"{out}: {report.status}, manifest {task['output']['manifest_id']}, AI-generated: {report.ai_generated}"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("prompt")
    ap.add_argument("--out", default="clip.mp4")
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    args = ap.parse_args()
    key = os.environ.get("GEN4SDK_API_KEY")
    if not key:
        ap.error("set GEN4SDK_API_KEY to a key from 'gen4sdk keys api-key create'")
    return generate(args.url, key, args.prompt, args.out)


if __name__ == "__main__":
    sys.exit(main())
