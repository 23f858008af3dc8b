"""The release: both kinds of Mac are built, `hdiutil create` is tried again, the app says
which macOS it needs, and a notarisation Apple refused fails the release."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
SPEC = ROOT / "packaging" / "bulk_customer_import.spec"
BUILD = ROOT / "packaging" / "build.py"
NOTARISE = ROOT / "packaging" / "notarise.sh"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


build = load(BUILD, "release_build")
macos_minimum = load(ROOT / "packaging" / "macos_minimum.py", "release_macos_minimum")


def workflow_steps(text: str) -> list[str]:
    """The package job's step names, in order."""
    return re.findall(r"^      - name: (.+)$", text, re.MULTILINE)


# -- the workflow ----------------------------------------------------------------------------


def test_both_kinds_of_mac_are_built_and_checked() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    matrix = re.findall(r"^          - os: (\S+)\n(?:            arch: (\S+)\n)?", text,
                        re.MULTILINE)
    assert matrix == [("ubuntu-22.04", ""), ("windows-latest", ""),
                      ("macos-latest", "arm64"), ("macos-15-intel", "x86_64")]
    assert "runs-on: ${{ matrix.os }}" in text
    # each app is checked to be built for its runner's kind, which names its archive
    assert '*" ${{ matrix.arch }} "*) ;;' in text
    assert 'lipo -archs "$app/Contents/MacOS/bulk-customer-import"' in text
    assert "{system_name()}-{machine_name()}{suffix}" in BUILD.read_text(encoding="utf-8")


def test_the_app_is_stapled_before_the_disk_image_is_made_and_both_are_notarised() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    steps = workflow_steps(text)
    order = ["Signing secrets (macOS)", "Signing certificate (macOS)", "Build",
             "Check the app (macOS)", "Notarise the app (macOS)", "Archive",
             "Sign the disk image (macOS)", "Notarise the disk image (macOS)"]
    assert [step for step in steps if step in order] == order
    app_step = text.split("- name: Notarise the app (macOS)")[1].split("- name:")[0]
    assert 'xcrun stapler staple "$app"' in app_step
    assert "bash packaging/notarise.sh" in app_step
    dmg_step = text.split("- name: Notarise the disk image (macOS)")[1].split("- name:")[0]
    assert 'xcrun stapler staple "$dmg"' in dmg_step
    # signing and notarising run on the secrets' check alone (skipped cleanly without them)
    assert "if: runner.os == 'macOS' && env.MACOS_NOTARISE == 'true'" in app_step
    assert "APPLE_ID != ''" not in text


def test_the_workflow_is_valid_yaml() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    job = workflow["jobs"]["package"]
    arches = {entry["os"]: entry.get("arch") for entry in job["strategy"]["matrix"]["include"]}
    assert arches["macos-latest"] == "arm64" and arches["macos-15-intel"] == "x86_64"


# -- hdiutil is tried again ------------------------------------------------------------------


def test_hdiutil_create_goes_through_the_retries() -> None:
    tree = ast.parse(BUILD.read_text(encoding="utf-8"))
    hdiutil_calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.List):
            first = node.args[0].elts[0] if node.args[0].elts else None
            if isinstance(first, ast.Constant) and first.value == "hdiutil":
                hdiutil_calls.append(node)
    assert len(hdiutil_calls) == 1
    callee = hdiutil_calls[0].func
    assert isinstance(callee, ast.Name) and callee.id == "run_with_retries"


def flaky_command(tmp_path: Path, failures: int) -> tuple[list[str], Path]:
    """A real process that fails `failures` times, then succeeds; counts its runs."""
    runs = tmp_path / "runs"
    code = ("import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
            "n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n)); "
            f"sys.exit(16 if n <= {failures} else 0)")  # 16: EBUSY, as hdiutil's
    return [sys.executable, "-c", code, str(runs)], runs


def test_a_command_that_fails_twice_is_run_until_it_succeeds(tmp_path: Path) -> None:
    command, runs = flaky_command(tmp_path, failures=2)
    build.run_with_retries(command, attempts=5, pause_s=0)
    assert runs.read_text() == "3"


def test_a_command_that_keeps_failing_fails_after_the_last_attempt(tmp_path: Path) -> None:
    command, runs = flaky_command(tmp_path, failures=10)
    with pytest.raises(subprocess.CalledProcessError) as raised:
        build.run_with_retries(command, attempts=3, pause_s=0)
    assert raised.value.returncode == 16
    assert runs.read_text() == "3"


