"""Reads the Customer Profile API's answer to a batch and decides each customer's outcome.

Three ways of finding per-customer results, as the service is not always tidy:
1. structured: result lists under `data`, `customers`, `results`, `customerResults` or
   `households` (or a bare list);
2. regex fallback: when the body is not valid JSON (cut off, wrapped in HTML, ...), every flat
   `{...}` holding an id and a `result` is read, whatever the order of its keys;
3. the `errors` array: objects (`customerId`?, `username`?, `message`|`errorMessage`, `code`?)
   or plain strings, attributed to a customer when they name one.

Each result is then matched to the customer that was sent (see `match_results`), and the
customers the answer does not mention are decided by one rule:
- if the answer lists any success, an unmentioned customer failed (`NO_RESULT`);
- if it lists only failures (or nothing), the unmentioned customers succeeded;
- except when some reported failure could not be matched to one customer sent: the
  unmentioned customers it could be about (nothing it says contradicts them, such as two
  customers of the same name and id ending) are failures (`UNMATCHED`) whose outcome is
  uncertain; the others succeeded, as the answer says. When such a failure fits none of
  the unmentioned customers, nobody can tell whom it meant, and all of them are uncertain.
A customer reported more than once counts once; a failure outranks a success.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.models.records import (
    SUCCESS_WORDS,
    CustomerRecord,
    is_success_word,
    person_of,
)

RESULT_LIST_KEYS = ("data", "customers", "results", "customerResults", "households")
ERROR_TEXT_KEYS = ("error", "errorMessage", "message", "errorDescription", "description")

METHOD_STRUCTURED = "Found in structured response data"
METHOD_REGEX = "Found by pattern in raw response text"
METHOD_ERRORS = "Found in response errors array"

_FLAT_OBJECT = re.compile(rb"\{[^{}]*\}")
_STRING = rb'"((?:[^"\\]|\\.)*)"'


def _field_pattern(*names: str) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(n.encode()) for n in names)
    return re.compile(rb'"(?:' + alternatives + rb')"\s*:\s*(?:' + _STRING + rb'|null)')


_ID_FIELD = _field_pattern("customerId", "householdId")
_USERNAME_FIELD = _field_pattern("username")
_RESULT_FIELD = _field_pattern("result")
_ERROR_FIELD = _field_pattern(*ERROR_TEXT_KEYS)
_CARD_FIELD = _field_pattern("cardNumber", "number")
_TRAILING_DIGITS = re.compile(r"(\d{4,})\s*$")
_NOT_LETTERS = re.compile(r"[\W\d_]+")


@dataclass(slots=True)
class ReportedResult:
    """One customer's result as the answer states it."""

    customer_id: str
    username: str
    result: str
    error: str
    method: str
    card_number: str = ""

    @property
    def success(self) -> bool:
        return is_success_word(self.result)


@dataclass(slots=True)
class ParsedAnswer:
    """Everything read from one answer body."""

    results: list[ReportedResult] = field(default_factory=list)
    batch_errors: list[str] = field(default_factory=list)  # messages naming no customer
    readable: bool = True  # False: a non-empty body in which nothing could be understood


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        message = next((value[k] for k in ERROR_TEXT_KEYS if value.get(k)), None)
        code = value.get("code")
        if message is None:
            return orjson.dumps(value).decode()
        return f"{message} (code {code})" if code else str(message)
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    return str(value)


def _error_text(item: dict[str, Any]) -> str:
    for key in ERROR_TEXT_KEYS:
        if item.get(key):
            text = _text(item[key])
            code = item.get("code") or item.get("errorCode")
            return f"{text} (code {code})" if code and str(code) not in text else text
    return ""


