"""Spreadsheet reading benchmark: read, map and check 210,000 rows of CSV and of XLSX.

Run from the repository root (with the project's venv active):

    python bench/spreadsheet_read.py                 # 210,000 rows x 15 columns, ~2 minutes
    python bench/spreadsheet_read.py --rows 20000    # a quick look

What it does:

1. writes a CSV file as European Excel saves it (UTF-8 with BOM, `;`, dates `15.01.1955`)
   and an XLSX workbook as Excel saves it (shared strings, ids as numbers, date cells),
   210,000 customers x 15 columns with Swedish, Norwegian and French names; one row in 500
   has a personal number with a wrong check digit, so refused rows are part of the run;
2. reads each file with `SpreadsheetReader` (automatic mapping from the header, every row
   converted, built into an API entry and checked) in a child process of its own, so the
   figures are that process's alone: rows per second from the child's clock, peak RSS of
   the whole child process from the kernel (Linux: VmHWM; elsewhere psutil samples every
   50 ms);
3. reads the same files with the bare parser (the standard library's csv.reader;
   python-calamine without conversion) as a yardstick for this machine;
4. prints the figures against the targets: CSV >= 150,000 rows/s within 150 MB,
   XLSX >= 20,000 rows/s within 400 MB (the whole process).

Children run with Python's default garbage-collector thresholds, as the import's reader
process does; `--tuned-gc` raises them (`gc.set_threshold(100_000, 50, 1000)`) to show what
collection costs here. Each reading runs `--repeat` times: the best rate and the highest peak count.
It is a measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # so `app` imports when run as bench/spreadsheet_read.py
    sys.path.insert(0, str(REPO_ROOT))

MB = 1024 * 1024
RSS_SAMPLE_INTERVAL_S = 0.05
TARGETS = {"csv": (150_000.0, 150.0), "xlsx": (20_000.0, 400.0)}  # rows/s, peak MB
HEADER = ["CustomerID", "FirstName", "LastName", "Födelsedatum", "E-post", "Mobil",
          "Kortnummer", "Personnummer", "Street", "StreetNumber", "Postnummer", "Ort",
          "Country", "Language", "Kundklubb"]
INVALID_EVERY = 500
_ASCII_MAIL = str.maketrans("åäöøæéèëêçüï", "aaooaeeeecui")


# -- data --------------------------------------------------------------------------------




def customer_rows(count: int) -> Any:
    """`count` rows of the 15 columns; dates as dates, ids as numbers (as a workbook has)."""
    from app.services.sandbox.sample_customers import (
        CITIES,
        FIRST_NAMES,
        LANGUAGES,
        LAST_NAMES,
        STREETS,
    )
    from app.services.sources.row_validation import luhn_check_digit

    rng = random.Random(5)
    for n in range(count):
        year, month, day = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
        nine = f"{year % 100:02d}{month:02d}{day:02d}{rng.randint(0, 999):03d}"
        check = luhn_check_digit(nine)
        if n % INVALID_EVERY == INVALID_EVERY - 1:
            check = str((int(check) + 1) % 10)
        city, postal_code, country = rng.choice(CITIES)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        mail_name = f"{first}.{last}".lower().translate(_ASCII_MAIL)
        yield [50000001000 + n, first, last, date(year, month, day),
               f"{mail_name}{n}@example.se", f"+4670{rng.randint(1000000, 9999999)}",
               9000000000000 + n, f"{year}{nine[2:6]}-{nine[6:]}{check}",
               rng.choice(STREETS), str(rng.randint(1, 120)), postal_code, city, country,
               LANGUAGES[country], rng.choice(["Guld", "Silver", "Brons"])]


def write_csv(path: Path, count: int) -> None:
    """As European Excel saves "CSV UTF-8": a BOM, `;`, CRLF, dates day first."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(codecs.BOM_UTF8.decode("utf-8"))
        writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
        writer.writerow(HEADER)
        for row in customer_rows(count):
            row[3] = row[3].strftime("%d.%m.%Y")
            writer.writerow(row)


def write_xlsx(path: Path, count: int) -> None:
    """As Excel saves it: shared strings, whole numbers as numbers, date cells."""
    from tests.excel_files import write_excel_like_workbook

    def rows() -> Any:
        yield HEADER
        yield from customer_rows(count)

    write_excel_like_workbook(path, [("Kunder", rows())])


# -- the child: one reading --------------------------------------------------------------


def child_main(kind: str, path: str, python_gc: bool) -> None:
    """Read `path` one way and print a JSON line of what was read and how long it took."""
    if not python_gc:
        gc.set_threshold(100_000, 50, 1000)  # --tuned-gc: to see what collection costs
    valid = invalid = problems = 0
    started = time.perf_counter()
    if kind in ("csv", "xlsx"):
        from app.models.records import CustomerRecord
        from app.services.sources.customer_reader import InvalidEntry
        from app.services.sources.spreadsheet_reader import SpreadsheetReader

        started = time.perf_counter()
        for item in SpreadsheetReader(Path(path)):
            if isinstance(item, InvalidEntry):
                invalid += 1
            elif isinstance(item, CustomerRecord):
                valid += 1
            else:
                problems += 1
    elif kind == "csv-parser":
        with open(path, encoding="utf-8-sig", newline="") as handle:
            valid = sum(1 for _ in csv.reader(handle, delimiter=";")) - 1
    elif kind == "xlsx-parser":
        import python_calamine

        workbook = python_calamine.CalamineWorkbook.from_path(path)
        sheet = workbook.get_sheet_by_index(0)
        workbook.close()
        valid = sum(1 for _ in sheet.iter_rows()) - 1
    seconds = time.perf_counter() - started
    print(json.dumps({"valid": valid, "invalid": invalid, "problems": problems,
                      "seconds": seconds, "peak_mb": own_peak_mb()}))


