"""Checking rows before anything is sent, and the error report for the rows refused."""

from __future__ import annotations

import codecs
import csv
import io
import os
from pathlib import Path

import pytest

from app.models.records import CustomerRecord
from app.services.sources.customer_reader import FileReader, InvalidEntry, ReadProblem
from app.services.sources.error_report import (
    ERROR_REPORT_COLUMNS,
    ErrorReport,
    error_lines,
    write_error_report,
)
from app.services.sources.mapping import Mapping
from app.services.sources.row_validation import (
    ImportValidator,
    email_problem,
    luhn_check_digit,
    luhn_valid,
    personal_number_problem,
)
from app.services.sources.spreadsheet_reader import InvalidRow, SpreadsheetReader

HEADER = "Kundnummer;Förnamn;Efternamn;Födelsedatum;Personnummer;E-post;Kortnummer"


def write_csv(path: Path, *rows: str) -> Path:
    path.write_text("\r\n".join([HEADER, *rows]) + "\r\n", encoding="utf-8-sig")
    return path


def read(path: Path, validator: ImportValidator | None = None, mapping: Mapping | None = None
         ) -> list[CustomerRecord | InvalidEntry | ReadProblem]:
    return list(SpreadsheetReader(path, mapping, validator=validator))


def messages(items: list) -> list[tuple[int, str | None, str]]:
    return [(i.problem.record_number, i.problem.field, i.problem.message)
            for i in items if isinstance(i, InvalidEntry)]


@pytest.mark.parametrize("number", [
    "811218-9876", "8112189876", "19811218-9876", "198112189876", "19121212+1212",
    "121212-1212"])
def test_personal_numbers_with_a_right_check_digit(number):
    assert personal_number_problem(number) is None


@pytest.mark.parametrize(("number", "message"), [
    ("811218-9875", "wrong check digit"), ("198112189870", "wrong check digit"),
    ("81121898", "10 or 12 digits"), ("8112189876X", "10 or 12 digits"),
    ("٨١١٢١٨٩٨٧٦", "10 or 12 digits"),  # Arabic-Indic digits are digits, but not these
])
def test_personal_numbers_that_are_wrong(number, message):
    problem = personal_number_problem(number)
    assert problem is not None and message in problem
    assert number not in problem  # personal data stays out of messages


def test_luhn_against_known_numbers():
    assert luhn_valid("79927398713")  # the textbook example
    assert not luhn_valid("79927398710")
    assert luhn_valid("8112189876")
    assert luhn_check_digit("811218987") == "6" and luhn_check_digit("7992739871") == "3"


@pytest.mark.parametrize(("address", "ok"), [
    ("asa.oberg@example.se", True), ("a+b@sub.example.co.uk", True), ("åsa@exempel.se", True),
    ("asa.oberg@", False), ("@example.se", False), ("asa oberg@example.se", False),
    ("asa@@example.se", False), ("asa@example", False), ("asa@example..se", False),
    ("asa@example.se;per@example.se", False),
])
def test_email_addresses(address, ok):
    assert (email_problem(address) is None) is ok


