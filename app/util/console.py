"""The command line's standard output and error in UTF-8, whatever the system's code page.

Python writes a redirected stream (a pipe, a file: `> summary.json`, a scheduler capturing
the output) in the locale's encoding. On Windows that is the ANSI code page (cp1252 in
Western Europe), which has no Ł or Č and stops the program with UnicodeEncodeError, and
writes Å Ä Ö as bytes that are not UTF-8. A script reading `--json` expects UTF-8, so a
redirected stream is switched to UTF-8. A terminal keeps its encoding (a Windows console
already shows any text through Python's console io), and what it cannot show is written as
an escape such as `\\u0141` rather than stopping the program.
"""

from __future__ import annotations

import codecs
import io
import sys
from typing import Any, TextIO

import orjson

#: What an unwritable character becomes: visible, and never a crash after the import.
ERRORS = "backslashreplace"


def use_utf8_output() -> None:
    """Make sys.stdout and sys.stderr write UTF-8 when redirected (see the module's notes).
    Standard input is left as it is."""
    for stream in (sys.stdout, sys.stderr):
        utf8_output(stream)


def utf8_output(stream: TextIO | None) -> None:
    """Switch `stream` to UTF-8 unless it is a terminal; on a terminal, keep its encoding
    and escape what it cannot show. A stream that is not a text file is left alone."""
    if not isinstance(stream, io.TextIOWrapper):
        return
    try:
        terminal = stream.isatty()
    except (OSError, ValueError):  # closed or detached
        return
    try:
        if terminal:
            stream.reconfigure(errors=ERRORS)
        else:
            stream.reconfigure(encoding="utf-8", errors=ERRORS)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # the stream cannot change (already read from): write it as it is


def write_utf8(data: bytes, stream: TextIO | None = None) -> None:
    """Write `data`, UTF-8 text such as orjson's JSON, to `stream` (sys.stdout by default).

    A UTF-8 stream gets the bytes as they are, after what was printed to it before; any
    other (a terminal with another encoding) gets the text, escaped where it must be."""
    stream = sys.stdout if stream is None else stream
    buffer = getattr(stream, "buffer", None)
    if buffer is not None and _is_utf8(stream):
        stream.flush()  # text written before comes first
        buffer.write(data)
        buffer.flush()
        return
    stream.write(data.decode("utf-8", errors=ERRORS))
    stream.flush()


def _is_utf8(stream: TextIO) -> bool:
    try:
        return codecs.lookup(stream.encoding or "").name == "utf-8"
    except LookupError:
        return False


def print_json(value: Any) -> None:
    """`value` as indented JSON on stdout, in UTF-8 (see `write_utf8`)."""
    write_utf8(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
