"""Peak memory of decoding one upload, per pixel mode: the figures behind DECODE_BUDGET_MB.

    python benchmarks/decode_memory.py [--megapixels 12] [--path predict|annotate]

Each case runs in a fresh subprocess: it builds a small, highly compressed file of the given
mode (the worst cases are 16-bit, 32-bit integer and float TIFFs and RGBA PNGs), then reads
its high-water RSS before and after ``decode_image`` (plus, for ``annotate``, drawing and
encoding the answer as the endpoint does). Prints bytes per pixel, which
``core.model.budget.BYTES_PER_PIXEL`` must not undercut.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("RGB-JPEG", "CMYK-JPEG", "L-PNG", "RGB-PNG", "RGBA-PNG", "I;16-PNG", "P-GIF", "F-TIFF", "I-TIFF", "RGBA-TIFF")
sys.path.insert(0, str(ROOT))

_CHILD = r"""
import json, sys
sys.path.insert(0, {root!r})
from core.model.images import decode_image
from core.model.annotate import draw_detections, encode
data = open({file!r}, "rb").read()
path = {path!r}
def status_kib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
start = status_kib("VmRSS")
decoded = decode_image(data, 100_000_000, (300, 300) if path == "predict" else None)
if path == "annotate":
    encode(draw_detections(decoded.image, []), "jpeg")
else:
    decoded.to_array()
peak = status_kib("VmHWM")
print(json.dumps({{"peak_kib": peak - start}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, default=12)
    parser.add_argument("--path", choices=("predict", "annotate"), default="annotate")
    args = parser.parse_args()
    from tests.support.hostile_images import compressed_image

    pixels = int(args.megapixels * 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            data, n = compressed_image(case, pixels)
            file = Path(tmp) / "upload"
            file.write_bytes(data)
            code = _CHILD.format(root=str(ROOT), file=str(file), path=args.path)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            if done.returncode:
                print(json.dumps({"case": case, "error": done.stderr.strip().splitlines()[-1]}), flush=True)
                continue
            peak = json.loads(done.stdout.strip().splitlines()[-1])["peak_kib"] * 1024
            row = {"case": case, "file_bytes": len(data), "pixels": n, "peak_mib": round(peak / 2**20, 1)}
            print(json.dumps({**row, "bytes_per_pixel": round(peak / n, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
