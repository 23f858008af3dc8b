"""The app's version, from the installed package's metadata, and the versions it runs on.

The packaged app carries the same metadata (the build copies it), so a source install and
a package of the same commit report the same version.
"""

from __future__ import annotations

import platform
import tomllib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "bulk-customer-import"
APP_TITLE = "Bulk Customer Import"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def app_version() -> str:
    """The installed package's version; pyproject.toml's when run from an uninstalled tree."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    try:
        with PYPROJECT.open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def runtime_versions() -> str:
    """'Qt 6.x.y (PySide6 6.x.y), Python 3.x.y': what this copy of the app runs on."""
    # imported here so that `--version` is the only command-line path that loads Qt for it
    import PySide6
    from PySide6.QtCore import qVersion

    return f"Qt {qVersion()} (PySide6 {PySide6.__version__}), Python {platform.python_version()}"


def version_text() -> str:
    """What `--version` prints and Help → About shows."""
    return f"{APP_TITLE} {app_version()}\n{runtime_versions()}"
