"""What empty scans cost libjpeg, and what the scan guard costs (docs/reliability.md, "Decoding limits").

    python benchmarks/jpeg_scans.py [--size 4000x3000] [--scans 0,100,1000,5000]

For each scan count it builds a valid progressive JPEG with that many extra empty scans
(``tests.support.hostile_images``), then times Pillow decoding it (no guard) and
``decode_image`` refusing or decoding it (with the MAX_JPEG_SCANS guard, default 100).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    from PIL import Image

    from core.errors import InvalidInput
    from core.model.images import decode_image
    from tests.support.hostile_images import progressive_jpeg, with_empty_scans

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--scans", default="0,100,1000,5000")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    base = progressive_jpeg(width, height)
    for scans in (int(v) for v in args.scans.split(",")):
        data = with_empty_scans(base, scans)
        t0 = time.perf_counter()
        Image.open(io.BytesIO(data)).load()
        unguarded = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            decode_image(data, 40_000_000)
            outcome = "decoded"
        except InvalidInput as exc:
            outcome = f"refused: {exc}"[:60]
        guarded = time.perf_counter() - t0
        row = {"size": args.size, "extra_scans": scans, "file_bytes": len(data)}
        print(
            json.dumps(
                {**row, "pillow_s": round(unguarded, 2), "decode_image_s": round(guarded, 3), "outcome": outcome}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
