"""Set up a private Python environment in `.venv` and run the app or the tests.

    python scripts/bootstrap.py demo     # install, then open the app on the built-in demo
    python scripts/bootstrap.py test     # install with test tools, then check and test:
                                         # ruff, lint-imports (the layers), mypy, pytest
    python scripts/bootstrap.py run ...  # install, then `python main.py ...`
    python scripts/bootstrap.py package  # install with build tools, then build the package
                                         # and its archive into dist/ (packaging/build.py)

Works the same on Windows, macOS and Linux; needs only Python 3.11 or newer. On Linux,
`demo` first checks that the system libraries Qt needs to open a window on X11 are there,
and if some are not, prints the command that installs them instead of starting.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def venv_script(name: str) -> Path:
    """A command the environment installed (lint-imports, ...)."""
    if os.name == "nt":
        return VENV / "Scripts" / f"{name}.exe"
    return VENV / "bin" / name


def ensure_environment(extra: str | None = None) -> Path:
    """Create .venv if needed and install the project (and an extra: test, package) in it."""
    if sys.version_info < (3, 11):  # noqa: UP036 - run by whatever python the user has
        sys.exit(f"Python 3.11 or newer is needed (this is {sys.version.split()[0]}).")
    python = venv_python()
    if not python.exists():
        print("Creating the environment in .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f".[{extra}]" if extra else "."
    print(f"Installing {target} ...", flush=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                   cwd=ROOT, check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-e", target],
                   cwd=ROOT, check=True)
    return python


# The system libraries Qt's X11 platform plugin (libqxcb.so and libQt6XcbQpa) loads, and
# the packages that hold them: (Debian/Ubuntu, Fedora). When one is missing, Qt says only
# that it "could not load the Qt platform plugin xcb" and suggests installing
# libxcb-cursor0, whichever library it was.
XCB_LIBRARY_PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libXau.so.6": ("libxau6", "libXau"),
    "libXdmcp.so.6": ("libxdmcp6", "libXdmcp"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx"),
    "libGLdispatch.so.0": ("libglvnd0", "libglvnd"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
}
PACKAGE_MANAGERS = ("apt-get", "dnf")  # the column of XCB_LIBRARY_PACKAGES each one uses

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)
_XCB_QPA = re.compile(r"^\s*libQt6XcbQpa\.so\S*\s+=>\s+(/\S+)", re.MULTILINE)


def missing_libraries(ldd_output: str) -> list[str]:
    """The libraries `ldd` reported as "=> not found", each once, in its order."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def install_advice(ldd_output: str, manager: str | None) -> tuple[str | None, list[str]]:
    """(the install command for the missing libraries `ldd_output` names, or None; the
    missing libraries no package is known for). `manager`: "apt-get", "dnf" or None."""
    missing = missing_libraries(ldd_output)
    if manager not in PACKAGE_MANAGERS:
        return None, missing
    column = PACKAGE_MANAGERS.index(manager)
    packages = [XCB_LIBRARY_PACKAGES[name][column] for name in missing
                if name in XCB_LIBRARY_PACKAGES]
    unknown = [name for name in missing if name not in XCB_LIBRARY_PACKAGES]
    if not packages:
        return None, unknown
    return f"sudo {manager} install {' '.join(dict.fromkeys(packages))}", unknown


@dataclass
class XcbCheck:
    """What the check of Qt's X11 plugin found: the binaries `ldd` read, its output, and
    the libraries missing."""

    checked: list[Path] = field(default_factory=list)
    ldd_output: str = ""
    missing: list[str] = field(default_factory=list)


