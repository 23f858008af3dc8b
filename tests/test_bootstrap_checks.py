"""`scripts/bootstrap.py demo` on Linux: the X11 libraries Qt needs are checked first."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

linux_with_ldd = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("ldd") is None,
    reason="ldd and Qt's X11 plugin are Linux's")


def load_bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootstrap",
                                                  ROOT / "scripts" / "bootstrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bootstrap"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


bootstrap = load_bootstrap()

QT_LIB = "/home/anna/app/.venv/lib/python3.11/site-packages/PySide6/Qt/plugins/platforms/../../lib"
# ldd on libqxcb.so on a Debian machine without libxcb-icccm4 and libxcb-keysyms1
LDD_TWO_MISSING = f"""\
\tlinux-vdso.so.1 (0x00007ffd5a1f2000)
\tlibQt6XcbQpa.so.6 => {QT_LIB}/libQt6XcbQpa.so.6 (0x00007f3c1a9b3000)
\tlibQt6Gui.so.6 => {QT_LIB}/libQt6Gui.so.6 (0x00007f3c1a200000)
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007f3c1a923000)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f3c1a916000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f3c1a90f000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f3c1a1ab000)
\tlibxcb-image.so.0 => /lib/x86_64-linux-gnu/libxcb-image.so.0 (0x00007f3c1a1a5000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-randr.so.0 => /lib/x86_64-linux-gnu/libxcb-randr.so.0 (0x00007f3c1a194000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f3c19e1e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f3c1a9c3000)
"""
# and on the libQt6XcbQpa it links, which needs the same two
LDD_XCB_QPA = """\
\tlinux-vdso.so.1 (0x00007ffc3b5e1000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f1e2c9d6000)
"""


def test_two_missing_libraries_give_the_apt_get_line_with_those_packages() -> None:
    command, unknown = bootstrap.install_advice(LDD_TWO_MISSING + LDD_XCB_QPA, "apt-get")
    assert command == "sudo apt-get install libxcb-icccm4 libxcb-keysyms1"
    assert unknown == []
    assert bootstrap.missing_libraries(LDD_TWO_MISSING + LDD_XCB_QPA) == [
        "libxcb-icccm.so.4", "libxcb-keysyms.so.1"]


def test_fedora_names_and_libraries_without_a_known_package() -> None:
    output = LDD_TWO_MISSING + "\tlibxcb-cursor.so.0 => not found\n" \
        "\tlibfoo-unheard.so.3 => not found\n"
    command, unknown = bootstrap.install_advice(output, "dnf")
    assert command == "sudo dnf install xcb-util-wm xcb-util-keysyms xcb-util-cursor"
    assert unknown == ["libfoo-unheard.so.3"]
    # neither apt-get nor dnf: no command, every library named
    assert bootstrap.install_advice(output, None) == (None, [
        "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0",
        "libfoo-unheard.so.3"])


def test_nothing_missing_gives_no_command() -> None:
    complete = LDD_TWO_MISSING.replace(" => not found", " => /lib/x86_64-linux-gnu/x.so")
    assert bootstrap.install_advice(complete, "apt-get") == (None, [])


@linux_with_ldd
def test_on_this_machine_nothing_is_missing() -> None:
    check = bootstrap.check_xcb_libraries(Path(sys.executable))
    # both binaries were read (an empty result would prove nothing)
    assert [path.name for path in check.checked] == ["libqxcb.so", "libQt6XcbQpa.so.6"]
    assert "libxcb-cursor.so.0 =>" in check.ldd_output
    assert check.missing == []


@linux_with_ldd
def test_a_real_ldd_not_found_is_read(tmp_path: Path) -> None:
    """The plugin copied away from PySide6's Qt libraries: ldd itself says "not found"."""
    real = bootstrap.check_xcb_libraries(Path(sys.executable)).checked[0]
    plugin = tmp_path / "platforms" / "libqxcb.so"
    plugin.parent.mkdir()
    shutil.copy2(real, plugin)
    check = bootstrap.check_plugin(plugin)
    assert check.checked == [plugin]  # libQt6XcbQpa is not found: nothing more to read
    assert {"libQt6XcbQpa.so.6", "libQt6Gui.so.6", "libQt6Core.so.6"} <= set(check.missing)
    command, unknown = bootstrap.install_advice(check.ldd_output, "apt-get")
    assert command is None  # Qt's own libraries are no system package
    assert "libQt6XcbQpa.so.6" in unknown


@pytest.mark.parametrize(("env", "use"), [
    ({"DISPLAY": ":0"}, "only"),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "only"),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, None),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland"}, None),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland;xcb"}, "fallback"),
    ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}, "fallback"),
    ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "x11"}, "only"),
    ({}, None),
    ({"DISPLAY": ""}, None),
])
def test_when_x11_is_used(env: dict[str, str], use: str | None) -> None:
    assert bootstrap.x11_use(env, "linux") == use


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_other_systems_are_not_checked(platform: str) -> None:
    assert bootstrap.x11_use({"DISPLAY": ":0"}, platform) is None
    assert bootstrap.xcb_advice(Path(sys.executable), {"DISPLAY": ":0"}, platform) is None


@linux_with_ldd
def test_the_demo_is_not_stopped_here() -> None:
    assert bootstrap.xcb_advice(Path(sys.executable), {"DISPLAY": ":0"}) is None
