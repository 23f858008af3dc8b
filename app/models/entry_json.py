"""JSON for customer entries that keeps every number and character exactly as written.

orjson is fast but has limits: integers beyond 64 bits come back as floats (a card number
`900000000000000000001234` would be sent as `9e+23`), text with an unpaired UTF-16
surrogate is refused, and nesting deeper than 255 levels cannot be written. The functions
here use orjson whenever it can do the job exactly and fall back to the standard library
otherwise, so a number is never changed and no entry is lost, whatever a file holds.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: Entries nested deeper than this cannot be sent (orjson's limit; no customer comes close).
MAX_SENDABLE_DEPTH = 255

# A JSON number of 19 or more digits may not fit 64 bits. Digits become "9", quotes stay,
# everything else becomes a space: a long integer is then a space followed by 19 nines,
# found by one fast bytes.find (a regular expression is four times slower).
_DIGIT_CLASSES = bytes(
    ord("9") if chr(i).isdigit() and i < 128 else ord('"') if i == ord('"') else ord(" ")
    for i in range(256))
_LONG_INTEGER = b" " + b"9" * 19


def may_hold_long_integer(data: bytes) -> bool:
    """Whether `data` may hold a number that orjson would not read exactly.

    A long run of digits inside a string may give a false yes; that only costs a slower,
    exact parse. A no is certain.
    """
    return data.translate(_DIGIT_CLASSES).find(_LONG_INTEGER) >= 0


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def loads_exact(data: bytes) -> Any:
    """Parse JSON keeping long integers exact and odd characters as they are.

    Bytes that are not UTF-8 come back as lone surrogates (`\\udcXX`) inside the strings
    that held them, so a caller can refuse that one entry instead of a whole file.
    Raises ValueError for text that is not JSON and RecursionError for absurd nesting.
    """
    if not may_hold_long_integer(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # not UTF-8, a lone surrogate, too deep: the standard library decides
    return json.loads(data.decode("utf-8", "surrogateescape"), parse_constant=_reject_constant)


def dumps_exact(value: Any) -> bytes:
    """Compact JSON for `value`, exactly: long integers keep their digits, unpaired
    surrogates are written as `\\uXXXX` escapes, and any depth can be written."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return _dumps_without_limits(value)


class _Raw(bytes):
    """Bytes already encoded, waiting on the encoder's stack."""


def _string(text: str) -> bytes:
    try:
        return orjson.dumps(text)
    except TypeError:  # unpaired surrogates: ASCII escapes keep them recoverable
        return json.dumps(text, ensure_ascii=True).encode("ascii")


def _dumps_without_limits(value: Any) -> bytes:
    out: list[bytes] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is _Raw:
            out.append(item)
        elif isinstance(item, dict):
            stack.append(_Raw(b"}"))
            pairs = list(item.items())
            for i in range(len(pairs) - 1, -1, -1):
                key, inner = pairs[i]
                stack.append(inner)
                stack.append(_Raw((b"," if i else b"") + _string(str(key)) + b":"))
            out.append(b"{")
        elif isinstance(item, list | tuple):
            stack.append(_Raw(b"]"))
            for i in range(len(item) - 1, -1, -1):
                stack.append(item[i])
                if i:
                    stack.append(_Raw(b","))
            out.append(b"[")
        elif isinstance(item, str):
            out.append(_string(item))
        elif item is None or isinstance(item, bool | float):
            out.append(orjson.dumps(item))
        elif isinstance(item, int):
            out.append(str(int(item)).encode("ascii"))
        else:
            out.append(_string(str(item)))
    return b"".join(out)


def writable_text(text: str) -> str:
    """`text` as it can be written to any UTF-8 file and shown in the window.

    A byte that was not UTF-8 (kept as a lone surrogate, see `loads_exact`) is shown as
    the Windows-1252 letter it most probably was; any other lone surrogate as U+FFFD. For
    names and messages only: the original entry keeps the exact text.
    """
    if not _has_lone_surrogate(text):
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(bytes([code - 0xDC00]).decode("cp1252", "replace"))
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _describe_surrogates(text: str) -> str:
    bad = next(ch for ch in text if 0xD800 <= ord(ch) <= 0xDFFF)
    code = ord(bad)
    if 0xDC80 <= code <= 0xDCFF:
        # how "surrogateescape" keeps a byte that is not UTF-8
        return (f"the text holds the byte 0x{code - 0xDC00:02X}, which is not UTF-8 (the file may "
                "have been saved as ANSI/Windows-1252); save it as UTF-8")
    return (f"the text holds a broken character (an unpaired UTF-16 surrogate "
            f"\\u{code:04x}); "
            "correct the text")


def _field_path(path: list[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    if len(text) > 80:
        text = text[:60] + "…" + text[-15:]
    return text


def find_unsendable(entry: Any) -> tuple[str, str] | None:
    """(field, reason) when `entry` cannot be sent as it is; None when it can.

    Cannot be sent: text holding an unpaired surrogate or a byte that was not UTF-8, and
    nesting deeper than `MAX_SENDABLE_DEPTH`. Long integers can be sent (exactly).
    """
    stack: list[tuple[Any, list[str | int]]] = [(entry, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_SENDABLE_DEPTH:
            return (_field_path(path[:3]) or "(entry)",
                    f"the entry is nested more than {MAX_SENDABLE_DEPTH} levels deep; "
                    "no customer entry is, so the file is probably damaged")
        if isinstance(value, dict):
            for key in value:
                if isinstance(key, str) and _has_lone_surrogate(key):
                    return _field_path(path) or "(entry)", "a field name: " + \
                        _describe_surrogates(key)
            # reversed onto the stack: the first problem in reading order is the one named
            stack.extend((value[key], [*path, key]) for key in reversed(list(value)))
        elif isinstance(value, list):
            stack.extend((value[i], [*path, i]) for i in range(len(value) - 1, -1, -1))
        elif isinstance(value, str) and _has_lone_surrogate(value):
            return _field_path(path) or "(entry)", _describe_surrogates(value)
    return None