def _result_from_item(item: dict[str, Any], method: str) -> ReportedResult | None:
    inner = person_of(item)
    raw_id = item.get("customerId", item.get("householdId",
                      inner.get("customerId", inner.get("householdId"))))
    username = item.get("username") or ""
    card = item.get("cardNumber") or item.get("number") or ""
    if raw_id is None and not username and not card:
        return None
    raw_result = item.get("result", item.get("status"))
    error = _error_text(item)
    if raw_result is None or str(raw_result).strip() == "":
        result = "FAILED" if error else "NO_RESULT"
        error = error or "the answer gave no result word for this customer"
    else:
        result = str(raw_result).strip()
    return ReportedResult("" if raw_id is None else str(raw_id), str(username), result,
                          error, method, str(card))


def all_succeeded(data: Any, ids: list[str]) -> bool:
    """True for the everyday answer: one success per customer sent, nothing else.

    Checked first because it is by far the most common, and costs a fraction of the full
    reading and matching below.
    """
    if type(data) is not dict or data.get("errors"):
        return False
    items = None
    for key in RESULT_LIST_KEYS:
        value = data.get(key)
        if value is not None:
            if items is not None or type(value) is not list:
                return False
            items = value
    if items is None or len(items) != len(ids):
        return False
    seen = set()
    for item in items:
        if type(item) is not dict:
            return False
        result = item.get("result")
        if type(result) is not str or result.upper() not in SUCCESS_WORDS:
            return False
        seen.add(item.get("customerId", item.get("householdId")))
    return len(seen) == len(ids) and seen == set(ids)


def decode_answer(body: bytes) -> Any:
    """The answer as JSON, or None when the body is empty or not JSON."""
    if not body.strip():
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def parse_answer(body: bytes, data: Any = None) -> ParsedAnswer:
    """Read per-customer results and batch-level errors out of an answer body.

    `data` may carry the body already decoded by `decode_answer`.
    """
    answer = ParsedAnswer()
    if not body.strip():
        return answer
    if data is None:
        data = decode_answer(body)
        if data is None:
            return _parse_by_pattern(body)
    items: list[Any] = []
    errors: Any = None
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict):
        for key in RESULT_LIST_KEYS:
            if isinstance(data.get(key), list):
                items.extend(data[key])
        errors = data.get("errors")
        if errors is None and data.get("error") and not items:
            errors = [data]
    else:
        answer.readable = False
        return answer
    for item in items:
        if isinstance(item, dict):
            reported = _result_from_item(item, METHOD_STRUCTURED)
            if reported is not None:
                answer.results.append(reported)
    _read_errors_array(errors, answer)
    return answer


def _read_errors_array(errors: Any, answer: ParsedAnswer) -> None:
    if errors is None:
        return
    if not isinstance(errors, list):
        errors = [errors]
    for entry in errors:
        if isinstance(entry, dict):
            raw_id = entry.get("customerId", entry.get("householdId"))
            username = entry.get("username") or ""
            message = _error_text(entry) or _text(entry)
            if raw_id is None and not username:
                answer.batch_errors.append(message)
                continue
            code = entry.get("result") or entry.get("code") or "ERROR"
            answer.results.append(ReportedResult(
                "" if raw_id is None else str(raw_id), str(username),
                str(code).strip() or "ERROR", message, METHOD_ERRORS))
        elif entry is not None and str(entry).strip():
            answer.batch_errors.append(str(entry))


def _unescape(raw: bytes | None) -> str:
    if raw is None:
        return ""
    try:
        return orjson.loads(b'"' + raw + b'"')
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def _parse_by_pattern(body: bytes) -> ParsedAnswer:
    answer = ParsedAnswer()
    for match in _FLAT_OBJECT.finditer(body):
        chunk = match.group(0)
        result_match = _RESULT_FIELD.search(chunk)
        id_match = _ID_FIELD.search(chunk)
        username_match = _USERNAME_FIELD.search(chunk)
        if id_match is None and username_match is None:
            continue
        error_match = _ERROR_FIELD.search(chunk)
        error = _unescape(error_match.group(1)) if error_match else ""
        if result_match is None or result_match.group(1) is None:
            if not error:
                continue
            result = "ERROR"
        else:
            result = _unescape(result_match.group(1)).strip() or "NO_RESULT"
        card_match = _CARD_FIELD.search(chunk)
        answer.results.append(ReportedResult(
            _unescape(id_match.group(1)) if id_match else "",
            _unescape(username_match.group(1)) if username_match else "",
            result, error, METHOD_REGEX,
            _unescape(card_match.group(1)) if card_match else ""))
    answer.readable = bool(answer.results)
    return answer


