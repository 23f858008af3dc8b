"""Import throughput and memory benchmark: the importer against the local sandbox API.

Run from the repository root (with the project's venv active):

    python bench/import_throughput.py                    # 210,000 customers, a few minutes
    python bench/import_throughput.py --customers 20000  # a quick look

What it does, each part in its own process so CPU and memory figures are not mixed up:

1. writes a JSON batch file ``{"data": [...]}`` of N customers (and one of N/4) with the
   project's sample generator, in a temporary folder;
2. starts the sandbox API (``python main.py sandbox``) on a free port;
3. runs ``python main.py import FILE ... --json`` on the full file, timing it and sampling
   the child's RSS every 50 ms for its peak;
4. runs a "wire limit" baseline: a minimal aiohttp loop posting pre-serialised batches with
   the same batch size and concurrency, i.e. what the sandbox and the network allow at best;
5. runs the importer again on the quarter-size file to see whether peak RSS grows with
   file size;
6. runs the full file again with ``--no-history`` and with the history, alternately
   (--journal-pairs times each, counting the first run): the import history (journal) is
   the only difference, so the ratio of the two median rates is what the journal costs;
7. prints a table with the targets (>= 10,000 customers/s, importer/wire >= 0.7,
   with history / without >= 0.95, peak RSS <= 150 MB and not growing with file size) and
   the journal's size per 100,000 customers.

The sandbox is reset between runs. It is a measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import queue
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson
import psutil

try:
    import resource  # Unix only: the cross-check of the children's peak RSS
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # so `app` imports when run as bench/import_throughput.py
    sys.path.insert(0, str(REPO_ROOT))

TOKEN = "bench-token"
TENANT = "demo"
CUSTOMERS_PATH = (f"/customer-profile-service/tenants/{TENANT}/services/rest/"
                  "customers-import/v1/customers")
SANDBOX_START_TIMEOUT_S = 30.0
RSS_SAMPLE_INTERVAL_S = 0.05
MB = 1024 * 1024

# Targets the table checks against.
TARGET_RATE = 10_000.0  # customers/s
TARGET_RATIO = 0.7  # importer rate / wire-limit rate
TARGET_PEAK_MB = 150.0
TARGET_GROWTH = 1.25  # full-file peak / quarter-file peak
TARGET_JOURNAL_RATIO = 0.95  # rate with the import history / rate with --no-history

# Fallback when `main.py sandbox` is not wired yet: the same functions, called directly.
SANDBOX_INLINE = (
    "import argparse, sys\n"
    "from app.services.sandbox.sandbox_server import add_sandbox_arguments, run_sandbox\n"
    "parser = argparse.ArgumentParser(prog='sandbox')\n"
    "add_sandbox_arguments(parser)\n"
    "sys.exit(run_sandbox(parser.parse_args(sys.argv[1:])))\n"
)


# -- data --------------------------------------------------------------------------------


def generate_file(path: Path, count: int) -> float:
    """Write `count` sample customers as one {"data": [...]} file; return seconds taken."""
    from app.services.sandbox.sample_customers import generate_customers, write_customer_file

    started = time.perf_counter()
    written = write_customer_file(path, generate_customers(count))
    if written != count:
        raise RuntimeError(f"generator wrote {written} customers, expected {count}")
    return time.perf_counter() - started


# -- the sandbox -------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sandbox:
    """A sandbox API running in a child process."""

    process: subprocess.Popen[str]
    base_url: str
    how: str  # which command started it
    output: list[str] = field(default_factory=list)

    @property
    def customers_url(self) -> str:
        return self.base_url + CUSTOMERS_PATH

    def stop(self) -> None:
        """Ask the sandbox to stop (SIGTERM), then kill it if it does not within 10 s."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _drain(stream: TextIO, lines: queue.Queue[str | None], keep: list[str]) -> None:
    """Copy a child's output lines into `lines` (None at the end) so its pipe never fills."""
    for line in stream:
        keep.append(line.rstrip("\n"))
        lines.put(line)
    lines.put(None)


