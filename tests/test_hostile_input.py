"""Hostile input: what a careless or malicious file does to an import, through the command line.

Every customer read must end imported or as a failure naming file, record and reason; a
file that cannot be read must be named, with exit status 2.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from tests.conftest import ROOT, run_cli


def cli_import(sandbox_thread, tmp_path: Path, *paths: Path | str, prefix: tuple[str, ...] = ()
               ) -> tuple[subprocess.CompletedProcess, dict]:
    server = sandbox_thread.server
    done = run_cli("import", *map(str, paths), "--url", server.customers_url("c4r"),
                   "--token", server.static_token, "--output-dir", str(tmp_path / "out"),
                   "--json", prefix=prefix)
    try:
        summary = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON summary (exit {done.returncode}): {done.stderr[-2000:]}")
    return done, summary


def failures(summary: dict) -> list[dict]:
    return json.loads(Path(summary["failed_file"]).read_text("utf-8"))


def nested(depth: int) -> dict:
    value: dict = {"level": depth}
    for _ in range(depth):
        value = {"inner": value}
    return value


def test_a_deeply_nested_entry_is_invalid_and_the_import_goes_on(sandbox_thread, tmp_path):
    customers = list(generate_customers(40))
    customers[7]["person"]["extra"] = nested(300)
    first = tmp_path / "in" / "a_deep.json"
    first.parent.mkdir()
    first.write_text(json.dumps({"data": customers}), encoding="utf-8")
    lists = tmp_path / "in" / "b_lists.json"
    deep_list: list = []
    for _ in range(400):
        deep_list = [deep_list]
    lists.write_text(json.dumps([deep_list, deep_list]), encoding="utf-8")
    write_customer_file(tmp_path / "in" / "c_after.json", generate_customers(25, start_id=900))
    done, summary = cli_import(sandbox_thread, tmp_path, tmp_path / "in")
    assert done.returncode == 1, done.stderr
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (67, 64, 3)
    assert summary["failed_by_result"] == {"INVALID": 3}
    assert len(sandbox_thread.server.customers) == 64
    reasons = {(Path(f["sourceFile"]).name, f["recordNumber"]): f["error"]
               for f in failures(summary)}
    assert len(reasons) == 3
    assert "nested more than 255 levels" in reasons[("a_deep.json", 8)]
    assert "a_deep.json, record 8, field person.extra" in reasons[("a_deep.json", 8)]
    assert "entry is a list" in reasons[("b_lists.json", 1)]
    # the original is kept whole, 400 levels and all
    kept = next(f for f in failures(summary) if f["recordNumber"] == 2)["originalData"]
    depth = 0
    while isinstance(kept, list) and kept:
        kept, depth = kept[0], depth + 1
    assert depth == 400


def test_the_reader_process_never_loses_a_file(sandbox_thread, tmp_path):
    # 8 MB or more: read by a separate process; a deep entry used to end it
    first = tmp_path / "in" / "a_large.json"
    first.parent.mkdir()
    customers = list(generate_customers(12_000, start_id=10_000_000))
    customers[100]["person"]["extra"] = nested(300)
    first.write_text(json.dumps({"data": customers}), encoding="utf-8")
    write_customer_file(tmp_path / "in" / "b_second.json",
                        generate_customers(12_000, start_id=20_000_000))
    assert sum(p.stat().st_size for p in (tmp_path / "in").iterdir()) >= 8 * 1024 * 1024
    done, summary = cli_import(sandbox_thread, tmp_path, tmp_path / "in")
    assert done.returncode == 1, done.stderr
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (24_000, 23_999, 1)
    assert len(sandbox_thread.server.customers) == 23_999


@pytest.mark.parametrize("content", [
    '{"data": {"changeType": "CREATE"}}', '{"data": null}', '{"data": "x"}',
    '{"customers": {"a": 1}}', '{"meta": 1, "households": 7}'])
def test_a_wrapper_that_holds_no_list_is_an_unreadable_file(sandbox_thread, tmp_path,
                                                            content):
    bad = tmp_path / "wrapped.json"
    bad.write_text(content, encoding="utf-8")
    good = tmp_path / "good.json"
    write_customer_file(good, generate_customers(3))
    done, summary = cli_import(sandbox_thread, tmp_path, bad, good)
    assert done.returncode == 2, done.stderr
    assert summary["succeeded"] == 3
    assert len(summary["problems"]) == 1
    assert "wrapped.json" in summary["problems"][0]
    assert "not a list of customers" in summary["problems"][0]


def _without_root_powers() -> tuple[str, ...] | None:
    """A shell prefix under which file permissions apply: root ignores them otherwise."""
    if os.geteuid() != 0:
        return ()
    capsh = shutil.which("capsh")
    if capsh is None:
        return None
    return (capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c")


@pytest.mark.skipif(os.name != "posix", reason="folder permissions as POSIX defines them")
def test_an_unreadable_folder_is_named_and_exits_2(sandbox_thread, tmp_path):
    prefix = _without_root_powers()
    if prefix is None:
        pytest.skip("running as root without capsh: permissions cannot be dropped")
    root = tmp_path / "in"
    write_customer_file(root / "ok.json", generate_customers(5))
    locked = root / "locked"
    write_customer_file(locked / "hidden.json", generate_customers(5, start_id=500))
    locked_arg = tmp_path / "locked_arg"
    write_customer_file(locked_arg / "x.json", generate_customers(5, start_id=700))
    server = sandbox_thread.server
    args = [sys.executable, str(ROOT / "main.py"), "import", str(root), str(locked_arg),
            "--url", server.customers_url("c4r"), "--token", server.static_token,
            "--output-dir", str(tmp_path / "out"), "--json"]
    command = [*prefix, shlex.join(args)] if prefix else args
    locked.chmod(0)
    locked_arg.chmod(0)
    try:
        done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8",
                              timeout=180)
    finally:
        locked.chmod(0o755)
        locked_arg.chmod(0o755)
    assert done.returncode == 2, done.stderr
    summary = json.loads(done.stdout)
    assert summary["succeeded"] == 5
    problems = " | ".join(summary["problems"])
    assert len(summary["problems"]) == 2
    assert "locked: the folder could not be searched (no permission)" in problems
    assert "locked_arg: the folder could not be searched (no permission)" in problems


def test_integers_beyond_64_bits_keep_every_digit(sandbox_thread, tmp_path):
    customers = list(generate_customers(4))
    source = tmp_path / "kort.json"
    text = json.dumps({"data": customers})
    card = customers[2]["person"]["customerCards"][0]["number"]
    text = text.replace(f'"number": "{card}"', '"number": 900000000000000000001234')
    source.write_text(text, encoding="utf-8")
    done, summary = cli_import(sandbox_thread, tmp_path, source)
    assert done.returncode == 0, done.stderr
    assert summary["succeeded"] == 4
    stored = sandbox_thread.server.customers.raw[customers[2]["person"]["customerId"]]
    assert b'"number":900000000000000000001234' in stored


def test_a_customer_file_is_read_whatever_its_name_and_only_own_files_are_skipped(
        sandbox_thread, tmp_path):
    folder = tmp_path / "in"
    write_customer_file(folder / "import_report_2026.json", generate_customers(3))
    write_customer_file(folder / ".kunder_dolda.json", generate_customers(4, start_id=300))
    write_customer_file(folder / "_SUMMARY_mars.json", generate_customers(2, start_id=600))
    (folder / "retry_summary.json").write_text(json.dumps(
        {"createdAt": "2026-01-01T10:00:00", "importStartedAt": "2026-01-01T09:59:59",
         "files": []}), encoding="utf-8")
    (folder / "._kunder.json").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    done, summary = cli_import(sandbox_thread, tmp_path, folder)
    assert done.returncode == 0, done.stderr
    assert summary["succeeded"] == 9
    assert sorted(Path(f).name for f in summary["files"]) == [
        ".kunder_dolda.json", "_SUMMARY_mars.json", "import_report_2026.json"]
    assert len(summary["skipped_files"]) == 2
    skipped = " | ".join(summary["skipped_files"])
    assert "retry_summary.json: the summary of a retry folder" in skipped
    assert "._kunder.json: a macOS resource file" in skipped
    assert "Skipped: retry_summary.json" in done.stderr


def test_an_unpaired_surrogate_makes_the_entry_invalid(sandbox_thread, tmp_path):
    customers = list(generate_customers(5))
    text = json.dumps({"data": customers})
    name = customers[1]["person"]["firstName"]
    text = text.replace(json.dumps(name), '"Bj\\ud800rn"', 1)
    source = tmp_path / "trasig.json"
    source.write_text(text, encoding="utf-8")
    done, summary = cli_import(sandbox_thread, tmp_path, source)
    assert done.returncode == 1, done.stderr
    assert (summary["succeeded"], summary["failed_by_result"]) == (4, {"INVALID": 1})
    [failure] = failures(summary)
    assert failure["recordNumber"] == 2
    assert "field person.firstName" in failure["error"]
    assert "unpaired UTF-16 surrogate \\ud800" in failure["error"]
    assert customers[1]["person"]["customerId"] not in sandbox_thread.server.customers
    # the original keeps the broken character exactly, as an escape
    raw = Path(summary["failed_file"]).read_text("utf-8")
    assert '"Bj\\ud800rn"' in raw


def test_a_number_as_customer_id_is_refused_before_sending(sandbox_thread, tmp_path):
    customers = list(generate_customers(3))
    customers[0]["person"]["customerId"] = 12345
    source = tmp_path / "nummer.json"
    source.write_text(json.dumps({"data": customers}), encoding="utf-8")
    done, summary = cli_import(sandbox_thread, tmp_path, source)
    assert done.returncode == 1
    assert summary["failed_by_result"] == {"INVALID": 1}
    [failure] = failures(summary)
    assert 'customerId must be text in quotes ("12345"), not a number' in failure["error"]
    assert sandbox_thread.server.state()["requests"] == 1  # only the two good ones, once


@pytest.mark.skipif(os.name != "posix", reason="links, pipes and devices as POSIX has them")
def test_links_pipes_and_devices_are_named_for_what_they_are(sandbox_thread, tmp_path):
    folder = tmp_path / "in"
    write_customer_file(folder / "ok.json", generate_customers(2))
    (folder / "loop.json").symlink_to(folder / "loop.json")
    os.mkfifo(folder / "pipe.json")
    (folder / "zero.json").symlink_to("/dev/zero")
    (folder / "gone.json").symlink_to(folder / "missing.json")
    done, summary = cli_import(sandbox_thread, tmp_path, folder)
    assert done.returncode == 2, done.stderr
    assert summary["succeeded"] == 2
    problems = {Path(p.split(":")[0]).name: p for p in summary["problems"]}
    assert len(problems) == 4
    assert "a link that leads back to itself" in problems["loop.json"]
    assert "a named pipe, not a file" in problems["pipe.json"]
    assert "a device (reached through a link), not a file" in problems["zero.json"]
    assert "a link to a file or folder that does not exist" in problems["gone.json"]
    # given directly, the same words, and nothing tried at all
    alone = run_cli("import", str(folder / "loop.json"), "--url", "http://127.0.0.1:9/x",
                    "--token", "t")
    assert alone.returncode == 2 and "a link that leads back to itself" in alone.stderr
    assert "no such file" not in alone.stderr


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read(sandbox_thread, tmp_path, encoding):
    customers = list(generate_customers(4))
    customers[0]["person"]["firstName"] = "Åsa"
    source = tmp_path / "unicode.json"
    source.write_bytes(json.dumps({"data": customers}, ensure_ascii=False).encode(encoding))
    done, summary = cli_import(sandbox_thread, tmp_path, source)
    assert done.returncode == 0, done.stderr
    assert summary["succeeded"] == 4
    stored = sandbox_thread.server.customers[customers[0]["person"]["customerId"]]
    assert stored["firstName"] == "Åsa"


@pytest.mark.parametrize("layout", ["array", "wrapped", "late_wrapper", "lines"])
def test_a_windows_1252_byte_is_reported_at_its_own_record(sandbox_thread, tmp_path, layout):
    customers = list(generate_customers(8))
    customers[4]["person"]["lastName"] = "Öberg"
    if layout == "lines":
        text = "\n".join(json.dumps(c, ensure_ascii=False) for c in customers) + "\n"
        source = tmp_path / "ansi.jsonl"
    else:
        body = {"array": customers, "wrapped": {"data": customers},
                "late_wrapper": {"meta": {"from": "crm"}, "data": customers}}[layout]
        text = json.dumps(body, ensure_ascii=False, indent=2)
        source = tmp_path / "ansi.json"
    raw = text.encode("utf-8").replace("Öberg".encode(), "Öberg".encode("cp1252"))
    source.write_bytes(raw)
    done, summary = cli_import(sandbox_thread, tmp_path, source)
    assert done.returncode == 1, done.stderr
    assert (summary["succeeded"], summary["failed_by_result"]) == (7, {"INVALID": 1})
    [failure] = failures(summary)
    assert failure["recordNumber"] == 5
    assert f"{source.name}, record 5, field person.lastName" in failure["error"]
    assert "0xD6, which is not UTF-8" in failure["error"]
    assert failure["username"].endswith("ÖBERG")


@pytest.mark.parametrize("layout", ["array", "wrapped", "late_wrapper"])
def test_text_after_the_list_is_named_without_a_record_that_does_not_exist(
        sandbox_thread, tmp_path, layout):
    customers = list(generate_customers(3))
    body = {"array": customers, "wrapped": {"data": customers},
            "late_wrapper": {"meta": 1, "data": customers}}[layout]
    source = tmp_path / "extra.json"
    source.write_text(json.dumps(body, indent=2) + '\n{"data": [1, 2]}\n', encoding="utf-8")
    done, summary = cli_import(sandbox_thread, tmp_path, source)
    assert done.returncode == 2, done.stderr
    assert summary["succeeded"] == 3
    [problem] = summary["problems"]
    assert "after the last customer (record 3" in problem
    assert "record 4" not in problem
    assert "was not read" in problem


def test_a_conflict_with_an_id_of_the_same_import_is_explained_and_not_retried(
        sandbox_thread, tmp_path):
    customers = list(generate_customers(6))
    twin = json.loads(json.dumps(customers[1]))
    twin["person"]["firstName"] = "Tvilling"
    source = tmp_path / "dubbletter.json"
    source.write_text(json.dumps({"data": [*customers, twin]}), encoding="utf-8")
    done, summary = cli_import(sandbox_thread, tmp_path, source)
    assert done.returncode == 1, done.stderr
    assert summary["failed_by_result"] == {"CONFLICT": 1}
    [failure] = failures(summary)
    assert "hold this id more than once" in failure["error"]
    assert failure["retriable"] is False
    assert summary["retry_customers"] == 0 and summary["retry_files"] == []


def test_credentials_echoed_by_a_server_are_stored_nowhere(sandbox_thread, tmp_path):
    server = sandbox_thread.server
    server.config.users = {"anna": "Hemligt-Lösen-42"}
    server.config.client_secret = "klient-hemlighet-9"
    server.config.echo_credentials = True
    passport = "PASS-5f1c2d9e-0042"
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(60, refused=10))
    done = run_cli("import", str(source), "--url", server.customers_url("c4r"),
                   "--auth", "c4r", "--username", "anna", "--client-id", "bulk-import",
                   "--output-dir", str(tmp_path / "out"), "--json", "--passport", passport,
                   env={"BULK_IMPORT_PASSWORD": "Hemligt-Lösen-42",
                        "BULK_IMPORT_CLIENT_SECRET": "klient-hemlighet-9"})
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["failed_by_result"] == {"FAILED": 10}
    issued = list(server._tokens)
    assert len(issued) == 1
    secrets = [issued[0], "Hemligt-Lösen-42", "klient-hemlighet-9", passport]
    stored = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    names = {p.name for p in stored}
    assert {"failed_customers.json", "retry_summary.json", "RETRY_INSTRUCTIONS.md",
            "_SUMMARY_FAILED.json"} <= names
    assert len([n for n in names if n.startswith("customer_")]) == 10
    assert any(p.parent.name == "api_responses" for p in stored)
    for path in stored:
        text = path.read_text("utf-8", errors="replace")
        for secret in secrets:
            assert secret not in text, f"{secret!r} in {path}"
    for secret in secrets:
        assert secret not in done.stdout + done.stderr
    # the echo is still visible as such, so the user knows what the server did
    failure = failures(summary)[0]
    assert "[debug: Authorization: *** ***; token ***; GK-Passport ***]" in failure["error"]
    # and an export of those failures holds none either
    from app.services.results.failure_export import export_failures
    from app.services.results.failure_list_file import load_failure_list

    records = load_failure_list(Path(summary["failed_file"]))
    exported = export_failures(records, tmp_path / "export.csv").read_text("utf-8-sig")
    assert len(records) == 10 and all(s not in exported for s in secrets)


@pytest.mark.skipif(os.name != "posix", reason="owner-only permissions as POSIX has them")
def test_result_files_are_readable_by_their_owner_only(sandbox_thread, tmp_path):
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(40, refused=5, invalid=2))
    sandbox_thread.server.config.error_rate = 0.3
    done, _summary = cli_import(sandbox_thread, tmp_path, source)
    assert done.returncode == 1, done.stderr
    out = tmp_path / "out"
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".lock")
             and p.parent.name != ".running"]
    folders = [p for p in out.rglob("*") if p.is_dir()]
    assert len(files) >= 8 and len(folders) >= 4
    for path in [out, *folders]:
        assert path.stat().st_mode & 0o777 == 0o700, path
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, path
