"""The oldest macOS the built app runs on, for its Info.plist (LSMinimumSystemVersion).

The app carries the binaries of the wheels installed where it is built, and each wheel was
built for a minimum macOS that its tag names: PySide6-Essentials 6.11 is
`cp310-abi3-macosx_13_0_universal2` (its Qt is built for macOS 13 and newer), older
PySide6 wheels name macOS 11 or 12. The app needs the highest of these minimums. With it in the
Info.plist, an older Mac says in Finder which macOS the app needs instead of the app
crashing as it starts. Read by packaging/bulk_customer_import.spec.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable, Mapping
from importlib.metadata import distributions

#: Never lower than this: Apple silicon Macs start at macOS 11 (and PyInstaller's
#: bootloader needs 10.13 anyway).
FLOOR = (11, 0)

# the wheel platforms whose binaries run on each kind of Mac
_RUNS_ON = {
    "arm64": {"arm64", "universal2"},
    "x86_64": {"x86_64", "universal2", "intel", "universal", "fat64", "fat3", "fat32"},
}
_MACOS_PLATFORM = re.compile(r"^macosx_(\d+)_(\d+)_(\w+)$")


def minimum_for(tags_by_distribution: Mapping[str, Iterable[str]], machine: str) -> str:
    """The highest macOS minimum ("13.0") among the distributions' wheel tags
    ("cp310-abi3-macosx_13_0_universal2") that run on `machine` ("arm64", "x86_64");
    never below FLOOR."""
    runs_on = _RUNS_ON.get(machine, {machine})
    highest = FLOOR
    for tags in tags_by_distribution.values():
        versions = []
        for tag in tags:
            # the platform part may name several: macosx_10_9_x86_64.macosx_11_0_arm64
            for name in tag.rsplit("-", 1)[-1].split("."):
                found = _MACOS_PLATFORM.match(name)
                if found and found.group(3) in runs_on:
                    versions.append((int(found.group(1)), int(found.group(2))))
        if versions:
            highest = max(highest, min(versions))  # the wheel's own minimum for this Mac
    return f"{highest[0]}.{highest[1]}"


def installed_wheel_tags() -> dict[str, list[str]]:
    """The tags in the WHEEL file of each installed distribution (none: not from a wheel)."""
    tags: dict[str, list[str]] = {}
    for distribution in distributions():
        text = distribution.read_text("WHEEL") or ""
        found = [line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("Tag:")]
        if found:  # by the name's normal form (PEP 503): pyside6-essentials
            name = re.sub(r"[-_.]+", "-", distribution.metadata["Name"] or "?").lower()
            tags[name] = found
    return tags


def macos_minimum_version(machine: str | None = None) -> str:
    """The oldest macOS the app built here runs on, from the wheels installed here."""
    machine = machine or platform.machine()
    return minimum_for(installed_wheel_tags(), {"aarch64": "arm64"}.get(machine, machine))
