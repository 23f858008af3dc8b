"""Checks every spreadsheet row before anything is sent.

A row is refused (and listed in the error report) when it has neither a customer id nor a
card number, has no last name, holds a date that does not exist, a personal number whose
check digit is wrong, an e-mail address that cannot be one, or a customer id that an
earlier row of the same import already has. One `ImportValidator` serves every file of an
import, so a customer id repeated in a second file is caught too, naming the first row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.models.display_text import printable_path
from app.services.sources.auto_mapping import Role
from app.services.sources.customer_reader import CHANGE_TYPES
from app.services.sources.row_mapping import RowIssue, RowMapper

# each digit's byte -> the byte of the digit sum of twice the digit (bytes.translate is a
# plain table lookup in C; str.translate with a dict is several times slower)
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")
# the byte of a digit -> the digit sum of twice the digit (as a number)
_TWICE = tuple(sum(divmod(2 * (b - 48), 10)) if 48 <= b <= 57 else 0 for b in range(256))
_EMAIL = re.compile(r"[^@\s,;:<>()\[\]\"]+@[^@\s,;:<>()\[\]\"]+\.[^@\s,;:<>()\[\]\".]{2,}")
# a row number and the index of its file, in one int (a dict of 200,000 ids stays small)
_ROW_BITS = 32
_ROW_MASK = (1 << _ROW_BITS) - 1
_NONE_FAILED: frozenset[str | None] = frozenset()


@dataclass(frozen=True, slots=True)
class _Plan:
    """The positions of the values a validator looks at, for one mapper."""

    customer_id: int | None
    customer_id_column: str | None
    cards: tuple[int, ...]
    last_name: int | None
    last_name_column: str | None
    personal_numbers: tuple[int, ...]
    emails: tuple[int, ...]
    change_types: tuple[int, ...]


def luhn_valid(digits: str) -> bool:
    """Whether the ASCII digits `digits` end in a correct Luhn check digit."""
    encoded = digits.encode("ascii")
    if len(encoded) == 10:  # a personal number: spelled out, a third cheaper than below
        b, t = encoded, _TWICE
        return (t[b[0]] + b[1] + t[b[2]] + b[3] + t[b[4]] + b[5] + t[b[6]] + b[7] + t[b[8]]
                + b[9] - 5 * 48) % 10 == 0
    # from the right: the check digit counts once, the digit before it twice, and so on;
    # summing the bytes, less the code of "0" for each, needs no int() per digit
    total = (sum(encoded[-1::-2]) + sum(encoded[-2::-2].translate(_LUHN_DOUBLED))
             - 48 * len(encoded))
    return total % 10 == 0


def luhn_check_digit(digits: str) -> str:
    """The check digit that makes `digits` + it pass `luhn_valid` (for test data: the
    nine digits of a personal number before its check digit)."""
    return next(d for d in "0123456789" if luhn_valid(digits + d))


def _without_separators(text: str) -> str:
    return text.replace("-", "").replace("+", "").replace(" ", "")


def personal_number_problem(text: str) -> str | None:
    """Why `text` is not a Swedish personal number, or None when it is one.

    The message leaves the number out (it goes into the failure list and maybe a log);
    the error report shows it in its own column.

    10 or 12 digits (YYMMDD-NNNN, YYYYMMDDNNNN, with or without `-` or `+`); the last of
    the last ten digits is their Luhn check digit.
    """
    digits = _without_separators(text)
    if not (digits.isdigit() and digits.isascii()) or len(digits) not in (10, 12):
        return "the personal number must have 10 or 12 digits (YYYYMMDD-NNNN)"
    if not luhn_valid(digits[-10:]):
        return "the personal number has a wrong check digit"
    return None


def email_problem(text: str) -> str | None:
    """Why `text` cannot be an e-mail address, or None when it looks like one."""
    if _EMAIL.fullmatch(text) and ".." not in text:
        return None
    return "the e-mail address is not valid"


class ImportValidator:
    """Checks rows for one import, across all its files.

    `require_customer_id`: refuse rows without a customer id even when they have a card
    number (the Customer Profile API itself needs one; see docs/api.md).
    """

    def __init__(self, *, require_customer_id: bool = False) -> None:
        self.require_customer_id = require_customer_id
        self._files: list[str] = []
        self._file_index: dict[str, int] = {}
        self._first_row: dict[str, int] = {}  # customer id -> packed (file, row)
        self._last_plan: tuple[RowMapper, _Plan] | None = None

    @property
    def customer_ids_seen(self) -> int:
        """How many different customer ids the import's rows have had so far."""
        return len(self._first_row)

    def first_row_of(self, customer_id: str) -> tuple[str, int] | None:
        """The file and row where `customer_id` first appeared in this import."""
        packed = self._first_row.get(customer_id)
        if packed is None:
            return None
        return self._files[packed >> _ROW_BITS], packed & _ROW_MASK

    def missing_required(self, mapper: RowMapper) -> list[str]:
        """The required fields no mapped column gives ([] when the mapping has them all)."""
        plan = self._plan(mapper)
        missing = []
        if plan.customer_id is None and (self.require_customer_id or not plan.cards):
            missing.append("a customer id" if self.require_customer_id
                           else "a customer id (or a card number)")
        if plan.last_name is None:
            missing.append("a last name")
        return missing

    def check(self, mapper: RowMapper, values: list[Any], source_file: str,
              row_number: int, conversion_issues: list[RowIssue] | None = None
              ) -> list[RowIssue]:
        """Every reason the row cannot be sent, [] when it can.

        `values` and `conversion_issues` come from `mapper.convert`; a column whose cell
        could not be converted is not reported a second time as missing.
        """
        last = self._last_plan
        plan = last[1] if last is not None and last[0] is mapper else self._plan(mapper)
        issues = list(conversion_issues) if conversion_issues else []
        failed: frozenset[str | None] = (
            frozenset(issue.column for issue in issues) if issues else _NONE_FAILED)
        customer_id = None if plan.customer_id is None else values[plan.customer_id]
        if customer_id is not None:
            file_index = self._file_index.get(source_file)
            if file_index is None:
                file_index = self._index_of(source_file)
            key = (file_index << _ROW_BITS) | row_number
            first = self._first_row.setdefault(customer_id, key)
            if first != key:
                issues.append(RowIssue(plan.customer_id_column, customer_id,
                                       self._repeated(customer_id, first, source_file)))
        elif plan.customer_id_column not in failed and (
                self.require_customer_id or not any(values[n] is not None for n in plan.cards)
        ) and not any(mapper.column_of(n) in failed for n in plan.cards):
            needed = ("a customer id" if self.require_customer_id
                      else "a customer id or a card number")
            issues.append(RowIssue(plan.customer_id_column, "",
                                   f"customer id is missing ({needed} is needed)"))
        if (plan.last_name is None or values[plan.last_name] is None) and (
                plan.last_name_column not in failed):
            issues.append(RowIssue(plan.last_name_column, "", "last name is missing"))
        for n in plan.personal_numbers:
            value = values[n]
            if value is not None:
                digits = _without_separators(value)
                # the everyday case inline; the function says what is wrong
                if not (len(digits) in (10, 12) and digits.isdigit() and digits.isascii()
                        and luhn_valid(digits[-10:])):
                    issues.append(RowIssue(mapper.column_of(n), value,
                                           personal_number_problem(value) or ""))
        for n in plan.emails:
            value = values[n]
            if value is not None and (problem := email_problem(value)):
                issues.append(RowIssue(mapper.column_of(n), value, problem))
        for n in plan.change_types:
            value = values[n]
            if value is not None and value.upper() not in CHANGE_TYPES:
                issues.append(RowIssue(mapper.column_of(n), value,
                                       f"change type {value} must be CREATE or UPDATE"))
        return issues

    def row_checker(self, mapper: RowMapper, source_file: str
                    ) -> Callable[[list[Any], int], Sequence[RowIssue]]:
        """`check` for the rows of one file, as a function of (values, row_number).

        The same checks, with what stays the same for a file worked out once: a row that
        passes costs a few lookups; any other row goes through `check` for the messages.
        """
        plan = self._plan(mapper)
        file_key = self._index_of(source_file) << _ROW_BITS
        note_first = self._first_row.setdefault
        customer_id, cards, last_name = plan.customer_id, plan.cards, plan.last_name
        personal_numbers, emails = plan.personal_numbers, plan.emails
        check, require_id = self.check, self.require_customer_id
        email_pattern = _EMAIL.fullmatch
        no_issues: tuple[RowIssue, ...] = ()
        if plan.change_types:  # rare: a change type from a column; `check` does it all
            return lambda values, row_number: check(mapper, values, source_file, row_number)

        def check_row(values: list[Any], row_number: int) -> Sequence[RowIssue]:
            if last_name is None or values[last_name] is None:
                return check(mapper, values, source_file, row_number)
            if customer_id is not None and (value := values[customer_id]) is not None:
                key = file_key | row_number
                if note_first(value, key) != key:
                    return check(mapper, values, source_file, row_number)
            elif require_id or not any(values[n] is not None for n in cards):
                return check(mapper, values, source_file, row_number)
            for n in personal_numbers:
                value = values[n]
                if value is not None:
                    digits = value.replace("-", "").replace("+", "")
                    if " " in digits:
                        digits = digits.replace(" ", "")
                    if not (len(digits) in (10, 12) and digits.isdigit() and digits.isascii()
                            and luhn_valid(digits[-10:])):
                        return check(mapper, values, source_file, row_number)
            for n in emails:
                value = values[n]
                if value is not None and (not email_pattern(value) or ".." in value):
                    return check(mapper, values, source_file, row_number)
            return no_issues

        return check_row

    def _plan(self, mapper: RowMapper) -> _Plan:
        """Which values to check, worked out once per mapper (once per file)."""
        if self._last_plan is not None and self._last_plan[0] is mapper:
            return self._last_plan[1]
        roles = mapper.roles
        customer_id = next(iter(roles.get(Role.CUSTOMER_ID, ())), None)
        last_name = next(iter(roles.get(Role.LAST_NAME, ())), None)
        plan = _Plan(
            customer_id=customer_id,
            customer_id_column=None if customer_id is None else mapper.column_of(customer_id),
            cards=tuple(roles.get(Role.CARD_NUMBER, ())),
            last_name=last_name,
            last_name_column=None if last_name is None else mapper.column_of(last_name),
            personal_numbers=tuple(roles.get(Role.PERSONAL_NUMBER, ())),
            emails=tuple(roles.get(Role.EMAIL, ())),
            change_types=tuple(mapper.change_type_slots))
        self._last_plan = (mapper, plan)
        return plan

    def _index_of(self, source_file: str) -> int:
        index = self._file_index.get(source_file)
        if index is None:
            index = self._file_index[source_file] = len(self._files)
            self._files.append(source_file)
        return index

    def _repeated(self, customer_id: str, first: int, source_file: str) -> str:
        first_file = self._files[first >> _ROW_BITS]
        first_row = first & _ROW_MASK
        where = f"row {first_row}" if first_file == source_file else (
            f"row {first_row} of {printable_path(Path(first_file).name)}")
        return f"customer id {customer_id} is already used in {where}"
