"""Finds the customer files in the files and folders a user gives, and says what it skipped.

Folders are searched with their subfolders. Links to other folders found on the way are not
followed (a symlink, or on Windows a junction such as the "My Music" link in Documents, whose
listing Windows denies): following them can loop or leave the folder the user chose; they
are named in `FileSearch.links`, a note, not a problem. A folder the user gives is searched
even when it is a link itself, and links to files are read. Every path that cannot be used
is named with the real reason (no permission, a link loop, a named pipe, a device), never
just "not found". Files this app wrote itself (retry summaries, failure lists, kept API
answers) are recognised by name *and* content and listed as skipped, so
adding a whole results folder never imports bookkeeping, and no customer file is ever
skipped just because of its name.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.models.display_text import printable_path
from app.services.sources.customer_reader import CUSTOMER_FILE_SUFFIXES, ReadProblem
from app.services.sources.table_source import SPREADSHEET_SUFFIXES

#: What a folder search reads: customer JSON files and spreadsheets. A `.txt` file is read
#: as CSV only when given by itself (a folder's notes and readmes are not customer data).
FOLDER_SUFFIXES = tuple(suffix for suffix in CUSTOMER_FILE_SUFFIXES + SPREADSHEET_SUFFIXES
                        if suffix != ".txt")

_HEAD_BYTES = 16 * 1024
_APPLE_DOUBLE_MAGIC = b"\x00\x05\x16\x07"


@dataclass(slots=True, frozen=True)
class SkippedFile:
    """A file found but deliberately not read, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{printable_path(Path(self.path).name)}: {self.reason}"


@dataclass(slots=True)
class FileSearch:
    """What a search found: customer files in a stable order, problems, skipped files, and
    the links to folders it did not follow."""

    files: list[Path] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)  # files this app wrote itself
    links: list[SkippedFile] = field(default_factory=list)  # folder links not followed

    def link_notes(self) -> list[str]:
        """One line per link not followed ("My Music: a junction ...: not searched"), for
        a summary's notes."""
        return [str(link) for link in self.links]


def find_customer_files(paths: Iterable[str | Path]) -> FileSearch:
    """Expand files and folders (searched recursively) into customer files."""
    search = FileSearch()
    seen_files: set[str] = set()
    seen_folders: set[tuple[int, int]] = set()

    def add(path: Path) -> None:
        reason = own_result_file(path)
        if reason is not None:
            search.skipped.append(SkippedFile(str(path), reason))
            return
        key = os.path.normcase(os.path.realpath(path))
        if key not in seen_files:
            seen_files.add(key)
            search.files.append(path)

    for raw in paths:
        path = Path(raw)
        mode, problem = _stat_path(path)
        if problem is not None:
            search.problems.append(ReadProblem(str(path), problem, fatal_for_file=True))
        elif stat.S_ISDIR(mode):
            for found in _walk(path, search, seen_folders):
                add(found)
        else:
            add(path)
    return search


def path_problem(path: str | Path) -> str | None:
    """Why `path` cannot be used as a customer file or folder; None when it can."""
    return _stat_path(Path(path))[1]


def _stat_path(path: Path) -> tuple[int, str | None]:
    """(st_mode, None) for a usable file or folder, else (0, the reason in plain words)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return 0, "a link to a file or folder that does not exist"
        return 0, "no such file or folder"
    except PermissionError:
        return 0, "no permission to open it"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return 0, "a link that leads back to itself (a link loop)"
        return 0, f"cannot be opened ({exc.strerror or exc})"
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return mode, None
    through_link = " (reached through a link)" if os.path.islink(path) else ""
    if stat.S_ISFIFO(mode):
        what = "a named pipe"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device"
    elif stat.S_ISSOCK(mode):
        what = "a socket"
    else:
        what = "a special file"
    return 0, f"{what}{through_link}, not a file with customers: skipped"


def _walk(folder: Path, search: FileSearch, seen_folders: set[tuple[int, int]]
          ) -> list[Path]:
    """Customer files under `folder`, depth first, each folder's files by name first."""
    found: list[Path] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            info = os.stat(current)
            key = (info.st_dev, info.st_ino)
            if key in seen_folders:
                continue  # given twice, or also inside another folder given: searched
            seen_folders.add(key)
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            search.problems.append(ReadProblem(
                str(current), f"the folder could not be searched "
                f"({_reason(exc)}); files in it were not read", fatal_for_file=True))
            continue
        subfolders: list[Path] = []
        for entry in entries:
            path = Path(entry.path)
            link = _folder_link(entry)
            if link is not None:
                search.links.append(SkippedFile(str(path), link))
                continue
            try:
                if entry.is_dir():
                    subfolders.append(path)
                    continue
            except OSError:
                pass  # the stat below says what is wrong with it
            if path.suffix.lower() not in FOLDER_SUFFIXES:
                continue
            mode, problem = _stat_path(path)
            if problem is not None:
                search.problems.append(ReadProblem(str(path), problem, fatal_for_file=True))
            elif stat.S_ISREG(mode):
                found.append(path)
        stack.extend(reversed(subfolders))
    return found


