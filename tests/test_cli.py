"""`python main.py import` as a user runs it: a real process against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


def test_import_prints_json_summary_and_exit_status(sandbox_thread, tmp_path):
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(130, conflicts=2, refused=3, invalid=1))
    server = sandbox_thread.server
    done = run_cli("import", str(source), "--url", server.customers_url("c4r"),
                   "--token", server.static_token, "--output-dir", str(tmp_path / "out"),
                   "--json")
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (130, 124, 6)
    assert summary["failed_by_result"] == {"CONFLICT": 2, "FAILED": 3, "INVALID": 1}
    assert Path(summary["retry_dir"]).name.startswith("retry_batches_")
    assert Path(summary["failed_file"]).exists()
    assert summary["output_dir"] == str(tmp_path / "out") and summary["duration_s"] > 0
    assert server.static_token not in done.stdout + done.stderr
    assert "Read 130 customers" in done.stderr


def test_clean_import_exits_zero_with_token_from_environment(sandbox_thread, tmp_path):
    source = tmp_path / "in"
    write_customer_file(source / "a.json", generate_customers(60))
    write_customer_file(source / "sub" / "b.jsonl", generate_customers(40, start_id=7000),
                        json_lines=True)
    server = sandbox_thread.server
    done = run_cli("import", str(source), "--url", server.customers_url("engage"),
                   "--output-dir", str(tmp_path / "out"), "--json",
                   env={"BULK_IMPORT_TOKEN": server.static_token})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["succeeded"] == 100
    assert json.loads(done.stdout)["retry_dir"] is None


def test_c4r_password_grant_from_the_command_line(sandbox_thread, tmp_path):
    source = tmp_path / "a.json"
    write_customer_file(source, generate_customers(10))
    server = sandbox_thread.server
    done = run_cli("import", str(source), "--url", server.customers_url("c4r"),
                   "--auth", "c4r", "--username", "demo", "--client-id", "bulk-import",
                   "--client-secret", "sandbox-secret", "--output-dir", str(tmp_path / "out"),
                   "--json",
                   env={"BULK_IMPORT_PASSWORD": "demo"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["succeeded"] == 10


def test_bad_token_exits_3_and_keeps_every_customer(sandbox_thread, tmp_path):
    source = tmp_path / "a.json"
    write_customer_file(source, generate_customers(25))
    done = run_cli("import", str(source), "--url",
                   sandbox_thread.server.customers_url("c4r"), "--token", "expired-token",
                   "--output-dir", str(tmp_path / "out"), "--json")
    assert done.returncode == 3
    summary = json.loads(done.stdout)
    assert summary["failed_by_result"] == {"NOT_SENT": 25} and summary["fatal_error"]
    assert "expired-token" not in done.stdout + done.stderr


def test_usage_errors_exit_2(tmp_path):
    missing = run_cli("import", str(tmp_path / "nope.json"), "--url", "http://127.0.0.1:9/x",
                      "--token", "t")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    no_token = run_cli("import", str(tmp_path), "--url", "http://127.0.0.1:9/x")
    assert no_token.returncode == 2 and "token" in no_token.stderr
    bad_batch = run_cli("import", str(tmp_path), "--url", "http://x/", "--batch-size", "0")
    assert bad_batch.returncode == 2
