"""Build the installable package for the system this runs on, into dist/.

    python packaging/build.py [build] [archive] [smoke]   # build and archive by default

`build` renders the icons (build/icons) and runs PyInstaller on
packaging/bulk_customer_import.spec: dist/bulk-customer-import/ (Windows, Linux) or
dist/Bulk Customer Import.app (macOS). `archive` packs that into
dist/bulk-customer-import-<version>-<system>-<machine>.zip (Windows), .dmg (macOS) or
.tar.gz (Linux). Release builds sign the executables between the two steps. `smoke`
runs packaging/smoke_test.py on what was built.

Prints the build time and the sizes, and writes them to dist/build-report.json.
Run it with the project's environment: `python scripts/bootstrap.py package` does.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from importlib.metadata import version as distribution_version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
ICONS = ROOT / "build" / "icons"
SPEC = ROOT / "packaging" / "bulk_customer_import.spec"
REPORT = DIST / "build-report.json"
NAME = "bulk-customer-import"
APP_TITLE = "Bulk Customer Import"
WINDOWS, MACOS = sys.platform == "win32", sys.platform == "darwin"
MB = 1024 * 1024


def system_name() -> str:
    return "windows" if WINDOWS else "macos" if MACOS else "linux"


def machine_name() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def built_app() -> Path:
    """What PyInstaller makes: the folder, or the .app bundle on macOS."""
    return DIST / f"{APP_TITLE}.app" if MACOS else DIST / NAME


def archive_path() -> Path:
    suffix = ".zip" if WINDOWS else ".dmg" if MACOS else ".tar.gz"
    return DIST / f"{NAME}-{distribution_version(NAME)}-{system_name()}-{machine_name()}{suffix}"


def run_with_retries(command: list[str], *, attempts: int = 5, pause_s: float = 10.0
                     ) -> None:
    """Run `command`, and again after a pause (longer each time) while it fails, up to
    `attempts` runs in all; raises CalledProcessError when the last one fails too.

    For `hdiutil create`, which fails now and then with "Resource busy" on build machines
    (a scanner such as XProtect or Spotlight still has the new image open) and succeeds
    when tried again a little later.
    """
    for attempt in range(1, attempts + 1):
        done = subprocess.run(command)
        if done.returncode == 0:
            return
        if attempt == attempts:
            raise subprocess.CalledProcessError(done.returncode, command)
        wait = pause_s * attempt
        print(f"{Path(command[0]).name} failed (exit status {done.returncode}); trying again "
              f"in {wait:.0f} s ({attempt + 1} of {attempts})", flush=True)
        time.sleep(wait)


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def build() -> dict[str, object]:
    """Icons, then PyInstaller; returns the build's figures."""
    started = time.perf_counter()
    sys.path.insert(0, str(ROOT / "packaging"))
    from make_icons import make_icons

    icons = make_icons(ICONS)
    icons_s = time.perf_counter() - started
    shutil.rmtree(built_app(), ignore_errors=True)
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
               "--log-level", "WARN", "--distpath", str(DIST), "--workpath", str(WORK),
               str(SPEC)]
    print("Running PyInstaller ...", flush=True)
    pyinstaller_started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    pyinstaller_s = time.perf_counter() - pyinstaller_started
    if not (WINDOWS or MACOS):
        # the Linux folder carries its icon beside the executable, for a desktop entry
        shutil.copy2(icons["png"], built_app() / f"{NAME}.png")
    unpacked = folder_size(built_app())
    figures = {"version": distribution_version(NAME), "system": system_name(),
               "machine": machine_name(), "icons_s": round(icons_s, 1),
               "pyinstaller_s": round(pyinstaller_s, 1),
               "unpacked_bytes": unpacked, "app": str(built_app())}
    print(f"Built {built_app()} in {pyinstaller_s:.1f} s (icons {icons_s:.1f} s): "
          f"{unpacked / MB:.1f} MB unpacked", flush=True)
    return figures


def make_archive() -> dict[str, object]:
    """The archive for this system; returns its figures."""
    app = built_app()
    if not app.exists():
        sys.exit(f"{app} is missing: build first")
    target = archive_path()
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    if WINDOWS:
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for path in sorted(app.rglob("*")):
                archive.write(path, Path(NAME) / path.relative_to(app))
    elif MACOS:
        with tempfile.TemporaryDirectory() as staging:
            # the app and a link to Applications: drag one onto the other to install
            shutil.copytree(app, Path(staging) / app.name, symlinks=True)
            os.symlink("/Applications", Path(staging) / "Applications")
            run_with_retries(["hdiutil", "create", "-volname", APP_TITLE, "-srcfolder",
                              staging, "-format", "UDZO", "-ov", str(target)])
    else:
        with tarfile.open(target, "w:gz", compresslevel=6) as archive:
            archive.add(app, arcname=NAME)
    seconds = time.perf_counter() - started
    size = target.stat().st_size
    print(f"Archive {target.name}: {size / MB:.1f} MB ({seconds:.1f} s)", flush=True)
    return {"archive": str(target), "archive_bytes": size, "archive_s": round(seconds, 1)}


STEPS = ("build", "archive", "smoke")


def main(argv: list[str]) -> int:
    steps = argv or ["build", "archive"]
    if any(step not in STEPS for step in steps):
        print(__doc__)
        return 2
    if "build" in steps or "archive" in steps:
        report: dict[str, object] = {}
        if REPORT.exists() and "build" not in steps:
            report = json.loads(REPORT.read_text(encoding="utf-8"))
        if "build" in steps:
            report = build()
        if "archive" in steps:
            report.update(make_archive())
        DIST.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if "smoke" in steps:
        return subprocess.run([sys.executable, str(ROOT / "packaging" / "smoke_test.py")],
                              cwd=ROOT).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
