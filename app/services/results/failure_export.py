"""Export failure records to CSV (for Excel), JSON (complete) or plain text.

The CSV is separated by the computer's list separator unless another is asked for (see
app/util/csv_separator.py): Excel with Swedish, German or French settings splits at `;`.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from app.models.records import FailureRecord
from app.util.atomic_files import atomic_write_bytes, atomic_write_json
from app.util.csv_separator import checked_separator
from app.util.spreadsheet_cells import neutralise_cell

CSV_COLUMNS = ("Customer ID", "Username", "Result", "Error", "Timestamp", "Batch Info",
               "Source File", "Record Number", "HTTP Status", "Original Data")
EXPORT_FORMATS = {"csv": "CSV for Excel (*.csv)", "json": "JSON, complete (*.json)",
                  "txt": "Plain text (*.txt)"}


def failures_to_csv(records: Sequence[FailureRecord], delimiter: str | None = None) -> bytes:
    """UTF-8 with BOM (so Excel shows Å Ä Ö), CRLF line ends, every cell neutralised; cells
    separated by `delimiter` (None: the system's list separator)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=checked_separator(delimiter), lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        original = r.original_json.decode("utf-8")
        writer.writerow([neutralise_cell(v) for v in (
            r.customer_id, r.username, r.result, r.error, r.timestamp, r.batch_info,
            r.source_file, r.record_number or "", r.http_status or "", original)])
    return buffer.getvalue().encode("utf-8-sig")


def failures_to_text(records: Sequence[FailureRecord]) -> str:
    counts = Counter(r.result for r in records)
    lines = [f"Failed customers: {len(records)}",
             "By result: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()), ""]
    for n, r in enumerate(records, start=1):
        lines += [
            f"{n}. {r.customer_id or '(no id)'}  {r.username}",
            f"   Result:    {r.result}",
            f"   Error:     {r.error}",
            f"   Time:      {r.timestamp}",
            f"   Batch:     {r.batch_info}",
            f"   Source:    {Path(r.source_file).name}, record {r.record_number}",
            "",
        ]
    return "\n".join(lines)


def export_failures(records: Sequence[FailureRecord], path: Path, fmt: str | None = None,
                    *, delimiter: str | None = None) -> Path:
    """Write `records` to `path` atomically; the format comes from `fmt` or the suffix. A CSV
    is separated by `delimiter` (None: the system's list separator)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "json").lower()
    if fmt == "csv":
        return atomic_write_bytes(path, failures_to_csv(records, delimiter))
    if fmt == "txt":
        return atomic_write_bytes(path, failures_to_text(records).encode("utf-8-sig"))
    if fmt == "json":
        return atomic_write_json(path, [r.to_dict() for r in records])
    raise ValueError(f"unknown export format {fmt!r}: choose csv, json or txt")
