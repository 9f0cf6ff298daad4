"""Time, memory and message of the fetcher's extraction on each hostile archive the tests build
(docs/reliability.md, "The fetcher"). Each case runs in a fresh process:

    python benchmarks/hostile_archives.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.integration.artifacts.test_extract import HOSTILE_TARS
from core.artifacts.extract import extract
name, make, _ = next(h for h in HOSTILE_TARS if h[0] == {name!r})
tmp = Path(tempfile.mkdtemp())
(tmp / name).write_bytes(make())
del make
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
(tmp / "out").mkdir()
t0 = time.perf_counter()
try:
    extract(tmp / name, tmp / "out", plain_name="x", max_bytes=1 << 30, max_entries=100)
    outcome = "extracted"
except Exception as exc:
    outcome = f"{{type(exc).__name__}}: {{exc}}"
seconds = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
shutil.rmtree(tmp)
print(json.dumps({{"archive": name, "seconds": round(seconds, 3), "peak_mib": round(hwm / 1024),
                  "message_chars": len(outcome), "outcome": outcome[:160]}}))
"""


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.integration.artifacts.test_extract import HOSTILE_TARS

    for name, _, _ in HOSTILE_TARS:
        code = _CHILD.format(root=str(ROOT), name=name)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
        lines = done.stdout.strip().splitlines()
        print(lines[-1] if lines else json.dumps({"archive": name, "error": done.stderr[-300:]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
