"""File names that are valid on Windows and macOS and keep letters such as Å Ä Ö, and
the length limits of paths they must respect.

Every file the app writes has its full path within `max_path_length()`, the temporary name
it is first written under (`atomic_files`) included: Windows refuses longer paths unless
long paths are enabled on the computer, and a results folder inside OneDrive for Business
(`C:\\Users\\first.last\\OneDrive - Company Name AB\\Documents\\...`) takes a good part of
its 259 characters before the app's own folders begin. Names built from customer data are
shortened to what is left (`name_budget`); fixed names are short.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import unicodedata

_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
    | {"COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³"}
)
MAX_COMPONENT_BYTES = 120  # well under the 255-byte limit, leaving room for the folder path

#: The longest name of one file or folder: UTF-8 bytes on macOS and Linux, characters
#: (UTF-16 code units) on Windows' NTFS.
MAX_NAME_LENGTH = 255
#: What a file's temporary name (`atomic_files.temp_path`, `.NAME.<pid>-<n>.part`) adds to
#: its name at most: two dots, a process id of up to 10 digits, a dash, a counter of up to
#: 12 digits and `.part`.
TEMP_NAME_EXTRA = 30
#: The longest full path of a file the app writes, in `path_length`'s units; None: the
#: platform's (see `max_path_length`). Tests set a small one.
MAX_PATH_LENGTH: int | None = None

_ON_WINDOWS = sys.platform == "win32"
# MAX_PATH is 260 with the terminating NUL; with long paths enabled, 32,767 with it
_WINDOWS_MAX_PATH = 259
_WINDOWS_LONG_PATH = 32_766
# PATH_MAX with the terminating NUL: 1024 on macOS, 4096 on Linux
_MACOS_MAX_PATH = 1023
_LINUX_MAX_PATH = 4095
_FINGERPRINT_LENGTH = 8


def safe_name_part(text: str, *, fallback: str = "unknown", max_bytes: int = 60) -> str:
    """One piece of a file name: forbidden characters and path separators become `_`.

    NFC normalisation keeps Ö as one character on every system (macOS would otherwise
    hand back a decomposed O + diaeresis). Dots at the ends are dropped, so `..` can never
    climb out of the folder.
    """
    text = unicodedata.normalize("NFC", str(text))
    text = _FORBIDDEN.sub("_", text)
    text = re.sub(r"\s+", "", text)
    text = text.strip(". ")
    text = _truncate_utf8(text, max_bytes).strip(". ")
    if not text or set(text) <= {"_"}:
        return fallback
    return text


def safe_file_name(stem: str, suffix: str = "") -> str:
    """A whole file name: a safe stem, never a reserved device name, bounded in length."""
    stem = _FORBIDDEN.sub("_", unicodedata.normalize("NFC", stem)).strip(". ") or "file"
    stem = _truncate_utf8(stem, MAX_COMPONENT_BYTES - len(suffix.encode())).rstrip(". ")
    if stem.split(".")[0].upper() in _RESERVED:
        stem = f"_{stem}"
    return f"{stem}{suffix}"


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


def single_failure_file_name(customer_id: str, username: str, *, kind: str = "customers",
                             fallback_key: str = "", max_length: int | None = None) -> str:
    """`customer_<ID>_<USERNAME>.json`, as seed 002 lays them out, one name per customer.

    Where the id alone would not keep two customers apart, a short fingerprint of the exact
    id follows it (`customer_<ID>~1a2b3c4d_...`): when making it safe changed the id
    (`X/1234`, `X:1234` and `X_1234` all become `X_1234`), when it has lower-case letters
    (`abc` and `ABC` are one file on Windows and macOS), and when there is no id (then
    `fallback_key`, such as file and record, tells the customers apart).

    `max_length` (in `name_length`'s units; see `name_budget`): a deep folder leaves little
    room, so the username is shortened first, then dropped, then the id is shortened too
    and its fingerprint added (`customer_<ID START>~1a2b3c4d.json`): still one name per
    customer. Should even `customer_~1a2b3c4d.json` be too long, that is the name.
    """
    id_part = safe_name_part(customer_id, fallback="no-id")
    fingerprint = ""
    if not customer_id or id_part != customer_id or customer_id != customer_id.upper():
        fingerprint = _fingerprint(kind, customer_id, fallback_key)
    stem = f"customer_{id_part}{fingerprint}_{safe_name_part(username, fallback='unnamed')}"
    name = safe_file_name(stem, ".json")
    if max_length is None or name_length(name) <= max_length:
        return name
    # the username shortened, down to nothing; the id (which keeps customers apart) whole
    stem = f"customer_{id_part}{fingerprint}"
    room = max_length - name_length(f"{stem}_.json")
    user = _truncate_units(safe_name_part(username, fallback=""), room).rstrip(". ")
    if user:
        return safe_file_name(f"{stem}_{user}", ".json")
    if name_length(f"{stem}.json") <= max_length:
        return safe_file_name(stem, ".json")
    # the id shortened too: the fingerprint of the exact id tells customers apart
    fingerprint = fingerprint or _fingerprint(kind, customer_id, fallback_key)
    room = max_length - name_length(f"customer_{fingerprint}.json")
    id_start = _truncate_units(id_part, max(0, room)).rstrip(". ")
    return safe_file_name(f"customer_{id_start}{fingerprint}", ".json")


def _fingerprint(kind: str, customer_id: str, fallback_key: str) -> str:
    """`~` and 8 hex digits of the exact id (or of `fallback_key` when there is none): the
    same in every run of the app, so a new failure replaces the customer's file."""
    identity = f"{kind}\0{customer_id}" if customer_id else f"{kind}\0\0{fallback_key}"
    digest = hashlib.sha1(identity.encode("utf-8", "surrogatepass")).hexdigest()
    return "~" + digest[:_FINGERPRINT_LENGTH]


def max_path_length() -> int:
    """The longest full path of a file the app may write, in `path_length`'s units.

    `MAX_PATH_LENGTH` when set; else on Windows 259 characters, or 32,766 where long paths
    are enabled (python.exe and the packaged app, whose PyInstaller manifest says so, are
    long-path aware: only the system setting counts); on macOS 1023 and on Linux 4095
    bytes.
    """
    if MAX_PATH_LENGTH is not None:
        return MAX_PATH_LENGTH
    return _platform_max_path()


@functools.cache
def _platform_max_path() -> int:
    if _ON_WINDOWS:
        return _WINDOWS_LONG_PATH if _windows_long_paths_enabled() else _WINDOWS_MAX_PATH
    return _MACOS_MAX_PATH if sys.platform == "darwin" else _LINUX_MAX_PATH


if sys.platform == "win32":
    import winreg

    def _windows_long_paths_enabled() -> bool:
        """HKLM\\SYSTEM\\CurrentControlSet\\Control\\FileSystem LongPathsEnabled = 1 (set by
        an administrator or a group policy; read once, as Windows applies it to a program
        as it starts)."""
        try:
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE,
                                r"SYSTEM\CurrentControlSet\Control\FileSystem") as key:
                value, kind = winreg.QueryValueEx(key, "LongPathsEnabled")
        except OSError:
            return False
        return kind == winreg.REG_DWORD and value == 1

