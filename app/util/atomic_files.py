"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash or a full disk never leaves a half-written result file behind. Result files hold
personal data, so they (and the folders made for them) are readable by their owner only,
where the operating system has such permissions (0600 files, 0700 folders).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


_temp_names = itertools.count()
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700
# Windows refuses to replace a file another program has open (a virus scanner, the
# Failed Customers tab reading it): such a moment passes, so try again a few times.
_REPLACE_WAITS_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def make_private_folder(path: Path) -> Path:
    """Create `path` and any missing parents, for their owner only; fine if it exists."""
    path = Path(path)
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another import
            folder.mkdir(mode=PRIVATE_FOLDER_MODE)
    return path


def _open_private(path: Path) -> IO[bytes]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, PRIVATE_FILE_MODE), "wb")


def replace_file(source: Path, target: Path) -> None:
    """os.replace, patient with Windows' sharing violations (see `_REPLACE_WAITS_S`)."""
    for wait in _REPLACE_WAITS_S:
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if os.name != "nt":
                raise
            time.sleep(wait)  # runs on writer threads only, never on the event loop
    os.replace(source, target)


def temp_path(path: Path) -> Path:
    """The temporary name `path` is written under first: `.NAME.<pid>-<n>.part` beside it.

    Unique per process and call ("x" mode refuses to reuse a leftover name). At most
    `file_names.TEMP_NAME_EXTRA` longer than the name: names are budgeted with that room.
    """
    return path.with_name(f".{path.name}.{os.getpid()}-{next(_temp_names)}.part")


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, durable: bool = True) -> Path:
    """Call `write` with a binary file whose content replaces `path` only once complete.

    `durable=False` skips the fsync: still never half-written for readers, but cheaper for
    the thousands of small per-customer files.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        handle = _open_private(tmp)
    except FileNotFoundError:
        make_private_folder(path.parent)
        handle = _open_private(tmp)
    try:
        with handle:
            write(handle)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        replace_file(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> Path:
    return atomic_write(path, lambda handle: handle.write(data), durable=durable)


def atomic_write_text(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def dumps_json(value: Any, *, indent: bool = True) -> bytes:
    """UTF-8 JSON (letters such as Å Ä Ö stay readable, never \\u-escaped)."""
    return orjson.dumps(value, option=JSON_OPTIONS if indent else orjson.OPT_NON_STR_KEYS)


def atomic_write_json(path: Path, value: Any, *, indent: bool = True,
                      durable: bool = True) -> Path:
    return atomic_write_bytes(path, dumps_json(value, indent=indent) + b"\n", durable=durable)
