"""A Windows app without a console has no stdout or stderr: what it prints goes to a log."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from app.console_streams import ensure_standard_streams
from tests.conftest import ROOT


def test_missing_streams_are_written_to_a_log_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    log = ensure_standard_streams(tmp_path / "logs")
    try:
        assert log == tmp_path / "logs" / "console.log"
        print("progress line")
        print("an error", file=sys.stderr)
    finally:
        sys.stdout.close()
    assert log.read_text(encoding="utf-8") == "progress line\nan error\n"


def test_streams_that_exist_are_left_alone(tmp_path):
    before = sys.stdout, sys.stderr
    assert ensure_standard_streams(tmp_path / "logs") is None
    assert (sys.stdout, sys.stderr) == before
    assert not (tmp_path / "logs").exists()


@pytest.mark.skipif(os.name == "nt", reason="closes the streams with a POSIX shell")
def test_app_without_streams_still_answers(tmp_path):
    # as a Windows app without a console starts: no standard output or error at all
    command = f"exec {shlex.quote(sys.executable)} main.py --version >&- 2>&-"
    env = {**os.environ, "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0
    (log,) = tmp_path.rglob("console.log")
    assert log.read_text(encoding="utf-8").startswith("Bulk Customer Import ")
