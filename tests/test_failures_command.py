"""`python main.py failures list|export`: a results folder's open failures, as a user runs it
(a real process, after a real import against the sandbox)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from tests.conftest import run_cli


def import_with_failures(sandbox_thread, tmp_path: Path) -> tuple[Path, dict]:
    source = tmp_path / "kunder_åäö.json"
    write_customer_file(source, generate_customers(130, conflicts=2, refused=3, invalid=1))
    server = sandbox_thread.server
    out = tmp_path / "resultat Ö"
    done = run_cli("import", str(source), "--url", server.customers_url("c4r"), "--token",
                   server.static_token, "--output-dir", str(out), "--json")
    assert done.returncode == 1, done.stderr
    return out, json.loads(done.stdout)


def test_failures_list_and_export(sandbox_thread, tmp_path):
    out, summary = import_with_failures(sandbox_thread, tmp_path)
    assert summary["failed"] == 6

    listed = run_cli("failures", "list", "--output-dir", str(out), "--json")
    assert listed.returncode == 0, listed.stderr
    failures = json.loads(listed.stdout)
    assert len(failures) == 6
    assert sorted(f["result"] for f in failures) == ["CONFLICT"] * 2 + ["FAILED"] * 3 + \
        ["INVALID"]
    assert all(f["job"] == summary["job"] and f["attempts"] == 1 for f in failures)
    assert {f["source_file"] for f in failures} == {str(tmp_path / "kunder_åäö.json")}

    table = run_cli("failures", "list", "--output-dir", str(out))
    assert table.returncode == 0 and table.stdout.splitlines()[-1] == "6 open failures"
    assert table.stdout.splitlines()[0].split() == ["Customer", "ID", "Name", "Result",
                                                    "Attempts", "Message"]

    target = tmp_path / "export" / "öppna fel.csv"
    target.parent.mkdir()
    export = run_cli("failures", "export", "--output-dir", str(out), "--out", str(target),
                     "--delimiter", ";")
    assert export.returncode == 0, export.stderr
    assert export.stdout.strip() == f"6 open failures written to {target}"
    text = target.read_text("utf-8-sig")
    rows = list(csv.reader(text.splitlines(), delimiter=";"))
    assert len(rows) == 1 + 6 and len(rows[0]) > 3

    as_json = run_cli("failures", "export", "--output-dir", str(out), "--out",
                      str(tmp_path / "export" / "fel.json"))
    assert as_json.returncode == 0, as_json.stderr
    exported = json.loads((tmp_path / "export" / "fel.json").read_text("utf-8"))
    assert len(exported) == 6


def test_a_folder_without_history_has_no_open_failures(tmp_path):
    (tmp_path / "tom").mkdir()
    listed = run_cli("failures", "list", "--output-dir", str(tmp_path / "tom"))
    assert listed.returncode == 0
    assert listed.stdout.strip() == f"No open failures in {tmp_path / 'tom'}"
    as_json = run_cli("failures", "list", "--output-dir", str(tmp_path / "tom"), "--json")
    assert json.loads(as_json.stdout) == []


def test_an_export_that_cannot_be_written_says_so(sandbox_thread, tmp_path):
    out, _summary = import_with_failures(sandbox_thread, tmp_path)
    blocked = tmp_path / "en fil"
    blocked.write_text("not a folder")
    export = run_cli("failures", "export", "--output-dir", str(out), "--out",
                     str(blocked / "fel.csv"))
    assert export.returncode == 2
    assert export.stderr.startswith(f"error: {blocked / 'fel.csv'} could not be written")
