"""Cells that spreadsheets show as text and never run as formulas."""

from __future__ import annotations

import unicodedata

# What spreadsheets take for the start of a formula (OWASP's CSV-injection guidance: = + -
# @, tab, carriage return, NUL), with line feed and the full-width forms (＝ ＋ － ＠), which
# NFKC folds to the ASCII ones.
_FORMULA_CHARACTERS = frozenset("=+-@")

def neutralise_cell(value: object) -> str:
    """A cell Excel will show as text, never run: formula-like text gets a leading quote.

    Formula-like: starting with a control character (tab, CR, LF, NUL, ...), or with
    = + - @ (also in full width) once leading spaces are skipped.
    """
    text = "" if value is None else str(value)
    if not text:
        return text
    if unicodedata.category(text[0]) == "Cc":
        return "'" + text
    first = unicodedata.normalize("NFKC", text.lstrip()[:1])
    if first and first[0] in _FORMULA_CHARACTERS:
        return "'" + text
    return text
