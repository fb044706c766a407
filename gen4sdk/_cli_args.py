"""The gen4sdk command's grammar: its subcommands, options, help texts, examples and exit-code table.

Kept apart from cli.py, which runs the commands, so the help a user reads is reviewed in one place. Each command's
parser names its handler (``handler``), which cli.py looks up; this module imports nothing of gen4sdk but its version.
"""

from __future__ import annotations

import argparse
from typing import Any

from gen4sdk._version import __version__

__all__ = ["EXIT_CODES", "build_parser"]

EXIT_CODES = """\
exit codes:
  0    success: every file trusted (comply check: meets every requirement a clip can show),
       the clip written, the prompt allowed, the log intact
  1    a check ran and did not pass (a file not trusted or not compliant, a refused prompt, a broken log),
       or the work itself failed (the model, the signer or the disk)
  2    usage or bad input: wrong arguments, or a file they name is missing or unusable
       (model directory, keys, trust anchors, store, policy pack, image, output directory),
       or an unknown compliance profile
       or an extra the command needs is not installed (the message gives the pip command)
  141  standard output was closed early (e.g. piped into head); the output was cut short
"""

# gen4sdk.types.ComplianceProfile's names, written out: this module imports nothing of gen4sdk but its version
# (a test checks the two agree); an unknown name is refused by the SDK with the list (exit 2)
_PROFILE_NAMES = "eu-ai-act, ca-sb-942, cn-gb-45438"
# watermark.STRENGTHS and its default, written out for the same reason (the same test checks them)
_WATERMARK_STRENGTHS = ("invisible", "balanced", "robust")
_DEFAULT_WATERMARK_STRENGTH = "robust"
_FORMATTER = argparse.RawDescriptionHelpFormatter  # keeps the epilogs' tables and examples as written


