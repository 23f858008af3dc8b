"""File names (and other text from files) made safe to show: control characters become escapes.

Linux and macOS allow almost any character in a file name, ESC, BEL and line breaks
included. Printed as they are, such a name could clear a terminal, forge a line of a
report or reverse the text around it; shown as `\\x1b` they are harmless and visible.
"""

from __future__ import annotations

import os
import re

# C0 controls, DEL, C1 controls, the line and paragraph separators, the bidirectional
# embeddings, overrides and isolates, and lone surrogates (a byte of a file name that was
# not UTF-8, as Python keeps it)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                     "\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the byte itself, as surrogateescape kept it
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable_text(text: str) -> str:
    """`text` safe to show, with every control or invisible formatting character as a
    visible escape such as `\\x1b` or `\\u202e`.

    Letters of any script (Å Ä Ö é Ł), spaces and backslashes stay as they are.
    """
    if text.isascii() and text.isprintable():
        return text  # nearly every name: nothing to look for
    return _UNSAFE.sub(_escape, text)


def printable_path(path: str | os.PathLike[str]) -> str:
    """`path` (a file name or a whole path) safe to show: see `printable_text`."""
    return printable_text(os.fspath(path))


def human_size(size: int) -> str:
    """1536 -> "1.5 KB"; binary units, as Explorer and Finder's list view show them."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")