def test_every_reason_of_a_row_is_found_and_named(tmp_path):
    path = write_csv(
        tmp_path / "kunder.csv",
        "1001;Åsa;Öberg;15.01.1955;811218-9876;asa@example.se;",  # fine
        ";Per;;31.02.1980;811218-9875;per@;",  # no id, no card, no last name, ...
        ";Karin;Ek;;;;9000000012345",  # a card number is enough without a customer id
        "1004;Märta;Berg;1955-01-15;;;",
    )
    items = read(path)
    assert [type(i).__name__ for i in items] == [
        "CustomerRecord", "InvalidRow", "CustomerRecord", "CustomerRecord"]
    invalid = items[1]
    assert isinstance(invalid, InvalidRow)
    assert [(i.column, i.value, i.message) for i in invalid.issues] == [
        ("Födelsedatum", "31.02.1980", "31.02.1980 is not a real date"),
        ("Kundnummer", "", "customer id is missing (a customer id or a card number is needed)"),
        ("Efternamn", "", "last name is missing"),
        ("Personnummer", "811218-9875", "the personal number has a wrong check digit"),
        ("E-post", "per@", "the e-mail address is not valid"),
    ]
    # the problem the import shows sums it up and names the first column
    assert (invalid.problem.record_number, invalid.problem.field) == (3, "Födelsedatum")
    assert invalid.problem.message.count(";") == 4
    # the row itself is kept, every column, as the spreadsheet shows it
    assert invalid.record.data == {
        "Kundnummer": "", "Förnamn": "Per", "Efternamn": "", "Födelsedatum": "31.02.1980",
        "Personnummer": "811218-9875", "E-post": "per@", "Kortnummer": ""}
    assert invalid.record.record_number == 3
    assert str(invalid.problem).startswith("kunder.csv, row 3, field Födelsedatum: ")


def test_a_customer_id_can_be_required(tmp_path):
    path = write_csv(tmp_path / "kunder.csv", ";Karin;Ek;;;;9000000012345")
    items = read(path, ImportValidator(require_customer_id=True))
    assert messages(items) == [
        (2, "Kundnummer", "customer id is missing (a customer id is needed)")]


def test_a_repeated_customer_id_names_the_first_row_even_in_another_file(tmp_path):
    validator = ImportValidator()
    first = write_csv(tmp_path / "januari.csv",
                      "1001;Åsa;Öberg;;;;", "1002;Per;Berg;;;;", "1001;Åsa;Öberg;;;;")
    second = write_csv(tmp_path / "februari.csv", "1003;Karin;Ek;;;;", "1002;Per;Berg;;;;")
    assert messages(read(first, validator)) == [
        (4, "Kundnummer", "customer id 1001 is already used in row 2")]
    assert messages(read(second, validator)) == [
        (3, "Kundnummer", "customer id 1002 is already used in row 3 of januari.csv")]
    assert validator.customer_ids_seen == 3
    assert validator.first_row_of("1002") == (str(first), 3)
    # reading a file again (a reader started anew) does not make it its own duplicate
    assert messages(read(second, validator)) == [
        (3, "Kundnummer", "customer id 1002 is already used in row 3 of januari.csv")]


