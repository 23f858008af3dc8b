"""End-to-end import of a spreadsheet against the sandbox, as a ratio to the same customers
from JSON, measured in one run.

    python bench/spreadsheet_import.py                    # 210,000 customers, a few minutes
    python bench/spreadsheet_import.py --customers 20000  # a quick look

Writes N sample customers twice: as the API's JSON (`{"data": [...]}`) and as a CSV the way
European Excel saves it (UTF-8 with BOM, `;`, dates `15.01.1955`), with a mapping file that
turns each row back into exactly the JSON entry. Starts the sandbox API, then runs
`main.py import` on each file alternately (--pairs times each, `--no-history`), checking
that the sandbox holds the same customers after both; prints the median rates, their ratio
(target: the CSV import at least 0.8 of the JSON import) and each run's peak RSS.
It is a measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

import orjson  # noqa: E402
from import_throughput import TOKEN, run_measured, sandbox_call, start_sandbox  # noqa: E402

from app.services.sandbox.sample_customers import (  # noqa: E402
    generate_customers,
    write_customer_file,
)

TARGET_RATIO = 0.8
COLUMNS = ("Kundnummer", "Status", "Förnamn", "Efternamn", "Språk", "Födelsedatum",
           "Adresstyp", "Gata", "Gatunummer", "Postnummer", "Ort", "Land", "Kortnummer",
           "Korttyp", "Kortomfång")
MAPPING: dict[str, Any] = {
    "name": "Benchmark",
    "fields": {
        "person.customerId": "Kundnummer", "person.status": "Status",
        "person.firstName": "Förnamn", "person.lastName": "Efternamn",
        "person.languageCode": "Språk", "person.birthday": "Födelsedatum",
        "person.addresses[0].addressType": "Adresstyp", "person.addresses[0].street": "Gata",
        "person.addresses[0].streetNumber": "Gatunummer",
        "person.addresses[0].postalCode": "Postnummer", "person.addresses[0].city": "Ort",
        "person.addresses[0].countryCode": "Land",
        "person.customerCards[0].number": "Kortnummer",
        "person.customerCards[0].type": "Korttyp",
        "person.customerCards[0].scope": "Kortomfång",
    },
    "constants": {"changeType": "CREATE", "type": "PERSON"},
    "null_values": ["NULL", ""],
    "types": {"person.addresses[0].postalCode": "identifier",
              "person.addresses[0].streetNumber": "identifier"},
}


def row_of(entry: dict[str, Any]) -> list[str]:
    person = entry["person"]
    address, card = person["addresses"][0], person["customerCards"][0]
    year, month, day = person["birthday"].split("-")
    return [person["customerId"], person["status"], person["firstName"], person["lastName"],
            person["languageCode"], f"{day}.{month}.{year}", address["addressType"],
            address["street"], address["streetNumber"], address["postalCode"],
            address["city"], address["countryCode"], card["number"], card["type"],
            card["scope"]]


def write_files(folder: Path, count: int) -> tuple[Path, Path, Path]:
    customers = list(generate_customers(count))
    json_file = folder / "kunder.json"
    write_customer_file(json_file, customers)
    csv_file = folder / "kunder.csv"
    with csv_file.open("w", encoding="utf-8-sig", newline="") as handle:
        handle.write(";".join(COLUMNS) + "\r\n")
        for entry in customers:
            handle.write(";".join(row_of(entry)) + "\r\n")
    mapping_file = folder / "benchmark_mapping.json"
    mapping_file.write_bytes(orjson.dumps(MAPPING))
    return json_file, csv_file, mapping_file


def import_once(sandbox: Any, work: Path, source: Path, name: str, extra: list[str],
                batch_size: int, concurrency: int) -> tuple[float, float, dict[str, Any]]:
    sandbox_call(sandbox, "POST", "/_sandbox/reset")
    command = [sys.executable, "main.py", "import", str(source), "--url",
               sandbox.customers_url, "--token", TOKEN, "--batch-size", str(batch_size),
               "--concurrency", str(concurrency), "--output-dir", str(work / "out" / name),
               "--json", "--no-history", *extra]
    child = run_measured(command, work, name, sandbox)
    summary = orjson.loads(child.stdout[child.stdout.find("{"):] or b"{}")
    duration = float(summary.get("duration_s") or 0)
    rate = summary.get("succeeded", 0) / duration if duration else 0.0
    return rate, child.peak_rss_mb, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=210_000)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="spreadsheet-import-") as tmp:
        work = Path(tmp)
        json_file, csv_file, mapping_file = write_files(work, args.customers)
        print(f"{args.customers:,} customers: JSON {json_file.stat().st_size / 1e6:.1f} MB, "
              f"CSV {csv_file.stat().st_size / 1e6:.1f} MB")
        sandbox = start_sandbox(work)
        rates: dict[str, list[float]] = {"json": [], "csv": []}
        peaks: dict[str, list[float]] = {"json": [], "csv": []}
        stored: dict[str, bytes] = {}
        try:
            for pair in range(args.pairs):
                for kind, source, extra in (("json", json_file, []),
                                            ("csv", csv_file, ["--mapping",
                                                               str(mapping_file)])):
                    rate, peak, summary = import_once(sandbox, work, source, f"{kind}{pair}",
                                                      extra, args.batch_size,
                                                      args.concurrency)
                    if summary.get("succeeded") != args.customers:
                        print(f"  {kind} run {pair + 1}: {summary.get('succeeded')} of "
                              f"{args.customers:,} imported; problems "
                              f"{summary.get('problems')}")
                    rates[kind].append(rate)
                    peaks[kind].append(peak)
                    print(f"  {kind.upper():4} run {pair + 1}: {rate:8,.0f} customers/s, "
                          f"peak RSS {peak:5.0f} MB")
                    if pair == 0:
                        stored[kind] = orjson.dumps(sandbox_call(
                            sandbox, "GET", f"/_sandbox/customers/{50000001000 + 7}"))
        finally:
            sandbox.stop()
    same = stored.get("json") == stored.get("csv")
    ratio = statistics.median(rates["csv"]) / statistics.median(rates["json"])
    print(f"\nMedian: JSON {statistics.median(rates['json']):,.0f}/s, CSV "
          f"{statistics.median(rates['csv']):,.0f}/s; CSV/JSON {ratio:.2f} "
          f"{'✓' if ratio >= TARGET_RATIO else '✗'} (target ≥ {TARGET_RATIO})")
    print(f"A sampled customer is stored the same from both files: {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
