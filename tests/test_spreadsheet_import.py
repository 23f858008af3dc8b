"""Spreadsheets imported end to end, duplicate strategies and assignments, against the
sandbox API over loopback; and the command line's --mapping, --dry-run and exit statuses."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.models.failure_store import FailureStore
from app.services.pipeline.import_events import ImportSettings
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sources.batch_source import BatchSource
from app.services.sources.mapping_profiles import load_mapping
from app.services.sources.source_options import Assignment, SourceOptions
from app.services.sources.validation_pass import validate_files
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
MEMBER_HEADER = ("CustomerID;MMID;HHID;LoyaltyAccountid;FirstName;LastName;SSN;BirthDate;"
                 "IshouseholdOwner;MemberStatus;ReasonCode")
# valid Swedish personal numbers (Luhn over the last ten digits)
MEMBERS = [
    ("1", "9000578", "H1", "L1", "Åsa", "Öberg", "196408233234", "01.05.1966", "1"),
    ("2", "9000579", "H2", "L2", "Björn", "Ärlig", "NULL", "15.01.1955", "0"),
    ("3", "9000580", "H3", "L3", "Élise", "Nordström", "811218-9876", "NULL", "1"),
    ("4", "9000581", "H4", "L4", "Øystein", "Løvås", "NULL", "19550115", "1"),
]


def member_export(path: Path, rows: list[tuple[str, ...]] = MEMBERS) -> Path:
    """A member export as European Excel saves it: UTF-8 with BOM, `;`, CRLF, NULL."""
    lines = [MEMBER_HEADER] + [";".join((*row, "Active", "NULL")) for row in rows]
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


def by_hand(row: tuple[str, ...]) -> dict[str, Any]:
    """The entry a hand-written conversion of one member-export row gives."""
    _cid, mmid, _hh, _loyalty, first, last, ssn, birth, _owner = row
    person: dict[str, Any] = {"status": "ACTIVE", "statisticalUseAllowed": True,
                              "declarationAvailable": True, "customerId": mmid,
                              "firstName": first, "lastName": last}
    if birth != "NULL":
        if "." in birth:
            day, month, year = birth.split(".")
        else:
            year, month, day = birth[:4], birth[4:6], birth[6:]
        person["birthday"] = f"{year}-{month}-{day}"
    cards = [{"type": "MAIN_CARD", "number": mmid}]
    if ssn != "NULL":
        cards.append({"type": "PARTNER_CARD", "number": ssn})
    person["customerCards"] = cards
    return {"changeType": "CREATE", "type": "PERSON", "person": person}


async def test_member_export_with_its_mapping_sends_what_a_hand_conversion_gives(
        make_engine, sandbox, tmp_path):
    source = member_export(tmp_path / "medlemmar.csv")
    mapping = load_mapping(ROOT / "resources" / "mappings" / "member_export.json")
    engine = make_engine([source], mapping=mapping.to_dict())
    summary = await engine.run()
    assert (summary.total, summary.succeeded, summary.failed) == (4, 4, 0)
    assert summary.error_report is None  # nothing refused, no report
    assert len(sandbox.customers) == 4
    for row in MEMBERS:
        expected = by_hand(row)["person"]
        stored = orjson.loads(sandbox.customers.raw[row[1]])
        assert stored == expected, row[1]


async def test_refused_rows_become_invalid_failures_and_an_error_report(
        make_engine, sandbox, tmp_path):
    rows = [*MEMBERS[:2],
            ("5", "9000590", "H5", "L5", "Per", "Olsson", "196408233235", "31.02.1970", "1"),
            ("6", "9000578", "H6", "L6", "Ann", "Dup", "NULL", "NULL", "1")]
    source = member_export(tmp_path / "medlemmar.csv", rows)
    store = FailureStore()
    engine = make_engine([source], mapping=load_mapping("Member export").to_dict(),
                         store=store)
    summary = await engine.run()
    assert (summary.total, summary.succeeded, summary.invalid) == (4, 2, 2)
    assert summary.failed_by_result == {"INVALID": 2}
    assert len(sandbox.customers) == 2
    # the report: one line per reason, the row numbers Excel shows (header = row 1)
    assert summary.error_report is not None
    text = summary.error_report.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(text.decode("utf-8-sig"))))
    assert lines[0] == ["file", "row", "column", "value", "message"]
    assert [(r[1], r[2]) for r in lines[1:]] == [("4", "BirthDate"), ("4", "SSN"),
                                                ("5", "MMID")]
    assert "already used in row 2" in lines[3][4]
    # the failures keep the row as it was, and the customer id of its mapped column
    failures = sorted(store.records(), key=lambda f: f.record_number)
    # (a row repeating an earlier row's id is a failure of its own: the earlier row's
    # customer went in, and must not take this row's failure with it)
    assert [(f.customer_id, f.record_number, f.result) for f in failures] == [
        ("9000590", 4, "INVALID"), ("", 5, "INVALID")]
    assert failures[1].username == "ANN DUP" and "9000578" in failures[1].error
    assert failures[0].original_data["FirstName"] == "Per"
    assert failures[0].username == "PER OLSSON"
    assert "row 4" in failures[0].error
    # the journal knows where the report is (History offers it)
    from app.services.jobs.journal import Journal
    journal = Journal.open(tmp_path / "out")
    try:
        job = journal.job(summary.job)
    finally:
        journal.close()
    assert job.error_report == str(summary.error_report)


@pytest.mark.parametrize("strategy", ["create", "skip", "update"])
async def test_duplicate_strategies(make_engine, sandbox, tmp_path, strategy):
    first = tmp_path / "first.json"
    write_customer_file(first, generate_customers(30))
    assert (await make_engine([first], keep_history=False).run()).succeeded == 30
    again = tmp_path / "again.json"
    # the same 30 customers (20 of them with a new last name) and 10 new ones
    customers = list(generate_customers(40))
    for customer in customers[:20]:
        customer["person"]["lastName"] = "Nyström"
    write_customer_file(again, customers)
    engine = make_engine([again], on_existing=strategy, keep_history=False,
                         output_dir=tmp_path / f"out-{strategy}")
    summary = await engine.run()
    created = sandbox.state()["create_attempts_total"]
    assert summary.succeeded == 10
    stored = orjson.loads(sandbox.customers.raw[customers[0]["person"]["customerId"]])
    if strategy == "create":
        assert (summary.failed, summary.updated, summary.skipped_existing) == (30, 0, 0)
        assert summary.failed_by_result == {"CONFLICT": 30}
        assert stored["lastName"] != "Nyström"
    elif strategy == "skip":
        assert (summary.failed, summary.updated, summary.skipped_existing) == (0, 0, 30)
        assert summary.retry_dir is None and summary.exit_code == 0
        assert stored["lastName"] != "Nyström"
        assert sandbox.state()["updates"] == 0
    else:
        assert (summary.failed, summary.updated, summary.skipped_existing) == (0, 30, 0)
        assert summary.exit_code == 0
        assert stored["lastName"] == "Nyström"
        assert sandbox.state()["updates"] == 30
    assert created == 70  # every customer sent once as CREATE, and no more
    data = summary.to_json()
    assert (data["skipped"], data["updated"], data["on_existing"]) == (
        summary.skipped_existing, summary.updated, strategy)


async def test_an_invalid_row_is_refused_under_the_update_strategy_too(make_engine, sandbox,
                                                                        tmp_path):
    first = tmp_path / "first.json"
    write_customer_file(first, generate_customers(5))
    await make_engine([first], keep_history=False).run()
    again = tmp_path / "again.json"
    customers = list(generate_customers(5))
    customers[0]["person"]["birthday"] = "1990-13-45"  # the sandbox refuses it
    customers[0]["person"]["lastName"] = "Ny"
    write_customer_file(again, customers)
    engine = make_engine([again], on_existing="update", keep_history=False,
                         output_dir=tmp_path / "out2")
    summary = await engine.run()
    # the local check refuses the impossible date before anything is sent
    assert (summary.updated, summary.failed) == (4, 1)
    assert summary.failed_by_result == {"INVALID": 1}


async def test_update_failures_from_the_service_are_failures(make_engine, sandbox, tmp_path):
    first = tmp_path / "first.json"
    write_customer_file(first, generate_customers(5))
    await make_engine([first], keep_history=False).run()
    again = tmp_path / "again.json"
    customers = list(generate_customers(5))
    customers[1]["person"]["firstName"] = "Anna Lena"  # CONFLICT on create, FAILED on update
    write_customer_file(again, customers)
    summary = await make_engine([again], on_existing="update", keep_history=False,
                                output_dir=tmp_path / "out2").run()
    assert (summary.updated, summary.failed) == (4, 1)
    assert summary.failed_by_result == {"FAILED": 1}


@pytest.mark.parametrize(("rule", "expected"), [
    (Assignment.parse("single:person.homeStore=S042"), ["S042"] * 5),
    (Assignment.parse("round-robin:person.homeStore=A,B,C"), ["A", "B", "C", "A", "B"]),
    (Assignment.parse("column:person.homeStore=Butik"), ["Kista", "Täby", None, "Kista",
                                                         "Umeå"]),
])
async def test_assignment_modes_on_a_spreadsheet(make_engine, sandbox, tmp_path, rule,
                                                 expected):
    source = tmp_path / "kunder.csv"
    stores = ["Kista", "Täby", "", "Kista", "Umeå"]
    source.write_text("Kundnummer;Förnamn;Efternamn;Butik\n" + "".join(
        f"K{n};Åsa;Öberg;{store}\n" for n, store in enumerate(stores)), encoding="utf-8")
    summary = await make_engine([source], assignment=rule.to_dict()).run()
    assert summary.succeeded == 5
    got = [orjson.loads(sandbox.customers.raw[f"K{n}"]).get("homeStore") for n in range(5)]
    assert got == expected


async def test_round_robin_goes_on_across_files_and_by_path_in_json(make_engine, sandbox,
                                                                    tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    first, second = list(generate_customers(3)), list(generate_customers(2, start_id=9000))
    for n, customer in enumerate(first + second):
        customer["person"]["extra"] = {"group": f"G{n}"}
    write_customer_file(a, first)
    write_customer_file(b, second)
    rule = Assignment.parse("round-robin:person.homeStore=S1,S2")
    await make_engine([a, b], assignment=rule.to_dict()).run()
    ids = [c["person"]["customerId"] for c in first + second]
    stores = [orjson.loads(sandbox.customers.raw[i])["homeStore"] for i in ids]
    assert stores == ["S1", "S2", "S1", "S2", "S1"]
    by_path = Assignment.parse("column:person.customerGroup=person.extra.group")
    source = BatchSource([a], 10, options=SourceOptions(assignment=by_path.to_dict()))
    batch = source.next_chunk(1).batches[0]
    entries = orjson.loads(batch.body)["data"]
    assert [e["person"]["customerGroup"] for e in entries] == ["G0", "G1", "G2"]


def homestores(chunk) -> list[str]:
    return [e["person"]["homeStore"] for batch in chunk.batches
            for e in orjson.loads(batch.body)["data"]]


def test_round_robin_goes_on_from_where_a_reader_stopped(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_customer_file(a, generate_customers(3))
    write_customer_file(b, generate_customers(5, start_id=9000))
    options = SourceOptions(assignment=Assignment.parse(
        "round-robin:person.homeStore=S1,S2").to_dict())
    whole = BatchSource([a, b], 2, options=options)
    values: list[str] = []
    positions = []
    while True:
        chunk = whole.next_chunk(1)
        values += homestores(chunk)
        positions.append(chunk.position)
        if chunk.exhausted:
            break
    assert values == ["S1", "S2", "S1", "S2", "S1", "S2", "S1", "S2"]
    # a reader started again from each position a chunk handed over (as after a crash of
    # the reader process) gives the rest exactly the values the first reader gave
    for position in positions[:-1]:
        again = BatchSource([a, b], 2, options=options, start=position)
        rest: list[str] = []
        while True:
            chunk = again.next_chunk(1)
            rest += homestores(chunk)
            if chunk.exhausted:
                break
        sent_before = len(values) - len(rest)
        assert rest == values[sent_before:], position
    in_b = [p for p in positions if p.file_index == 1]
    assert in_b and all(p.assigned_before_file == 3 for p in in_b)
    assert any(p.record > 0 for p in in_b)  # one handover in the middle of file b


def test_validation_pass_counts_like_an_import_and_writes_the_report(tmp_path):
    rows = [*MEMBERS,
            ("9", "9000599", "H9", "L9", "Per", "", "NULL", "NULL", "1")]
    source = member_export(tmp_path / "medlemmar.csv", rows)
    seen: list[int] = []
    result = validate_files([source], SourceOptions(
        mapping=load_mapping("Member export").to_dict()),
        report_path=tmp_path / "report.csv", progress=seen.append)
    assert (result.rows, result.valid, result.invalid) == (5, 4, 1)
    assert [(line.file, line.row, line.column) for line in result.first_errors] == [
        ("medlemmar.csv", 6, "LastName")]
    assert result.error_report == tmp_path / "report.csv" and result.error_lines == 1
    assert result.unmapped_columns == {str(source): [
        "CustomerID", "HHID", "LoyaltyAccountid", "IshouseholdOwner", "MemberStatus",
        "ReasonCode"]}
    assert seen and seen[-1] == 5


# -- the command line ----------------------------------------------------------------------


def test_dry_run_sends_nothing_and_exits_by_validity(sandbox_thread, tmp_path):
    server = sandbox_thread.server
    clean = member_export(tmp_path / "ren.csv")
    done = run_cli("import", str(clean), "--mapping", "Member export", "--dry-run",
                   "--output-dir", str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["valid"], summary["invalid"], summary["error_report"]) == (4, 0, None)
    dirty = member_export(tmp_path / "smutsig.csv", [
        *MEMBERS, ("5", "9000590", "H5", "L5", "Per", "Olsson", "NULL", "31.02.1970", "1")])
    done = run_cli("import", str(dirty), "--mapping", "Member export", "--dry-run",
                   "--output-dir", str(tmp_path / "out"), "--json")
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["valid"], summary["invalid"]) == (4, 1)
    report = Path(summary["error_report"]).read_text("utf-8-sig")
    assert "smutsig.csv,6,BirthDate,31.02.1970" in report
    assert server.state()["requests"] == 0  # nothing was sent


def test_a_header_without_required_fields_exits_2_naming_them(sandbox_thread, tmp_path):
    server = sandbox_thread.server
    source = tmp_path / "namn.csv"
    source.write_text("Förnamn;Stad\nÅsa;Umeå\n", encoding="utf-8")
    for extra in (["--dry-run"], ["--url", server.customers_url("c4r"), "--token",
                                  server.static_token]):
        done = run_cli("import", str(source), "--output-dir", str(tmp_path / "out"),
                       "--json", *extra)
        assert done.returncode == 2, done.stderr
        summary = json.loads(done.stdout)
        assert len(summary["problems"]) == 1
        assert "a customer id (or a card number)" in summary["problems"][0]
        assert "a last name" in summary["problems"][0]
    assert server.state()["requests"] == 0


@pytest.mark.parametrize(("strategy", "skipped", "updated"), [("skip", 18, 0),
                                                               ("update", 0, 18)])
def test_skip_and_update_strategies_and_their_retry_folders(sandbox_thread, tmp_path, strategy,
                                                            skipped, updated):
    server = sandbox_thread.server
    url, token = server.customers_url("c4r"), server.static_token
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(20, refused=2))
    first = run_cli("import", str(source), "--url", url, "--token", token, "--output-dir",
                    str(tmp_path / "a"), "--json")
    assert first.returncode == 1
    done = run_cli("import", str(source), "--url", url, "--token", token, "--output-dir",
                   str(tmp_path / "b"), "--json", "--on-existing", strategy)
    summary = json.loads(done.stdout)
    assert (summary["skipped"], summary["updated"], summary["failed"],
            summary["on_existing"]) == (skipped, updated, 2, strategy)
    assert server.state()["updates"] == updated  # skip leaves what the service holds alone
    retry_dir = Path(summary["retry_dir"])
    kept = json.loads((retry_dir / "retry_summary.json").read_text("utf-8"))
    assert kept["onExisting"] == strategy
    # a retry of that folder runs with the same strategy without being told
    again = run_cli("import", str(retry_dir), "--url", url, "--token", token,
                    "--output-dir", str(tmp_path / "c"), "--json")
    assert json.loads(again.stdout)["on_existing"] == strategy


def test_bad_mapping_and_assignment_are_usage_errors(tmp_path):
    source = member_export(tmp_path / "m.csv")
    done = run_cli("import", str(source), "--mapping", "No such mapping", "--dry-run")
    assert done.returncode == 2 and "no saved mapping named" in done.stderr
    done = run_cli("import", str(source), "--assign", "sometimes:person.x=1", "--dry-run")
    assert done.returncode == 2 and "single, round-robin or column" in done.stderr


def test_the_files_tab_count_of_a_spreadsheet_follows_its_mapping(tmp_path):
    from app.services.sources.file_inspector import inspect_file
    source = member_export(tmp_path / "medlemmar.csv", [
        *MEMBERS, ("5", "9000578", "H5", "L5", "Per", "Dup", "NULL", "NULL", "1")])
    counted = inspect_file(source, mapping=load_mapping("Member export").to_dict())
    assert (counted.usable, counted.customers, counted.invalid) == (True, 5, 1)
    assert counted.first_invalid.startswith("medlemmar.csv, row 6, field MMID: ")
    broken = inspect_file(source, mapping={"fields": {"person.customerId": "Nope",
                                                      "person.lastName": "LastName"}})
    assert not broken.usable and "no column 'Nope'" in (broken.problem or "")
    headless = tmp_path / "namn.csv"
    headless.write_text("Förnamn;Stad\nÅsa;Umeå\n", encoding="utf-8")
    unmapped = inspect_file(headless)
    assert not unmapped.usable and "a last name" in (unmapped.problem or "")


def test_a_spreadsheet_counts_by_its_customers_when_choosing_helper_processes(tmp_path):
    from app.services.sources.batch_source import PROCESS_READER_MIN_BYTES, is_large_import
    row = "50000001234;Åsa;Öberg;1966-05-01;asa@example.se\n"
    rows = PROCESS_READER_MIN_BYTES // 3 // len(row.encode()) + 10
    source = tmp_path / "kunder.csv"
    source.write_text("Kundnummer;Förnamn;Efternamn;Födelsedatum;E-post\n" + row * rows,
                      encoding="utf-8")
    same_bytes_of_json = tmp_path / "kunder.json"
    same_bytes_of_json.write_bytes(b" " * source.stat().st_size)
    assert source.stat().st_size < PROCESS_READER_MIN_BYTES
    assert is_large_import([source]) and not is_large_import([same_bytes_of_json])


def test_the_demo_spreadsheet_has_the_mistakes_the_readme_promises(tmp_path):
    from app.services.sandbox.demo import ensure_demo_spreadsheet
    path = ensure_demo_spreadsheet(tmp_path)
    result = validate_files([path], SourceOptions(
        mapping=load_mapping("Member export").to_dict()))
    assert (result.rows, result.valid, result.invalid) == (240, 237, 3)
    assert sorted(line.column for line in result.first_errors) == ["BirthDate", "MMID", "SSN"]
    readme = " ".join((ROOT / "README.md").read_text("utf-8").split())
    assert "237 valid rows and 3 with mistakes" in readme


def test_a_reader_started_again_does_not_report_refused_rows_twice(tmp_path):
    source = tmp_path / "kunder.csv"
    source.write_text("Kundnummer;Förnamn;Efternamn\nK1;Åsa;\n" + "".join(
        f"K{n};Per;Öberg\n" for n in range(2, 12)), encoding="utf-8")
    first = BatchSource([source], 2)
    chunk = first.next_chunk(1)
    assert [line.row for line in chunk.error_lines] == [2]  # K1 has no last name
    # a new reader (the reader process died) goes on from where the first one was
    again = BatchSource([source], 2, start=chunk.position)
    lines = []
    while not chunk.exhausted:
        chunk = again.next_chunk(5)
        lines += chunk.error_lines
    assert lines == []


def sender_for(strategy: str):
    from app.services.pipeline.batch_sender import BatchSender
    settings = ImportSettings(customers_url="http://127.0.0.1:9/customers",
                              on_existing=strategy)
    return BatchSender(None, settings, None, asyncio.Event(), asyncio.Event())  # type: ignore[arg-type]


@pytest.mark.parametrize(("strategy", "updated", "created_before"), [
    ("update", ["A"], 0), ("create", [], 1), ("skip", [], 1)])
async def test_a_conflict_for_a_customer_a_stopped_run_may_have_sent(strategy, updated,
                                                                      created_before):
    from app.models.records import Batch, CustomerRecord, RecordKind
    from app.services.pipeline.batch_sender import Attempt
    records = [CustomerRecord({"changeType": "CREATE", "type": "PERSON",
                               "person": {"customerId": i, "lastName": "Öberg"}}, "k.json", n)
               for n, i in enumerate(("A", "B"), start=1)]
    batch = Batch.from_records(1, RecordKind.CUSTOMERS, records, resumed_ids={"A"})
    answer = orjson.dumps({"data": [{"customerId": "A", "result": "CONFLICT"},
                                    {"customerId": "B", "result": "SUCCESS"}]})
    outcome = sender_for(strategy).outcome_from_answer(batch, Attempt(status=200, body=answer))
    # under "update" it may have existed before the stopped run: it is updated all the same
    assert [part.ids for part in outcome.resend if part.update_of_existing] == (
        [updated] if updated else [])
    assert outcome.created_before_interruption == created_before
    assert outcome.succeeded == 1 + created_before and outcome.failures == []


def test_retry_files_keep_their_values_and_new_files_are_assigned(tmp_path):
    from app.services.pipeline.import_engine import source_options
    retry = tmp_path / "retry_batches_20261130_101500"
    retry.mkdir()
    kept = list(generate_customers(2))
    for customer in kept:
        customer["person"]["homeStore"] = "FIRST"
    write_customer_file(retry / "retry_batch_01_failed.json", kept)
    (retry / "retry_summary.json").write_text(
        '{"importStartedAt": "2026-11-30T10:15:00", "files": []}', "utf-8")
    new = tmp_path / "nya.json"
    write_customer_file(new, generate_customers(2, start_id=9000))
    files = [retry / "retry_batch_01_failed.json", new]
    settings = ImportSettings(customers_url="", assignment=Assignment.parse(
        "round-robin:person.homeStore=S1,S2").to_dict())
    options = source_options(settings, files)
    assert options.unassigned_files == [str(files[0])]
    chunk = BatchSource(files, 10, options=options).next_chunk(10)
    assert [homestores_of(batch) for batch in chunk.batches] == [["FIRST", "FIRST"],
                                                                 ["S1", "S2"]]


def homestores_of(batch) -> list[str]:
    return [e["person"]["homeStore"] for e in orjson.loads(batch.body)["data"]]


def test_error_reports_of_the_same_second_never_share_a_file(tmp_path):
    from app.services.results.result_writers import new_unique_file
    names = [new_unique_file(tmp_path, "error_report_20261130_101500", ".csv").name
             for _ in range(3)]
    assert names == ["error_report_20261130_101500.csv", "error_report_20261130_101500_2.csv",
                     "error_report_20261130_101500_3.csv"]


def test_resume_refuses_options_that_would_read_the_files_otherwise(tmp_path):
    done = run_cli("import", "--resume", "last", "--mapping", "Member export",
                   "--on-existing", "update", "--output-dir", str(tmp_path))
    assert done.returncode == 2
    assert "--mapping, --on-existing cannot be used with --resume" in done.stderr
