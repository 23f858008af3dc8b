"""The command line's `failures` commands: the open failures of a results folder.

    python main.py failures list   [--output-dir DIR] [--json]
    python main.py failures export [--output-dir DIR] --out FILE [--format csv|json|txt]
                                   [--delimiter ';'|','|tab]

Both read the folder's import history (or, in a folder of an earlier version, its
failed_customers.json), one row per customer still failing: its latest attempt.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.models.records import FailureRecord
from app.services.jobs.failure_list_tasks import legacy_failure_rows
from app.services.jobs.journal import Journal, JournalError, journal_path
from app.services.pipeline.import_events import default_output_dir
from app.services.results.failure_export import EXPORT_FORMATS, export_failures
from app.util.console import print_json

EXIT_OK, EXIT_USAGE = 0, 2
MESSAGE_WIDTH = 60  # the list's message column, cut with "…" beyond


def add_failures_parser(commands: Any, delimiter_type: Callable[[str], str]) -> None:
    """The `failures` command and its `list` and `export` actions."""
    failures = commands.add_parser(
        "failures", help="list or export the open failures of a results folder",
        description="The customers of a results folder that are still failing, one each "
                    "(its latest attempt), from the folder's import history.")
    actions = failures.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list the open failures",
                                 description="One line per customer still failing: id, name, "
                                             "result, attempts and message.")
    export = actions.add_parser("export", help="write the open failures to a file",
                                description="Write the open failures to a file, with each "
                                            "customer's original data (CSV for Excel, "
                                            "complete JSON, or plain text).")
    for action in (listing, export):
        action.add_argument("--output-dir", type=Path,
                            help=f"the results folder (default {default_output_dir()})")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    export.add_argument("--out", type=Path, required=True, help="the file to write")
    export.add_argument("--format", choices=sorted(EXPORT_FORMATS),
                        help="the file's format (default: from the --out suffix, else csv)")
    export.add_argument("--delimiter", type=delimiter_type, metavar="';'|','|tab",
                        help="what separates a CSV's cells (default: the computer's list "
                             "separator, as Excel expects)")


def failures_command(args: argparse.Namespace) -> int:
    output_dir = Path(args.output_dir or default_output_dir())
    try:
        records = open_failures(output_dir)
    except (JournalError, sqlite3.Error, OSError) as exc:
        print(f"error: the failures of {output_dir} cannot be read ({exc})",
              file=sys.stderr)
        return EXIT_USAGE
    if args.action == "list":
        if args.json:
            print_json([_listed(r) for r in records])
        elif not records:
            print(f"No open failures in {output_dir}")
        else:
            print(format_failures(records))
        return EXIT_OK
    fmt = args.format or (args.out.suffix.lstrip(".").lower()
                          if args.out.suffix.lstrip(".").lower() in EXPORT_FORMATS else "csv")
    try:
        written = export_failures(records, args.out, fmt, delimiter=args.delimiter)
    except OSError as exc:
        print(f"error: {args.out} could not be written ({exc.strerror or exc})",
              file=sys.stderr)
        return EXIT_USAGE
    print(f"{len(records):,} open failure{'' if len(records) == 1 else 's'} written to "
          f"{written}")
    return EXIT_OK


def open_failures(output_dir: Path) -> list[FailureRecord]:
    """The folder's open failures, oldest first: from its journal, else from an earlier
    version's failed_customers.json; [] when it has neither."""
    if journal_path(output_dir).exists():
        journal = Journal.open(output_dir, create=False)
        try:
            return [FailureRecord.from_row(row) for row in journal.failure_rows(state="open")]
        finally:
            journal.close()
    rows = legacy_failure_rows(output_dir)
    return [FailureRecord.from_row(row) for row in rows or []]


def _listed(record: FailureRecord) -> dict[str, Any]:
    return {"id": record.customer_id, "username": record.username, "result": record.result,
            "message": record.error, "attempts": record.attempts, "job": record.job,
            "source_file": record.source_file, "record": record.record_number}


def format_failures(records: list[FailureRecord]) -> str:
    """The list as a table for a terminal."""
    rows = [(r.customer_id or "–", r.username or "–", r.result, str(r.attempts),
             _cut(r.error, MESSAGE_WIDTH)) for r in records]
    header = ("Customer ID", "Name", "Result", "Attempts", "Message")
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(4)]
    lines = ["  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(header[:4])),
                        header[4]])]
    lines += ["  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])), row[4]])
              for row in rows]
    lines.append(f"{len(records):,} open failure{'' if len(records) == 1 else 's'}")
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"
