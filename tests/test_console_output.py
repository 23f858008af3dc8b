"""The command line's output is UTF-8 whatever the code page: names such as Łódź, Čapek and
Åsa Öberg reach a script reading `--json`, `history` or the messages intact.

On Windows, Python writes a redirected stdout and stderr in the ANSI code page (cp1252),
which has no Ł or Č. PYTHONIOENCODING=cp1252 puts a process here in the same place, so the
command line runs as a real process with it, its output captured as bytes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.util.console import utf8_output, write_utf8
from tests.conftest import ROOT

#: (first name, last name, city) of the customers imported
NAMES = (("Åsa", "Öberg", "Łódź"), ("Karel", "Čapek", "Praha"), ("Łucja", "Wałęsa", "Łódź"))


def code_page_environment() -> dict[str, str]:
    """The environment of a command line on Windows whose output is redirected: stdout and
    stderr in cp1252 (as Python sets them there unless the program says otherwise)."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("PYTHONUTF8", "PYTHONIOENCODING", "BULK_IMPORT_TOKEN")}
    env["PYTHONIOENCODING"] = "cp1252"
    return env


@pytest.fixture(scope="module", autouse=True)
def the_environment_writes_cp1252() -> None:
    """Without the app's own choice, a process here writes Å as cp1252's single byte and
    cannot write Ł at all: the tests below would see the problem."""
    done = subprocess.run([sys.executable, "-c", "print('Å'); print('Ł')"],
                          capture_output=True, env=code_page_environment(), timeout=60)
    assert done.stdout.startswith(b"\xc5" + os.linesep.encode())
    assert b"UnicodeEncodeError" in done.stderr