# -- the macOS the app needs -----------------------------------------------------------------


def test_the_spec_sets_the_minimum_macos_in_the_info_plist() -> None:
    spec = SPEC.read_text(encoding="utf-8")
    bundle = spec.split("app = BUNDLE(")[1]
    assert '"LSMinimumSystemVersion": macos_minimum_version(),' in bundle
    assert "from macos_minimum import macos_minimum_version" in spec


@pytest.mark.parametrize(("tags", "machine", "expected"), [
    # PySide6-Essentials 6.11.3 on PyPI: one universal2 wheel for macOS 13 and newer
    ({"PySide6-Essentials": ["cp310-abi3-macosx_13_0_universal2"]}, "arm64", "13.0"),
    ({"PySide6-Essentials": ["cp310-abi3-macosx_13_0_universal2"]}, "x86_64", "13.0"),
    # the highest minimum of all wheels; each wheel's own for this kind of Mac
    ({"PySide6-Essentials": ["cp39-abi3-macosx_12_0_universal2"],
      "psutil": ["cp36-abi3-macosx_10_9_x86_64.macosx_11_0_arm64"],
      "orjson": ["cp311-cp311-macosx_15_0_arm64", "cp311-cp311-macosx_10_15_x86_64"]},
     "x86_64", "12.0"),
    ({"PySide6-Essentials": ["cp39-abi3-macosx_12_0_universal2"],
      "orjson": ["cp311-cp311-macosx_15_0_arm64", "cp311-cp311-macosx_10_15_x86_64"]},
     "arm64", "15.0"),
    # never below macOS 11; a Linux wheel says nothing about macOS
    ({"psutil": ["cp36-abi3-macosx_10_9_x86_64"]}, "x86_64", "11.0"),
    ({"PySide6-Essentials": ["cp310-abi3-manylinux_2_34_x86_64"]}, "x86_64", "11.0"),
])
def test_the_minimum_macos_comes_from_the_wheel_tags(tags: dict[str, list[str]], machine: str,
                                                     expected: str) -> None:
    assert macos_minimum.minimum_for(tags, machine) == expected


def test_the_installed_wheels_are_read() -> None:
    tags = macos_minimum.installed_wheel_tags()
    pyside = tags["pyside6-essentials"]
    assert len(pyside) >= 1 and pyside[0].startswith("cp")


# -- a notarisation Apple refused fails ------------------------------------------------------

needs_bash = pytest.mark.skipif(shutil.which("bash") is None or os.name == "nt",
                                reason="the release's macOS steps run in bash")


def run_notarise(tmp_path: Path, status: str | None, **env: str) -> subprocess.CompletedProcess:
    """packaging/notarise.sh with an `xcrun` on PATH that answers with `status`."""
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    xcrun = tools / "xcrun"
    xcrun.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$2" = submit ]; then\n'
        f'  echo \'{{"id": "4f1c-77", "status": "{status}", "message": "done"}}\'\n'
        'elif [ "$2" = log ]; then echo "log of $3"; fi\n', encoding="utf-8")
    xcrun.chmod(0o755)
    image = tmp_path / "bulk-customer-import.dmg"
    image.write_bytes(b"image")
    return subprocess.run(
        ["bash", str(NOTARISE), str(image)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", **env})


APPLE = {"APPLE_ID": "builds@example.com", "APPLE_TEAM_ID": "TEAM123456",
         "APPLE_APP_PASSWORD": "abcd-efgh"}


@needs_bash
def test_accepted_notarisation_passes(tmp_path: Path) -> None:
    done = run_notarise(tmp_path, "Accepted", **APPLE)
    assert done.returncode == 0, done.stderr
    assert "Notarisation of bulk-customer-import.dmg: Accepted" in done.stdout


@needs_bash
def test_invalid_notarisation_fails_with_apples_log(tmp_path: Path) -> None:
    done = run_notarise(tmp_path, "Invalid", **APPLE)
    assert done.returncode == 1
    assert "log of 4f1c-77" in done.stdout
    assert "did not accept bulk-customer-import.dmg for notarisation: Invalid" in done.stdout


@needs_bash
def test_notarising_without_the_secrets_fails(tmp_path: Path) -> None:
    done = run_notarise(tmp_path, "Accepted", **{**APPLE, "APPLE_TEAM_ID": ""})
    assert done.returncode == 1
    assert "APPLE_TEAM_ID is not set" in done.stderr
