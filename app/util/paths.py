"""Paths as the app compares them."""

from __future__ import annotations

import os
from pathlib import Path


def path_key(path: str | Path) -> str:
    """Identity of a path in the list, computed without touching the disk.

    No resolve(): that would hit the file system (slow on network shares) on the GUI thread.
    normcase makes C:\\A and c:\\a the same file on Windows.
    """
    return os.path.normcase(os.path.abspath(os.fspath(path)))
