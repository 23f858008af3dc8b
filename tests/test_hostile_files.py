"""Hostile files: nesting 100,000 levels deep, workbooks that unpack to gigabytes, endless
CSV lines, control characters in file names, 100,000 columns, and the error report's copies.

Each file is made here, for real, and read by the app's own code: the reader, the file
check, the reader process, the import against the sandbox API, the command line.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import orjson
import pytest

from app.models.display_text import printable_path
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sources.csv_reader import MAX_LINE_CHARS
from app.services.sources.customer_reader import (
    MAX_READ_DEPTH,
    FileReader,
    ReadProblem,
)
from app.services.sources.error_report import ErrorLine, error_lines, write_error_report
from app.services.sources.spreadsheet_reader import InvalidRow, SpreadsheetReader
from app.services.sources.table_source import MAX_CELL_CHARS
from app.services.sources.xlsx_reader import MAX_UNPACKED_PART_BYTES
from tests.conftest import ROOT, run_cli
from tests.excel_files import write_excel_like_workbook

LEVELS = 100_000  # the reported file: 200 kB that took ijson past 23 GB
MB = 1024 * 1024
# the cap on the address space of the process reading the deep files: far above what
# reading them takes, far below what building them took (tens of gigabytes)
ADDRESS_SPACE_CAP = 2048 * MB

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="POSIX only")


# -- deep nesting --------------------------------------------------------------------------


def customer_json(customers: Iterable[dict]) -> list[str]:
    return [orjson.dumps(c).decode() for c in customers]


def nested_lists(levels: int) -> str:
    return "[" * levels + "]" * levels


def write_deep_files(folder: Path) -> tuple[Path, Path, Path]:
    """Three files of one import: a deep customer between good ones; a deep value before
    the customer list; and good customers only."""
    folder.mkdir(parents=True, exist_ok=True)
    deep_customer = ('{"changeType": "CREATE", "person": {"customerId": "DEEP-1", '
                     f'"lastName": "Djup", "extra": {nested_lists(LEVELS)}}}}}')
    first = folder / "a_deep.json"
    entries = [*customer_json(generate_customers(5, start_id=100)), deep_customer,
               *customer_json(generate_customers(5, start_id=200))]
    first.write_text('{"data": [' + ",\n".join(entries) + "]}", encoding="utf-8")
    second = folder / "b_deep_before_list.json"
    listed = customer_json(generate_customers(4, start_id=300))
    second.write_text('{"meta": ' + nested_lists(LEVELS) + ', "data": ['
                      + ",\n".join(listed) + "]}", encoding="utf-8")
    third = folder / "c_good.json"
    write_customer_file(third, generate_customers(6, start_id=400))
    return first, second, third


# Reads the files in a child process whose address space is capped, so that a reader
# building the deep structures fails there at once instead of filling the machine.
_CAPPED_READ = r"""
import json, resource, sys, time
from pathlib import Path

cap = int(sys.argv[1])
if sys.platform.startswith("linux"):
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

from app.services.sources.batch_source import ProcessBatchSource
from app.services.sources.customer_reader import FileReader, InvalidEntry, ReadProblem
from app.services.sources.file_inspector import inspect_file


def peak_mb(who):
    value = resource.getrusage(who).ru_maxrss
    return value / (1 << 20) if sys.platform == "darwin" else value / 1024


files = [Path(p) for p in sys.argv[2:]]
out = {}
before, started = peak_mb(resource.RUSAGE_SELF), time.perf_counter()
items = [item for path in files for item in FileReader(path)]
out["reader_seconds"] = time.perf_counter() - started
out["reader_growth_mb"] = peak_mb(resource.RUSAGE_SELF) - before
out["records"] = sum(1 for i in items if not isinstance(i, (InvalidEntry, ReadProblem)))
out["invalid"] = [str(i.problem) for i in items if isinstance(i, InvalidEntry)]
out["problems"] = [str(i) for i in items if isinstance(i, ReadProblem)]
before = peak_mb(resource.RUSAGE_SELF)
out["inspections"] = [[i.customers, i.invalid, i.problem] for i in map(inspect_file, files)]
out["inspect_growth_mb"] = peak_mb(resource.RUSAGE_SELF) - before
source = ProcessBatchSource(files, 50, 4)
sent = refused = 0
while True:
    chunk = source.next_chunk(4)
    sent += sum(len(batch) for batch in chunk.batches)
    refused += len(chunk.invalid)
    out.setdefault("process_problems", []).extend(str(p) for p in chunk.problems)
    if chunk.exhausted:
        break
