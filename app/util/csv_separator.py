"""The list separator Excel expects in a CSV file on this computer, and the separators offered.

Excel opens a CSV file by splitting its lines at the system's list separator: `,` where
numbers are written `1.5`, `;` where they are written `1,5` (Swedish, Norwegian, Danish,
German, French, … settings). A file written with the other one shows each row in a single
column. So the app's CSV files (error reports, exports of failed customers) use:

- on Windows, the list separator of the user's Region settings (the registry value
  `HKEY_CURRENT_USER\\Control Panel\\International\\sList`, which Excel itself reads);
- on macOS, `;` when the user's number format has a decimal comma (Core Foundation's
  current locale, which a program started from the Finder also has: it gets no `LANG`);
- elsewhere (and when the above cannot be read), `;` when the locale of the environment
  (`LC_ALL`, `LC_NUMERIC`, `LANG`) writes a decimal comma, else `,`.

The process's own locale is left as it was: it is only looked at, under a lock, and put
back at once (Qt and the number formatting elsewhere depend on it).
"""

from __future__ import annotations

import locale
import sys
import threading

SEMICOLON, COMMA, TAB = ";", ",", "\t"
#: The separators offered to choose from, with their names (the window's export).
SEPARATOR_NAMES: dict[str, str] = {SEMICOLON: "Semicolon (;)", COMMA: "Comma (,)",
                                   TAB: "Tab"}
#: What `--delimiter` takes (any case): the characters themselves or their names.
_SEPARATOR_WORDS = {";": SEMICOLON, "semicolon": SEMICOLON, ",": COMMA, "comma": COMMA,
                    "\t": TAB, "\\t": TAB, "tab": TAB}
#: Not a separator, whatever the Region settings say: quotes and line ends are the CSV
#: format's own, and a letter or digit would split the text itself.
_NEVER = frozenset('"\r\n')

_locale_lock = threading.Lock()
_locale_answer: str | None = None


def separator_for_decimal_point(decimal_point: str) -> str:
    """The list separator that goes with `decimal_point`: `;` for a decimal comma, else `,`
    (a comma cannot separate cells whose numbers hold one)."""
    return SEMICOLON if decimal_point.strip() == "," else COMMA


def usable_separator(text: object) -> bool:
    """Whether `text` can separate the cells of a CSV file (one character, not a quote, a
    line end, a letter or a digit)."""
    return (isinstance(text, str) and len(text) == 1 and text not in _NEVER
            and not text.isalnum())


def checked_separator(separator: str | None) -> str:
    """`separator`, or the system's when None; raises ValueError when it cannot separate
    CSV cells."""
    if separator is None:
        return system_separator()
    if not usable_separator(separator):
        raise ValueError(f"{separator!r} cannot separate the cells of a CSV file: "
                         "use ; , or tab")
    return separator


def parse_separator(text: str) -> str:
    """A separator as the command line names it: `;` `,` `tab` (also `semicolon`, `comma`,
    `\\t`); raises ValueError otherwise."""
    separator = _SEPARATOR_WORDS.get(text if text == "\t" else text.strip().lower())
    if separator is None:
        raise ValueError(f"{text!r} is not a separator: use ';', ',' or 'tab'")
    return separator


def separator_name(separator: str) -> str:
    """"Semicolon (;)", "Comma (,)", "Tab", or the character itself in quotes."""
    return SEPARATOR_NAMES.get(separator, f"“{separator}”")


def system_separator() -> str:
    """The list separator Excel uses on this computer for the user (see the module)."""
    if sys.platform == "win32":
        found = _windows_separator()
        if found is not None:
            return found
    elif sys.platform == "darwin":
        decimal_point = _macos_decimal_point()
        if decimal_point:
            return separator_for_decimal_point(decimal_point)
    return locale_separator()


def locale_separator() -> str:
    """The separator for the decimal point of the environment's locale (`LC_ALL`,
    `LC_NUMERIC`, `LANG`); `,` when it names no locale this system has.

    The answer is kept for the life of the process: the environment does not change, and
    the process's locale is touched (and put back) only once.
    """
    global _locale_answer
    with _locale_lock:
        if _locale_answer is None:
            _locale_answer = separator_for_decimal_point(_environment_decimal_point())
        return _locale_answer


def _environment_decimal_point() -> str:
    """The decimal point of the environment's locale, the process's locale left as it was.

    `localeconv()` only reports the locale in force, so LC_NUMERIC is set from the
    environment for that one call and then put back (only this category, only here).
    """
    before = locale.setlocale(locale.LC_NUMERIC)
    try:
        locale.setlocale(locale.LC_NUMERIC, "")
    except locale.Error:  # the environment names a locale this system does not have
        return "."
    try:
        return str(locale.localeconv()["decimal_point"])
    finally:
        locale.setlocale(locale.LC_NUMERIC, before)


if sys.platform == "win32":
    import winreg

    def _windows_separator() -> str | None:
        """The user's list separator from the Region settings, else the one that goes with
        their decimal symbol; None when neither can be read."""
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER,
                                r"Control Panel\International") as key:
                try:
                    value, kind = winreg.QueryValueEx(key, "sList")
                    if kind == winreg.REG_SZ and usable_separator(value):
                        return str(value)
                except OSError:
                    pass
                value, kind = winreg.QueryValueEx(key, "sDecimal")
                if kind == winreg.REG_SZ and isinstance(value, str) and value:
                    return separator_for_decimal_point(value)
        except OSError:
            return None
        return None

else:

    def _windows_separator() -> str | None:
        return None


def _macos_decimal_point() -> str | None:
    """The decimal separator of the user's current locale from Core Foundation
    (`CFLocaleCopyCurrent`, `kCFLocaleDecimalSeparator`), with the number format they set
    in System Settings; None when it cannot be read."""
    import ctypes
    import ctypes.util

    path = ctypes.util.find_library("CoreFoundation")
    if not path:
        return None
    try:
        cf = ctypes.CDLL(path)
        cf.CFLocaleCopyCurrent.restype = ctypes.c_void_p
        cf.CFLocaleCopyCurrent.argtypes = []
        cf.CFLocaleGetValue.restype = ctypes.c_void_p
        cf.CFLocaleGetValue.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        cf.CFStringGetCString.restype = ctypes.c_bool
        cf.CFStringGetCString.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_long,
                                          ctypes.c_uint32]
        cf.CFRelease.restype = None
        cf.CFRelease.argtypes = [ctypes.c_void_p]
        # the key is a CFStringRef constant the library exports
        key = ctypes.c_void_p.in_dll(cf, "kCFLocaleDecimalSeparator")
        current = cf.CFLocaleCopyCurrent()
        if not current:
            return None
        try:
            value = cf.CFLocaleGetValue(current, key)  # owned by the locale: not released
            if not value:
                return None
            buffer = ctypes.create_string_buffer(32)
            utf8 = 0x08000100  # kCFStringEncodingUTF8
            if not cf.CFStringGetCString(value, buffer, len(buffer), utf8):
                return None
            return buffer.value.decode("utf-8")
        finally:
            cf.CFRelease(current)
    except (OSError, AttributeError, ValueError, UnicodeDecodeError):
        return None