# -- matching results to the customers sent ---------------------------------------------------


def _name_key(text: str) -> str:
    return _NOT_LETTERS.sub("", text.upper())


def _card_numbers(person: dict[str, Any]) -> list[str]:
    cards = person.get("customerCards")
    if not isinstance(cards, list):
        return []
    numbers = []
    for card in cards:
        if isinstance(card, dict):
            number = card.get("number") or card.get("cardNumber")
            if number:
                numbers.append(str(number))
    return numbers


def _folded(text: str) -> str:
    """Letters only, upper case, accents dropped: ÅSA and ASA compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return _name_key("".join(ch for ch in decomposed if not unicodedata.combining(ch)))


class _RecordIndex:
    """Lookup tables over a batch's records; each record can be claimed once.

    A result is given to a record only when nothing the answer says contradicts it: its
    id, card number, the digits and the name in its username must all fit that record, and
    where several records would fit, none is chosen.
    """

    def __init__(self, records: list[CustomerRecord]) -> None:
        self.claimed = [False] * len(records)
        self.ids: list[str] = []
        self.cards: list[list[str]] = []
        self.digit_values: list[list[str]] = []
        self.names: list[str] = []
        self.by_id: dict[str, list[int]] = defaultdict(list)
        self.by_card: dict[str, list[int]] = defaultdict(list)
        for i, record in enumerate(records):
            person = person_of(record.data) if isinstance(record.data, dict) else {}
            record_id = record.record_id
            cards = _card_numbers(person)
            digits = [str(person.get(k)) for k in ("personalNumber", "socialSecurityNumber")
                      if person.get(k)]
            self.ids.append(record_id)
            self.cards.append(cards)
            self.digit_values.append([d for d in [*digits, record_id, *cards] if d])
            self.names.append(_folded(record.display_name))
            if record_id:
                self.by_id[record_id].append(i)
            for number in cards:
                self.by_card[number].append(i)

    def fits(self, i: int, reported: ReportedResult) -> bool:
        """Whether nothing `reported` says contradicts record `i`."""
        if reported.customer_id and self.ids[i] and reported.customer_id != self.ids[i]:
            return False
        if reported.card_number and self.cards[i] and reported.card_number not in self.cards[i]:
            return False
        if reported.username:
            digits = _TRAILING_DIGITS.search(reported.username)
            if digits and self.digit_values[i] and not any(
                    value.endswith(digits.group(1)) for value in self.digit_values[i]):
                return False
            name = _folded(_TRAILING_DIGITS.sub("", reported.username))
            mine = self.names[i]
            if name and mine and not (name.startswith(mine) or mine.startswith(name)):
                return False
        return True

    def _only(self, candidates: Iterable[int], reported: ReportedResult) -> int | None:
        """The one unclaimed candidate `reported` fits; None when none or several do."""
        fitting = list(dict.fromkeys(i for i in candidates
                                     if not self.claimed[i] and self.fits(i, reported)))
        if len(fitting) != 1:
            return None
        self.claimed[fitting[0]] = True
        return fitting[0]

    def claim(self, reported: ReportedResult) -> int | None:
        if reported.customer_id:
            # an id names its customer; the same id sent twice: either of them will do
            for i in self.by_id.get(reported.customer_id, []):
                if not self.claimed[i] and self.fits(i, reported):
                    self.claimed[i] = True
                    return i
            return None  # an id that was not sent (or contradicted): nobody to give it to
        if reported.card_number:
            return self._only(self.by_card.get(reported.card_number, []), reported)
        if reported.username:
            digits = _TRAILING_DIGITS.search(reported.username)
            if digits:
                return self._only((i for i, values in enumerate(self.digit_values)
                                   if any(v.endswith(digits.group(1)) for v in values)),
                                  reported)
            name = _folded(reported.username)
            if name:
                return self._only((i for i, mine in enumerate(self.names) if mine == name),
                                  reported)
        return None


def match_results(results: list[ReportedResult], records: list[CustomerRecord]
                  ) -> tuple[dict[int, ReportedResult], list[ReportedResult]]:
    """Match reported results to sent records (seed 002's order of strategies), never
    guessing.

    By customerId (or householdId), then card number (`number` or `cardNumber`), then the
    personal number at the end of the username, then the name, then by position when the
    answer has exactly one result per customer sent; each only when nothing else the answer
    says contradicts it, and only when exactly one record fits. A record reported twice
    keeps one result, a failure outranking a success. Returns (record index -> result,
    unmatched).
    """
    index = _RecordIndex(records)
    matched: dict[int, ReportedResult] = {}
    unmatched: list[ReportedResult] = []
    leftovers: list[tuple[int, ReportedResult]] = []
    for position, reported in enumerate(results):
        if reported.customer_id and reported.customer_id in index.by_id:
            # a repeat report of an already matched customer merges into it
            already = [i for i in index.by_id[reported.customer_id] if i in matched]
            if already and all(index.claimed[i] for i in index.by_id[reported.customer_id]):
                _merge(matched, already[-1], reported)
                continue
        i = index.claim(reported)
        if i is None:
            leftovers.append((position, reported))
        else:
            _merge(matched, i, reported)
    positional = len(results) == len(records)
    for position, reported in leftovers:
        if positional and not reported.customer_id and not index.claimed[position] \
                and index.fits(position, reported):
            index.claimed[position] = True
            _merge(matched, position, reported)
        else:
            unmatched.append(reported)
    return matched, unmatched


def possible_customers(unmatched: list[ReportedResult], records: list[CustomerRecord],
                       matched: dict[int, ReportedResult]) -> set[int] | None:
    """The unmentioned records (positions) the `unmatched` failures could be about.

    None when one of them fits no unmentioned record at all: nobody can tell whom it meant.
    """
    index = _RecordIndex(records)
    unmentioned = [i for i in range(len(records)) if i not in matched]
    possible: set[int] = set()
    for reported in unmatched:
        fitting = {i for i in unmentioned if index.fits(i, reported)}
        if not fitting:
            return None
        possible |= fitting
    return possible


def match_by_unique_ids(results: list[ReportedResult], ids: list[str]
                        ) -> tuple[dict[int, ReportedResult], list[ReportedResult]] | None:
    """The common case, cheaply: every result names a customerId sent exactly once.

    Returns None when that does not hold, and `match_results` must do the full work.
    """
    positions = {customer_id: i for i, customer_id in enumerate(ids)}
    if len(positions) != len(ids) or "" in positions:
        return None
    matched: dict[int, ReportedResult] = {}
    for reported in results:
        i = positions.get(reported.customer_id)
        if i is None:
            return None
        _merge(matched, i, reported)
    return matched, []


def _merge(matched: dict[int, ReportedResult], i: int, reported: ReportedResult) -> None:
    current = matched.get(i)
    if current is None or (current.success and not reported.success):
        matched[i] = reported
    elif not current.success and not reported.success and reported.error and (
            reported.error not in current.error):
        current.error = f"{current.error}; {reported.error}" if current.error else reported.error


def attribute_batch_errors(messages: list[str], records: list[CustomerRecord]
                           ) -> tuple[list[ReportedResult], list[str]]:
    """Turn error strings that mention a sent customerId into results for that customer."""
    ids = {r.record_id for r in records if r.record_id}
    attributed: list[ReportedResult] = []
    rest: list[str] = []
    for message in messages:
        tokens = set(re.findall(r"[A-Za-z0-9_.-]+", message)) & ids
        if tokens:
            attributed.extend(ReportedResult(t, "", "ERROR", message, METHOD_ERRORS)
                              for t in sorted(tokens))
        else:
            rest.append(message)
    return attributed, rest
