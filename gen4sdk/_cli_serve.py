"""``gen4sdk serve`` and ``gen4sdk keys api-key``: the service, its generation workers, and partner apps' keys."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import sys
from pathlib import Path
from typing import Any

import gen4sdk
from gen4sdk._cli_checks import EXIT_OK, _check_store, _check_trust_anchors, _UsageError

logger = logging.getLogger(__name__)

__all__ = ["cmd_api_key_create", "cmd_api_key_list", "cmd_api_key_revoke", "cmd_serve"]


def _signing_keys(directory: str) -> gen4sdk.KeyPaths:
    keys = gen4sdk.KeyPaths.in_directory(directory)
    if not keys.exist():
        if Path(directory).exists() and any(Path(directory).iterdir()):
            raise _UsageError(
                f"--keys {directory} holds files but not the four key files of 'gen4sdk keys init'"
            )
        keys = gen4sdk.init_keys(directory, organization="gen4sdk development")
        print(f"created development signing keys in {directory} (not for production)", file=sys.stderr)
    return keys


def make_client(model: str, keys_dir: str, owner: str, store: str, device: str) -> gen4sdk.Client:
    """A generation worker's Client; module-level, so Ray can send it to other hosts by reference."""
    keys = gen4sdk.KeyPaths.in_directory(keys_dir)
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)
    return gen4sdk.Client(
        model=model,
        signer=signer,
        owner=owner,
        store=gen4sdk.Store(store, signer=signer),
        device=device,
        dtype="float32" if device == "cpu" else "bfloat16",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gen4sdk.server import GenerationService, GenerationWorker, create_app, start_ray_workers

    _check_trust_anchors(args.trust_anchors)
    if args.model is None:
        _check_store(args.store)
        app = create_app(
            gen4sdk.Store(args.store, read_only=True),
            serve_disclosed_prompts=args.serve_disclosed_prompts,
            trust_anchors=args.trust_anchors,
            max_upload_bytes=args.max_upload_mb * 1024 * 1024,
        )
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
        return EXIT_OK

    if args.model not in ("tiny", "tiny-i2v") and not Path(args.model).is_dir():
        raise _UsageError(f"--model {args.model}: not 'tiny', 'tiny-i2v' or a pipeline directory")
    devices = args.devices or ["cpu"] * args.workers
    keys = _signing_keys(args.keys)
    trust_anchors = args.trust_anchors or str(keys.root_cert)
    signer = gen4sdk.Signer.from_files(keys.signer_cert, keys.signer_key)
    store = gen4sdk.Store(args.store, signer=signer)
    output_dir = Path(args.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    factory = functools.partial(
        make_client, args.model, str(Path(args.keys).resolve()), args.owner, store.database.target
    )
    workers: list[Any] = []
    ray_workers = None
    if args.ray:
        ray_workers = start_ray_workers(
            functools.partial(factory, devices[0]), output_dir, count=len(devices), address=args.ray,
            num_gpus=0 if devices[0] == "cpu" else 1, lease=args.lease,
        )  # fmt: skip
        service = GenerationService(store, lease=args.lease)
    else:
        clients = [factory(device) for device in devices]
        service = GenerationService(store, policy=clients[0].policy, lease=args.lease)
        workers = [GenerationWorker(c, output_dir, lease=args.lease).start() for c in clients]
    app = create_app(
        store,
        generations=service,
        serve_disclosed_prompts=args.serve_disclosed_prompts,
        trust_anchors=trust_anchors,
        max_upload_bytes=args.max_upload_mb * 1024 * 1024,
    )
    print(
        f"job API at http://{args.host}:{args.port}/v1/generations ({len(devices)} worker(s), clips in {output_dir});"
        f" create a key with: gen4sdk keys api-key create --store {store.location} --name APP",
        file=sys.stderr,
    )
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        for worker in workers:
            worker.stop(cancel=True)
            worker.client.close()
        if ray_workers is not None:
            ray_workers.stop(cancel=True)
    return EXIT_OK


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if t else "-"


def cmd_api_key_create(args: argparse.Namespace) -> int:
    from gen4sdk.server import TaskQueue

    record, key = TaskQueue(gen4sdk.Store(args.store)).create_api_key(args.name, rate_limit=args.rate_limit)
    print(key)
    print(
        f"API key {record.id} for {record.name!r} ({record.rate_limit} generations a minute). Keep it now: only "
        "its SHA-256 is stored, it cannot be shown again.",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_api_key_list(args: argparse.Namespace) -> int:
    from gen4sdk.server import TaskQueue

    _check_store(args.store)
    keys = TaskQueue(gen4sdk.Store(args.store, read_only=True)).api_keys()
    print(f"{'id':<14}{'rate/min':>9}  {'created':<22}{'revoked':<22}name")
    for k in keys:
        print(f"{k.id:<14}{k.rate_limit:>9}  {_when(k.created_at):<22}{_when(k.revoked_at):<22}{k.name}")
    return EXIT_OK


def cmd_api_key_revoke(args: argparse.Namespace) -> int:
    from gen4sdk.server import TaskQueue

    _check_store(args.store)
    key = TaskQueue(gen4sdk.Store(args.store)).revoke_api_key(args.key_id)
    print(f"revoked API key {key.id} ({key.name}) at {_when(key.revoked_at)}")
    return EXIT_OK