source.close()
out["process_sent"], out["process_refused"] = sent, refused
out["process_peak_mb"] = peak_mb(resource.RUSAGE_CHILDREN)
print(json.dumps(out))
"""


def check_readers_in_capped_process(files: tuple[Path, ...]) -> None:
    """Read `files` with every reader, in a child process whose address space is capped
    (Linux): each stays within 100 MB more than it started with, and finds the same."""
    done = subprocess.run([sys.executable, "-c", _CAPPED_READ, str(ADDRESS_SPACE_CAP),
                           *map(str, files)], cwd=ROOT, capture_output=True, text=True,
                          encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    # the reader of a small import (a thread): the good customers around the deep one
    assert out["records"] == 5 + 5 + 4 + 6
    assert out["problems"] == []
    assert len(out["invalid"]) == 1
    assert out["invalid"][0].startswith("a_deep.json, record 6, field person.extra[0]: ")
    assert f"nested more than {MAX_READ_DEPTH} levels deep" in out["invalid"][0]
    assert out["reader_growth_mb"] < 100, out
    # the Files tab's check counts them all, one invalid
    assert out["inspections"] == [[11, 1, None], [4, 0, None], [6, 0, None]]
    assert out["inspect_growth_mb"] < 100, out
    # the reader process of a large import
    assert (out["process_sent"], out["process_refused"]) == (20, 1)
    assert out["process_problems"] == []
    assert out["process_peak_mb"] < 300, out


async def test_nesting_100000_levels_deep_is_refused_while_read_and_the_rest_imported(
        make_engine, sandbox, tmp_path):
    files = write_deep_files(tmp_path / "in")
    if sys.platform != "win32":
        # first where memory is capped: a reader building the structure fails there, in
        # seconds, instead of taking the machine's memory in the import below
        check_readers_in_capped_process(files)
    summary = await make_engine(list(files)).run()
    assert (summary.total, summary.succeeded, summary.failed) == (21, 20, 1)
    assert summary.failed_by_result == {"INVALID": 1}
    assert summary.problems == []
    assert len(sandbox.customers) == 20
    failures = json.loads(Path(summary.failed_file).read_text("utf-8"))
    assert len(failures) == 1
    failure = failures[0]
    assert (Path(failure["sourceFile"]).name, failure["recordNumber"]) == ("a_deep.json", 6)
    assert failure["customerId"] == "DEEP-1"
    assert failure["error"].startswith("a_deep.json, record 6, field person.extra[0]: the "
                                       f"entry is nested more than {MAX_READ_DEPTH} levels")
    # what was read of it is kept, down to the limit, and says where it stops
    kept, depth = failure["originalData"]["person"]["extra"], 1
    while isinstance(kept, list):
        kept, depth = kept[0], depth + 1
    assert depth == MAX_READ_DEPTH and kept == (
        f"(nested more than {MAX_READ_DEPTH} levels deep: not read)")


def test_a_deep_json_line_names_its_line_and_the_file_reads_on(tmp_path):
    path = tmp_path / "kunder.jsonl"
    good = customer_json(generate_customers(3, start_id=500))
    deep = ('{"changeType": "CREATE", "person": {"customerId": "DEEP-2", "lastName": "Djup", '
            f'"extra": {nested_lists(LEVELS)}}}}}')
    path.write_text("\n".join([good[0], deep, good[1], good[2]]) + "\n", encoding="utf-8")
    items = list(FileReader(path))
    assert [type(i).__name__ for i in items] == ["CustomerRecord", "InvalidEntry",
                                                 "CustomerRecord", "CustomerRecord"]
    assert str(items[1].problem) == (
        f"kunder.jsonl, record 2: line 2: nested more than {MAX_READ_DEPTH} levels deep; no "
        "customer entry is, so the file is probably damaged")


# -- workbook bombs ------------------------------------------------------------------------

_SHEET_HEAD = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns='
               b'"http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
_SHEET_TAIL = b"</sheetData></worksheet>"


def inline_cell(ref: str, text: str) -> bytes:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'.encode()


def header_row() -> bytes:
    return (b'<row r="1">' + inline_cell("A1", "CustomerID") + inline_cell("B1", "LastName")
            + inline_cell("C1", "Notes") + b"</row>")


def write_workbook(path: Path, sheet_chunks: Iterable[bytes]) -> Path:
    """A workbook as Excel lays it out, its first sheet streamed from `sheet_chunks` and
    packed as tightly as zip can."""
    base = write_excel_like_workbook(path.with_suffix(".base.xlsx"), [("Kunder", [["x"]])])
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(
            path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                with target.open(info.filename, "w", force_zip64=True) as sheet:
                    for chunk in sheet_chunks:
                        sheet.write(chunk)
            else:
                target.writestr(info.filename, source.read(info.filename))
    base.unlink()
    return path


def one_huge_cell(size: int) -> Iterable[bytes]:
    """A sheet with one customer whose note is `size` letters long."""
    yield _SHEET_HEAD + header_row() + b'<row r="2">' + inline_cell("A2", "7001")
    yield inline_cell("B2", "Öberg") + b'<c r="C2" t="inlineStr"><is><t>'
    block = b"A" * MB
    for _ in range(size // MB):
        yield block
    yield b"</t></is></c></row>" + _SHEET_TAIL


def endless_rows(count: int) -> Iterable[bytes]:
    """A sheet of `count` rows, each the same one cell (rows need no number)."""
    yield _SHEET_HEAD + header_row()
    block = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 1000
    for _ in range(count // 1000):
        yield block
    yield _SHEET_TAIL


async def test_a_workbook_whose_cell_unpacks_to_32_mb_is_refused_and_the_rest_imported(
        make_engine, sandbox, tmp_path):
    bomb = write_workbook(tmp_path / "bomb.xlsx", one_huge_cell(32 * MB))
    assert bomb.stat().st_size < 200 * 1024  # 32 MB packed into a few dozen kB
    good = tmp_path / "kunder.json"
    write_customer_file(good, generate_customers(4, start_id=600))
    summary = await make_engine([bomb, good]).run()
    assert (summary.total, summary.succeeded, summary.failed) == (4, 4, 0)
    assert len(sandbox.customers) == 4
    assert len(summary.problems) == 1
    assert summary.problems[0].startswith(
        "bomb.xlsx: the workbook's part xl/worksheets/sheet1.xml would unpack from ")
    assert "to 32.0 MB" in summary.problems[0] and "was not read" in summary.problems[0]


def test_a_workbook_of_400000_rows_packed_a_thousandfold_is_refused(tmp_path):
    bomb = write_workbook(tmp_path / "rader.xlsx", endless_rows(400_000))
    items = list(SpreadsheetReader(bomb))
    assert len(items) == 1
    problem = items[0]
    assert isinstance(problem, ReadProblem) and problem.fatal_for_file
    assert "times its packed size (a real sheet packs 5 to 20 times)" in problem.message
    assert str(problem).startswith("rader.xlsx: the workbook's part xl/worksheets/sheet1.xml")


def test_a_workbook_part_declaring_more_than_the_limit_is_refused_unread(tmp_path):
    path = write_excel_like_workbook(tmp_path / "stor.xlsx", [("Kunder", [
        ["CustomerID", "LastName"], ["1", "Öberg"]])])
    # the archive's table of contents claims 3 GB for the sheet (its size field, 24 bytes
    # into the entry); nothing else about the file changes
    data = bytearray(path.read_bytes())
    entry = data.find(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + 24] != b"xl/worksheets/sheet1.xml":
        entry = data.find(b"PK\x01\x02", entry + 4)
    struct.pack_into("<I", data, entry + 24, 3 * 1024 * MB)
    path.write_bytes(bytes(data))
    assert zipfile.ZipFile(path).getinfo("xl/worksheets/sheet1.xml").file_size > \
        MAX_UNPACKED_PART_BYTES
    items = list(SpreadsheetReader(path))
    assert len(items) == 1 and isinstance(items[0], ReadProblem)
    assert items[0].message.startswith(
        "the workbook's part xl/worksheets/sheet1.xml would unpack to 3.0 GB, more than "
        "the 2.0 GB a workbook part may hold")


def write_long_cell_file(path: Path, layout: str, length: int) -> Path:
    long_text = "Å" * length
    rows = [["CustomerID", "FirstName", "LastName"], ["1", "Åsa", "Öberg"],
            ["2", long_text, "Ärlig"], ["3", "Märta", "Løvås"]]
    if layout == "xlsx":
        return write_excel_like_workbook(path.with_suffix(".xlsx"), [("Kunder", rows)])
    if layout == "csv-lines":  # the long cell quoted, over many short lines
        rows[2][1] = "\n".join(long_text[i:i + 400] for i in range(0, length, 400))
    with path.with_suffix(".csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)
    return path.with_suffix(".csv")


@pytest.mark.parametrize("layout", ["xlsx", "csv", "csv-lines"])
def test_a_cell_longer_than_excel_allows_refuses_its_row_naming_row_and_column(
        tmp_path, layout):
    path = write_long_cell_file(tmp_path / "kunder", layout, 40_000)
    items = list(SpreadsheetReader(path))
    assert [type(i).__name__ for i in items] == ["CustomerRecord", "InvalidRow",
                                                 "CustomerRecord"]
    refused = items[1]
    assert isinstance(refused, InvalidRow)
    lines = error_lines(refused)
    assert len(lines) == 1
    length = 40_000 + (99 if layout == "csv-lines" else 0)  # the line breaks count too
    assert (lines[0].row, lines[0].column) == (3, "FirstName")
    assert lines[0].message == (
        f"the cell holds {length:,} characters, more than the {MAX_CELL_CHARS:,} a spreadsheet"
        " cell can hold: the file is damaged, or the cell is not customer data")
    assert len(lines[0].value) <= 41  # a glimpse in the report, the whole row kept
    assert len(refused.record.data["FirstName"]) == length
    assert str(refused.problem).startswith(f"{path.name}, row 3, field FirstName: the cell")


async def test_a_real_workbook_of_50000_rows_still_imports(make_engine, sandbox, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Kunder")
    sheet.append(["CustomerID", "FirstName", "LastName", "Email", "Street", "City", "Notes"])
    for n, customer in enumerate(generate_customers(50_000, start_id=10_000)):
        person = customer["person"]
        sheet.append([person["customerId"], person["firstName"], person["lastName"],
                      f"kund{n}@example.se", f"Storgatan {n % 90 + 1}", "Göteborg",
                      "Kundklubb sedan 2019" if n % 3 else ""])
    path = tmp_path / "kunder_50000.xlsx"
    workbook.save(path)
    sheet_part = zipfile.ZipFile(path).getinfo("xl/worksheets/sheet1.xml")
    assert sheet_part.file_size > 16 * MB  # big enough for its packing to be checked
    summary = await make_engine([path], batch_size=500).run()
    assert (summary.total, summary.succeeded, summary.failed) == (50_000, 50_000, 0)
    assert summary.problems == []
    assert len(sandbox.customers) == 50_000


# -- CSV lines -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "expected"), [
    ("line", f"row 3 is a line of more than {MAX_LINE_CHARS:,} characters, longer than any "
             "spreadsheet row: the file is damaged or not a CSV file; the rest of the file "
             "was not read"),
    ("cell", "row 3: a cell holds more than 131,072 characters (a spreadsheet cell holds at "
             "most 32,767): the file is damaged or not a CSV file; the rest of the file was "
             "not read"),
    ("quote", 'row 3: a quoted cell never ends (a quote " opened and not closed); the rest of '
              "the file was not read"),
])
def test_a_csv_line_or_cell_too_long_is_named_for_what_it_is(tmp_path, kind, expected):
    if kind == "line":  # no quote, no delimiter: one endless line
        bad = "x" * (MAX_LINE_CHARS + 10) + "\n"
    elif kind == "cell":
        bad = "2;" + "y" * 200_000 + "\n"
    else:
        bad = '2;"never closed\n' + ("z" * 99 + "\n") * 2_000
    path = tmp_path / "kunder.csv"
    path.write_text("CustomerID;LastName\n1;Öberg\n" + bad + "3;Ärlig\n", encoding="utf-8")
    items = list(SpreadsheetReader(path))
    assert [type(i).__name__ for i in items] == ["CustomerRecord", "ReadProblem"]
    assert items[1].fatal_for_file and items[1].message == expected


# -- file names ----------------------------------------------------------------------------


def test_printable_path_escapes_control_characters_and_keeps_letters():
    assert printable_path("a\x1b[2Jb\x07c\nd\x7fe\x85f.json") == \
        "a\\x1b[2Jb\\x07c\\x0ad\\x7fe\\x85f.json"
    assert printable_path("kunder\u202egnp.json\u2028x\u2066") == \
        "kunder\\u202egnp.json\\u2028x\\u2066"
    assert printable_path(Path("Åsa Ärlig Öberg é Ł.csv")) == "Åsa Ärlig Öberg é Ł.csv"
    assert printable_path("C:\\Users\\Åke\\kunder.csv") == "C:\\Users\\Åke\\kunder.csv"


@POSIX_ONLY
def test_control_characters_in_file_names_are_shown_escaped_on_the_command_line(
        sandbox_thread, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    evil = "evil\x1b[2J\x07\nNot read: forged.json"
    for name, first_id in ((evil, 800), ("Åsa Ärlig é Ł.json", 900)):
        customer = next(generate_customers(1, start_id=first_id))
        (folder / name).write_bytes(b'{"data": [' + orjson.dumps(customer) + b", oops]}")
    write_customer_file(folder / "kunder.json", generate_customers(3, start_id=700))
    server = sandbox_thread.server
    done = run_cli("import", str(folder), "--url", server.customers_url("c4r"), "--token",
                   server.static_token, "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    shown = [line for line in done.stderr.splitlines() if line.startswith("Not read: ")]
    assert len(shown) == 2, done.stderr
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert any(line.startswith("Not read: evil\\x1b[2J\\x07\\x0aNot read: forged.json, "
                               "record 2: broken JSON") for line in shown), shown
    assert any(line.startswith("Not read: Åsa Ärlig é Ł.json, record 2: ") for line in shown)
    # a path given on the command line that cannot be used
    gone = tmp_path / "gone\x1b[31m\x07.json"
    done = run_cli("import", str(gone), "--url", server.customers_url("c4r"))
    assert done.returncode == 2
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert done.stderr == f"error: {tmp_path}/gone\\x1b[31m\\x07.json: no such file or folder\n"


# -- columns not imported ------------------------------------------------------------------


def write_wide_csv(path: Path, extra_columns: int) -> Path:
    header = ["CustomerID", "LastName", *(f"Extra{n}" for n in range(extra_columns))]
    path.write_text(";".join(header) + "\n" + ";".join(["1", "Öberg"] + [""] * extra_columns)
                    + "\n", encoding="utf-8")
    return path


def test_the_note_of_columns_not_imported_names_fifty_and_counts_the_rest(tmp_path):
    path = write_wide_csv(tmp_path / "bred.csv", 99_998)
    done = run_cli("import", str(path), "--dry-run", "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-2000:]
    notes = [line for line in done.stderr.splitlines() if "columns not imported" in line]
    assert len(notes) == 1
    assert notes[0].startswith("Note: bred.csv: columns not imported: Extra0, Extra1, ")
    assert notes[0].endswith(", Extra49 … and 99,948 more")
    assert len(notes[0]) < 1000


def test_the_review_names_fifty_columns_not_imported(qtbot, tmp_path):
    from app.services.sources.source_options import SourceOptions
    from app.views.review_dialog import ReviewDialog

    path = write_wide_csv(tmp_path / "bred.csv", 99_998)
    dialog = ReviewDialog([path], SourceOptions(), report_path=None)
    qtbot.addWidget(dialog)
    dialog.open()
    with qtbot.waitSignal(dialog.reviewed, timeout=60_000):
        dialog.start()
    text = dialog.unmapped_label.text()
    assert text.startswith("Columns not imported: bred.csv: Extra0, Extra1, ")
    assert text.endswith(", Extra49 … and 99,948 more") and len(text) < 1000


# -- copies of the error report -------------------------------------------------------------


@pytest.fixture
def usual_umask():
    """The umask most systems have (files readable by everyone unless made otherwise)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@POSIX_ONLY
