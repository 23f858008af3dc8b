"""Sharing one results folder between imports: two windows, or a window and a scheduled run.

Two things make that safe:
- `merging_results` holds the folder's lock while files that every import adds to
  (`failed_customers.json`, the `_SUMMARY_*.json` files) are read, merged and written
  again, so one import never writes over what another just added;
- `ImportPresence` marks an import as running in the folder for as long as its process
  lives (an OS file lock, released by the OS when the process dies, however it dies), so
  an import can tell the user that another one is writing there too.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout

from app.util.atomic_files import make_private_folder

MERGE_LOCK_NAME = ".bulk-import.lock"
RUNNING_FOLDER = ".running"
#: Waiting longer than this for another import's merge means it hangs: save apart instead.
MERGE_WAIT_S = 600.0
_QUICK_S = 0.2


class FolderBusy(Exception):
    """Another import held the folder's lock for longer than `MERGE_WAIT_S`."""


@contextlib.contextmanager
def merging_results(output_dir: Path, on_wait: Callable[[str], None] | None = None,
                    wait_s: float = MERGE_WAIT_S) -> Iterator[None]:
    """Hold the results folder's lock (across processes) for a read-merge-write.

    `on_wait` hears a message when another import holds the lock at first. Raises
    `FolderBusy` after `wait_s` seconds.
    """
    output_dir = make_private_folder(Path(output_dir))
    lock = FileLock(output_dir / MERGE_LOCK_NAME)
    try:
        lock.acquire(timeout=_QUICK_S)
    except Timeout:
        if on_wait is not None:
            on_wait("another import is saving its results into this folder; waiting for it "
                    "to finish, so that neither loses anything")
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            raise FolderBusy(f"another import has held {output_dir} for over "
                             f"{wait_s:.0f} s") from None
    try:
        yield
    finally:
        lock.release()


class ImportPresence:
    """Marks one import as running in a results folder, and finds the others running there.

    `enter()` returns a description of each other import running now; stale marks of
    imports whose process died are removed on the way. `leave()` (or the process ending)
    takes the mark away.
    """

    def __init__(self, output_dir: Path, label: str = "") -> None:
        self.folder = Path(output_dir) / RUNNING_FOLDER
        self.label = label
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S_%f")
        self.mark = self.folder / f"import-{os.getpid()}-{stamp}.lock"
        self._lock: FileLock | None = None

    def enter(self) -> list[str]:
        """Mark this import as running; returns the other imports running in the folder.

        A folder where nothing can be written gets no mark (writing the results there
        fails later, with its own message).
        """
        try:
            make_private_folder(self.folder)
            others = running_imports(self.folder)
            lock = FileLock(self.mark)
            lock.acquire(timeout=_QUICK_S)
            self._lock = lock
            self.mark.with_suffix(".json").write_text(json.dumps({
                "pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.now().isoformat(timespec="seconds"), "label": self.label,
            }), encoding="utf-8")
        except (OSError, Timeout):
            return []
        return others

    def leave(self) -> None:
        if self._lock is None:
            return
        self._lock.release()
        self._lock = None
        _remove_mark(self.mark)

    def is_held(self) -> bool:
        return self._lock is not None

    def is_alive(self, mark_name: str) -> bool:
        """Whether the import whose mark is `mark_name` (in this folder) still runs."""
        if self.is_held() and mark_name == self.mark.name:
            return True
        return mark_is_held(self.folder / mark_name)


def running_imports(folder: Path) -> list[str]:
    """Descriptions of the imports whose marks in `folder` are held by a live process."""
    others: list[str] = []
    for mark in sorted(folder.glob("import-*.lock")):
        lock = FileLock(mark)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            others.append(_describe(mark))
            continue
        except OSError:
            continue  # not ours to judge (a permission problem): leave it
        lock.release()
        _remove_mark(mark)  # its process is gone
    return others


def mark_is_held(mark: Path) -> bool:
    """Whether a live process holds the import mark `mark`."""
    if not mark.exists():
        return False
    lock = FileLock(mark)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False


def _describe(mark: Path) -> str:
    try:
        info = json.loads(mark.with_suffix(".json").read_text("utf-8"))
    except (OSError, ValueError):
        return "another import (details unknown)"
    started = str(info.get("started", "")).replace("T", " ")
    where = "" if info.get("host") == socket.gethostname() else f" on {info.get('host')}"
    label = f" ({info['label']})" if info.get("label") else ""
    return f"an import started {started} by process {info.get('pid')}{where}{label}"


def _remove_mark(mark: Path) -> None:
    # .reserve: the room an import keeps for its history (see disk_space.SpaceReserve)
    for path in (mark, mark.with_suffix(".json"), mark.with_suffix(".reserve")):
        with contextlib.suppress(OSError):
            path.unlink()
