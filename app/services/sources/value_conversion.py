"""Turns spreadsheet cells into the values an API entry holds: text, dates and booleans.

A CSV cell is always text; an XLSX cell may also be a number, a date, a time or a boolean.
The rules, written for the people who fill in these files:

- text is trimmed (spaces and non-breaking spaces) and NFC-normalised, so "Å" typed on a
  Mac (A + ring) and on Windows (one character) is the same letter;
- a whole number stored as a number gives its digits (`9000578`, never `9000578.0`); a
  number of 16 digits or more is refused, since Excel keeps only 15 and may have changed
  the rest;
- an identifier written in scientific notation (`9.00058E+12`, as Excel shows long numbers
  in CSV exports) is refused rather than guessed;
- dates become `YYYY-MM-DD` from `15.01.1955`, `15/01/1955` (day first, as in Europe),
  `1955-01-15`, `19550115`, Excel date cells and Excel serial numbers; only the date as
  written is taken, never moved by a time zone;
- booleans come from true/false, 1/0, yes/no, ja/nej/nei, and Excel's TRUE/FALSE in
  English, Swedish (SANT/FALSKT), Norwegian (SANN/USANN) and Danish (SAND/FALSK).
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

# Excel's day 0 is 1899-12-30 for every serial from 61 on: serial 60 is 29 February 1900,
# a day that never was (kept for Lotus 1-2-3), and serials 1 to 59 are one day later.
_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_EPOCH_BEFORE_MARCH_1900 = date(1899, 12, 31)
_LARGEST_EXCEL_SERIAL = 2_958_465  # 9999-12-31
#: Excel keeps 15 significant digits; a larger whole number may have lost some.
EXCEL_EXACT_LIMIT = 10**15


class ConversionError(ValueError):
    """A cell that cannot become the value its target needs; the message is for users."""


class FieldType(StrEnum):
    """What a target in the API entry holds."""

    TEXT = "text"
    IDENTIFIER = "identifier"  # text whose every digit counts: ids, card numbers
    DATE = "date"
    BOOLEAN = "boolean"


# The last key of a target path decides its type (a mapping file may say otherwise).
_TYPE_OF_KEY = {
    "customerId": FieldType.IDENTIFIER,
    "number": FieldType.IDENTIFIER,
    "cardNumber": FieldType.IDENTIFIER,
    "personalNumber": FieldType.IDENTIFIER,
    "socialSecurityNumber": FieldType.IDENTIFIER,
    "postalCode": FieldType.IDENTIFIER,
    "householdId": FieldType.IDENTIFIER,
    "birthday": FieldType.DATE,
    "birthDate": FieldType.DATE,
    "dateOfBirth": FieldType.DATE,
    "statisticalUseAllowed": FieldType.BOOLEAN,
    "declarationAvailable": FieldType.BOOLEAN,
    "householdOwner": FieldType.BOOLEAN,
    "isHouseholdOwner": FieldType.BOOLEAN,
}

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "ja", "j", "sant", "sann", "sand", "x"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "nej", "nei", "falskt", "usann", "falsk"})

_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
_ISO_WITH_TIME = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?")
_DAY_FIRST = re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{2}|\d{4})")
_YEAR_FIRST = re.compile(r"(\d{4})[./](\d{1,2})[./](\d{1,2})")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_SERIAL = re.compile(r"\d{1,7}(?:[.,]\d+)?")
_DATE_FORMS = "YYYY-MM-DD or DD.MM.YYYY"


def field_type_of(target: str) -> FieldType:
    """The type of the value at `target` (a path such as `person.birthday`)."""
    key = target.rsplit(".", 1)[-1].split("[", 1)[0]
    return _TYPE_OF_KEY.get(key, FieldType.TEXT)


def cell_text(value: Any) -> str:
    """A cell as the text a person reads in it (for row data and error reports)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def to_text(value: Any) -> str:
    """`value` as trimmed, NFC-normalised text; whole numbers as their digits."""
    if isinstance(value, str):
        text = value.strip()
        return text if text.isascii() else unicodedata.normalize("NFC", text)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number_text(value)
    return cell_text(value)


