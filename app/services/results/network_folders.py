"""Whether a results folder is on a network file system (NFS, SMB, sshfs, ...).

The import history is a SQLite database, normally in WAL mode, whose index lives in shared
memory beside the database: processes on different computers cannot share it, so WAL does
not work on a network file system (SQLite's documentation says so). On a network share the
history uses SQLite's rollback journal (journal_mode=DELETE) instead, which relies on the
share's file locks only.

How the folder is recognised:
- Linux: the type of the mount that holds it, from /proc/self/mounts;
- macOS: statfs(2) through ctypes: the MNT_LOCAL flag and the file system's type name;
- Windows: a UNC path (\\\\server\\share), or a drive that GetDriveTypeW calls remote.
Anything that cannot be told counts as local (the default of every earlier version).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Callable
from pathlib import Path, PureWindowsPath

#: File system types (as Linux names them in /proc/mounts) whose files live on another
#: computer. FUSE file systems appear as "fuse.<name>".
NETWORK_FS_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "9p", "afs", "ncpfs", "coda",
    "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "davfs", "webdav", "afpfs", "sshfs",
    "vboxsf", "vmhgfs", "drvfs", "fuse.sshfs", "fuse.glusterfs", "fuse.cephfs", "fuse.davfs2",
    "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse", "fuse.vmhgfs-fuse", "fuse.smbnetfs",
})

#: Reports what share holds a folder ("an nfs4 network share"), None for a local folder.
ShareCheck = Callable[[Path], str | None]


def is_network_fs_type(fs_type: str) -> bool:
    """Whether a file system type name (nfs4, cifs, fuse.sshfs, smbfs, ...) is remote."""
    name = fs_type.strip().lower()
    return name in NETWORK_FS_TYPES or name.startswith("nfs") \
        or (name.startswith("fuse.") and name[5:] in NETWORK_FS_TYPES)


def _unescape_mount_field(field: str) -> str:
    r"""/proc/mounts writes a space as \040, a tab as \011, a backslash as \134."""
    out, index = [], 0
    while index < len(field):
        char = field[index]
        digits = field[index + 1:index + 4]
        if char == "\\" and len(digits) == 3 and all(d in "01234567" for d in digits):
            out.append(chr(int(digits, 8)))
            index += 4
        else:
            out.append(char)
            index += 1
    return "".join(out)


def parse_mounts(text: str) -> list[tuple[str, str]]:
    """(mount point, file system type) of each line of /proc/mounts-style text."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            mounts.append((_unescape_mount_field(fields[1]), fields[2]))
    return mounts


def mount_fs_type(path: str, mounts_text: str) -> str | None:
    """The type of the file system that holds the absolute POSIX `path`: the deepest
    mount point above it (the last one mounted there, when several were)."""
    best: tuple[int, str] | None = None
    for point, fs_type in parse_mounts(mounts_text):
        inside = path == point or point == "/" or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), fs_type)
    return best[1] if best else None


def is_unc_path(path: str) -> bool:
    r"""A Windows path on another computer: \\server\share\..., or \\?\UNC\server\share."""
    text = path.replace("/", "\\")
    if text.upper().startswith("\\\\?\\UNC\\"):
        return True
    if text.startswith(("\\\\?\\", "\\\\.\\")):
        return False  # a local path in the long-path or device form
    drive = PureWindowsPath(text).drive
    return drive.startswith("\\\\") and len(drive) > 2


def _existing(folder: Path) -> Path:
    place = Path(os.path.realpath(folder))
    while not place.exists() and place.parent != place:
        place = place.parent
    return place


def _linux_share(folder: Path) -> str | None:
    try:
        text = Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fs_type = mount_fs_type(str(_existing(folder)), text)
    if fs_type and is_network_fs_type(fs_type):
        return f"a network share ({fs_type})"
    return None


class _DarwinStatfs(ctypes.Structure):
    """struct statfs of macOS with 64-bit inodes (<sys/mount.h>)."""

    _fields_ = (
        ("f_bsize", ctypes.c_uint32), ("f_iosize", ctypes.c_int32),
        ("f_blocks", ctypes.c_uint64), ("f_bfree", ctypes.c_uint64),
        ("f_bavail", ctypes.c_uint64), ("f_files", ctypes.c_uint64),
        ("f_ffree", ctypes.c_uint64), ("f_fsid", ctypes.c_int32 * 2),
        ("f_owner", ctypes.c_uint32), ("f_type", ctypes.c_uint32),
        ("f_flags", ctypes.c_uint32), ("f_fssubtype", ctypes.c_uint32),
        ("f_fstypename", ctypes.c_char * 16), ("f_mntonname", ctypes.c_char * 1024),
        ("f_mntfromname", ctypes.c_char * 1024), ("f_flags_ext", ctypes.c_uint32),
        ("f_reserved", ctypes.c_uint32 * 7),
    )


_MNT_LOCAL = 0x00001000


def _darwin_share(folder: Path) -> str | None:
    libc = ctypes.CDLL(None, use_errno=True)
    statfs = None
    for name in ("statfs$INODE64", "statfs"):  # Intel needs the 64-bit inode variant
        with contextlib.suppress(AttributeError):
            statfs = getattr(libc, name)
            break
    if statfs is None:
        return None
    statfs.argtypes = [ctypes.c_char_p, ctypes.POINTER(_DarwinStatfs)]
    statfs.restype = ctypes.c_int
    result = _DarwinStatfs()
    if statfs(os.fsencode(_existing(folder)), ctypes.byref(result)) != 0:
        return None
    fs_type = result.f_fstypename.decode("utf-8", "replace")
    if not result.f_flags & _MNT_LOCAL or is_network_fs_type(fs_type):
        return f"a network share ({fs_type})"
    return None


def _windows_share(folder: Path) -> str | None:
    text = str(folder)
    if is_unc_path(text):
        return "a network share"
    drive = PureWindowsPath(os.path.abspath(text)).drive
    if len(drive) == 2 and drive[1] == ":":
        drive_remote = 4
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        kernel32.GetDriveTypeW.argtypes = [ctypes.c_wchar_p]
        kernel32.GetDriveTypeW.restype = ctypes.c_uint
        if kernel32.GetDriveTypeW(drive + "\\") == drive_remote:
            return f"a network drive ({drive})"
    return None


def network_share(folder: Path) -> str | None:
    """What network share holds `folder` ("a network share (nfs4)"), None when it is local
    or cannot be told."""
    try:
        if sys.platform == "win32":
            return _windows_share(Path(folder))
        if sys.platform == "darwin":
            return _darwin_share(Path(folder))
        if sys.platform.startswith("linux"):
            return _linux_share(Path(folder))
    except (OSError, ValueError, AttributeError):
        return None
    return None