def _start_sandbox_with(command: list[str], how: str, stderr_path: Path) -> Sandbox | None:
    """Start one sandbox command; the Sandbox once it printed its URL, else None."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                   stderr=stderr, text=True, env=env)
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    kept: list[str] = []
    threading.Thread(target=_drain, args=(process.stdout, lines, kept), daemon=True,
                     name="sandbox-stdout").start()
    deadline = time.monotonic() + SANDBOX_START_TIMEOUT_S
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:  # the process ended, or the timeout passed
            break
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        if match:
            return Sandbox(process, match.group(0), how, kept)
    if process.poll() is None:
        process.kill()
    process.wait()
    err = stderr_path.read_text(errors="replace").strip().splitlines()[-5:]
    print(f"  {how} did not start (exit {process.returncode}): " + " | ".join(err),
          file=sys.stderr)
    return None


def start_sandbox(work_dir: Path) -> Sandbox:
    """Start the sandbox with `main.py sandbox`, or the inline fallback if that fails."""
    for how, head in (("main.py sandbox", [sys.executable, "main.py", "sandbox"]),
                      ("inline run_sandbox", [sys.executable, "-c", SANDBOX_INLINE])):
        port = free_port()
        command = [*head, "--host", "127.0.0.1", "--port", str(port), "--token", TOKEN,
                   "--tenant", TENANT]
        sandbox = _start_sandbox_with(command, how, work_dir / "sandbox.stderr")
        if sandbox is not None:
            return sandbox
    raise RuntimeError("the sandbox could not be started")


def sandbox_call(sandbox: Sandbox, method: str, path: str) -> dict[str, Any]:
    """Call a /_sandbox endpoint; return its JSON answer."""
    request = urllib.request.Request(sandbox.base_url + path, method=method,
                                     data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        return orjson.loads(response.read())


# -- child processes ---------------------------------------------------------------------


@dataclass
class ChildRun:
    """A child process run to its end, with its time and memory figures."""

    returncode: int
    wall_s: float
    peak_rss_mb: float  # from psutil samples every 50 ms
    maxrss_mb: float | None  # the kernel's own peak for this child (wait4), when available
    cpu_s: float | None  # the child's user + system CPU seconds (wait4), when available
    sandbox_cpu_s: float | None  # CPU seconds the sandbox used meanwhile
    stdout: str
    stderr: str


def _maxrss_mb(ru_maxrss: int) -> float:
    """ru_maxrss in MB: kilobytes on Linux, bytes on macOS."""
    return ru_maxrss / MB if sys.platform == "darwin" else ru_maxrss / 1024


def _cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a running process, or None."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def run_measured(command: list[str], work_dir: Path, name: str,
                 sandbox: Sandbox) -> ChildRun:
    """Run `command` in the repo root, sampling its RSS; return when it has exited.

    Output goes to files (no pipe to fill while we sample). The child is reaped with
    wait4 where the OS has it, which gives that child's own peak RSS and CPU time.
    """
    out_path, err_path = work_dir / f"{name}.stdout", work_dir / f"{name}.stderr"
    maxrss: float | None = None
    cpu: float | None = None
    sandbox_cpu_before = _cpu_seconds(sandbox.process.pid)
    peak = 0
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=err)
        try:
            watched: psutil.Process | None = None
            with contextlib.suppress(psutil.Error):
                watched = psutil.Process(process.pid)
            while True:
                with contextlib.suppress(psutil.Error):
                    if watched is not None:
                        # the importer and its file-reader process together
                        tree = [watched, *watched.children(recursive=True)]
                        peak = max(peak, sum(p.memory_info().rss for p in tree))
                if hasattr(os, "wait4"):
                    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                    if pid:
                        process.returncode = os.waitstatus_to_exitcode(status)
                        maxrss = _maxrss_mb(usage.ru_maxrss)
                        cpu = usage.ru_utime + usage.ru_stime
                        break
                elif process.poll() is not None:
                    break
                time.sleep(RSS_SAMPLE_INTERVAL_S)
        except BaseException:
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - started
    sandbox_cpu_after = _cpu_seconds(sandbox.process.pid)
    sandbox_cpu = (sandbox_cpu_after - sandbox_cpu_before
                   if sandbox_cpu_before is not None and sandbox_cpu_after is not None else None)
    return ChildRun(process.returncode if process.returncode is not None else -1, wall,
                    peak / MB, maxrss, cpu, sandbox_cpu, out_path.read_text(errors="replace"),
                    err_path.read_text(errors="replace"))


@dataclass
class ImporterRun:
    """One `main.py import` run."""

    customers_in_file: int
    child: ChildRun
    summary: dict[str, Any]
    stored_after: int | None  # customers the sandbox holds afterwards
    journal_bytes: int = 0  # import_history.sqlite and its WAL afterwards

    @property
    def ok(self) -> bool:
        """The importer ran to its end and printed a summary (failed customers allowed)."""
        return bool(self.summary.get("total")) and not self.summary.get("fatal_error")

    @property
    def rate(self) -> float:
        """customers/s over the importer's own duration."""
        duration = float(self.summary.get("duration_s") or 0)
        return self.summary.get("total", 0) / duration if duration else 0.0

    @property
    def wall_rate(self) -> float:
        """customers/s over the child's whole wall time (start-up and exit included)."""
        return self.summary.get("total", 0) / self.child.wall_s if self.child.wall_s else 0.0


