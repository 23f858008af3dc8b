"""Reading CSV files and workbooks: encodings, delimiters, quoting, sheets, row numbers."""

from __future__ import annotations

import codecs
import tracemalloc
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from app.models.records import CustomerRecord
from app.services.sources.csv_reader import CsvTable, detect_delimiter
from app.services.sources.customer_reader import ReadProblem
from app.services.sources.spreadsheet_reader import (
    InvalidRow,
    SpreadsheetReader,
    column_samples,
)
from app.services.sources.table_source import TableError, column_names, open_table
from app.services.sources.text_encoding import detect_encoding
from app.services.sources.xlsx_reader import XlsxTable, list_sheets
from tests.excel_files import write_excel_like_workbook

NAMES_HEADER = "Kundnummer;Förnamn;Efternamn;Födelsedatum"
NAMES = [("1001", "Åsa", "Öberg", "15.01.1955"), ("1002", "Björn", "Sæther", "1955-01-16"),
         ("1003", "Hélène", "Lefèvre", "19550117"), ("1004", "Øystein", "Løvik", "18/01/1955")]


def names_csv(delimiter: str = ";") -> str:
    lines = [NAMES_HEADER.replace(";", delimiter)]
    lines += [delimiter.join(row) for row in NAMES]
    return "\r\n".join(lines) + "\r\n"


def read_all(path: Path, **kwargs) -> tuple[list[CustomerRecord], list[InvalidRow],
                                            list[ReadProblem]]:
    records, invalid, problems = [], [], []
    for item in SpreadsheetReader(path, **kwargs):
        if isinstance(item, InvalidRow):
            invalid.append(item)
        elif isinstance(item, ReadProblem):
            problems.append(item)
        else:
            records.append(item)
    return records, invalid, problems


def people(records: list[CustomerRecord]) -> list[tuple[str, str, str, str]]:
    return [(r.data["person"]["customerId"], r.data["person"]["firstName"],
             r.data["person"]["lastName"], r.data["person"]["birthday"]) for r in records]


EXPECTED_PEOPLE = [("1001", "Åsa", "Öberg", "1955-01-15"),
                   ("1002", "Björn", "Sæther", "1955-01-16"),
                   ("1003", "Hélène", "Lefèvre", "1955-01-17"),
                   ("1004", "Øystein", "Løvik", "1955-01-18")]


@pytest.mark.parametrize(("encoding", "label"), [
    ("utf-8", "UTF-8"),
    ("utf-8-sig", "UTF-8 with BOM"),
    ("utf-16", "UTF-16"),  # Python writes the byte-order mark
    ("cp1252", "Windows-1252"),
])
def test_every_encoding_gives_the_same_names(tmp_path, encoding, label):
    path = tmp_path / "kunder.csv"
    path.write_bytes(names_csv().encode(encoding))
    assert detect_encoding(path).label == label
    records, invalid, problems = read_all(path)
    assert (invalid, problems) == ([], [])
    assert people(records) == EXPECTED_PEOPLE
    assert [r.record_number for r in records] == [2, 3, 4, 5]


def test_windows_1252_with_crlf_is_not_taken_for_another_code_page(tmp_path):
    # charset-normalizer reads this as Windows-1250 (Å becomes Ĺ); the fixed order does not
    path = tmp_path / "ansi.csv"
    rows = ["Kundnummer;Förnamn;Efternamn"] + [
        f"{2000 + n};Åke;Åström" for n in range(50)]
    path.write_bytes("\r\n".join(rows).encode("cp1252"))
    records, _, _ = read_all(path)
    assert len(records) == 50
    assert {r.data["person"]["firstName"] for r in records} == {"Åke"}
    assert {r.data["person"]["lastName"] for r in records} == {"Åström"}


