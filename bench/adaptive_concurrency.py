"""Backing off instead of failing: throughput against a service that caps requests in flight.

    python bench/adaptive_concurrency.py                 # 20,000 customers per run
    python bench/adaptive_concurrency.py --customers 5000 --cap 2 --latency-ms 20

The sandbox answers 429 (Retry-After 1 s, as real services do) to any request beyond
`--cap` in flight. The same file is imported twice with `python main.py import
--no-history` (each run sends every customer to a fresh sandbox): with the concurrency
set to the cap (the best a user who knew the cap could do), and with a higher
concurrency (8) that the importer has to bring down by itself. A third run shows a
service that queues instead of refusing (`--workers`): answers slow down, none fail.
Printed: customers/s, refused requests, and the ratio of the two capped runs (target:
at least 0.9). A measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app.services.sandbox.sample_customers import generate_customers, write_customer_file  # noqa: E402
from app.services.sandbox.sandbox_server import SandboxConfig, SandboxThread  # noqa: E402


def run_import(sandbox: SandboxThread, source: Path, output: Path, concurrency: int,
               batch_size: int) -> dict:
    server = sandbox.server
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "main.py"), "import", str(source), "--url",
         server.customers_url("c4r"), "--token", server.static_token, "--concurrency",
         str(concurrency), "--batch-size", str(batch_size), "--retries", "10",
         "--output-dir", str(output), "--json", "--no-history"], capture_output=True,
        text=True,
        encoding="utf-8", cwd=REPO_ROOT)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        print(done.stderr[-2000:])
        raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--cap", type=int, default=2, help="requests the service takes at once")
    parser.add_argument("--concurrency", type=int, default=8, help="what the user set")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "kunder.json"
        write_customer_file(source, generate_customers(args.customers))
        config = SandboxConfig(max_concurrent=args.cap, retry_after_s=1.0,
                               latency_ms=args.latency_ms, seed=1)
        rows = []
        with SandboxThread(config) as sandbox:
            server = sandbox.server
            for label, concurrency, cap, workers in (
                    (f"concurrency {args.cap}, cap {args.cap} (429 beyond)", args.cap,
                     args.cap, 0),
                    (f"concurrency {args.concurrency}, cap {args.cap} (429 beyond)",
                     args.concurrency, args.cap, 0),
                    (f"concurrency {args.concurrency}, {args.cap} workers (queues)",
                     args.concurrency, 0, args.cap)):
                server.reset()
                server.config.max_concurrent = cap
                server.config.workers = workers
                summary = run_import(sandbox, source, Path(folder) / "out",
                                              concurrency, args.batch_size)
                rate = summary["succeeded"] / summary["duration_s"]
                rows.append((label, summary, rate, server.state()))

        print(f"\nAdaptive concurrency: {args.customers:,} customers, batch size "
              f"{args.batch_size}, latency {args.latency_ms:g} ms, Retry-After 1 s")
        for label, summary, rate, state in rows:
            refused = state["faults"].get("max_concurrent", 0)
            print(f"  {label:<42} {rate:>9,.0f} customers/s  {summary['succeeded']:>7,} ok "
                  f"{summary['failed']:>5,} failed  {refused:>4} refused of "
                  f"{state['requests']:,} requests")
        ratio = rows[1][2] / rows[0][2]
        mark = "✓" if ratio >= 0.9 and rows[1][1]["failed"] == 0 else "✗"
        print(f"  ratio concurrency {args.concurrency} / concurrency {args.cap} "
              f"against the cap: {ratio:.2f} (target >= 0.90) {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