def run_importer(sandbox: Sandbox, file: Path, count: int, work_dir: Path, name: str,
                 batch_size: int, concurrency: int, history: bool = True) -> ImporterRun:
    """Reset the sandbox, then import `file` with `main.py import ... --json`.

    With `history` off the import runs with ``--no-history``: no journal is written, which
    is what the journal's cost is measured against.
    """
    sandbox_call(sandbox, "POST", "/_sandbox/reset")
    output_dir = work_dir / "out" / name
    command = [sys.executable, "main.py", "import", str(file), "--url", sandbox.customers_url,
               "--token", TOKEN, "--batch-size", str(batch_size),
               "--concurrency", str(concurrency), "--output-dir", str(output_dir),
               "--json", *([] if history else ["--no-history"])]
    child = run_measured(command, work_dir, name, sandbox)
    try:
        summary = orjson.loads(child.stdout[child.stdout.find("{"):])
    except orjson.JSONDecodeError:
        summary = {}
        print(f"  {name}: no JSON summary (exit {child.returncode}); stderr tail:\n"
              + "\n".join(child.stderr.strip().splitlines()[-10:]), file=sys.stderr)
    stored = sandbox_call(sandbox, "GET", "/_sandbox/state").get("customers")
    journal_bytes = sum(f.stat().st_size for f in output_dir.glob("import_history.sqlite*"))
    return ImporterRun(count, child, summary, stored, journal_bytes)


@dataclass
class JournalComparison:
    """Full-file imports with the import history and without (--no-history), alternated."""

    with_history: list[ImporterRun]
    without: list[ImporterRun]

    @property
    def ok(self) -> bool:
        return (any(r.ok for r in self.with_history) and any(r.ok for r in self.without))

    @staticmethod
    def median(runs: list[ImporterRun]) -> float:
        rates = [r.rate for r in runs if r.ok]
        return statistics.median(rates) if rates else 0.0

    @property
    def ratio(self) -> float | None:
        without = self.median(self.without)
        return self.median(self.with_history) / without if without else None


@dataclass
class WireRun:
    """One wire-limit baseline run."""

    child: ChildRun
    customers: int
    seconds: float
    errors: int
    stored_after: int | None  # customers the sandbox holds afterwards

    @property
    def ok(self) -> bool:
        return self.child.returncode == 0 and self.customers > 0 and self.seconds > 0

    @property
    def rate(self) -> float:
        return self.customers / self.seconds if self.seconds else 0.0


