"""Room and permission to write an import's results: checked before an import sends
anything, and what a failed write says about the disk.

- `folder_write_problem`: the results folder is created, and a small file written there and
  deleted again; a message for the user when that fails (read-only, no permission, full).
- `space_note`: the free space compared with what an import may write at worst (every
  customer failing: retry files, single-failure files, the failure list, the import
  history); a note, never a stop.
- `is_disk_problem`: a failed write that writing again will not fix until the user acts (a
  full disk or quota, no permission, a read-only folder).
- `SpaceReserve`: room kept on the disk for the import history, given up when the disk fills.

Pure Python, no Qt: the command line and the window share it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
from pathlib import Path

from app.models.display_text import human_size
from app.util.atomic_files import make_private_folder

#: errno values of a full disk (EDQUOT: a quota; not every system has it)
DISK_FULL_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)
#: errno values of a folder that may not be written (root ignores permissions, not EROFS)
NOT_WRITABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
# Windows error codes: ERROR_HANDLE_DISK_FULL, ERROR_DISK_FULL, ERROR_ACCESS_DENIED,
# ERROR_WRITE_PROTECT, ERROR_DISK_QUOTA_EXCEEDED
_WINDOWS_DISK_FULL = frozenset({39, 112, 1295})
_WINDOWS_NOT_WRITABLE = frozenset({5, 19})

#: At worst every customer fails one by one: a single-failure file, a retry file, the
#: failure list and the import history each hold the entry again (indented, in files of a
#: few KB each), so several times the input's bytes.
WORST_CASE_FACTOR = 5
#: The import history's own tables, indexes and WAL, whatever the input.
JOURNAL_BASE_BYTES = 4 << 20
#: Per customer in a batch that may still need an outcome recorded when the disk fills:
#: a failure row with the entry, its index entries and the WAL's copy of the pages.
RESERVE_PER_CUSTOMER = 3 << 10
RESERVE_MIN, RESERVE_MAX = 512 << 10, 32 << 20
_PROBE_PREFIX = ".bulk-import-probe-"
_probes = itertools.count()


def is_disk_full(exc: BaseException) -> bool:
    """A write refused because the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and (
        exc.errno in DISK_FULL_ERRNOS or getattr(exc, "winerror", None) in _WINDOWS_DISK_FULL)


def is_disk_problem(exc: BaseException) -> bool:
    """A write refused for lack of space or permission: the user has to act (free space,
    make the folder writable, choose another one); writing again at once fails again."""
    if not isinstance(exc, OSError):
        return False
    return is_disk_full(exc) or exc.errno in NOT_WRITABLE_ERRNOS \
        or getattr(exc, "winerror", None) in _WINDOWS_NOT_WRITABLE


def describe_write_problem(folder: Path, exc: OSError) -> str:
    """One sentence for the user: which folder, and why it cannot be written."""
    reason = exc.strerror or str(exc)
    if is_disk_full(exc):
        return (f"the results folder {folder} is on a full disk ({reason}): free some space "
                "or choose another results folder")
    if is_disk_problem(exc):
        return (f"the results folder {folder} cannot be written ({reason}): make it "
                "writable or choose another results folder")
    return f"the results folder {folder} cannot be written ({reason})"


def folder_write_problem(folder: Path) -> str | None:
    """Create `folder`, write a small file there and delete it; None when that worked,
    else a message naming the folder and the cause."""
    folder = Path(folder)
    probe = folder / f"{_PROBE_PREFIX}{os.getpid()}-{next(_probes)}"
    try:
        make_private_folder(folder)
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
        handle = os.open(probe, flags, 0o600)
        try:
            os.write(handle, b"Bulk Customer Import checks that it can write here.\n")
        finally:
            os.close(handle)
    except OSError as exc:
        return describe_write_problem(folder, exc)
    # written, so writable; a virus scanner holding the new file may make Windows refuse
    # to delete it at once: that is no reason to refuse the folder
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def needed_bytes(input_bytes: int) -> int:
    """What an import of `input_bytes` of customer files may write at worst."""
    return input_bytes * WORST_CASE_FACTOR + JOURNAL_BASE_BYTES


def free_bytes(folder: Path) -> int | None:
    """Free space on the disk of `folder` (or of its nearest existing parent)."""
    place = Path(folder)
    while not place.exists() and place.parent != place:
        place = place.parent
    try:
        return shutil.disk_usage(place).free
    except OSError:
        return None


def space_note(folder: Path, input_bytes: int) -> str | None:
    """A note when the disk of `folder` has less room than the import may need."""
    free = free_bytes(folder)
    needed = needed_bytes(input_bytes)
    if free is None or free >= needed:
        return None
    return (f"the results folder {folder} has {human_size(free)} free; should many customers "
            f"fail, this import may write up to {human_size(needed)} there (retry files, "
            "failure records, the import history). Should the disk fill up, the import "
            "pauses (the command line stops) until there is room: free some space, or "
            "choose another results folder")


def reserve_bytes(batch_size: int, concurrency: int) -> int:
    """Room for the outcomes of every batch read but not answered when the disk fills:
    those in flight, those waiting to be sent and those being read."""
    customers = 6 * max(1, concurrency) * max(1, batch_size)
    return max(RESERVE_MIN, min(RESERVE_MAX, customers * RESERVE_PER_CUSTOMER))


def _allocate(handle: int, size: int) -> bool:
    """Allocate `size` bytes to the open file; False where the system cannot (Windows and
    macOS have no posix_fallocate, some file systems refuse it). A full disk raises."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is None:
        return False
    try:
        fallocate(handle, 0, size)
    except OSError as exc:
        if is_disk_full(exc):
            raise
        return False
    return True


class SpaceReserve:
    """Room kept free on the results folder's disk for the import history.

    The history lives beside the result files: when they fill the disk, the outcomes of
    the batches under way, and the "not sent" of those waiting, could not be recorded any
    more. The reserve, a file made as the import starts, is deleted at the first sign of a
    full disk, which leaves the history that room. Best effort: a disk too full for it, or
    a system that refuses, gets none.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path = Path(path)
        self.size = size
        self.held = False

    def make(self) -> bool:
        """Take the room (allocated, not just a sparse file); False when it could not."""
        try:
            handle = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                             | getattr(os, "O_BINARY", 0), 0o600)
        except OSError:
            return False
        self.held = True
        try:
            if not _allocate(handle, self.size):
                chunk = bytes(1 << 20)  # no fallocate here: written out
                for start in range(0, self.size, len(chunk)):
                    os.write(handle, chunk[: self.size - start])
        except OSError:
            os.close(handle)
            self.release()
            return False
        os.close(handle)
        return True

    def release(self) -> bool:
        """Give the room back; True when it was held until now."""
        was_held, self.held = self.held, False
        try:
            os.unlink(self.path)
        except OSError:
            return False
        return was_held