def run_cli_bytes(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`python main.py ARGS` with its output in the code page unless it says otherwise."""
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT,
                          capture_output=True, env=code_page_environment(), timeout=180)


def utf8(data: bytes) -> str:
    """The output as text: fails the test unless it is UTF-8."""
    return data.decode("utf-8")


def named_customers(start_id: int) -> list[dict[str, Any]]:
    customers = list(generate_customers(len(NAMES), start_id=start_id))
    for customer, (first, last, city) in zip(customers, NAMES, strict=True):
        person = customer["person"]
        person["firstName"], person["lastName"] = first, last
        person["addresses"][0]["city"] = city
    return customers


def import_args(server: Any, *paths: Path, output_dir: Path) -> list[str]:
    return ["import", *map(str, paths), "--url", server.customers_url("c4r"),
            "--token", server.static_token, "--output-dir", str(output_dir)]


def test_the_json_summary_is_utf8_and_keeps_the_names(sandbox_thread, tmp_path):
    source = tmp_path / "Łódź" / "Åsa Öberg.json"
    write_customer_file(source, named_customers(60_000))
    output_dir = tmp_path / "Wyniki Čapek"
    server = sandbox_thread.server
    done = run_cli_bytes(*import_args(server, source.parent, output_dir=output_dir), "--json")
    stderr = utf8(done.stderr)
    assert done.returncode == 0, stderr
    summary = json.loads(utf8(done.stdout))
    assert summary["succeeded"] == 3
    assert summary["files"] == [str(source)]
    assert summary["output_dir"] == str(output_dir)
    assert "Read 3 customers" in stderr
    people = [server.customers[str(60_000 + i)] for i in range(len(NAMES))]
    assert [(p["firstName"], p["lastName"], p["addresses"][0]["city"]) for p in people] \
        == list(NAMES)


def test_the_messages_name_files_and_folders_in_utf8(sandbox_thread, tmp_path):
    folder = tmp_path / "Łódź"
    write_customer_file(folder / "Åsa Öberg.json",
                        [*named_customers(61_000), *generate_customers(
                            2, start_id=61_100, refused=2)])
    (folder / "Čapek trasig.json").write_text('{"data": [{"changeType": "CRE', "utf-8")
    output_dir = tmp_path / "Wyniki Čapek"
    done = run_cli_bytes(*import_args(sandbox_thread.server, folder, output_dir=output_dir))
    stderr = utf8(done.stderr)
    # 2: a file could not be read (a program stopped by an error exits 1)
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert "Read 5 customers" in stderr and "3 imported, 2 failed" in stderr
    not_read = [line for line in stderr.splitlines() if line.startswith("Not read: ")]
    assert len(not_read) == 1 and "Čapek trasig.json" in not_read[0]
    retry = [line for line in stderr.splitlines() if line.startswith("Retry files: ")]
    assert len(retry) == 1 and retry[0].startswith(f"Retry files: {output_dir}")


def test_history_lists_the_jobs_in_utf8(sandbox_thread, tmp_path):
    source = tmp_path / "Łódź" / "Åsa Öberg.json"
    write_customer_file(source, named_customers(62_000))
    output_dir = tmp_path / "Wyniki Čapek"
    imported = run_cli_bytes(*import_args(sandbox_thread.server, source,
                                          output_dir=output_dir))
    assert imported.returncode == 0, utf8(imported.stderr)

    listed = run_cli_bytes("history", "--output-dir", str(output_dir), "--json")
    assert listed.returncode == 0, utf8(listed.stderr)
    jobs = json.loads(utf8(listed.stdout))
    assert len(jobs) == 1
    assert jobs[0]["files"] == [str(source)] and jobs[0]["succeeded"] == 3

    table = run_cli_bytes("history", "--output-dir", str(output_dir))
    assert table.returncode == 0, utf8(table.stderr)
    rows = utf8(table.stdout).splitlines()
    assert len(rows) == 2 and rows[0].startswith("Job")
    assert rows[1].startswith("#1") and "Åsa Öberg.json" in rows[1]


def test_a_refused_import_names_the_path_in_utf8(tmp_path):
    missing = tmp_path / "Łódź" / "Čapek.json"
    done = run_cli_bytes("import", str(missing), "--url", "http://127.0.0.1:9/customers",
                         "--token", "t", "--output-dir", str(tmp_path / "Åsa Öberg"),
                         "--json")
    stderr = utf8(done.stderr)
    assert done.returncode == 2, stderr
    summary = json.loads(utf8(done.stdout))
    assert str(missing) in summary["error"]
    assert summary["output_dir"] is None or "Åsa Öberg" in summary["output_dir"]
    assert stderr.startswith(f"error: {missing}")


def test_no_history_is_said_in_utf8(tmp_path):
    empty = tmp_path / "Łódź Čapek"
    empty.mkdir()
    done = run_cli_bytes("history", "--output-dir", str(empty))
    assert done.returncode == 0, utf8(done.stderr)
    assert utf8(done.stdout).strip() == f"No import jobs in {empty}"


class _Terminal(io.BytesIO):
    """The bytes a terminal receives; says it is one."""

    def isatty(self) -> bool:
        return True


def test_a_terminal_keeps_its_encoding_and_escapes_what_it_cannot_show():
    raw = _Terminal()
    stream = io.TextIOWrapper(raw, encoding="cp1252", errors="strict")
    utf8_output(stream)
    stream.write("Åsa Łódź\n")
    stream.flush()
    assert stream.encoding == "cp1252"
    assert raw.getvalue() == b"\xc5sa \\u0141\xf3d\\u017a\n"
    write_utf8('{"city": "Łódź"}\n'.encode(), stream)
    assert raw.getvalue().endswith(b'{"city": "\\u0141\xf3d\\u017a"}\n')


def test_a_redirected_stream_becomes_utf8_and_json_follows_the_text():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252", errors="strict", newline="\n")
    utf8_output(stream)
    stream.write("Čapek: ")
    write_utf8('{"name": "Åsa Öberg"}\n'.encode(), stream)
    assert raw.getvalue().decode("utf-8") == 'Čapek: {"name": "Åsa Öberg"}\n'
