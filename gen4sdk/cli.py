"""The gen4sdk command: a thin shell over the public API.

Exit codes (users read them in the epilog, gen4sdk._cli_args.EXIT_CODES): 0 success; 1 a check ran and did not pass, or
the work failed; 2 usage or bad input (argparse's own convention, so scripts can tell "bad call" from "bad file").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import gen4sdk
from gen4sdk._cli_args import build_parser
from gen4sdk._cli_checks import (
    _BAD_INPUT_ERRORS,
    EXIT_BROKEN_PIPE,
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    _check_output,
    _check_store,
    _check_trust_anchors,
    _need_file,
    _passphrase,
    _UsageError,
)
from gen4sdk._cli_output import print_compliance, print_report
from gen4sdk._cli_serve import cmd_api_key_create, cmd_api_key_list, cmd_api_key_revoke, cmd_serve
from gen4sdk.types import ProgressEvent


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


def _signer(args: argparse.Namespace) -> gen4sdk.Signer:
    passphrase = _passphrase(args)
    return gen4sdk.Signer.from_files(
        args.cert, args.key, passphrase=passphrase, tsa_url=getattr(args, "tsa_url", None)
    )


# --- commands ------------------------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from gen4sdk import KeyPaths

    out = Path(args.out)
    _check_output(args.out, create=True)
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
        model="tiny", signer=signer, owner="gen4sdk demo", store=store, on_progress=on_progress
    )
    clip = out / "demo.mp4"
    prompt = "a red kite flying over green hills at sunset, cinematic"
    # the with-block closes the client on every path, which signs an audit-log checkpoint
    with client:
        try:
            result = client.generate(
                prompt=prompt,
                output=clip,
                num_frames=17,
                height=144,
                width=256,
                fps=8,
                steps=4,
                seed=7,
                user="demo-user",
            )
        finally:
            bar.close()
        print(
            f"generated {result.path} ({result.params.num_frames} frames, {result.params.width}x{result.params.height})"
        )
        print(f"  manifest {result.manifest_id}, watermark payload {result.watermark_payload}")
        print("  timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()))

        refused_prompt = "a sexual video of a 12 year old child"
        try:
            client.generate(prompt=refused_prompt, output=out / "refused.mp4", user="demo-user")
            print("error: the demo's refused request was allowed", file=sys.stderr)
            return EXIT_FAIL
        except gen4sdk.PolicyViolation as exc:
            print(
                f"refused a second request: {exc.code} {exc.categories} (pack {exc.pack_id} {exc.pack_version})"
            )
    print(f"audit log: {len(store)} records in {store.path}")
    print()
    report = gen4sdk.verify(clip, trust_anchors=keys.root_cert, store=store)
    print_report(report)
    return EXIT_OK if report.status == "trusted" else EXIT_FAIL


def cmd_keys_init(args: argparse.Namespace) -> int:
    passphrase = _passphrase(args)
    paths = gen4sdk.init_keys(args.dir, organization=args.organization, passphrase=passphrase, days=args.days)
    print(f"root CA certificate: {paths.root_cert}  (give this to verifiers as --trust-anchors)")
    print(f"root CA key:         {paths.root_key}  (mode 0600; keep offline)")
    print(f"signing chain:       {paths.signer_cert}")
    print(f"signing key:         {paths.signer_key}  (mode 0600)")
    return EXIT_OK


def _label(text: str | None) -> gen4sdk.VisibleLabel | None:
    if not text:
        return None
    try:
        return gen4sdk.VisibleLabel(text=text)
    except ValidationError as exc:  # too long: said before the model loads
        raise _UsageError(f"--label: {exc.errors()[0]['msg']}") from exc


def cmd_generate(args: argparse.Namespace) -> int:
    _check_output(args.out)
    label = _label(args.label)
    _need_file(args.image, "--image")
    _need_file(args.cert, "--cert")
    _need_file(args.key, "--key")
    store: str | None = None
    if args.no_store:
        print(
            "warning: --no-store: no audit log is kept (refusals go unrecorded) and no manifest store "
            "(stripped credentials cannot be recovered); pass --store DB in production",
            file=sys.stderr,
        )
    else:
        # Compliance by default: every request, refusals included, is recorded unless the caller opts out.
        store = args.store or str(Path(args.out).parent / "gen4sdk.db")
    signer = _signer(args)
    image_encoder = None
    if args.clip_weights:
        from gen4sdk import OpenClipEncoder

        image_encoder = OpenClipEncoder.from_pretrained(
            args.clip_model, args.clip_weights, device=args.device
        )
    policy = gen4sdk.Policy.load(args.policy or "default", image_encoder=image_encoder)
    bar, on_progress = _progress_bar()
    client = gen4sdk.Client(
        model=args.model,
        signer=signer,
        owner=gen4sdk.Owner(organization=args.owner),
        policy=policy,
        store=store,
        disclose_prompts=args.disclose_prompt,
        watermark_strength=args.watermark_strength,
        device=args.device,
        dtype=args.dtype,
        memory_mode=args.memory_mode,
        on_progress=on_progress,
        compliance=args.compliance or (),
        label=label,
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
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(f"wrote {result.path} (manifest {result.manifest_id})")
        if store is not None:
            print(f"  audit record in {store}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    _check_trust_anchors(args.trust_anchors)
    _check_store(args.store)
    reports = [
        gen4sdk.verify(
            f, trust_anchors=args.trust_anchors, store=args.store, detect_watermark=not args.no_watermark
        )
        for f in args.files
    ]
    if args.json:
        payload: Any = [r.model_dump(mode="json") for r in reports]
        print(json.dumps(payload if len(payload) > 1 else payload[0], indent=2))
    else:
        for r in reports:
            print_report(r)
    return EXIT_OK if all(r.status == "trusted" for r in reports) else EXIT_FAIL


def cmd_audit(args: argparse.Namespace) -> int:
    from gen4sdk import audit_directory

    _check_trust_anchors(args.trust_anchors)
    _check_store(args.store)
    if not Path(args.dir).is_dir():
        print(f"error: {args.dir} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    for target in (args.report, args.json, args.csv):
        # checked before a long audit, not after it
        if target and not Path(target).resolve().parent.is_dir():
            print(f"error: the directory of {target} does not exist", file=sys.stderr)
            return EXIT_USAGE
    resume = None
    if args.resume:
        if not args.json:
            print("error: --resume needs --json REPORT (the report to resume and rewrite)", file=sys.stderr)
            return EXIT_USAGE
        if Path(args.json).exists():
            resume = args.json
        else:  # the first run of a resumable audit: the same command line every time
            print(f"{args.json} does not exist yet: auditing every file", file=sys.stderr)
    report = audit_directory(
        args.dir,
        trust_anchors=args.trust_anchors,
        store=args.store,
        workers=args.workers,
        timeout=args.timeout,
        profiles=args.profile or (),
        resume=resume,
        ray_address=args.ray,
    )
    if args.report:
        report.write_html(args.report)
    if args.json:
        report.write_json(args.json)
    if args.csv:
        report.write_csv(args.csv)
    counts = {k: v for k, v in report.counts.items() if v}
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no videos found")
    if resume is not None:
        print(f"resumed: {report.resumed} of {len(report.entries)} files unchanged since the previous report")
    for profile, per in report.compliance_counts.items():
        print(f"{profile}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in per.items()))
    return EXIT_OK if counts and set(counts) == {"trusted"} else EXIT_FAIL


def cmd_comply_check(args: argparse.Namespace) -> int:
    _check_trust_anchors(args.trust_anchors)
    _check_store(args.store)
    reports = [
        gen4sdk.check_compliance(
            f,
            args.profile,
            trust_anchors=args.trust_anchors,
            store=args.store,
            expected_provider=args.provider,
        )
        for f in args.files
    ]
    if args.json:
        payload: Any = [r.model_dump(mode="json") for r in reports]
        print(json.dumps(payload if len(payload) > 1 else payload[0], indent=2, ensure_ascii=False))
    else:
        for r in reports:
            print_compliance(r)
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAIL


def cmd_log_verify(args: argparse.Namespace) -> int:
    _check_store(args.store)
    _check_trust_anchors(args.certificate, "--certificate")
    _need_file(args.checkpoint, "--checkpoint file")
    store = gen4sdk.Store(args.store, read_only=True)
    pinned = [Path(args.certificate).read_bytes()] if args.certificate else None
    kept = Path(args.checkpoint).read_text(encoding="utf-8", errors="replace") if args.checkpoint else None
    result = store.verify_log(trusted_certificates=pinned, checkpoint=kept)
    if args.json:
        print(result.model_dump_json(indent=2))
        return EXIT_OK if result.ok else EXIT_FAIL
    verdict = "OK" if result.ok else "BROKEN"
    print(
        f"{store.path}: {verdict}: {result.records} records, {result.checkpoints_valid}/{result.checkpoints} valid checkpoints"
    )
    print(f"  log {result.origin}, tree size {result.tree_size}, root {result.root_hash}")
    if result.witnessed_size is not None and result.ok:
        print(
            f"  contains the checkpoint's tree of {result.witnessed_size} records "
            f"(consistency proof of {len(result.consistency_proof)} hashes)"
        )
    if result.unprotected_tail:
        print(
            f"  {result.unprotected_tail} records after the last signed checkpoint (their deletion is only partly detectable)"
        )
    if result.checkpoint_pending:
        print(f"  checkpoint not signed yet: {result.checkpoint_pending}")
    for problem in result.problems:
        where = f"record {problem.seq}" if problem.seq is not None else "log"
        print(f"  {problem.kind}: {where}: {problem.message}")
    for note in result.notes:
        print(f"  note: {note}")
    return EXIT_OK if result.ok else EXIT_FAIL


def cmd_log_checkpoint(args: argparse.Namespace) -> int:
    _check_store(args.store)
    if args.cert or args.key:
        if not (args.cert and args.key):
            raise _UsageError("--cert and --key go together")
        _need_file(args.cert, "--cert")
        _need_file(args.key, "--key")
        cp = gen4sdk.Store(args.store, signer=_signer(args), create=False).checkpoint()
    else:
        cp = gen4sdk.Store(args.store, read_only=True).latest_checkpoint()
    if cp is None or cp.note is None:
        print(
            f"gen4sdk log checkpoint: {args.store} has no signed checkpoint yet; sign one with --cert and --key",
            file=sys.stderr,
        )
        return EXIT_FAIL
    _write_or_print(cp.note, args.out)
    return EXIT_OK


def cmd_log_prove(args: argparse.Namespace) -> int:
    _check_store(args.store)
    proof = gen4sdk.Store(args.store, read_only=True).prove(args.request_id)
    _write_or_print(proof, args.out)
    return EXIT_OK


def cmd_log_check_proof(args: argparse.Namespace) -> int:
    _need_file(args.proof, "proof file")
    _check_trust_anchors(args.certificate, "--certificate")
    check = gen4sdk.verify_log_proof(
        Path(args.proof), certificates=Path(args.certificate).read_bytes(), origin=args.origin
    )
    if args.json:
        print(check.model_dump_json(indent=2))
    else:
        print(f"{args.proof}: {'OK' if check.ok else 'BROKEN'}: {check.reason}")
        if check.record is not None:
            r = check.record
            print(f"  log {check.origin}, record {check.seq} of {check.tree_size}")
            print(f"  request {r.request_id}: {r.outcome} at {r.time.isoformat()}, caller {r.caller or '-'}")
            if r.manifest_id:
                print(f"  manifest {r.manifest_id}, output sha256 {r.output_sha256}")
    return EXIT_OK if check.ok else EXIT_FAIL


def _write_or_print(text: str, out: str | None) -> None:
    if out is None or out == "-":
        sys.stdout.write(text)
        return
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise gen4sdk.OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    print(f"wrote {out}", file=sys.stderr)


def cmd_log_export(args: argparse.Namespace) -> int:
    _check_store(args.store)
    store = gen4sdk.Store(args.store, read_only=True)
    n = store.export_jsonl(args.out if args.out != "-" else sys.stdout)
    if args.out != "-":
        print(f"exported {n} records to {args.out}")
    return EXIT_OK


_QUERY_COLUMNS = (
    "seq",
    "time",
    "request_id",
    "caller",
    "outcome",
    "categories",
    "manifest_id",
    "failure_code",
)


def cmd_log_query(args: argparse.Namespace) -> int:
    import csv

    _check_store(args.store)
    store = gen4sdk.Store(args.store, read_only=True)
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
            # a caller named "=HYPERLINK(...)" must stay text in a spreadsheet (CSV injection)
            writer.writerow(
                [
                    f"'{c}" if isinstance(c, str) and c.startswith(("=", "+", "-", "@", "\t", "\r")) else c
                    for c in row
                ]
            )
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


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": cmd_demo,
    "keys_init": cmd_keys_init,
    "generate": cmd_generate,
    "verify": cmd_verify,
    "audit": cmd_audit,
    "comply_check": cmd_comply_check,
    "log_verify": cmd_log_verify,
    "log_checkpoint": cmd_log_checkpoint,
    "log_prove": cmd_log_prove,
    "log_check_proof": cmd_log_check_proof,
    "log_export": cmd_log_export,
    "log_query": cmd_log_query,
    "policy_check": cmd_policy_check,
    "policy_test": cmd_policy_test,
    "serve": cmd_serve,
    "api_key_create": cmd_api_key_create,
    "api_key_list": cmd_api_key_list,
    "api_key_revoke": cmd_api_key_revoke,
}


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(_HANDLERS[args.handler](args))
    except _UsageError as exc:
        print(f"gen4sdk {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except gen4sdk.MissingDependencyError as exc:
        # Nothing ran: the environment lacks an extra. The message carries the pip command that fixes it.
        print(f"gen4sdk {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _BAD_INPUT_ERRORS as exc:
        print(f"gen4sdk {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except gen4sdk.Gen4Error as exc:
        print(f"gen4sdk {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAIL


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:
            # A closed pipe shows here, inside the handler, rather than in the interpreter's last flush at exit.
            sys.stdout.flush()
    except BrokenPipeError:
        # Python's documented recipe (signal module, "Note on SIGPIPE"): point stdout at devnull so the
        # interpreter's final flush cannot raise a second time, and leave quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
