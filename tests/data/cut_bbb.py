"""Cut tests/data/bbb_excerpt.mp4 from the full Big Buck Bunny clip: one whole group of pictures, remuxed
without re-encoding, so the excerpt keeps Blender's own H.264 bitstream (a clip gen4sdk did not make).

    python tests/data/cut_bbb.py PATH/TO/big_buck_bunny.mp4 [--start 15.75]

The source was the 640x360, 24 fps, 60 s H.264 edition of the film (3,926,230 bytes). The tests only read the
excerpt; this script records how it was made and is never run by them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av

OUT = Path(__file__).resolve().parent / "bbb_excerpt.mp4"


def cut(source: Path, out: Path, start: float) -> int:
    """Copy the group of pictures whose key frame is the first at or after ``start`` seconds, up to (not
    including) the next key frame; timestamps are shifted so the excerpt starts at 0. Returns the packets kept."""
    with av.open(str(source)) as src, av.open(str(out), "w", format="mp4") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        # decode order: every packet between two key frames belongs to the first one's group
        offset: int | None = None
        kept = 0
        for packet in src.demux(vin):
            if packet.pts is None or packet.dts is None:
                continue
            if offset is None:
                if not (packet.is_keyframe and float(packet.pts * vin.time_base) >= start):
                    continue
                offset = packet.pts
            elif packet.is_keyframe:
                break
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = vout
            dst.mux(packet)
            kept += 1
    if offset is None:
        raise SystemExit(f"no key frame at or after {start} s in {source}")
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument(
        "--start", type=float, default=15.75, help="seconds; the next key frame starts the cut"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    n = cut(args.source, args.out, args.start)
    print(f"{args.out}: {n} packets, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
