"""Fixtures shared across the suite: development keys, small clips, a third-party video kept in tests/data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

# Belt and braces: nothing in the suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA = Path(__file__).resolve().parent / "data"
# 7.3 s of Big Buck Bunny (CC BY 3.0, Blender Foundation), Blender's own H.264 packets; see data/README.md
BBB = DATA / "bbb_excerpt.mp4"


@pytest.fixture(scope="session")
def dev_keys(tmp_path_factory: pytest.TempPathFactory):
    from gen4sdk.provenance import init_keys

    return init_keys(tmp_path_factory.mktemp("keys"), organization="Acme Studios")


@pytest.fixture(scope="session")
def signer(dev_keys):
    from gen4sdk.provenance import Signer

    return Signer.from_files(dev_keys.signer_cert, dev_keys.signer_key)


def natural_frames(n: int = 16, height: int = 144, width: int = 256, seed: int = 0) -> np.ndarray:
    """A slow pan over a real photograph, so codecs and watermark see natural texture and motion."""
    from skimage import data, transform

    photo = data.astronaut()
    scale = max(height / photo.shape[0], (width + 2 * n) / photo.shape[1]) * 1.05
    big = (transform.rescale(photo, scale, channel_axis=2, anti_aliasing=True) * 255).astype(np.uint8)
    rng = np.random.default_rng(seed)
    y0 = int(rng.integers(0, max(1, big.shape[0] - height)))
    return np.stack([big[y0 : y0 + height, 2 * i : 2 * i + width] for i in range(n)])


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gen4sdk import media

    path = tmp_path_factory.mktemp("clips") / "small.mp4"
    media.encode_video(natural_frames(), path, fps=16, crf=20, preset="veryfast")
    return path


@pytest.fixture(scope="session")
def bbb_excerpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first two seconds of the Big Buck Bunny excerpt, remuxed without re-encoding (a clip the SDK did not
    make, short enough for a quick verify)."""
    import av

    out = tmp_path_factory.mktemp("bbb") / "bbb_2s.mp4"
    with av.open(str(BBB)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            if packet.pts is not None and float(packet.pts * vin.time_base) >= 2.0:
                break
            packet.stream = vout
            dst.mux(packet)
    return out


# ------------------------------------------------------------------ store backends
# The store's tests run on both backends: SQLite (a file) and PostgreSQL (a server this session starts itself, once,
# the first time a test asks for it, and stops at the end). No PostgreSQL is a failure with the fix, never a skip.
@pytest.fixture(scope="session")
def postgres_server():
    from postgres_server import PostgresServer, PostgresUnavailable

    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail(
            "psycopg is not installed: pip install -e '.[dev]' (the postgres extra) to test that backend"
        )
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as exc:
        server.stop()
        pytest.fail(f"cannot start a local PostgreSQL for the store tests: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new, empty store lives: an SQLite path, or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("postgres_server").create_database()


# ------------------------------------------------------------------ Ray
@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray (2 CPUs, no dashboard) for the whole session: the audit's tasks and the generation workers."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