def test_utf8_names_in_an_ansi_file_keep_both_halves_readable(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes("Kundnummer;Förnamn;Efternamn\r\n".encode() + "1;Åsa;Öberg\r\n".encode()
                     + "2;Märta;Sjöberg\r\n".encode("cp1252"))
    assert detect_encoding(path).label == "UTF-8 mixed with Windows-1252"
    records, _, _ = read_all(path)
    assert [(r.data["person"]["firstName"], r.data["person"]["lastName"]) for r in records] \
        == [("Åsa", "Öberg"), ("Märta", "Sjöberg")]


def test_utf16_without_a_byte_order_mark(tmp_path):
    path = tmp_path / "unicode.txt"
    path.write_bytes(names_csv("\t").encode("utf-16-le"))
    assert detect_encoding(path).label == "UTF-16 LE"
    records, _, _ = read_all(path)
    assert people(records) == EXPECTED_PEOPLE


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_found(tmp_path, delimiter):
    path = tmp_path / "kunder.csv"
    path.write_text(names_csv(delimiter), encoding="utf-8")
    table = CsvTable(path)
    table.close()
    assert table.format.delimiter == delimiter
    assert table.columns == ["Kundnummer", "Förnamn", "Efternamn", "Födelsedatum"]
    assert people(read_all(path)[0]) == EXPECTED_PEOPLE


def test_semicolons_win_when_values_hold_commas():
    sample = "Id;Name;Street\r\n1;Berg, Anna;Storgatan 1, lgh 1101\r\n2;Ek, Per;Ågatan 2\r\n"
    assert detect_delimiter(sample) == ";"
    sample = 'Id,Name,Note\r\n1,"Berg; Anna",x\r\n2,Ek,"a;b;c"\r\n'
    assert detect_delimiter(sample) == ","


def test_quoted_cells_with_line_breaks_doubled_quotes_and_delimiters(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text(
        'CustomerID;FirstName;LastName;Street\r\n'
        '1;Åsa;Öberg;"Storgatan 1\r\nlgh 1101"\r\n'
        '2;Per;"Berg ""Junior""";"Ågatan; 2"\r\n'
        '3;Karin;Ek;Kungsgatan 3\r\n', encoding="utf-8")
    records, invalid, _ = read_all(path)
    assert invalid == []
    streets = [r.data["person"]["addresses"][0]["street"] for r in records]
    assert streets == ["Storgatan 1\r\nlgh 1101", "Ågatan; 2", "Kungsgatan 3"]
    assert records[1].data["person"]["lastName"] == 'Berg "Junior"'
    # a record spanning two lines is still one spreadsheet row
    assert [r.record_number for r in records] == [2, 3, 4]


def test_spaces_and_non_breaking_spaces_are_trimmed_and_empty_rows_skipped(tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text(
        "\r\n"
        " CustomerID ; FirstName ;\u00a0LastName\u00a0\r\n"
        "\u00a01001\u00a0; Åsa ;\u00a0Öberg \r\n"
        "\r\n"
        " ; ;\u00a0\r\n"
        ";;\r\n"
        "1002;Per;Berg\r\n", encoding="utf-8")
    records, invalid, problems = read_all(path)
    assert (invalid, problems) == ([], [])
    assert [(r.record_number, r.data["person"]["customerId"], r.data["person"]["firstName"],
             r.data["person"]["lastName"]) for r in records] == [
        (3, "1001", "Åsa", "Öberg"), (7, "1002", "Per", "Berg")]


def test_decomposed_letters_are_normalised(tmp_path):
    path = tmp_path / "mac.csv"
    decomposed = "A\u030asa"  # A + combining ring, as some Mac programs write Å
    path.write_text(f"CustomerID,FirstName,LastName\n1,{decomposed},Berg\n", encoding="utf-8")
    records, _, _ = read_all(path)
    assert records[0].data["person"]["firstName"] == "Åsa"
    assert len(records[0].data["person"]["firstName"]) == 3


def test_extra_and_missing_columns(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("CustomerID;FirstName;LastName;City\r\n"
                    "1;Åsa;Öberg\r\n"  # City missing: simply no city
                    "2;Per;Berg;Malmö;;\r\n"  # empty cells after the last column: harmless
                    "3;Karin;Ek;Lund;surplus\r\n", encoding="utf-8")
    records, invalid, _ = read_all(path)
    assert [r.record_number for r in records] == [2, 3, 4]
    assert "addresses" not in records[0].data["person"]
    assert records[1].data["person"]["addresses"] == [{"city": "Malmö"}]
    assert invalid == []
    # a refused row keeps the cells beyond the header too
    path.write_text("CustomerID;FirstName;LastName\r\n5;Per;;Lund;extra\r\n",
                    encoding="utf-8")
    _, invalid, _ = read_all(path)
    assert invalid[0].record.data == {"CustomerID": "5", "FirstName": "Per", "LastName": "",
                                      "(column 4)": "Lund", "(column 5)": "extra"}


def test_the_header_may_have_blank_and_repeated_names():
    assert column_names(["Phone", "", "phone", " Name ", "\ufeffId"]) == [
        "Phone", "Column B", "phone (2)", "Name", "Id"]


def test_an_unclosed_quote_is_named_with_its_row(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text('CustomerID;LastName\r\n1;Berg\r\n2;"Ek\r\n' + ("3;x\r\n" * 40_000),
                    encoding="utf-8")
    records, _, problems = read_all(path)
    assert len(records) == 1
    assert len(problems) == 1 and problems[0].fatal_for_file
    assert "quote" in problems[0].message and problems[0].message.startswith("row 3")


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"\r\n \r\n;;\r\n", "empty"),
])
def test_a_file_without_a_header_is_one_problem(tmp_path, content, message):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    records, invalid, problems = read_all(path)
    assert (records, invalid) == ([], [])
    assert len(problems) == 1 and problems[0].fatal_for_file and message in problems[0].message


def test_a_missing_file_is_one_problem(tmp_path):
    _, _, problems = read_all(tmp_path / "gone.csv")
    assert len(problems) == 1 and problems[0].fatal_for_file
    assert "cannot open" in problems[0].message


def test_progress_reaches_the_file_size(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("CustomerID,LastName\n" + "".join(f"{n},Berg\n" for n in range(5000)),
                    encoding="utf-8")
    reader = SpreadsheetReader(path)
    seen_progress = []
    for count, item in enumerate(reader, start=1):
        # while the caller holds a record, the reader's counters include it
        assert (reader.records_read, reader.last_record_number) == (
            count, item.record_number)
        if count % 1000 == 0:
            seen_progress.append(reader.bytes_read)
    assert reader.records_read == 5000
    assert reader.last_record_number == 5001
    assert reader.bytes_read == path.stat().st_size
    assert 0 < seen_progress[0] < seen_progress[-1] <= path.stat().st_size


def test_a_csv_file_is_streamed_never_held_whole(tmp_path):
    path = tmp_path / "large.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("CustomerID;FirstName;LastName;Street\r\n")
        for n in range(100_000):
            handle.write(f"{n};Åsa;Öberg;Storgatan {n % 100}, lgh {n % 1000}\r\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with CsvTable(path) as table:
            rows = sum(1 for _ in table.rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == 100_000
    assert size > 4_000_000
    # the encoding check's and the delimiter sample's buffers, and one row: the same for
    # a file of any size
    assert peak < 2_000_000


# -- workbooks ---------------------------------------------------------------------------


def make_workbook(path: Path) -> Path:
    """Two sheets, the first empty; the data starts at B3 with dates, serials and ids."""
    workbook = Workbook()
    workbook.active.title = "Info"
    sheet = workbook.create_sheet("Kunder")
    sheet["B3"], sheet["C3"], sheet["D3"], sheet["E3"], sheet["F3"] = (
        "CustomerID", "FirstName", "LastName", "Birthday", "PostalCode")
    rows = [
        (9000578, "Åsa", "Öberg", date(1955, 1, 15), "01150"),
        ("1002", "Björn", "Ström", datetime(1960, 2, 3), 11122),
        (1003.0, "Märta", "Ek", 20104, "0150"),  # a date typed as a serial number
    ]
    for offset, row in enumerate(rows):
        for col, value in enumerate(row):
            sheet.cell(row=4 + offset * 2, column=2 + col, value=value)  # empty row between
    workbook.save(path)
    return path


def test_workbook_dates_serials_and_identifiers(tmp_path):
    path = make_workbook(tmp_path / "kunder.xlsx")
    records, invalid, problems = read_all(path)
    assert (invalid, problems) == ([], [])
    assert [(r.record_number, r.data["person"]["customerId"], r.data["person"]["birthday"],
             r.data["person"]["addresses"][0]["postalCode"]) for r in records] == [
        (4, "9000578", "1955-01-15", "01150"),
        (6, "1002", "1960-02-03", "11122"),
        (8, "1003", "1955-01-15", "0150"),
    ]


def test_the_first_sheet_with_data_is_chosen_and_any_sheet_can_be(tmp_path):
    path = make_workbook(tmp_path / "kunder.xlsx")
    assert [(s.name, s.visible) for s in list_sheets(path)] == [
        ("Info", True), ("Kunder", True)]
    table = XlsxTable(path)
    assert (table.sheet_name, table.header_row) == ("Kunder", 3)
    assert table.columns == ["CustomerID", "FirstName", "LastName", "Birthday", "PostalCode"]
    with pytest.raises(TableError, match="empty"):
        XlsxTable(path, sheet="Info")
    with pytest.raises(TableError, match="no sheet 'Nope'"):
        XlsxTable(path, sheet="Nope")
    assert XlsxTable(path, sheet=1).sheet_name == "Kunder"
    _, _, problems = read_all(path, sheet="Nope")
    assert len(problems) == 1 and problems[0].fatal_for_file


def test_a_hidden_sheet_is_passed_over_unless_chosen(tmp_path):
    workbook = Workbook()
    hidden = workbook.active
    hidden.title = "Old"
    hidden.append(["CustomerID", "LastName"])
    hidden.append([1, "Gammal"])
    hidden.sheet_state = "hidden"
    current = workbook.create_sheet("Current")
    current.append(["CustomerID", "LastName"])
    current.append([2, "Ny"])
    path = tmp_path / "hidden.xlsx"
    workbook.save(path)
    assert [(s.name, s.visible) for s in list_sheets(path)] == [
        ("Old", False), ("Current", True)]
    records, _, _ = read_all(path)
    assert [r.data["person"]["lastName"] for r in records] == ["Ny"]
    records, _, _ = read_all(path, sheet="Old")
    assert [r.data["person"]["lastName"] for r in records] == ["Gammal"]


def test_excel_layout_with_shared_strings(tmp_path):
    path = write_excel_like_workbook(tmp_path / "excel.xlsx", [("Blad1", [
        ["Kundnummer", "Förnamn", "Efternamn", "Födelsedatum", "Kortnummer", "Aktiv"],
        [1001, " Åsa ", "Öberg", date(1955, 1, 15), 9000000000012, True],
        [1002, "Per", "Berg", date(2000, 2, 29), "0009000000013", False],
    ])])
    records, invalid, _ = read_all(path)
    assert invalid == []
    assert [(r.data["person"]["customerId"], r.data["person"]["firstName"],
             r.data["person"]["birthday"], r.data["person"]["customerCards"][0]["number"])
            for r in records] == [
        ("1001", "Åsa", "1955-01-15", "9000000000012"),
        ("1002", "Per", "2000-02-29", "0009000000013")]


def test_a_number_excel_cannot_hold_is_refused_not_rounded(tmp_path):
    path = write_excel_like_workbook(tmp_path / "long.xlsx", [("Blad1", [
        ["CustomerID", "LastName", "CardNumber"],
        [1, "Berg", 9752000012345678],  # 16 digits typed as a number: Excel kept 15
    ])])
    records, invalid, _ = read_all(path)
    assert records == []
    assert len(invalid) == 1
    assert invalid[0].problem.field == "CardNumber"
    assert "15 digits" in invalid[0].problem.message


def test_a_file_that_is_no_workbook(tmp_path):
    path = tmp_path / "renamed.xlsx"
    path.write_text("CustomerID;LastName\n1;Berg\n", encoding="utf-8")
    _, _, problems = read_all(path)
    assert len(problems) == 1 and problems[0].fatal_for_file
    assert "not a readable Excel workbook" in problems[0].message


def test_an_xlsm_workbook_reads_like_an_xlsx(tmp_path):
    path = make_workbook(tmp_path / "kunder.xlsx").rename(tmp_path / "kunder.xlsm")
    records, invalid, _ = read_all(path)
    assert (len(records), invalid) == (3, [])


def test_column_samples_for_the_mapping_step(tmp_path):
    path = tmp_path / "kunder.csv"
    path.write_text("Kundnummer;Förnamn;Efternamn;Anteckning\r\n"
                    + "".join(f"{1000 + n};{'Åsa' if n % 2 else 'Per'};Berg;\r\n"
                              for n in range(10)), encoding="utf-8")
    samples = column_samples(path, count=3)
    assert [(c.name, c.samples, c.role and c.role.value) for c in samples] == [
        ("Kundnummer", ["1000", "1001", "1002"], "customer id"),
        ("Förnamn", ["Per", "Åsa"], "first name"),
        ("Efternamn", ["Berg"], "last name"),
        ("Anteckning", [], None)]


def test_open_table_refuses_other_suffixes(tmp_path):
    with pytest.raises(TableError, match="not a spreadsheet"):
        open_table(tmp_path / "customers.json")


def test_a_bom_in_the_middle_of_nowhere_is_not_part_of_the_first_column(tmp_path):
    # Excel's "CSV UTF-8" plus a program that adds a second mark
    path = tmp_path / "double.csv"
    path.write_bytes(codecs.BOM_UTF8 + "\ufeffCustomerID;LastName\r\n1;Berg\r\n".encode())
    table = open_table(path)
    table.close()
    assert table.columns == ["CustomerID", "LastName"]