def to_identifier(value: Any) -> str:
    """Like `to_text`, but refuses a number shown in scientific notation (digits are lost)."""
    text = to_text(value)
    if ("E" in text or "e" in text) and _SCIENTIFIC.fullmatch(text):
        raise ConversionError(
            f"{text} is a number shortened by Excel (scientific notation): its digits are "
            "lost; format the column as Text in Excel and enter the value again")
    return text


def _number_text(number: float) -> str:
    if not math.isfinite(number):
        raise ConversionError(f"{number} is not a number that can be sent")
    if abs(number) >= EXCEL_EXACT_LIMIT:
        raise ConversionError(
            f"{cell_text(float(number))} has more than 15 digits and is stored as a number; "
            "Excel keeps only 15 digits, so some may have changed: format the column as "
            "Text in Excel and enter the value again")
    if isinstance(number, int):
        return str(number)
    if number.is_integer():
        return str(int(number))
    return repr(number)


def excel_serial_date(serial: float) -> date:
    """The day an Excel serial number (1900 date system) stands for; a time part is dropped."""
    whole = math.floor(serial)
    if whole < 1 or whole > _LARGEST_EXCEL_SERIAL:
        raise ConversionError(f"{cell_text(float(serial))} is not an Excel date")
    if whole == 60:
        raise ConversionError("Excel serial 60 is 29 February 1900, a day that never was")
    if whole < 60:
        return _EXCEL_EPOCH_BEFORE_MARCH_1900 + timedelta(days=whole)
    return _EXCEL_EPOCH + timedelta(days=whole)


def _real_date(year: int, month: int, day: int, written: str) -> str:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        raise ConversionError(f"{written} is not a real date") from None


def to_date(value: Any) -> str:
    """`value` as `YYYY-MM-DD`; raises ConversionError for anything that is not a real date."""
    if isinstance(value, datetime):
        return value.date().isoformat()  # the date as written: no time zone moves it
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return excel_serial_date(value).isoformat()
    if not isinstance(value, str):
        raise ConversionError(f"{cell_text(value)} is not a date ({_DATE_FORMS})")
    return date_from_text(value.strip())


def date_from_text(text: str) -> str:
    """`to_date` for trimmed text (the compiled row converter calls it directly)."""
    # the two everyday forms first, without a regular expression: written as ISO text,
    # then checked by the C parser
    if len(text) == 10 and text.isascii():
        if text[4] == "-" and text[7] == "-":
            iso = text
        elif text[2] == "." and text[5] == ".":
            iso = f"{text[6:]}-{text[3:5]}-{text[:2]}"
        else:
            iso = ""
        if iso and (iso[:4] + iso[5:7] + iso[8:]).isdigit():
            try:
                date.fromisoformat(iso)
            except ValueError:
                raise ConversionError(f"{text} is not a real date") from None
            return iso
    if not text.isascii():
        raise ConversionError(f"{text} is not a date ({_DATE_FORMS})")
    if match := _ISO_WITH_TIME.fullmatch(text):
        year, month, day = match.groups()
        return _real_date(int(year), int(month), int(day), text)
    if match := _DAY_FIRST.fullmatch(text):
        day, month, year = match.groups()
        if len(year) == 2:
            raise ConversionError(f"{text}: write the year with four digits")
        return _real_date(int(year), int(month), int(day), text)
    if match := _YEAR_FIRST.fullmatch(text):
        year, month, day = match.groups()
        return _real_date(int(year), int(month), int(day), text)
    if match := _COMPACT.fullmatch(text):
        year, month, day = match.groups()
        return _real_date(int(year), int(month), int(day), text)
    if _SERIAL.fullmatch(text):
        return excel_serial_date(float(text.replace(",", "."))).isoformat()
    raise ConversionError(f"{text} is not a date ({_DATE_FORMS})")


def to_boolean(value: Any) -> bool:
    """`value` as true or false; raises ConversionError for any other word."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    word = str(value).strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConversionError(f"{cell_text(value)} is not yes or no (use true/false, 1/0, ja/nej)")


CONVERTERS = {
    FieldType.TEXT: to_text,
    FieldType.IDENTIFIER: to_identifier,
    FieldType.DATE: to_date,
    FieldType.BOOLEAN: to_boolean,
}
