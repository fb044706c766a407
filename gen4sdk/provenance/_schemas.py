"""The assertions' JSON Schema files in ``docs/assertions``, for verifiers other than gen4sdk.

Regenerate them after changing an assertion model (a test checks they are up to date)::

    python -m gen4sdk.provenance._schemas --write docs/assertions
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gen4sdk.provenance._assertions import ASSERTIONS

__all__ = ["schema_files", "write_schemas"]


def schema_files() -> dict[str, str]:
    """File name -> JSON Schema text, for every assertion (what ``docs/assertions`` must hold)."""
    return {
        f"{cls.LABEL}.schema.json": json.dumps(cls.json_schema(), indent=2, sort_keys=True) + "\n"
        for cls in ASSERTIONS
    }


def write_schemas(directory: Path) -> list[Path]:
    """Write every assertion's JSON Schema into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gen4sdk.provenance._schemas", description="Write the assertions' JSON Schema files."
    )
    parser.add_argument(
        "--write", type=Path, required=True, metavar="DIR", help="directory for the *.schema.json files"
    )
    args = parser.parse_args(argv)
    for path in write_schemas(args.write):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
