"""`failed_customers/failed_customers.json`: the open failures of a results folder.

The journal holds the truth; this file is its readable copy, written again from the
journal's open failures at the end of every import (one record per customer: the latest
attempt and how many attempts failed), in the seed's format that users already rely on.
Records are written one by one, so a background thread writing 100,000 of them never
holds Python's global lock for long.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO

import orjson

from app.models.records import FailureRecord, FailureRow
from app.services.sources.customer_reader import iter_json_array
from app.util.atomic_files import atomic_write

_ONE_RECORD = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def write_failure_list(path: Path, rows: Iterable[FailureRow]) -> int:
    """Write the failures `rows` to `path` (atomically); returns how many were written."""
    count = 0

    def write(handle: IO[bytes]) -> None:
        nonlocal count
        handle.write(b"[")
        for row in rows:
            record = FailureRecord.from_row(row)
            handle.write((b",\n" if count else b"\n")
                         + orjson.dumps(record.to_dict(), option=_ONE_RECORD))
            count += 1
        handle.write(b"\n]\n")

    atomic_write(Path(path), write)
    return count


def load_failure_list(path: Path) -> list[FailureRecord]:
    """The records of a failure list file (this format, or an export); [] when missing.

    Raises ValueError when the file is not a list of records.
    """
    try:
        return [FailureRecord.from_dict(item) for item in iter_json_array(Path(path))
                if isinstance(item, dict)]
    except FileNotFoundError:
        return []
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{Path(path).name} is not valid JSON ({exc})") from None