def run_wire_limit(sandbox: Sandbox, file: Path, work_dir: Path, batch_size: int,
                   concurrency: int) -> WireRun:
    """Reset the sandbox, then run the wire-limit child on `file`."""
    sandbox_call(sandbox, "POST", "/_sandbox/reset")
    command = [sys.executable, str(Path(__file__).resolve()), "--wire-limit-child",
               sandbox.customers_url, TOKEN, str(file), str(batch_size), str(concurrency)]
    child = run_measured(command, work_dir, "wire-limit", sandbox)
    try:
        figures = orjson.loads(child.stdout)
    except orjson.JSONDecodeError:
        figures = {}
        print(f"  wire limit: no figures (exit {child.returncode}); stderr tail:\n"
              + "\n".join(child.stderr.strip().splitlines()[-10:]), file=sys.stderr)
    stored = sandbox_call(sandbox, "GET", "/_sandbox/state").get("customers")
    return WireRun(child, int(figures.get("customers", 0)), float(figures.get("seconds", 0)),
                   int(figures.get("errors", 0)), stored)


# -- the wire-limit child ----------------------------------------------------------------


async def _post_all(url: str, token: str, bodies: list[bytes], concurrency: int
                    ) -> tuple[float, int]:
    """Post every body with `concurrency` workers; return (seconds, non-2xx answers)."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Accept": "application/json"}
    pending = iter(bodies)
    errors = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for body in pending:  # a shared iterator: each body goes to exactly one worker
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return seconds, errors


def wire_limit_child(url: str, token: str, file: str, batch_size: int, concurrency: int
                     ) -> int:
    """Pre-serialise every batch of `file`, then time posting them; print JSON figures."""
    customers = orjson.loads(Path(file).read_bytes())["data"]
    bodies = [orjson.dumps({"data": customers[i:i + batch_size]})
              for i in range(0, len(customers), batch_size)]
    count = len(customers)
    del customers
    seconds, errors = asyncio.run(_post_all(url, token, bodies, concurrency))
    print(orjson.dumps({"customers": count, "seconds": seconds, "errors": errors,
                        "requests": len(bodies)}).decode())
    return 0


# -- the report --------------------------------------------------------------------------


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("✓" if ok else "✗")


def _cpu(child: ChildRun, customers: int) -> str:
    """The child's and the sandbox's CPU time, per customer too."""
    parts = []
    for who, seconds in (("client", child.cpu_s), ("sandbox", child.sandbox_cpu_s)):
        if seconds is not None:
            per = f", {seconds / customers * 1e6:.0f} µs/customer" if customers else ""
            parts.append(f"{who} {seconds:.1f} s{per}")
    return "; ".join(parts) or "n/a"


def _mb(run: ImporterRun | None) -> str:
    if run is None:
        return "n/a"
    kernel = (f" (main process alone, kernel: {run.child.maxrss_mb:.1f})"
              if run.child.maxrss_mb else "")
    return f"{run.child.peak_rss_mb:.1f} MB{kernel}"


def print_report(full: ImporterRun | None, quarter: ImporterRun | None,
                 wire: WireRun | None, args: argparse.Namespace,
                 no_history: JournalComparison | None = None) -> None:
    """Print the figures and how they compare with the targets.

    A run that failed still shows what it printed, but is left out of the checks.
    """
    for run, label in ((full, "full-file import"), (quarter, "quarter-file import"),
                       (wire, "wire limit")):
        if run is not None and not run.ok:
            print(f"  the {label} did not complete (exit {run.child.returncode}): "
                  "its figures are not checked", file=sys.stderr)
    full = full if full is not None and full.ok else None
    quarter = quarter if quarter is not None and quarter.ok else None
    wire = wire if wire is not None and wire.ok else None
    print()
    print(f"Import throughput: batch size {args.batch_size}, concurrency {args.concurrency}, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    rows: list[tuple[str, str, str, str]] = []
    for run, label in ((full, "full"), (quarter, "quarter")):
        if run is None:
            continue
        s = run.summary
        rows.append((f"importer, {label} file ({run.customers_in_file:,})",
                     f"{s.get('total', 0):,} read, {s.get('succeeded', 0):,} ok, "
                     f"{s.get('failed', 0):,} failed, sandbox holds {run.stored_after or 0:,}",
                     "", ""))
        rows.append((f"  importer customers/s ({label})",
                     f"{run.rate:,.0f}/s ({s.get('duration_s', 0):.1f} s); "
                     f"wall {run.wall_rate:,.0f}/s ({run.child.wall_s:.1f} s)",
                     f">= {TARGET_RATE:,.0f}", _mark(run.rate >= TARGET_RATE)))
        rows.append((f"  CPU time ({label})", _cpu(run.child, s.get("total", 0)), "", ""))
    if wire is not None:
        rows.append(("wire limit customers/s",
                     f"{wire.rate:,.0f}/s ({wire.customers:,} in {wire.seconds:.1f} s, "
                     f"{wire.errors} non-2xx, sandbox holds {wire.stored_after or 0:,})",
                     "", ""))
        rows.append(("  CPU time (wire limit)",
                     _cpu(wire.child, wire.customers), "", ""))
    journal_ratio = None
    if no_history is not None and no_history.ok:
        rows.append((f"median customers/s, history / --no-history "
                     f"({len(no_history.with_history)} + {len(no_history.without)} runs)",
                     f"{no_history.median(no_history.with_history):,.0f}/s / "
                     f"{no_history.median(no_history.without):,.0f}/s", "", ""))
        journal_ratio = no_history.ratio
    rows.append(("ratio with history / without", "n/a" if journal_ratio is None
                 else f"{journal_ratio:.2f}", f">= {TARGET_JOURNAL_RATIO}",
                 _mark(None if journal_ratio is None else journal_ratio >= TARGET_JOURNAL_RATIO)))
    if full is not None and full.journal_bytes:
        per_100k = full.journal_bytes / MB * 100_000 / max(1, full.summary.get("total", 1))
        rows.append(("journal size, full file", f"{full.journal_bytes / MB:.1f} MB "
                     f"({per_100k:.1f} MB per 100,000 customers)", "", ""))
    ratio = full.rate / wire.rate if full and wire and wire.rate else None
    rows.append(("ratio importer / wire", "n/a" if ratio is None else f"{ratio:.2f}",
                 f">= {TARGET_RATIO}", _mark(None if ratio is None else ratio >= TARGET_RATIO)))
    rows.append(("peak RSS importer + reader, full", _mb(full), f"<= {TARGET_PEAK_MB:.0f} MB",
                 _mark(None if full is None else full.child.peak_rss_mb <= TARGET_PEAK_MB)))
    rows.append(("peak RSS importer + reader, quarter", _mb(quarter), "", ""))
    growth = (full.child.peak_rss_mb / quarter.child.peak_rss_mb
              if full and quarter and quarter.child.peak_rss_mb else None)
    rows.append(("peak RSS full / quarter", "n/a" if growth is None else f"{growth:.2f}x",
                 f"<= {TARGET_GROWTH}x", _mark(None if growth is None
                                               else growth <= TARGET_GROWTH)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for name, value, target, mark in rows:
        line = f"  {name:<{widths[0]}}  {value:<{widths[1]}}  {target:<{widths[2]}}  {mark}"
        print(line.rstrip())
    if resource is not None:
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(f"  getrusage(RUSAGE_CHILDREN).ru_maxrss, the largest child so far: "
              f"{_maxrss_mb(children):.1f} MB (usually the wire-limit child, which loads "
              "the whole file at once).")
    print("  Wall rates include interpreter start-up; MB in brackets is the kernel's peak "
          "(wait4). Client CPU time includes start-up and, for the wire limit, loading the file.")


# -- main --------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: the sizes to measure, or the hidden wire-limit child mode."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=_positive_int, default=210_000,
                        help="customers in the full file (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int, default=50,
                        help="customers per request (default: %(default)s)")
    parser.add_argument("--concurrency", type=_positive_int, default=5,
                        help="requests in flight (default: %(default)s)")
    parser.add_argument("--journal-pairs", type=_positive_int, default=3,
                        help="full-file runs with and without the import history, "
                             "alternated (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--wire-limit-child", nargs=5,
                        metavar=("URL", "TOKEN", "FILE", "BATCH", "CONC"),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_benchmark(args: argparse.Namespace, work_dir: Path) -> None:
    """Generate the files, start the sandbox, run every measurement, print the report."""
    full_file, quarter_file = work_dir / "customers_full.json", work_dir / "customers_quarter.json"
    quarter_count = max(1, args.customers // 4)
    print(f"Work folder: {work_dir}")
    seconds = generate_file(full_file, args.customers)
    print(f"Generated {args.customers:,} customers in {seconds:.1f} s "
          f"({full_file.stat().st_size / MB:.1f} MB)")
    generate_file(quarter_file, quarter_count)
    print(f"Generated {quarter_count:,} customers ({quarter_file.stat().st_size / MB:.1f} MB)")

    full = quarter = wire = no_history = None
    sandbox = start_sandbox(work_dir)
    try:
        print(f"Sandbox ({sandbox.how}) at {sandbox.base_url}, pid {sandbox.process.pid}")
        print("Importer, full file ...", flush=True)
        full = run_importer(sandbox, full_file, args.customers, work_dir, "import-full",
                            args.batch_size, args.concurrency)
        print(f"  {full.rate:,.0f} customers/s, peak RSS {full.child.peak_rss_mb:.1f} MB")
        print("Wire limit ...", flush=True)
        wire = run_wire_limit(sandbox, full_file, work_dir, args.batch_size, args.concurrency)
        print(f"  {wire.rate:,.0f} customers/s")
        print("Importer, quarter file ...", flush=True)
        quarter = run_importer(sandbox, quarter_file, quarter_count, work_dir, "import-quarter",
                               args.batch_size, args.concurrency)
        print(f"  {quarter.rate:,.0f} customers/s, peak RSS {quarter.child.peak_rss_mb:.1f} MB")
        # the machine's noise is larger than the journal's cost: alternate the two, several
        # times, and compare medians
        with_history: list[ImporterRun] = [full]
        without: list[ImporterRun] = []
        for pair in range(args.journal_pairs):
            if pair:
                print(f"Importer, full file, with history ({pair + 1}) ...", flush=True)
                with_history.append(run_importer(
                    sandbox, full_file, args.customers, work_dir, f"import-history-{pair}",
                    args.batch_size, args.concurrency))
                print(f"  {with_history[-1].rate:,.0f} customers/s")
            print(f"Importer, full file, --no-history ({pair + 1}) ...", flush=True)
            without.append(run_importer(sandbox, full_file, args.customers, work_dir,
                                        f"import-no-history-{pair}", args.batch_size,
                                        args.concurrency, history=False))
            print(f"  {without[-1].rate:,.0f} customers/s")
        no_history = JournalComparison(with_history, without)
    finally:
        sandbox.stop()
        print_report(full, quarter, wire, args, no_history)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with --wire-limit-child, the baseline child); always 0."""
    args = parse_args(argv)
    if args.wire_limit_child:
        url, token, file, batch, conc = args.wire_limit_child
        return wire_limit_child(url, token, file, int(batch), int(conc))
    work_dir = Path(tempfile.mkdtemp(prefix="import-bench-"))
    try:
        run_benchmark(args, work_dir)
    except Exception:  # a measurement: report what went wrong, never fail
        traceback.print_exc()
    finally:
        if args.keep:
            print(f"Kept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
