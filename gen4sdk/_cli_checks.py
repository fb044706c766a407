"""What the command-line commands check before any slow work starts, and the exit codes they share."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gen4sdk

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
# What a shell reports for a process killed by SIGPIPE (128 + 13): scripts already read it as "output cut short".
EXIT_BROKEN_PIPE = 141

# Errors that say the caller's input is wrong (exit 2); every other Gen4Error means the work ran and failed (exit 1).
_BAD_INPUT_ERRORS: tuple[type[gen4sdk.Gen4Error], ...] = (
    gen4sdk.InvalidRequestError,
    gen4sdk.ModelLoadError,
    gen4sdk.PolicyPackError,
    gen4sdk.KeyMaterialError,
    gen4sdk.MediaError,
)


class _UsageError(Exception):
    """An argument names a file that is missing or unusable; found before any slow work starts."""


def _need_file(path: str | None, what: str) -> None:
    if path is not None and not Path(path).is_file():
        reason = "is not a file" if Path(path).exists() else "does not exist"
        raise _UsageError(f"{what} {path} {reason}")


def _check_trust_anchors(path: str | None, option: str = "--trust-anchors") -> None:
    """The anchors file must hold PEM certificates: otherwise every clip would be reported for the file's fault."""
    if path is None:
        return
    _need_file(path, f"{option} file")
    from cryptography import x509

    data = Path(path).read_bytes()
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise _UsageError(
            f"{option} file {path} holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)"
        )
    try:
        data.decode("ascii")  # verify reads anchors as ASCII PEM text
        x509.load_pem_x509_certificates(data)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        # cryptography's message ends in a link to its FAQ; its first sentence is what the user needs
        raise _UsageError(
            f"{option} file {path} holds a malformed PEM certificate: {str(exc).split('. ')[0]}"
        ) from exc


def _check_store(store: str | None, option: str = "--store") -> None:
    """A store named for reading must exist: a typo must neither pass silently as a store that knows nothing nor create one.

    A service URL or a PostgreSQL URL is checked when it is opened (an unreachable database is a StoreError naming it).
    """
    if store is not None and not store.lower().startswith(
        ("http://", "https://", "postgresql://", "postgres://")
    ):
        _need_file(store, f"{option} database")


def _check_output(out: str, *, create: bool = False) -> None:
    """Checked before the model loads (seconds to minutes), so a typo costs nothing."""
    path = Path(out)
    if create:  # demo: the directory itself may be new, not its parent (a typo must not grow a tree)
        try:
            path.mkdir(exist_ok=True)
        except OSError as exc:
            raise _UsageError(f"cannot create the output directory {out}: {exc.strerror}") from exc
        return
    if path.suffix.lower() != ".mp4":
        raise _UsageError(f"--out must be an .mp4 path, got {out}")
    parent = path.parent
    if not parent.is_dir():
        raise _UsageError(f"the output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise _UsageError(f"the output directory {parent} is not writable")
    if path.is_dir():
        raise _UsageError(f"--out {out} is a directory")


def _passphrase(args: argparse.Namespace) -> str | None:
    """The passphrase named by --passphrase-env. A variable that is unset or empty is an error: taking it as "no
    passphrase" would write (keys init) or expect unencrypted keys without a word."""
    name = getattr(args, "passphrase_env", None)
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise _UsageError(
            f"--passphrase-env {name}: the environment variable is {'empty' if value == '' else 'not set'}"
        )
    return value