# Windows reparse tags (winnt.h; Python's stat module has them only on Windows). The tags
# that make an entry a name for another place (junctions, also called mount points, and
# symbolic links) carry the name-surrogate bit (IsReparseTagNameSurrogate). Cloud
# placeholders (OneDrive's files on demand) are reparse points too, without it: those are
# real folders and are searched.
_IO_REPARSE_TAG_MOUNT_POINT = 0xA0000003
_IO_REPARSE_TAG_SYMLINK = 0xA000000C
_NAME_SURROGATE_BIT = 0x20000000


def windows_link_kind(file_attributes: int, reparse_tag: int) -> str | None:
    """What a Windows folder entry links to, in plain words, or None for a real folder.

    `file_attributes` and `reparse_tag` are the entry's own `st_file_attributes` and
    `st_reparse_tag` (not its target's: `DirEntry.stat(follow_symlinks=False)`).
    """
    if not file_attributes & stat.FILE_ATTRIBUTE_REPARSE_POINT:
        return None
    if reparse_tag == _IO_REPARSE_TAG_MOUNT_POINT:
        return "a junction (a link to another folder): not searched"
    if reparse_tag == _IO_REPARSE_TAG_SYMLINK:
        return "a link to another folder: not searched"
    if reparse_tag == 0 or reparse_tag & _NAME_SURROGATE_BIT:
        # another kind of name for somewhere else (or no tag given): never entered
        return "a link to another place (a reparse point): not searched"
    return None  # a cloud placeholder, a deduplicated folder, ...: a real folder


def _folder_link(entry: os.DirEntry[str]) -> str | None:
    """Why a folder entry is a link not to follow (in plain words), or None.

    None for a real folder, a file, and a link to a file (read like the file). A symlink
    that leads nowhere (missing, a loop) is named too, unless its name is a customer
    file's: then reading it reports what is wrong, as a problem.
    """
    if os.name == "nt":
        try:  # from the listing itself: no further call to the disk
            own = entry.stat(follow_symlinks=False)
        except OSError:
            return None
        attributes = int(getattr(own, "st_file_attributes", 0))
        if not attributes & stat.FILE_ATTRIBUTE_DIRECTORY:
            return None  # a file, or a link to one: read like the file
        return windows_link_kind(attributes, int(getattr(own, "st_reparse_tag", 0)))
    try:
        if not entry.is_symlink():  # from the listing's file type where it has one
            return None
    except OSError:
        return None  # what it is cannot be told: the usual checks say why
    try:
        target = os.stat(entry.path).st_mode
    except OSError as exc:
        if Path(entry.name).suffix.lower() in FOLDER_SUFFIXES:
            return None  # named like a customer file: reading it reports the problem
        if exc.errno == errno.ELOOP:
            return "a link that leads back to itself (a link loop): skipped"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "a link to a file or folder that does not exist: skipped"
        return f"a link that cannot be followed ({_reason(exc)}): skipped"
    if stat.S_ISDIR(target):
        return "a link to another folder: not searched"
    return None


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "no permission"
    if exc.errno == errno.ELOOP:
        return "a link loop"
    return exc.strerror or str(exc)


def own_result_file(path: Path) -> str | None:
    """Why `path` is a file this app wrote (not customer data), or None.

    Decided by name and content together: a user's file that merely has such a name is
    still read.
    """
    name = path.name
    lowered = name.lower()
    if name.startswith("._"):
        return ("a macOS resource file (AppleDouble), not customer data"
                if _head(path).startswith(_APPLE_DOUBLE_MAGIC) else None)
    if lowered == "retry_summary.json":
        head = _head(path)
        return ("the summary of a retry folder, written by this app"
                if head.lstrip().startswith(b"{") and b'"importStartedAt"' in head else None)
    if lowered.startswith("_summary_") and lowered.endswith(".json"):
        head = _head(path)
        return ("a summary of single-failure files, written by this app"
                if head.lstrip().startswith(b"{") and b'"updatedAt"' in head
                and b'"customers"' in head else None)
    if lowered.startswith("failed_customers") and lowered.endswith(".json"):
        head = _head(path).lstrip()
        is_list = head.startswith(b"[")
        records = b'"batchInfo"' in head and b'"result"' in head
        empty = head.replace(b" ", b"").replace(b"\n", b"").replace(b"\r", b"") == b"[]"
        return ("the list of failed customers, written by this app"
                if is_list and (records or empty) else None)
    if name.startswith("~$") and lowered.endswith((".xlsx", ".xlsm")):
        return "the lock file Excel keeps while the workbook is open, not customer data"
    if lowered.endswith(".csv") and (lowered.startswith(("error_report", "failed_customers"))):
        head = _head(path).removeprefix(b"\xef\xbb\xbf")
        # separated by the computer's list separator (`,` or `;`) or the one chosen (tab)
        for sep in (b",", b";", b"\t"):
            if head.startswith(sep.join((b"file", b"row", b"column", b"value", b"message"))):
                return "an error report of refused rows, written by this app"
            if head.startswith(sep.join((b"Customer ID", b"Username", b"Result", b"Error", b""))):
                return "an export of failed customers, written by this app"
        return None
    if path.parent.name == "api_responses":
        head = _head(path)
        return ("an API answer kept for troubleshooting, written by this app"
                if head.lstrip().startswith(b"{") and b'"customerIds"' in head
                and b'"batch"' in head else None)
    return None


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_HEAD_BYTES)
    except OSError:
        return b""  # unreadable: not recognisably ours; reading it reports why
