"""Deep nesting benchmark: the time and peak memory of reading a deeply nested customer file.

Run from the repository root (with the project's venv active):

    python bench/deep_nesting.py                       # 10,000 to 100,000 levels
    python bench/deep_nesting.py --levels 1000 30000   # chosen depths

Each file is `{"data": [customer, [[[...]]], customer]}` nested to the given depth (100,000
levels is a 200 kB file). It is read with `FileReader` (what the import, its reader
process and the Files tab's check use) in a child process of its own, whose address space
is capped (`--cap-mb`, Linux) so that a reader building the structure fails instead of
filling the machine; the child reports the seconds taken and its peak RSS from the kernel
(ru_maxrss) before and after. It is a measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path

if sys.platform.startswith("linux"):
    cap = int(sys.argv[2]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from app.services.sources.customer_reader import FileReader


def peak_mb():
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / (1 << 20) if sys.platform == "darwin" else value / 1024


before, started = peak_mb(), time.perf_counter()
items = list(FileReader(Path(sys.argv[1])))
print(json.dumps({"seconds": time.perf_counter() - started, "before_mb": before,
                  "peak_mb": peak_mb(), "items": [type(i).__name__ for i in items]}))
"""

_CUSTOMER = ('{{"changeType": "CREATE", "person": {{"customerId": "{id}", '
             '"lastName": "Öberg"}}}}')


def write_file(folder: Path, levels: int) -> Path:
    path = folder / f"deep_{levels}.json"
    deep = "[" * levels + "]" * levels
    path.write_text('{"data": [' + _CUSTOMER.format(id="C1") + ", " + deep + ", "
                    + _CUSTOMER.format(id="C2") + "]}", encoding="utf-8")
    return path


def measure(path: Path, cap_mb: int) -> str:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(cap_mb)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"failed (exit {done.returncode}): {last}"
    out = json.loads(done.stdout)
    return (f"{out['seconds']:6.2f} s, peak {out['peak_mb']:6.0f} MB "
            f"(+{out['peak_mb'] - out['before_mb']:.0f} MB), read: {', '.join(out['items'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+",
                        default=[10_000, 20_000, 30_000, 100_000])
    parser.add_argument("--cap-mb", type=int, default=4096,
                        help="address space of the reading process (Linux), in MB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for levels in args.levels:
            path = write_file(Path(folder), levels)
            size = path.stat().st_size / 1024
            print(f"{levels:>8,} levels ({size:,.0f} kB): {measure(path, args.cap_mb)}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