def _command(sub: Any, name: str, help: str, epilog: str = "") -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=help, epilog=epilog or None, formatter_class=_FORMATTER
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gen4sdk",
        description="Generate provenance-aware video clips (policy filter, invisible watermark, signed C2PA "
        "Content Credentials, audit log), and verify or audit clips you receive.",
        epilog="examples:\n"
        "  gen4sdk demo --out demo-out\n"
        "  gen4sdk verify demo-out/demo.mp4 --trust-anchors demo-out/keys/root-ca.pem\n"
        "  gen4sdk audit received/ --report audit.html --store gen4sdk.db\n"
        '  gen4sdk policy check "a lighthouse at dusk"\n\n'
        "run 'gen4sdk COMMAND --help' for a command's options.\n\n" + EXIT_CODES,
        formatter_class=_FORMATTER,
    )
    p.add_argument("--version", action="version", version=f"gen4sdk {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _command(
        sub,
        "demo",
        "generate, sign and verify one clip with a tiny offline model (no weights, no network)",
        "example:\n  gen4sdk demo --out demo-out\n"
        "  gen4sdk verify demo-out/demo.mp4 --trust-anchors demo-out/keys/root-ca.pem\n\n" + EXIT_CODES,
    )
    demo.add_argument(
        "--out",
        required=True,
        help="directory for the keys, the store and the clip; created if missing (its parent must exist), "
        "reused on later runs",
    )
    demo.set_defaults(handler="demo")

    keys = sub.add_parser(
        "keys", help="key management", description="key management", formatter_class=_FORMATTER
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    ki = _command(
        keys_sub,
        "init",
        "create a development root CA and a C2PA signing certificate",
        'example:\n  gen4sdk keys init keys/ --organization "Acme Studios"\n\n'
        "Development keys only: production keys belong in a KMS or HSM (gen4sdk.Signer.from_callback).\n\n"
        + EXIT_CODES,
    )
    ki.add_argument(
        "dir", help="directory for the four PEM files; existing key material is never overwritten"
    )
    ki.add_argument(
        "--organization",
        default="gen4sdk development",
        help="organisation named in the certificates (default: %(default)s)",
    )
    ki.add_argument(
        "--days", type=int, default=365, help="validity of the certificates in days (default: %(default)s)"
    )
    ki.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="name of an environment variable holding a passphrase to encrypt the keys (default: unencrypted)",
    )
    ki.set_defaults(handler="keys_init")

    ak = keys_sub.add_parser(
        "api-key",
        help="partner apps' API keys for the job API of 'gen4sdk serve --model'",
        description="partner apps' API keys for the job API of 'gen4sdk serve --model'",
        formatter_class=_FORMATTER,
    )
    ak_sub = ak.add_subparsers(dest="api_key_command", required=True, metavar="COMMAND")
    akc = _command(
        ak_sub,
        "create",
        "create a key for one application; prints it once (only its SHA-256 is stored)",
        "example:\n  gen4sdk keys api-key create --store gen4sdk.db --name storyboard-app --rate-limit 20\n\n"
        + EXIT_CODES,
    )
    akc.add_argument(
        "--store", metavar="DB", required=True, help="the store: a database file or a postgresql:// URL"
    )
    akc.add_argument("--name", required=True, help="the application the key is for")
    akc.add_argument(
        "--rate-limit", type=int, default=10, help="generations it may submit a minute (default: %(default)s)"
    )
    akc.set_defaults(handler="api_key_create")
    akl = _command(
        ak_sub,
        "list",
        "list the keys of a store (never the keys themselves)",
        "example:\n  gen4sdk keys api-key list --store gen4sdk.db\n\n" + EXIT_CODES,
    )
    akl.add_argument("--store", metavar="DB", required=True, help="an existing store")
    akl.set_defaults(handler="api_key_list")
    akr = _command(
        ak_sub,
        "revoke",
        "revoke a key at once: its next request is refused (401)",
        "example:\n  gen4sdk keys api-key revoke --store gen4sdk.db 8b488c821ed5\n\n" + EXIT_CODES,
    )
    akr.add_argument("--store", metavar="DB", required=True, help="an existing store")
    akr.add_argument("key_id", help="the key's id, as 'list' shows it")
    akr.set_defaults(handler="api_key_revoke")

    gen = _command(
        sub,
        "generate",
        "generate one signed, watermarked clip behind the policy filter",
        "example:\n"
        '  gen4sdk generate --model tiny --prompt "a lighthouse at dusk" --out clips/lighthouse.mp4 \\\n'
        '      --cert keys/signer.pem --key keys/signer.key --owner "Acme Studios" --store gen4sdk.db\n\n'
        "Every request, refused ones included, is recorded in the audit log of the store (by default gen4sdk.db\n"
        "beside the output clip); --no-store opts out with a warning.\n\n" + EXIT_CODES,
    )
    gen.add_argument(
        "--model",
        required=True,
        help="'tiny' (a random model built in code, for trying the SDK offline; 'tiny-i2v' for image-to-video) "
        "or a local diffusers pipeline directory",
    )
    gen.add_argument("--prompt", required=True, help="what the clip should show")
    gen.add_argument("--negative-prompt", help="what the clip should not show")
    gen.add_argument("--image", help="reference image for image-to-video (e.g. PNG, JPEG, WebP)")
    gen.add_argument("--out", required=True, help="output .mp4 path; its directory must exist")
    gen.add_argument(
        "--cert", required=True, help="signing certificate chain (PEM), e.g. from 'gen4sdk keys init'"
    )
    gen.add_argument("--key", required=True, help="signing private key (PEM)")
    gen.add_argument(
        "--passphrase-env", metavar="VAR", help="name of an environment variable holding the key's passphrase"
    )
    gen.add_argument("--tsa-url", help="RFC 3161 timestamp authority URL (default: no timestamp)")
    gen.add_argument(
        "--owner", required=True, help="the operator's organisation, recorded in the credentials"
    )
    gen.add_argument(
        "--user", help="the end user the clip is made for, recorded in the credentials and the log"
    )
    gen.add_argument("--use", help="what the clip is for; likeness grants scoped to uses must name it")
    stores = gen.add_mutually_exclusive_group()
    stores.add_argument(
        "--store",
        metavar="DB",
        help="store for the audit log, manifests and likeness registry: a database file, created if missing, or a "
        "postgresql:// URL (default: gen4sdk.db in the output clip's directory)",
    )
    stores.add_argument(
        "--no-store",
        action="store_true",
        help="keep no audit log or manifest store (refusals go unrecorded; not for production)",
    )
    gen.add_argument(
        "--policy", help="policy pack: a shipped pack name or a YAML path (default: the shipped default pack)"
    )
    gen.add_argument(
        "--clip-weights",
        help="local open_clip weights for reference-image and output-frame checks (default: none)",
    )
    gen.add_argument(
        "--clip-model",
        default="ViT-B-32",
        help="open_clip architecture of --clip-weights (default: %(default)s)",
    )
    gen.add_argument(
        "--frames", type=int, default=17, help="number of frames, 4k+1 for Wan models (default: %(default)s)"
    )
    gen.add_argument("--height", type=int, default=144, help="frame height in pixels (default: %(default)s)")
    gen.add_argument("--width", type=int, default=256, help="frame width in pixels (default: %(default)s)")
    gen.add_argument(
        "--fps", type=float, default=16.0, help="frames per second of the clip (default: %(default)s)"
    )
    gen.add_argument("--steps", type=int, default=30, help="denoising steps (default: %(default)s)")
    gen.add_argument(
        "--guidance", type=float, default=5.0, help="classifier-free guidance scale (default: %(default)s)"
    )
    gen.add_argument(
        "--seed", type=int, help="random seed, recorded in the credentials (default: a random one)"
    )
    gen.add_argument(
        "--device",
        default="cpu",
        help="torch device for the model and encoders, e.g. cuda (default: %(default)s)",
    )
    gen.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16", "bfloat16"],
        help="model precision (default: %(default)s)",
    )
    gen.add_argument(
        "--memory-mode",
        default="none",
        choices=["none", "cpu_offload", "vae_tiling"],
        help="trade speed for GPU memory (default: %(default)s)",
    )
    gen.add_argument(
        "--watermark-strength",
        default=_DEFAULT_WATERMARK_STRENGTH,
        choices=_WATERMARK_STRENGTHS,
        help="how visible the invisible watermark may be against how much compression it survives "
        "(default: %(default)s; balanced is less visible, 9.34 against 8.79 ColorVideoVDP JOD on average, but "
        "reads less often after x264 CRF 35 or a crop to 55%%: docs/watermark.md)",
    )
    gen.add_argument(
        "--disclose-prompt",
        action="store_true",
        help="record the plaintext prompt in the credentials (default: only a salted commitment)",
    )
    gen.add_argument(
        "--compliance",
        action="append",
        metavar="PROFILE",
        help=f"make the clip meet a labelling-law profile ({_PROFILE_NAMES}); repeatable; cn-gb-45438 needs --label",
    )
    gen.add_argument(
        "--label",
        metavar="TEXT",
        help="burn a visible AI label into the first 2 s, 5%% of the shorter side high, top left "
        "(e.g. 'AI生成 AI-generated'; default: none)",
    )
    gen.add_argument("--json", action="store_true", help="print the result as JSON")
    gen.set_defaults(handler="generate")

    ver = _command(
        sub,
        "verify",
        "is this clip generated, by whom, and was it changed?",
        "examples:\n"
        "  gen4sdk verify clip.mp4 --trust-anchors root-ca.pem\n"
        "  gen4sdk verify *.mp4 --json --store gen4sdk.db\n\n"
        "verdicts: trusted, untrusted, tampered, recovered, watermarked, unsigned, unreadable\n"
        "(only trusted exits 0).\n\n" + EXIT_CODES,
    )
    ver.add_argument("files", nargs="+", metavar="FILE", help="video files to verify")
    ver.add_argument(
        "--json",
        action="store_true",
        help="print the reports as JSON (one object, or a list for several files)",
    )
    ver.add_argument(
        "--trust-anchors",
        metavar="PEM",
        help="PEM file of the CA certificates to trust, e.g. the operator's root-ca.pem (default: none, so a valid "
        "clip is at best untrusted)",
    )
    ver.add_argument(
        "--store",
        metavar="DB_OR_URL",
        help="an existing store (database file or postgresql:// URL) or a soft-binding resolution service URL, to "
        "recover stripped credentials "
        "from the watermark (default: none)",
    )
    ver.add_argument("--no-watermark", action="store_true", help="skip watermark detection (faster)")
    ver.set_defaults(handler="verify")

    aud = _command(
        sub,
        "audit",
        "verify every video under a directory and write reports",
        "example:\n  gen4sdk audit received/ --report audit.html --csv audit.csv --trust-anchors root-ca.pem\n"
        "  gen4sdk audit received/ --json audit.json --resume   # again later: only new or changed files\n"
        "  gen4sdk audit /shared/received/ --ray auto --workers 32   # per-file work on a Ray cluster\n\n"
        + EXIT_CODES,
    )
    aud.add_argument("dir", help="directory searched recursively for videos")
    aud.add_argument("--report", help="HTML report path (default: none)")
    aud.add_argument("--json", help="JSON report path (default: none)")
    aud.add_argument("--csv", help="CSV export path (default: none)")
    aud.add_argument(
        "--trust-anchors", metavar="PEM", help="PEM file of the CA certificates to trust (default: none)"
    )
    aud.add_argument(
        "--store",
        metavar="DB_OR_URL",
        help="an existing store (database file or postgresql:// URL) or resolution service URL (default: none)",
    )
    aud.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes, or Ray tasks at a time (default: %(default)s)",
    )
    aud.add_argument(
        "--timeout", type=float, default=120.0, help="seconds allowed per file (default: %(default)s)"
    )
    aud.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help=f"also check each file against a labelling-law profile ({_PROFILE_NAMES}); repeatable",
    )
    aud.add_argument(
        "--resume",
        action="store_true",
        help="reuse the entries of the --json report if it exists: files unchanged since (same size and "
        "modification time) are not verified again, unreadable ones are; the report is then rewritten",
    )
    aud.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the per-file work as Ray tasks: auto (the running cluster), ray://HOST:10001, or local "
        "(a Ray started for this audit); needs gen4sdk[ray] and the files at the same paths on every node",
    )
    aud.set_defaults(handler="audit")

    comply = sub.add_parser(
        "comply",
        help="labelling-law profiles (EU AI Act, California SB 942, China GB 45438)",
        description="labelling-law profiles (EU AI Act, California SB 942, China GB 45438)",
        formatter_class=_FORMATTER,
    )
    comply_sub = comply.add_subparsers(dest="comply_command", required=True, metavar="COMMAND")
    cc = _command(
        comply_sub,
        "check",
        "check clips against a labelling-law profile: each requirement met, missing or not checkable, and why",
        "examples:\n"
        "  gen4sdk comply check clip.mp4 --profile eu-ai-act --trust-anchors root-ca.pem\n"
        "  gen4sdk comply check *.mp4 --profile cn-gb-45438 --profile ca-sb-942 --json\n\n"
        f"profiles: {_PROFILE_NAMES}. Requirements marked [operator] are duties no clip can show\n"
        "(terms of service, how the clip is presented); they never decide the exit code.\n\n" + EXIT_CODES,
    )
    cc.add_argument("files", nargs="+", metavar="CLIP", help="video files to check (ours or anyone's)")
    cc.add_argument(
        "--profile", action="append", required=True, metavar="NAME", help=f"{_PROFILE_NAMES}; repeatable"
    )
    cc.add_argument("--json", action="store_true", help="print the reports as JSON (one object, or a list)")
    cc.add_argument(
        "--trust-anchors",
        metavar="PEM",
        help="PEM file of the provider's CA certificates; without it who made a clip is not established",
    )
    cc.add_argument(
        "--store",
        metavar="DB_OR_URL",
        help="store (database file or postgresql:// URL) or resolution service URL to recover stripped credentials",
    )
    cc.add_argument(
        "--provider", help="the provider the clips should name; another name is a missing requirement"
    )
    cc.set_defaults(handler="comply_check")

    log = sub.add_parser("log", help="the audit log", description="the audit log", formatter_class=_FORMATTER)
    log_sub = log.add_subparsers(dest="log_command", required=True, metavar="COMMAND")
    lv = _command(
        log_sub,
        "verify",
        "check the hash chain and checkpoint signatures",
        "example:\n  gen4sdk log verify --store gen4sdk.db --certificate keys/signer.pem\n\n" + EXIT_CODES,
    )
    lv.add_argument(
        "--store",
        metavar="DB",
        required=True,
        help="an existing store: a database file or a postgresql:// URL",
    )
    lv.add_argument("--json", action="store_true", help="print the result as JSON")
    lv.add_argument(
        "--certificate",
        metavar="PEM",
        help="the operator's signing certificate (default: none, so any valid checkpoint signature counts)",
    )
    lv.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a checkpoint kept elsewhere (from 'gen4sdk log checkpoint'): the log must still contain its tree, "
        "shown by a consistency proof (default: only the checkpoints stored in the database)",
    )
    lv.set_defaults(handler="log_verify")
    lc = _command(
        log_sub,
        "checkpoint",
        "print the latest signed checkpoint (C2SP format), to keep outside the database",
        "examples:\n  gen4sdk log checkpoint --store gen4sdk.db > checkpoint-2026-06-01.txt\n"
        "  gen4sdk log checkpoint --store gen4sdk.db --cert keys/signer.pem --key keys/signer.key\n"
        "  gen4sdk log verify --store gen4sdk.db --checkpoint checkpoint-2026-06-01.txt "
        "--certificate keys/signer.pem\n\n"
        "Keep checkpoints somewhere a person with write access to the database cannot change (a ticket, another\n"
        "system, a witness): 'log verify --checkpoint' then proves nothing up to it was removed or rewritten.\n\n"
        + EXIT_CODES,
    )
    lc.add_argument(
        "--store",
        metavar="DB",
        required=True,
        help="an existing store: a database file or a postgresql:// URL",
    )
    lc.add_argument("--out", help="write the checkpoint to this file (default: standard output)")
    lc.add_argument(
        "--cert", help="sign a new checkpoint over the whole log first, with this certificate chain"
    )
    lc.add_argument("--key", help="the signing key for --cert (PEM)")
    lc.add_argument(
        "--passphrase-env", metavar="VAR", help="environment variable holding the key's passphrase"
    )
    lc.set_defaults(handler="log_checkpoint")
    lp = _command(
        log_sub,
        "prove",
        "print an inclusion proof of one request's record, checkable without the database",
        "example:\n  gen4sdk log prove --store gen4sdk.db --request-id 5f1c... --out record.tlog-proof\n"
        "  gen4sdk log check-proof record.tlog-proof --certificate keys/signer.pem\n\n"
        "The proof (C2SP tlog-proof) holds the record, its audit path and the signed checkpoint.\n\n"
        + EXIT_CODES,
    )
    lp.add_argument(
        "--store",
        metavar="DB",
        required=True,
        help="an existing store: a database file or a postgresql:// URL",
    )
    lp.add_argument("--request-id", required=True, help="the request whose record to prove")
    lp.add_argument("--out", help="write the proof to this file (default: standard output)")
    lp.set_defaults(handler="log_prove")
    lk = _command(
        log_sub,
        "check-proof",
        "check an inclusion proof from 'log prove' with the operator's certificate (no database needed)",
        "example:\n  gen4sdk log check-proof record.tlog-proof --certificate signer.pem\n\n" + EXIT_CODES,
    )
    lk.add_argument("proof", help="the proof file")
    lk.add_argument("--certificate", metavar="PEM", required=True, help="the operator's signing certificate")
    lk.add_argument("--origin", help="insist on this log (the first line of its checkpoints)")
    lk.add_argument("--json", action="store_true", help="print the result as JSON")
    lk.set_defaults(handler="log_check_proof")
    le = _command(
        log_sub,
        "export",
        "write the log as JSON lines",
        "example:\n  gen4sdk log export --store gen4sdk.db --out log.jsonl\n\n" + EXIT_CODES,
    )
    le.add_argument(
        "--store",
        metavar="DB",
        required=True,
        help="an existing store: a database file or a postgresql:// URL",
    )
    le.add_argument("--out", default="-", help="output file, or - for standard output (default: %(default)s)")
    le.set_defaults(handler="log_export")
    lq = _command(
        log_sub,
        "query",
        "records by time range, caller, outcome, category or manifest id",
        "example:\n  gen4sdk log query --store gen4sdk.db --outcome refused --since 2026-01-01 --csv\n\n"
        + EXIT_CODES,
    )
    lq.add_argument(
        "--store",
        metavar="DB",
        required=True,
        help="an existing store: a database file or a postgresql:// URL",
    )
    lq.add_argument("--since", help="ISO 8601 time, inclusive")
    lq.add_argument("--until", help="ISO 8601 time, exclusive")
    lq.add_argument("--caller", help="the end user a request was made for (generate's --user)")
    lq.add_argument(
        "--outcome", choices=["allowed", "refused", "failed", "cancelled"], help="outcome of the request"
    )
    lq.add_argument("--category", help="a policy category id, e.g. sexual")
    lq.add_argument("--manifest-id", help="the manifest id of a generated clip")
    lq.add_argument("--limit", type=int, help="at most this many records (default: all)")
    lq.add_argument(
        "--newest-first", action="store_true", help="newest records first (default: oldest first)"
    )
    fmt = lq.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    fmt.add_argument("--json", action="store_true", help="one JSON log entry per line")
    lq.set_defaults(handler="log_query")

    pol = sub.add_parser(
        "policy", help="policy packs", description="policy packs", formatter_class=_FORMATTER
    )
    pol_sub = pol.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    pc = _command(
        pol_sub,
        "check",
        "check one prompt",
        'example:\n  gen4sdk policy check "a lighthouse at dusk" --pack strict\n\n' + EXIT_CODES,
    )
    pc.add_argument("prompt", help="the prompt text")
    pc.add_argument("--pack", help="a shipped pack name or a YAML path (default: the shipped default pack)")
    pc.add_argument("--json", action="store_true", help="print the decision as JSON")
    pc.set_defaults(handler="policy_check")
    pt = _command(
        pol_sub,
        "test",
        "run a pack's own test cases",
        "example:\n  gen4sdk policy test strict\n\n" + EXIT_CODES,
    )
    pt.add_argument("pack", help="a shipped pack name ('default', 'strict') or a YAML path")
    pt.set_defaults(handler="policy_test")

    srv = _command(
        sub,
        "serve",
        "the public detection page at / and the C2PA soft-binding resolution service over a store; with --model, "
        "the generation job API at /v1/generations and its workers",
        "examples:\n  gen4sdk serve --store gen4sdk.db --port 8000\n"
        "  gen4sdk serve --store gen4sdk.db --model tiny --workers 2      # try the job API on a laptop\n"
        "  gen4sdk serve --store postgresql://gen4sdk@db/gen4sdk --model /models/wan --devices cuda:0 cuda:1\n\n"
        + EXIT_CODES,
    )
    srv.add_argument(
        "--store",
        metavar="DB",
        required=True,
        help="a database file or a postgresql:// URL; must exist unless --model is given",
    )
    srv.add_argument(
        "--model",
        help="serve the job API with this model: 'tiny' (random, built in code), 'tiny-i2v', or a local diffusers "
        "pipeline directory",
    )
    srv.add_argument(
        "--workers",
        type=int,
        default=1,
        help="with --model: generation workers on the CPU (default: %(default)s)",
    )
    srv.add_argument(
        "--devices",
        nargs="+",
        metavar="DEVICE",
        help="with --model: one worker per device (cuda:0 cuda:1 ...)",
    )
    srv.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="with --model: run the workers as Ray actors ('local' starts Ray here)",
    )
    srv.add_argument(
        "--keys",
        metavar="DIR",
        default="gen4sdk-keys",
        help="with --model: the signing keys of 'gen4sdk keys init' (created as development keys when missing; "
        "default: %(default)s)",
    )
    srv.add_argument(
        "--owner",
        default="gen4sdk development",
        help="with --model: the organisation in the credentials (default: %(default)s)",
    )
    srv.add_argument(
        "--output-dir",
        default="generations",
        help="with --model: where clips are written (default: %(default)s)",
    )
    srv.add_argument(
        "--lease",
        type=float,
        default=60.0,
        help="with --model: seconds without a heartbeat before a task's worker is taken for lost (default: %(default)s)",
    )
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    srv.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    srv.add_argument(
        "--trust-anchors",
        metavar="PEM",
        help="PEM file of the CAs whose clips the detection page at / names as verified (default: none)",
    )
    srv.add_argument(
        "--max-upload-mb", type=int, default=64, help="largest upload accepted, in MB (default: %(default)s)"
    )
    srv.add_argument(
        "--serve-disclosed-prompts",
        action="store_true",
        help="also serve manifests signed with a plaintext prompt (withheld by default)",
    )
    srv.set_defaults(handler="serve")
    return p
