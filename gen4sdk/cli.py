"""The ``gen4sdk`` command: a thin shell over the public API.

Exit codes: 0 success; 1 a check did not pass (a file not ``trusted``, a refused prompt, a broken log);
2 usage error (argparse's own convention, so scripts can tell "bad call" from "bad file").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import gen4sdk
from gen4sdk.types import ProgressEvent, VerificationReport

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _progress_bar() -> tuple[Any, Any]:
    from tqdm import tqdm

    bar = tqdm(total=0, unit="step", desc="generate", leave=False, disable=None)

    def on_progress(event: ProgressEvent) -> None:
        if event.stage == "generate" and event.total > 1:
            bar.total = event.total
            bar.n = event.step
            bar.refresh()
        else:
            bar.set_description(event.stage)

    return bar, on_progress


def _print_report(report: VerificationReport) -> None:
    print(f"{report.path}: {report.status.upper()}")
    print(f"  {report.reason}")
    if report.signer:
        print(f"  signer:   {report.signer.common_name} ({report.signer.organization})")
    if report.owner:
        user = f" / {report.owner.user}" if report.owner.user else ""
        print(f"  owner:    {report.owner.organization}{user}")
    if report.ai_generated is not None:
        print(f"  AI-generated: {'yes' if report.ai_generated else 'no'}  ({report.software_agent or 'unknown agent'})")
    if report.lineage:
        lin = report.lineage
        print(f"  lineage:  model {lin.model_id} (weights {str(lin.weights_sha256)[:16]}...), seed {lin.seed}")
        print(f"            prompt commitment {str(lin.prompt_commitment)[:16]}...  request {lin.request_id}")
    for p in report.policy:
        extra = (f" {p.categories}" if p.categories else "") + (f" warnings {p.warnings}" if p.warnings else "")
        print(f"  policy ({p.stage}): {p.pack_id} {p.pack_version}: {p.outcome}{extra}")
    if report.training_mining:
        print(f"  training/mining: {', '.join(f'{k}={v}' for k, v in sorted(report.training_mining.items()))}")
    for ing in report.ingredients:
        print(f"  ingredient: {ing.title} ({ing.relationship}, {ing.format})")
    if report.watermark is not None:
        wm = report.watermark
        match = "" if wm.matches_credentials is None else f", matches credentials: {wm.matches_credentials}"
        found = f"found payload {wm.payload}" if wm.found else "not found"
        print(f"  watermark: {found} (confidence {wm.confidence:.2f}{match})")
    if report.recovered_from:
        print(f"  recovered from: {report.recovered_from}")
    for problem in report.problems:
        print(f"  problem:  {problem}")


def _signer(args: argparse.Namespace) -> gen4sdk.Signer:
    passphrase = os.environ.get(args.passphrase_env) if getattr(args, "passphrase_env", None) else None
    return gen4sdk.Signer.from_files(args.cert, args.key, passphrase=passphrase, tsa_url=getattr(args, "tsa_url", None))


# --- commands ------------------------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from gen4sdk import KeyPaths, tiny_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keys = KeyPaths.in_directory(out / "keys")
    if keys.exist():
        print(f"reusing development keys in {keys.directory}")
    else:
        keys = gen4sdk.init_keys(keys.directory, organization="gen4sdk demo")
        print(f"created development keys in {keys.directory} (root CA: {keys.root_cert.name})")
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)
    store = gen4sdk.Store(out / "gen4sdk.db", signer=signer)
    bar, on_progress = _progress_bar()
    client = gen4sdk.Client(
        model=tiny_model(), signer=signer, owner="gen4sdk demo", store=store, on_progress=on_progress
    )
    clip = out / "demo.mp4"
    prompt = "a red kite flying over green hills at sunset, cinematic"
    # the with-block closes the client on every path, which signs an audit-log checkpoint
    with client:
        try:
            result = client.generate(
                prompt=prompt, output=clip, num_frames=17, height=144, width=256, fps=8, steps=4, seed=7,
                user="demo-user",
            )
        finally:
            bar.close()
        print(f"generated {result.path} ({result.params.num_frames} frames, {result.params.width}x{result.params.height})")
        print(f"  manifest {result.manifest_id}, watermark payload {result.watermark_payload}")
        print("  timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()))

        refused_prompt = "a sexual video of a 12 year old child"
        try:
            client.generate(prompt=refused_prompt, output=out / "refused.mp4", user="demo-user")
            print("error: the demo's refused request was allowed", file=sys.stderr)
            return EXIT_FAIL
        except gen4sdk.PolicyViolation as exc:
            print(f"refused a second request: {exc.code} {exc.categories} (pack {exc.pack_id} {exc.pack_version})")
    print(f"audit log: {len(store)} records in {store.path}")
    print()
    report = gen4sdk.verify(clip, trust_anchors=keys.root_cert, store=store)
    _print_report(report)
    return EXIT_OK if report.status == "trusted" else EXIT_FAIL


def cmd_keys_init(args: argparse.Namespace) -> int:
    passphrase = os.environ.get(args.passphrase_env) if args.passphrase_env else None
    paths = gen4sdk.init_keys(args.dir, organization=args.organization, passphrase=passphrase, days=args.days)
    print(f"root CA certificate: {paths.root_cert}  (give this to verifiers as --trust-anchors)")
    print(f"root CA key:         {paths.root_key}  (mode 0600; keep offline)")
    print(f"signing chain:       {paths.signer_cert}")
    print(f"signing key:         {paths.signer_key}  (mode 0600)")
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from gen4sdk import tiny_model

    signer = _signer(args)
    model: Any = tiny_model() if args.model == "tiny" else args.model
    image_encoder = None
    if args.clip_weights:
        from gen4sdk import OpenClipEncoder

        image_encoder = OpenClipEncoder.from_pretrained(args.clip_model, args.clip_weights, device=args.device)
    policy = gen4sdk.Policy.load(args.policy or "default", image_encoder=image_encoder)
    bar, on_progress = _progress_bar()
    client = gen4sdk.Client(
        model=model,
        signer=signer,
        owner=gen4sdk.Owner(organization=args.owner),
        policy=policy,
        store=args.store,
        disclose_prompts=args.disclose_prompt,
        device=args.device,
        dtype=args.dtype,
        memory_mode=args.memory_mode,
        on_progress=on_progress,
    )
    with client:
        try:
            result = client.generate(
                prompt=args.prompt,
                negative_prompt=args.negative_prompt,
                image=args.image,
                output=args.out,
                num_frames=args.frames,
                height=args.height,
                width=args.width,
                fps=args.fps,
                steps=args.steps,
                guidance_scale=args.guidance,
                seed=args.seed,
                user=args.user,
                use=args.use,
            )
        except gen4sdk.PolicyViolation as exc:
            print(f"refused: {exc.code} {exc.categories}: {exc}", file=sys.stderr)
            return EXIT_FAIL
        finally:
            bar.close()
    print(result.model_dump_json(indent=2) if args.json else f"wrote {result.path} (manifest {result.manifest_id})")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    if args.trust_anchors and not Path(args.trust_anchors).is_file():
        print(f"error: trust anchors file {args.trust_anchors} not found", file=sys.stderr)
        return EXIT_USAGE
    reports = [
        gen4sdk.verify(f, trust_anchors=args.trust_anchors, store=args.store, detect_watermark=not args.no_watermark)
        for f in args.files
    ]
    if args.json:
        payload: Any = [r.model_dump(mode="json") for r in reports]
        print(json.dumps(payload if len(payload) > 1 else payload[0], indent=2))
    else:
        for r in reports:
            _print_report(r)
    return EXIT_OK if all(r.status == "trusted" for r in reports) else EXIT_FAIL


def cmd_audit(args: argparse.Namespace) -> int:
    from gen4sdk import audit_directory

    if args.trust_anchors and not Path(args.trust_anchors).is_file():
        print(f"error: trust anchors file {args.trust_anchors} not found", file=sys.stderr)
        return EXIT_USAGE
    if not Path(args.dir).is_dir():
        print(f"error: {args.dir} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    for target in (args.report, args.json, args.csv):
        # checked before a long audit, not after it
        if target and not Path(target).resolve().parent.is_dir():
            print(f"error: the directory of {target} does not exist", file=sys.stderr)
            return EXIT_USAGE
    report = audit_directory(
        args.dir, trust_anchors=args.trust_anchors, store=args.store, workers=args.workers, timeout=args.timeout
    )
    if args.report:
        report.write_html(args.report)
    if args.json:
        report.write_json(args.json)
    if args.csv:
        report.write_csv(args.csv)
    counts = {k: v for k, v in report.counts.items() if v}
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no videos found")
    return EXIT_OK if counts and set(counts) == {"trusted"} else EXIT_FAIL


def cmd_log_verify(args: argparse.Namespace) -> int:
    if args.certificate and not Path(args.certificate).is_file():
        print(f"error: certificate file {args.certificate} not found", file=sys.stderr)
        return EXIT_USAGE
    store = gen4sdk.Store(args.store, create=False)
    pinned = [Path(args.certificate).read_bytes()] if args.certificate else None
    result = store.verify_log(trusted_certificates=pinned)
    if args.json:
        print(result.model_dump_json(indent=2))
        return EXIT_OK if result.ok else EXIT_FAIL
    verdict = "OK" if result.ok else "BROKEN"
    print(f"{store.path}: {verdict}: {result.records} records, {result.checkpoints_valid}/{result.checkpoints} valid checkpoints")
    if result.unprotected_tail:
        print(f"  {result.unprotected_tail} records after the last signed checkpoint (their deletion is only partly detectable)")
    for problem in result.problems:
        where = f"record {problem.seq}" if problem.seq is not None else "log"
        print(f"  {problem.kind}: {where}: {problem.message}")
    for note in result.notes:
        print(f"  note: {note}")
    return EXIT_OK if result.ok else EXIT_FAIL


def cmd_log_export(args: argparse.Namespace) -> int:
    store = gen4sdk.Store(args.store, create=False)
    n = store.export_jsonl(args.out if args.out != "-" else sys.stdout)
    if args.out != "-":
        print(f"exported {n} records to {args.out}")
    return EXIT_OK


_QUERY_COLUMNS = ("seq", "time", "request_id", "caller", "outcome", "categories", "manifest_id", "failure_code")


def cmd_log_query(args: argparse.Namespace) -> int:
    import csv

    store = gen4sdk.Store(args.store, create=False)
    entries = store.records(
        since=args.since, until=args.until, caller=args.caller, outcome=args.outcome, category=args.category,
        manifest_id=args.manifest_id, limit=args.limit, newest_first=args.newest_first,
    )  # fmt: skip
    if args.json:
        for e in entries:
            print(e.model_dump_json())
        return EXIT_OK
    writer = csv.writer(sys.stdout) if args.csv else None
    if writer is not None:
        writer.writerow(_QUERY_COLUMNS)
    for e in entries:
        r = e.record
        cats = sorted({c for d in r.decisions for c in d.categories})
        row = [e.seq, r.time.isoformat(), r.request_id, r.caller or "", r.outcome, " ".join(cats),
               r.manifest_id or "", r.failure_code or ""]  # fmt: skip
        if writer is not None:
            writer.writerow(row)
        else:
            print("  ".join(str(x) for x in row if x != ""))
    if writer is None:
        print(f"{len(entries)} records", file=sys.stderr)
    return EXIT_OK


def cmd_policy_check(args: argparse.Namespace) -> int:
    policy = gen4sdk.Policy.load(args.pack) if args.pack else gen4sdk.Policy.default()
    decision = policy.check_prompt(args.prompt)
    if args.json:
        print(decision.model_dump_json(indent=2))
    else:
        verdict = "allowed" if decision.allowed else f"refused ({decision.code})"
        print(f"{verdict}; action {decision.action}; categories {decision.categories or '-'}")
        if decision.reason:
            print(f"  {decision.reason}")
    return EXIT_OK if decision.allowed else EXIT_FAIL


def cmd_policy_test(args: argparse.Namespace) -> int:
    from gen4sdk import run_pack_tests

    report = run_pack_tests(args.pack)
    print(report.table())
    return EXIT_OK if report.passed else EXIT_FAIL


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gen4sdk import create_app

    store = gen4sdk.Store(args.store, create=False)
    app = create_app(store, serve_disclosed_prompts=args.serve_disclosed_prompts)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gen4sdk", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"gen4sdk {gen4sdk.__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate, sign and verify one clip with a tiny offline model")
    demo.add_argument("--out", required=True, help="directory for keys, store and clip (reused on later runs)")
    demo.set_defaults(func=cmd_demo)

    keys = sub.add_parser("keys", help="key management").add_subparsers(dest="keys_command", required=True)
    ki = keys.add_parser("init", help="create a development root CA and a C2PA signing certificate")
    ki.add_argument("dir")
    ki.add_argument("--organization", default="gen4sdk development")
    ki.add_argument("--days", type=int, default=365)
    ki.add_argument("--passphrase-env", help="environment variable holding a passphrase to encrypt the keys")
    ki.set_defaults(func=cmd_keys_init)

    gen = sub.add_parser("generate", help="generate one signed, watermarked clip")
    gen.add_argument("--model", required=True, help="local diffusers pipeline directory, or 'tiny'")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--negative-prompt")
    gen.add_argument("--image", help="reference image (image-to-video)")
    gen.add_argument("--out", required=True, help="output .mp4 path")
    gen.add_argument("--cert", required=True, help="signing certificate chain (PEM)")
    gen.add_argument("--key", required=True, help="signing private key (PEM)")
    gen.add_argument("--passphrase-env")
    gen.add_argument("--tsa-url", help="RFC 3161 timestamp authority URL")
    gen.add_argument("--owner", required=True, help="the operator's organisation")
    gen.add_argument("--user", help="the end user the clip is made for")
    gen.add_argument("--use", help="what the clip is for; likeness grants scoped to uses must name it")
    gen.add_argument("--store", help="store database (audit log, manifests, likeness registry)")
    gen.add_argument("--policy", help="policy pack YAML or shipped pack name (default: the shipped default pack)")
    gen.add_argument("--clip-weights", help="local open_clip weights for reference-image and output-frame checks")
    gen.add_argument("--clip-model", default="ViT-B-32", help="open_clip architecture of --clip-weights")
    gen.add_argument("--frames", type=int, default=17)
    gen.add_argument("--height", type=int, default=144)
    gen.add_argument("--width", type=int, default=256)
    gen.add_argument("--fps", type=float, default=16.0)
    gen.add_argument("--steps", type=int, default=30)
    gen.add_argument("--guidance", type=float, default=5.0)
    gen.add_argument("--seed", type=int)
    gen.add_argument("--device", default="cpu")
    gen.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    gen.add_argument("--memory-mode", default="none", choices=["none", "cpu_offload", "vae_tiling"])
    gen.add_argument("--disclose-prompt", action="store_true", help="record the plaintext prompt in the credentials")
    gen.add_argument("--json", action="store_true")
    gen.set_defaults(func=cmd_generate)

    ver = sub.add_parser("verify", help="is this clip generated, by whom, and was it changed?")
    ver.add_argument("files", nargs="+", metavar="FILE")
    ver.add_argument("--json", action="store_true")
    ver.add_argument("--trust-anchors", help="PEM file of trusted CA certificates")
    ver.add_argument("--store", help="store database or resolution service URL, to recover stripped credentials")
    ver.add_argument("--no-watermark", action="store_true", help="skip watermark detection")
    ver.set_defaults(func=cmd_verify)

    aud = sub.add_parser("audit", help="verify every video under a directory and write reports")
    aud.add_argument("dir")
    aud.add_argument("--report", help="HTML report path")
    aud.add_argument("--json", help="JSON report path")
    aud.add_argument("--csv", help="CSV export path")
    aud.add_argument("--trust-anchors")
    aud.add_argument("--store")
    aud.add_argument("--workers", type=int, default=2)
    aud.add_argument("--timeout", type=float, default=120.0, help="seconds per file")
    aud.set_defaults(func=cmd_audit)

    log = sub.add_parser("log", help="the audit log").add_subparsers(dest="log_command", required=True)
    lv = log.add_parser("verify", help="check the hash chain and checkpoint signatures")
    lv.add_argument("--store", required=True)
    lv.add_argument("--json", action="store_true")
    lv.add_argument(
        "--certificate", help="the operator's signing certificate (PEM); without it any valid checkpoint signature counts"
    )
    lv.set_defaults(func=cmd_log_verify)
    le = log.add_parser("export", help="write the log as JSON lines")
    le.add_argument("--store", required=True)
    le.add_argument("--out", default="-")
    le.set_defaults(func=cmd_log_export)
    lq = log.add_parser("query", help="records by time range, caller, outcome, category or manifest id")
    lq.add_argument("--store", required=True)
    lq.add_argument("--since", help="ISO 8601 time, inclusive")
    lq.add_argument("--until", help="ISO 8601 time, exclusive")
    lq.add_argument("--caller")
    lq.add_argument("--outcome", choices=["allowed", "refused", "failed", "cancelled"])
    lq.add_argument("--category", help="a policy category id, e.g. sexual")
    lq.add_argument("--manifest-id")
    lq.add_argument("--limit", type=int)
    lq.add_argument("--newest-first", action="store_true")
    fmt = lq.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    fmt.add_argument("--json", action="store_true", help="one JSON log entry per line")
    lq.set_defaults(func=cmd_log_query)

    pol = sub.add_parser("policy", help="policy packs").add_subparsers(dest="policy_command", required=True)
    pc = pol.add_parser("check", help="check one prompt")
    pc.add_argument("prompt")
    pc.add_argument("--pack", help="policy pack YAML (default: shipped default)")
    pc.add_argument("--json", action="store_true")
    pc.set_defaults(func=cmd_policy_check)
    pt = pol.add_parser("test", help="run a pack's own test cases")
    pt.add_argument("pack", help="a shipped pack name ('default', 'strict') or a YAML path")
    pt.set_defaults(func=cmd_policy_test)

    srv = sub.add_parser("serve", help="C2PA soft-binding resolution service over a store")
    srv.add_argument("--store", required=True)
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument(
        "--serve-disclosed-prompts",
        action="store_true",
        help="also serve manifests signed with a plaintext prompt (withheld by default)",
    )
    srv.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except gen4sdk.InvalidRequestError as exc:  # the arguments were wrong, as argparse's own errors
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except gen4sdk.Gen4Error as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