def check_xcb_libraries(python: Path) -> XcbCheck:
    """Run `ldd` on the X11 plugin of the PySide6 that `python` imports, and on the
    libQt6XcbQpa it links; nothing checked when there is no such plugin or no ldd."""
    # where PySide6 is, without importing it (that alone would load Qt)
    found = subprocess.run(
        [str(python), "-c", "import importlib.util as u; "
         "print(u.find_spec('PySide6').submodule_search_locations[0])"],
        capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout.strip():
        return XcbCheck()
    return check_plugin(Path(found.stdout.strip()) / "Qt" / "plugins" / "platforms"
                        / "libqxcb.so")


def check_plugin(plugin: Path) -> XcbCheck:
    """Run `ldd` on `plugin` (PySide6's libqxcb.so) and on the libQt6XcbQpa it links."""
    result = XcbCheck()
    ldd = shutil.which("ldd")
    if ldd is None or not plugin.exists():
        return result
    env = {**os.environ, "LC_ALL": "C"}
    binaries = [plugin]
    outputs: list[str] = []
    while binaries:
        binary = binaries.pop(0)
        output = subprocess.run([ldd, str(binary)], capture_output=True, text=True,
                                env=env).stdout
        result.checked.append(binary)
        outputs.append(output)
        linked = _XCB_QPA.search(output)
        if binary == plugin and linked and Path(linked.group(1)).exists():
            binaries.append(Path(linked.group(1)))
    result.ldd_output = "".join(outputs)
    result.missing = missing_libraries(result.ldd_output)
    return result


def x11_use(env: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """How Qt would use X11 here: "only" (Linux, a display, nothing else chosen),
    "fallback" (a Wayland session, XDG_SESSION_TYPE=wayland: Qt tries Wayland first), or
    None (not at all: another system, no display, QT_QPA_PLATFORM=offscreen, ...)."""
    if not platform.startswith("linux") or not env.get("DISPLAY"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        platforms = [name.split(":")[0] for name in chosen.split(";")]
        if "xcb" not in platforms:
            return None
        return "only" if platforms[0] == "xcb" else "fallback"
    return "fallback" if env.get("XDG_SESSION_TYPE", "").lower() == "wayland" else "only"


def xcb_advice(python: Path, env: Mapping[str, str], platform: str = sys.platform
               ) -> tuple[str, bool] | None:
    """(what to tell the user, whether to stop) when Qt's X11 plugin would not load here
    for want of system libraries; None when it would, or X11 is not used."""
    use = x11_use(env, platform)
    if use is None:
        return None
    check = check_xcb_libraries(python)
    if not check.missing:
        return None
    manager = next((name for name in PACKAGE_MANAGERS if shutil.which(name)), None)
    command, unknown = install_advice(check.ldd_output, manager)
    lines = ["Qt's X11 support (the xcb platform plugin) needs system libraries that are "
             "missing here:", "    " + ", ".join(check.missing)]
    if command:
        lines += ["Install them with:", f"    {command}"]
    if unknown or not command:
        lines.append("Install the packages of your system that provide "
                     + ", ".join(unknown or check.missing) + ".")
    if use == "only":
        lines.append("The app cannot open its window without them: run this command again "
                     "once they are installed.")
    else:
        lines.append("The app opens its window through Wayland; it needs them only if that "
                     "fails.")
    return "\n".join(lines), use == "only"


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "demo"
    if command == "test":
        python = ensure_environment("test")
        env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM",
                                                                "offscreen")}
        subprocess.run([str(python), "-m", "ruff", "check", "."], cwd=ROOT, check=True)
        # the layers of app/ ([tool.importlinter] in pyproject.toml)
        subprocess.run([str(venv_script("lint-imports"))], cwd=ROOT, check=True)
        # the types of app/ ([tool.mypy] in pyproject.toml)
        subprocess.run([str(python), "-m", "mypy"], cwd=ROOT, check=True)
        return subprocess.run([str(python), "-m", "pytest", *argv[1:]], cwd=ROOT,
                              env=env).returncode
    if command == "demo":
        python = ensure_environment()
        # Linux: a missing X11 library makes Qt name the wrong one (xcb-cursor0): say
        # which ones are missing, and how to install them, before starting
        advice = xcb_advice(python, os.environ)
        if advice is not None:
            message, stop = advice
            print(message, file=sys.stderr, flush=True)
            if stop:
                return 1
        return subprocess.run([str(python), "main.py", "--demo", *argv[1:]],
                              cwd=ROOT).returncode
    if command == "run":
        python = ensure_environment()
        return subprocess.run([str(python), "main.py", *argv[1:]], cwd=ROOT).returncode
    if command == "package":
        python = ensure_environment("package")
        return subprocess.run([str(python), str(ROOT / "packaging" / "build.py"), *argv[1:]],
                              cwd=ROOT).returncode
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