def test_a_cell_that_fails_is_not_also_reported_missing(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("CustomerID;LastName\r\n9.00058E+12;Berg\r\n", encoding="utf-8")
    items = read(path)
    assert len(messages(items)) == 1
    assert messages(items)[0][1] == "CustomerID"
    assert "scientific notation" in messages(items)[0][2]


def test_a_change_type_from_a_column_is_checked(tmp_path):
    path = tmp_path / "changes.csv"
    path.write_text("Id;Name;Action\r\n1;Berg;UPDATE\r\n2;Ek;DELETE\r\n", encoding="utf-8")
    mapping = Mapping(fields={"person.customerId": "Id", "person.lastName": "Name",
                              "changeType": "Action"})
    items = read(path, mapping=mapping)
    assert items[0].data["changeType"] == "UPDATE"
    assert messages(items) == [(3, "Action", "change type DELETE must be CREATE or UPDATE")]


def test_a_mapping_without_a_last_name_refuses_the_file_naming_what_is_missing(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("Id;Förnamn\r\n1;Åsa\r\n2;Per\r\n", encoding="utf-8")
    items = read(path, mapping=Mapping(fields={"person.customerId": "Id",
                                               "person.firstName": "Förnamn"}))
    # one problem for the whole file, before any row: no row could ever be valid
    assert len(items) == 1 and isinstance(items[0], ReadProblem)
    problem = items[0]
    assert problem.fatal_for_file
    assert problem.record_number == 1  # the header row
    assert "a last name" in problem.message and "Id, Förnamn" in problem.message


def test_a_header_without_an_id_or_card_column_is_refused_by_the_automatic_mapping(tmp_path):
    path = tmp_path / "namn.csv"
    path.write_text("Förnamn;Efternamn\r\nÅsa;Öberg\r\n", encoding="utf-8")
    items = read(path)
    assert len(items) == 1 and isinstance(items[0], ReadProblem)
    assert items[0].fatal_for_file and "no column of the header gives" in items[0].message
    assert "a customer id (or a card number)" in items[0].message
    assert "a last name" not in items[0].message


def test_a_mapping_that_does_not_fit_the_file_is_one_problem(tmp_path):
    path = write_csv(tmp_path / "kunder.csv", "1001;Åsa;Öberg;;;;")
    items = read(path, mapping=Mapping(fields={"person.customerId": "MMID"}))
    assert len(items) == 1 and isinstance(items[0], ReadProblem)
    assert items[0].fatal_for_file and "no column 'MMID'" in items[0].message


# -- the error report --------------------------------------------------------------------


def report_rows(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    assert b"\r\n" in data
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def test_the_error_report_lists_every_reason_by_spreadsheet_row(tmp_path):
    source = write_csv(
        tmp_path / "kunder.csv",
        "1001;Åsa;Öberg;15.01.1955;;;",
        "",
        "1002;Per;;;;;",
        "1003;Karin;Ek;31.02.1980;;-1@x;")
    report = ErrorReport()
    for item in read(source):
        if isinstance(item, InvalidEntry | ReadProblem):
            report.add(item)
    assert len(report) == 3
    path = report.write(tmp_path / "out" / "errors.csv")
    assert report_rows(path) == [
        list(ERROR_REPORT_COLUMNS),
        # row 3 is empty: the numbers stay those Excel shows
        ["kunder.csv", "4", "Efternamn", "", "last name is missing"],
        ["kunder.csv", "5", "Födelsedatum", "31.02.1980", "31.02.1980 is not a real date"],
        ["kunder.csv", "5", "E-post", "'-1@x", "the e-mail address is not valid"],
    ]
    if os.name != "nt":
        assert os.stat(path).st_mode & 0o777 == 0o600  # personal data: the owner only


def test_report_cells_never_start_a_formula(tmp_path):
    path = write_csv(tmp_path / "evil.csv", '1001;Åsa;Öberg;=cmd|"/c calc"!A0;;;')
    items = read(path)
    written = write_error_report(tmp_path / "errors.csv", items)
    assert written == 1
    rows = report_rows(tmp_path / "errors.csv")
    assert rows[1][3] == "'=cmd|\"/c calc\"!A0"
    assert rows[1][4].startswith("'=cmd")  # the message quotes the value: made safe too


def test_json_files_refused_entries_and_file_problems_fit_the_same_report(tmp_path):
    source = tmp_path / "customers.json"
    source.write_text('{"data": [{"changeType": "CREATE", "person": {"customerId": "1", '
                      '"lastName": "Berg", "birthday": "1990-02-30"}}]}', encoding="utf-8")
    items = [i for i in FileReader(source) if isinstance(i, InvalidEntry | ReadProblem)]
    lines = [line for item in items for line in error_lines(item)]
    assert [(line.file, line.row, line.column) for line in lines] == [
        ("customers.json", 1, "person.birthday")]
    problem = ReadProblem(str(tmp_path / "gone.csv"), "cannot open the file",
                          fatal_for_file=True)
    write_error_report(tmp_path / "errors.csv", [*items, problem])
    rows = report_rows(tmp_path / "errors.csv")
    assert rows[2] == ["gone.csv", "", "", "", "cannot open the file"]
    assert len(rows) == 3


def test_a_report_is_written_whole_or_not_at_all(tmp_path):
    target = tmp_path / "errors.csv"
    target.write_bytes(b"old report")

    def failing_items():
        yield ReadProblem("a.csv", "first", 2)
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        write_error_report(target, failing_items())
    assert target.read_bytes() == b"old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["errors.csv"]