def test_saved_copies_of_an_error_report_are_readable_by_their_owner_only(
        qtbot, tmp_path, usual_umask):
    from app.services.sources.source_options import SourceOptions
    from app.views.history_tab import HistoryTab
    from app.views.review_dialog import ReviewDialog

    report = tmp_path / "out" / "error_report.csv"
    write_error_report(report, [ErrorLine("kunder.csv", 3, "Personnummer", "19640823-3235",
                                          "the personal number has a wrong check digit")])
    assert mode(report) == 0o600
    tab = HistoryTab(lambda: tmp_path)
    qtbot.addWidget(tab)
    copy = tmp_path / "kopia.csv"
    assert tab.save_error_report(report, copy)
    existing = tmp_path / "fanns_redan.csv"
    existing.write_text("old", encoding="utf-8")
    assert mode(existing) == 0o644
    assert tab.save_error_report(report, existing)
    # and from the review before Start
    source = tmp_path / "kunder.csv"
    source.write_text("CustomerID;LastName\n1;Öberg\n2;\n", encoding="utf-8")
    dialog = ReviewDialog([source], SourceOptions(), report_path=tmp_path / "review.csv")
    qtbot.addWidget(dialog)
    dialog.open()
    with qtbot.waitSignal(dialog.reviewed, timeout=30_000):
        dialog.start()
    reviewed = tmp_path / "granskning.csv"
    assert dialog.save_report(reviewed)
    assert {path.name: mode(path) for path in (copy, existing, reviewed)} == {
        "kopia.csv": 0o600, "fanns_redan.csv": 0o600, "granskning.csv": 0o600}
    assert copy.read_bytes() == existing.read_bytes() == report.read_bytes()
    assert b"last name" in reviewed.read_bytes()
