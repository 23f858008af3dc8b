"""File names, readers, atomic writes and exports with real files in temp folders."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.models.records import CustomerRecord, FailureRecord
from app.services.results.failure_export import export_failures
from app.services.results.failure_list_file import load_failure_list, write_failure_list
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sources.customer_reader import FileReader, InvalidEntry, ReadProblem
from app.services.sources.file_search import find_customer_files
from app.util.atomic_files import atomic_write_bytes
from app.util.file_names import safe_file_name, single_failure_file_name
from app.util.spreadsheet_cells import neutralise_cell

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("customer_id", "username", "expected"), [
    ("50000001000", "CECILIA SÖDERBERG-1234", "customer_50000001000_CECILIASÖDERBERG-1234.json"),
    ("../../etc", "a/b\\c", "customer__.._etc~dc3aa439_a_b_c.json"),
    ("1", 'x<>:"|?*y', "customer_1_x_______y.json"),
    ("C-1001", "ANNA BERG", "customer_C-1001_ANNABERG.json"),
])
def test_single_failure_names_are_safe_and_keep_letters(customer_id, username, expected):
    assert single_failure_file_name(customer_id, username) == expected


def test_single_failure_names_never_share_a_file():
    ids = ["X/1234", "X_1234", "X:1234", "x_1234", "abc", "ABC", "Abc", "1" * 200, "1" * 201]
    names = [single_failure_file_name(i, "ANNA BERG") for i in ids]
    # one file per customer even where names are compared without case (Windows, macOS)
    assert len({n.casefold() for n in names}) == len(ids)
    without_id = {single_failure_file_name("", "", fallback_key=f"kunder.json#{n}")
                  for n in range(1, 4)}
    assert len(without_id) == 3 and all(n.startswith("customer_no-id~") for n in without_id)
    # and the same customer gets the same name in every run of the app (another process,
    # another hash seed): a new failure replaces the old file
    code = ("import json, sys\n"
            "from app.util.file_names import single_failure_file_name as name\n"
            "print(json.dumps([name(i, 'ANNA BERG') for i in json.loads(sys.argv[1])]))")
    for seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", code, json.dumps(ids)], cwd=ROOT,
                              capture_output=True, text=True, encoding="utf-8", check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONUTF8": "1"})
        assert json.loads(done.stdout) == names


def test_a_new_failure_of_a_customer_replaces_the_file_of_the_old_one(tmp_path):
    from app.services.results.result_writers import SingleFailureWriter

    first = SingleFailureWriter(tmp_path).add(failure(1, customer_id="x/1234"))
    again = SingleFailureWriter(tmp_path).add(failure(1, customer_id="x/1234",
                                                      error="failed again"))
    assert first is not None and again == first
    assert [p.name for p in first.parent.iterdir()] == [first.name]
    assert json.loads(first.read_text("utf-8"))["data"][0]["person"]["customerId"] == \
        "60000000001"  # the original entry, as sent


def test_reserved_and_long_names(tmp_path):
    assert safe_file_name("CON", ".json") == "_CON.json"
    assert safe_file_name("lpt1.txt", "") == "_lpt1.txt"
    long = single_failure_file_name("1" * 200, "Ö" * 300)
    assert len(long.encode()) <= 120
    (tmp_path / long).write_text("x", encoding="utf-8")  # the file system accepts it
    escaped = tmp_path / single_failure_file_name("..", "..")
    assert escaped.parent == tmp_path


def test_every_layout_and_encoding_is_read(tmp_path):
    customers = list(generate_customers(3))
    write_customer_file(tmp_path / "a.json", customers, wrapper="data")
    write_customer_file(tmp_path / "b.json", customers, wrapper="customers")
    write_customer_file(tmp_path / "c.json", customers, wrapper=None)
    write_customer_file(tmp_path / "d.jsonl", customers, json_lines=True)
    text = json.dumps({"data": customers}, ensure_ascii=False)
    (tmp_path / "e.json").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "f.json").write_text(text, encoding="utf-16")
    (tmp_path / "g.json").write_text(json.dumps({"meta": {"v": [1]}, "data": customers}),
                                     encoding="utf-8")
    search = find_customer_files([tmp_path])
    files = search.files
    assert not search.problems and len(files) == 7
    for path in files:
        items = list(FileReader(path))
        assert [i.record_id for i in items] == [c["person"]["customerId"] for c in customers], path
        assert items[0].data == customers[0]


def test_bookkeeping_files_are_skipped_in_folders(tmp_path):
    write_customer_file(tmp_path / "retry_batch_01_failed.json", generate_customers(1))
    (tmp_path / "retry_summary.json").write_text(
        '{"createdAt": "2026-01-01T10:00:00", "importStartedAt": "2026-01-01T09:59:00"}',
        encoding="utf-8")
    (tmp_path / "_SUMMARY_FAILED.json").write_text(
        '{"result": "FAILED", "count": 0, "updatedAt": "2026-01-01", "customers": []}',
        encoding="utf-8")
    search = find_customer_files([tmp_path])
    assert [f.name for f in search.files] == ["retry_batch_01_failed.json"]
    assert sorted(Path(s.path).name for s in search.skipped) == [
        "_SUMMARY_FAILED.json", "retry_summary.json"]


def test_broken_json_keeps_records_before_it_and_names_the_place(tmp_path):
    path = tmp_path / "broken.json"
    good = json.dumps(list(generate_customers(2)))[:-1]
    path.write_text('{"data": ' + good + ', {"changeType": "CREATE",, }]}', encoding="utf-8")
    items = list(FileReader(path))
    assert len([i for i in items if isinstance(i, CustomerRecord)]) == 2
    problem = items[-1]
    assert isinstance(problem, ReadProblem) and problem.fatal_for_file
    assert "broken.json, record 3" in str(problem) and "broken JSON" in str(problem)


def test_broken_json_line_becomes_an_invalid_entry_with_its_text(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_text('{"changeType": "CREATE", "person": {"customerId": "1"}}\n'
                    '{"changeType": "CREATE", "person": {"customerId": "2", }\n', "utf-8")
    items = list(FileReader(path))
    assert isinstance(items[1], InvalidEntry)
    assert items[1].record.data.startswith('{"changeType"')
    assert "line 2" in str(items[1].problem)


@pytest.mark.parametrize(("change", "field"), [
    (lambda c: c["person"].pop("customerId"), "person.customerId"),
    (lambda c: c["person"].update(birthday="1990-13-01"), "person.birthday"),
    (lambda c: c.pop("person"), "person"),
    (lambda c: c.update(changeType="DELETE"), "changeType"),
    (lambda c: c["person"]["customerCards"][0].pop("number"), "person.customerCards[1].number"),
])
def test_invalid_entries_name_the_field(tmp_path, change, field):
    customer = next(generate_customers(1))
    change(customer)
    write_customer_file(tmp_path / "x.json", [customer])
    (item,) = list(FileReader(tmp_path / "x.json"))
    assert isinstance(item, InvalidEntry)
    assert item.problem.field == field and f"field {field}" in str(item.problem)


def failure(i: int, **kwargs) -> FailureRecord:
    customer = next(generate_customers(1, start_id=60000000000 + i))
    values = dict(customer_id=customer["person"]["customerId"], username="ÅSA ÖBERG",
                  result="FAILED", error="=HYPERLINK(\"http://x\")", timestamp=f"t{i}",
                  batch_info="b", original_data=customer, source_file="/in/kunder.json",
                  record_number=i)
    values.update(kwargs)
    return FailureRecord(**values)


def test_csv_export_opens_in_excel_with_letters_and_no_formulas(tmp_path):
    path = export_failures([failure(1), failure(2, username="+46701234567")],
                           tmp_path / "f.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[1][1] == "ÅSA ÖBERG"
    assert rows[1][3].startswith("'=") and rows[2][1] == "'+46701234567"
    assert json.loads(rows[1][9])["person"]["customerId"] == "60000000001"
    assert neutralise_cell("-1") == "'-1" and neutralise_cell("\tx") == "'\tx"


@pytest.mark.parametrize("cell", [
    "=1+1", "+46", "-2", "@SUM(A1)", "\t=1", "\r=1", "\n=cmd|' /C calc'!A0",
    "\x00=1", "＝1+1", "＋1", "－1", "＠SUM(A1)", "  =1+1", "\u3000=1"])
def test_csv_cells_never_start_a_formula(cell):
    assert neutralise_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Åsa", "50000001", "a=b", "", "'=quoted already"])
def test_ordinary_csv_cells_are_left_alone(cell):
    assert neutralise_cell(cell) == cell


def test_json_and_txt_exports(tmp_path):
    records = [failure(1), failure(2)]
    data = json.loads(export_failures(records, tmp_path / "f.json").read_text("utf-8"))
    assert data[0]["originalData"] == records[0].original_data
    text = export_failures(records, tmp_path / "f.txt").read_text("utf-8-sig")
    assert "Failed customers: 2" in text and "ÅSA ÖBERG" in text


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "result.json"
    atomic_write_bytes(path, b"old")

    class Boom(Exception):
        pass

    from app.util.atomic_files import atomic_write

    def explode(handle):
        handle.write(b"half")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(path, explode)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_large_failure_lists_round_trip(tmp_path):
    path = tmp_path / "failed_customers.json"
    records = [failure(i) for i in range(3000)]
    assert write_failure_list(path, [r.to_row() for r in records]) == 3000
    loaded = load_failure_list(path)
    assert [r.customer_key for r in loaded] == [r.customer_key for r in records]
    assert loaded[-1].original_data == records[-1].original_data
    assert loaded[-1] == records[-1]


def test_single_failure_summaries_list_the_open_failures(tmp_path):
    from app.services.results.result_writers import SingleFailureWriter

    writer = SingleFailureWriter(tmp_path)
    records = [failure(i) for i in range(4)]
    for record in records:
        writer.add(record)
    outage = failure(9, error="no answer")
    outage.whole_batch = True  # an outage: retry files only, no single file
    assert writer.add(outage) is None
    records[2].attempts = 2
    records[2].error = "still failing"
    resolved = records[3].to_row()
    writer.finish([r.to_row() for r in records[:3]], [resolved])
    folder = tmp_path / "failed_customers" / "single_failures" / "FAILED"
    summary = json.loads((folder / "_SUMMARY_FAILED.json").read_text("utf-8"))
    assert summary["count"] == 3 and len(summary["customers"]) == 3
    assert [e["attempts"] for e in summary["customers"]] == [1, 1, 2]
    assert sum(e["error"] == "still failing" for e in summary["customers"]) == 1
    files = sorted(folder.glob("c*.json"))
    assert len(files) == 3
    moved = list((tmp_path / "failed_customers" / "resolved" / "FAILED").glob("c*.json"))
    assert len(moved) == 1 and records[3].customer_id in moved[0].name
    assert json.loads(files[0].read_text("utf-8"))["data"][0]["person"]["customerId"]