else:

    def _windows_long_paths_enabled() -> bool:
        return False


def name_length(text: str) -> int:
    """The length the file system counts: characters (UTF-16 code units) on Windows, bytes
    of the UTF-8 encoding elsewhere (Å Ä Ö take two)."""
    if _ON_WINDOWS:
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    return len(os.fsencode(text))


def path_length(path: str | os.PathLike[str]) -> int:
    """`name_length` of the full path (a relative one is taken from the working folder, as
    the system does)."""
    return name_length(os.path.abspath(path))


def name_budget(folder: str | os.PathLike[str]) -> int:
    """The longest name a file in `folder` may have: its full path, and that of its
    temporary name (`TEMP_NAME_EXTRA` longer), within `max_path_length()`, and the temporary
    name within `MAX_NAME_LENGTH`. May be 0 or less: the folder is too deep for any file."""
    room = max_path_length() - path_length(folder) - len(os.sep) - TEMP_NAME_EXTRA
    return min(MAX_NAME_LENGTH - TEMP_NAME_EXTRA, room)


def _truncate_units(text: str, max_length: int) -> str:
    """`text` cut to at most `max_length` of `name_length`'s units, never inside a letter."""
    if max_length <= 0:
        return ""
    if _ON_WINDOWS:
        encoded = text.encode("utf-16-le", "surrogatepass")
        # a surrogate pair cut in half is dropped whole
        return encoded[:2 * max_length].decode("utf-16-le", "ignore")
    return _truncate_utf8(text, max_length)