def own_peak_mb() -> float | None:
    """This process's peak RSS since it started, or None where the system does not say.

    Linux's VmHWM starts afresh with the program: getrusage's ru_maxrss (and wait4's)
    would also count the parent's memory, shared with the child until it ran Python.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# -- the parent: running children --------------------------------------------------------


@dataclass
class Reading:
    """One child's figures."""

    rows: int
    invalid: int
    problems: int
    seconds: float
    peak_mb: float  # the child's own peak (Linux: VmHWM), else sampled every 50 ms

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run_child(kind: str, path: Path, python_gc: bool) -> Reading:
    """Run one reading in a child process, sampling its memory; return its figures."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(path)]
    if not python_gc:
        command.append("--tuned-gc")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=err)
        sampled = 0
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            with contextlib.suppress(psutil.Error):
                sampled = max(sampled, watched.memory_info().rss)
            time.sleep(RSS_SAMPLE_INTERVAL_S)
        out.seek(0)
        err.seek(0)
        output, errors = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"the {kind} reading failed (exit {process.returncode}):\n{errors}")
    figures = json.loads(output.strip().splitlines()[-1])
    own_peak = figures.get("peak_mb")
    return Reading(figures["valid"] + figures["invalid"], figures["invalid"],
                   figures["problems"], figures["seconds"],
                   own_peak if own_peak is not None else sampled / MB)


def best_of(kind: str, path: Path, repeat: int, python_gc: bool) -> Reading:
    """The fastest of `repeat` readings, with the highest peak of them all."""
    readings = [run_child(kind, path, python_gc) for _ in range(repeat)]
    best = max(readings, key=lambda r: r.rate)
    best.peak_mb = max(r.peak_mb for r in readings)
    return best


def print_report(results: dict[str, Reading], rows: int, sizes: dict[str, float],
                 python_gc: bool) -> None:
    print()
    print(f"Spreadsheet reading: {rows:,} rows x {len(HEADER)} columns, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}, "
          f"{'Python default GC (as the reader process)' if python_gc else 'tuned GC'}")
    lines = []
    for kind in ("csv", "xlsx"):
        reading = results.get(kind)
        parser = results.get(f"{kind}-parser")
        min_rate, max_mb = TARGETS[kind]
        label = f"{kind.upper()} ({sizes[kind]:.0f} MB)"
        if reading is None:
            lines.append((label, "not measured", "", ""))
            continue
        lines.append((f"{label}: read, map, check",
                      f"{reading.rate:,.0f} rows/s ({reading.seconds:.2f} s; "
                      f"{reading.rows - reading.invalid:,} entries, {reading.invalid:,} refused)",
                      f">= {min_rate:,.0f}", "✓" if reading.rate >= min_rate else "✗"))
        lines.append(("  peak RSS, whole process", f"{reading.peak_mb:.0f} MB",
                      f"<= {max_mb:.0f} MB", "✓" if reading.peak_mb <= max_mb else "✗"))
        if parser is not None:
            share = reading.rate / parser.rate if parser.rate else 0.0
            lines.append(("  the bare parser alone (yardstick)",
                          f"{parser.rate:,.0f} rows/s, {parser.peak_mb:.0f} MB; "
                          f"the full reading runs at {share:.0%} of it", "", ""))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    for name, value, target, mark in lines:
        print(f"  {name:<{widths[0]}}  {value:<{widths[1]}}  {target:<{widths[2]}}  "
              f"{mark}".rstrip())
    print("  Rates are the child's own clock from opening the file to the last row (a "
          "workbook's sheet is loaded in that time); peak RSS is the whole child process's, "
          "interpreter included.")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=_positive_int, default=210_000,
                        help="customers in each file (default: %(default)s)")
    parser.add_argument("--repeat", type=_positive_int, default=3,
                        help="readings of each kind; the best counts (default: %(default)s)")
    parser.add_argument("--tuned-gc", action="store_true",
                        help="children raise the garbage-collector thresholds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child[0], args.child[1], not args.tuned_gc)
        return 0

    work_dir = Path(tempfile.mkdtemp(prefix="bench_spreadsheet_"))
    try:
        files = {"csv": work_dir / "kunder.csv", "xlsx": work_dir / "kunder.xlsx"}
        for kind, write in (("csv", write_csv), ("xlsx", write_xlsx)):
            started = time.perf_counter()
            write(files[kind], args.rows)
            print(f"Wrote {files[kind].name}: {files[kind].stat().st_size / MB:.1f} MB in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
        results: dict[str, Reading] = {}
        for kind in ("csv", "csv-parser", "xlsx", "xlsx-parser"):
            try:
                results[kind] = best_of(kind, files[kind.split("-")[0]], args.repeat,
                                        not args.tuned_gc)
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                continue
            reading = results[kind]
            print(f"  {kind}: {reading.rate:,.0f} rows/s, {reading.peak_mb:.0f} MB", flush=True)
        sizes = {kind: path.stat().st_size / MB for kind, path in files.items()}
        print_report(results, args.rows, sizes, not args.tuned_gc)
    finally:
        if args.keep:
            print(f"Kept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
