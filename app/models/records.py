"""Domain records: a customer read from a file, a batch of them, and a failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from app.models.entry_json import dumps_exact, loads_exact, writable_text


class RecordKind(StrEnum):
    """Which endpoint a record belongs to."""

    CUSTOMERS = "customers"
    HOUSEHOLDS = "households"

    @property
    def body_key(self) -> str:
        """The key that wraps a batch of this kind in the API's JSON body."""
        return "data" if self is RecordKind.CUSTOMERS else "households"

    @property
    def id_field(self) -> str:
        return "customerId" if self is RecordKind.CUSTOMERS else "householdId"


class Result(StrEnum):
    """Result words the importer itself assigns (the API's own words are kept verbatim)."""

    INVALID = "INVALID"  # refused before sending: never reached the API
    NOT_SENT = "NOT_SENT"  # the import stopped before this customer was sent
    ALREADY_EXISTS = "ALREADY_EXISTS"  # CONFLICT after an attempt whose outcome was unknown
    NO_RESULT = "NO_RESULT"  # the answer listed other customers but not this one
    REJECTED = "REJECTED"  # HTTP 400: the whole batch was refused
    HTTP_ERROR = "HTTP_ERROR"  # 5xx or other status after all retries
    TIMEOUT = "TIMEOUT"  # no answer in time after all retries
    CONNECTION_ERROR = "CONNECTION_ERROR"
    TOO_LARGE = "TOO_LARGE"  # 413 even for a single customer
    UNREADABLE_RESPONSE = "UNREADABLE_RESPONSE"  # 2xx whose body could not be understood


SUCCESS_WORDS = frozenset({"SUCCESS", "OK", "IMPORTED", "ACCEPTED", "CREATED", "UPDATED"})

#: Results a plain re-send cannot fix (the data itself must change, or the customer is
#: probably there already), so they stay out of the retry batch files.
NOT_RETRIABLE = frozenset({Result.ALREADY_EXISTS, Result.INVALID})

#: Results a retry can fix: the customer got no answer of its own (the service was
#: unavailable or slow, answered for the others only, or the import stopped first). The
#: service's own refusals of a customer (FAILED, CONFLICT, ...) come back the same until
#: the data (or, for an existing customer, the duplicate strategy) changes.
RETRY_CAN_FIX = frozenset({Result.NOT_SENT, Result.NO_RESULT, Result.HTTP_ERROR,
                           Result.TIMEOUT, Result.CONNECTION_ERROR,
                           Result.UNREADABLE_RESPONSE})


#: Results that say the service has the customer already: the service's CONFLICT, and the
#: importer's ALREADY_EXISTS. Importing them again with duplicate strategy "update" (or
#: "skip") settles them; sending them again as they are cannot.
EXISTING_CUSTOMER_RESULTS = frozenset({"CONFLICT", Result.ALREADY_EXISTS})


def retry_can_fix(result: str) -> bool:
    """Whether sending a customer that failed with `result` again, unchanged, may work."""
    return result in RETRY_CAN_FIX


def is_success_word(result: str | None) -> bool:
    return result is not None and result.strip().upper() in SUCCESS_WORDS


def person_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The person (or household) part of an API entry; the entry itself when not nested."""
    for key in ("person", "household"):
        inner = entry.get(key)
        if isinstance(inner, dict):
            return inner
    return entry


@dataclass(slots=True)
class CustomerRecord:
    """One entry read from a file, exactly as it appears there, with where it came from."""

    data: Any
    source_file: str
    record_number: int  # 1-based position in its file
    kind: RecordKind = RecordKind.CUSTOMERS

    @property
    def record_id(self) -> str:
        """customerId (or householdId) as text, or "" when missing."""
        if not isinstance(self.data, dict):
            return ""
        value = person_of(self.data).get(self.kind.id_field)
        return "" if value is None else str(value)

    @property
    def display_name(self) -> str:
        """Upper-case "FIRST LAST" as the API writes usernames, or "" when unknown."""
        if not isinstance(self.data, dict):
            return ""
        person = person_of(self.data)
        if self.kind is RecordKind.HOUSEHOLDS:
            return str(person.get("name") or "")
        parts = [str(person.get(k) or "").strip() for k in ("firstName", "lastName")]
        return writable_text(" ".join(p for p in parts if p)).upper()


@dataclass(slots=True)
class Batch:
    """Customers sent together in one request, in their original order.

    A batch travels as its serialised request body plus ids and record numbers; the entries
    themselves (`records`) are decoded from the body only when needed (a failure, a split),
    so the hot path of a clean import never rebuilds Python objects for them.
    """

    number: int  # 1-based, in the order batches were formed
    kind: RecordKind
    body: bytes  # exactly what is POSTed
    ids: list[str]  # customerId (householdId) per entry, "" when missing
    record_numbers: list[int]  # 1-based position of each entry in its file
    source_file: str
    # ids whose earlier attempt ended with an unknown outcome: a CONFLICT for them now
    # most likely means the earlier attempt created them.
    uncertain_ids: set[str] = field(default_factory=set)
    parent_number: int | None = None  # set on parts of a batch split after HTTP 413 or 400
    resent_after_rejection: bool = False  # the rest of a batch after a 400 named culprits
    file_index: int = 0  # which of the import's files it came from
    # ids the interrupted run of this job may have sent already: a CONFLICT for them means
    # that run created them, which counts as imported
    resumed_ids: set[str] = field(default_factory=set)
    # customers the service already had, sent again as UPDATE (duplicate strategy "update")
    update_of_existing: bool = False
    _records: list[CustomerRecord] | None = None

    @classmethod
    def from_records(cls, number: int, kind: RecordKind, records: list[CustomerRecord], *,
                     keep_records: bool = True, body: bytes | None = None,
                     **extra: Any) -> Batch:
        """A batch of `records`; `body` when the caller has encoded them already."""
        if body is None:
            body = encode_body(kind, [r.data for r in records])
        batch = cls(number, kind, body, [r.record_id for r in records],
                    [r.record_number for r in records],
                    records[0].source_file if records else "", **extra)
        if keep_records:
            batch._records = list(records)
        return batch

    @property
    def records(self) -> list[CustomerRecord]:
        if self._records is None:
            entries = loads_exact(self.body)[self.kind.body_key]
            self._records = [CustomerRecord(e, self.source_file, n, self.kind)
                             for e, n in zip(entries, self.record_numbers, strict=True)]
        return self._records

    @property
    def label(self) -> str:
        return f"batch {self.number}" if self.parent_number is None else (
            f"batch {self.parent_number} (part)"
        )

    def __len__(self) -> int:
        return len(self.ids)


def encode_body(kind: RecordKind, entries: list[Any]) -> bytes:
    """The request body for `entries`: `{"data": [...]}` (or `"households"`), exactly."""
    try:
        return orjson.dumps({kind.body_key: entries})
    except TypeError:  # a long integer (or worse): each entry exactly
        return (b'{"' + kind.body_key.encode() + b'":['
                + b",".join(dumps_exact(e) for e in entries) + b"]}")


def now_iso() -> str:
    return datetime.now().isoformat(timespec="microseconds")


# Positions of a failure's fields in its row: the compact, immutable form in which stores
# and tables keep it. A tuple holding only text, bytes and numbers is left alone by
# Python's garbage collector, so 100,000 failures cost it nothing.
(ROW_ID, ROW_USERNAME, ROW_RESULT, ROW_ERROR, ROW_TIMESTAMP, ROW_BATCH_INFO, ROW_ORIGINAL,
 ROW_SOURCE_FILE, ROW_RECORD, ROW_BATCH, ROW_HTTP_STATUS, ROW_KIND, ROW_RETRIABLE,
 ROW_WHOLE_BATCH, ROW_KEY, ROW_ATTEMPTS, ROW_JOB, ROW_RESOLVED_JOB, ROW_RESOLVED_AT) = range(19)
FailureRow = tuple  # (see the ROW_ positions)


def customer_key(kind: str, customer_id: str, card: str = "", source_file: str = "",
                 record_number: int = 0) -> str:
    """Who a failure is about: the customer id, else a card number, else file and record.

    One open failure per key: a customer who fails again replaces their earlier failure,
    and one imported later resolves it.
    """
    if customer_id:
        return f"{kind}:id:{customer_id}"
    if card:
        return f"{kind}:card:{card}"
    return f"{kind}:record:{source_file}#{record_number}"


@dataclass(slots=True, init=False)
class FailureRecord:
    """A customer that was not imported, with the reason and its complete original data.

    Serialised with the seed's camelCase keys so `failed_customers.json` stays compatible.
    The original entry is kept as compact JSON (`original_json`), decoded on demand by
    `original_data`. Stores keep failures as rows (`to_row`), made into records on demand.
    `attempts` counts the failed attempts for this customer, `job` the latest job it failed
    in; `resolved_job` is set once a later job imported the customer.
    """

    customer_id: str
    username: str
    result: str
    error: str
    timestamp: str
    batch_info: str
    original_json: bytes
    source_file: str
    record_number: int
    batch_number: int
    http_status: int | None
    kind: RecordKind
    retriable: bool  # whether sending it again as it is can succeed (retry files)
    whole_batch: bool  # the batch failed as a whole (outage, timeout): no answer about it
    attempts: int
    job: int
    resolved_job: int | None
    resolved_at: str | None

    def __init__(self, customer_id: str, username: str, result: str, error: str,
                 timestamp: str, batch_info: str, original_data: Any = None, *,
                 original_json: bytes | None = None, source_file: str = "",
                 record_number: int = 0, batch_number: int = 0,
                 http_status: int | None = None,
                 kind: RecordKind = RecordKind.CUSTOMERS,
                 retriable: bool | None = None, whole_batch: bool = False,
                 attempts: int = 1, job: int = 0, resolved_job: int | None = None,
                 resolved_at: str | None = None) -> None:
        # text shown and written everywhere: never a character UTF-8 cannot hold
        self.customer_id = writable_text(customer_id)
        self.username = writable_text(username)
        self.result = result
        self.error = writable_text(error)
        self.timestamp = timestamp
        self.batch_info = batch_info
        self.original_json = (original_json if original_json is not None
                              else dumps_exact(original_data))
        self.source_file = writable_text(source_file)
        self.record_number = record_number
        self.batch_number = batch_number
        self.http_status = http_status
        self.kind = kind
        self.retriable = result not in NOT_RETRIABLE if retriable is None else retriable
        self.whole_batch = whole_batch
        self.attempts = attempts
        self.job = job
        self.resolved_job = resolved_job
        self.resolved_at = resolved_at

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # the row pickles about twice as fast as the slots do, which matters when 100,000
        # failures go to the result writer process
        return (FailureRecord.from_row, (self.to_row(),))

    @property
    def customer_key(self) -> str:
        """See `customer_key`; a card number is looked up only when there is no id."""
        card = "" if self.customer_id else _first_card(self.original_data)
        return customer_key(self.kind.value, self.customer_id, card, self.source_file,
                            self.record_number)

    def to_row(self) -> FailureRow:
        return (self.customer_id, self.username, self.result, self.error, self.timestamp,
                self.batch_info, self.original_json, self.source_file, self.record_number,
                self.batch_number, self.http_status, self.kind.value, self.retriable,
                self.whole_batch, self.customer_key, self.attempts, self.job,
                self.resolved_job, self.resolved_at)

    @classmethod
    def from_row(cls, row: FailureRow) -> FailureRecord:
        kind = row[ROW_KIND]
        return cls(row[ROW_ID], row[ROW_USERNAME], row[ROW_RESULT], row[ROW_ERROR],
                   row[ROW_TIMESTAMP], row[ROW_BATCH_INFO], original_json=row[ROW_ORIGINAL],
                   source_file=row[ROW_SOURCE_FILE], record_number=row[ROW_RECORD],
                   batch_number=row[ROW_BATCH], http_status=row[ROW_HTTP_STATUS],
                   kind=RecordKind(kind) if kind in RecordKind._value2member_map_
                   else RecordKind.CUSTOMERS, retriable=bool(row[ROW_RETRIABLE]),
                   whole_batch=bool(row[ROW_WHOLE_BATCH]), attempts=row[ROW_ATTEMPTS],
                   job=row[ROW_JOB], resolved_job=row[ROW_RESOLVED_JOB],
                   resolved_at=row[ROW_RESOLVED_AT])

    @property
    def original_data(self) -> Any:
        """The entry exactly as it was read (a dict; raw text for an unreadable line)."""
        try:
            return loads_exact(self.original_json)
        except (ValueError, RecursionError):  # nested beyond what Python can hold
            return self.original_json.decode("utf-8", "replace")

    @property
    def original_is_entry(self) -> bool:
        """True when the original is a JSON object, i.e. something the API could take."""
        return self.original_json[:1] == b"{"

    @property
    def original_fragment(self) -> orjson.Fragment:
        """The original for embedding in a larger JSON document without decoding it."""
        return orjson.Fragment(self.original_json)

    def to_dict(self) -> dict[str, Any]:
        return {
            "customerId": self.customer_id,
            "username": self.username,
            "result": self.result,
            "error": self.error,
            "timestamp": self.timestamp,
            "batchInfo": self.batch_info,
            "sourceFile": self.source_file,
            "recordNumber": self.record_number,
            "batchNumber": self.batch_number,
            "httpStatus": self.http_status,
            "kind": self.kind.value,
            "retriable": self.retriable,
            "attempts": self.attempts,
            "job": self.job,
            "originalData": self.original_fragment,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FailureRecord:
        kind = d.get("kind") or RecordKind.CUSTOMERS.value
        return cls(
            customer_id=str(d.get("customerId") or ""),
            username=str(d.get("username") or ""),
            result=str(d.get("result") or "UNKNOWN"),
            error=str(d.get("error") or ""),
            timestamp=str(d.get("timestamp") or ""),
            batch_info=str(d.get("batchInfo") or ""),
            original_data=d.get("originalData"),
            source_file=str(d.get("sourceFile") or ""),
            record_number=int(d.get("recordNumber") or 0),
            batch_number=int(d.get("batchNumber") or 0),
            http_status=d.get("httpStatus"),
            kind=RecordKind(kind) if kind in RecordKind._value2member_map_ else
            RecordKind.CUSTOMERS,
            retriable=d["retriable"] if isinstance(d.get("retriable"), bool) else None,
            attempts=int(d.get("attempts") or 1),
            job=int(d.get("job") or 0),
        )

    @classmethod
    def for_record(cls, record: CustomerRecord, *, result: str, error: str,
                   batch_info: str, username: str = "", batch_number: int = 0,
                   http_status: int | None = None, retriable: bool | None = None,
                   whole_batch: bool = False) -> FailureRecord:
        return cls(
            customer_id=record.record_id,
            username=username or record.display_name,
            result=str(result),  # plain text, never the enum: it is written to JSON keys
            error=error,
            timestamp=now_iso(),
            batch_info=batch_info,
            original_data=record.data,
            source_file=record.source_file,
            record_number=record.record_number,
            batch_number=batch_number,
            http_status=http_status,
            kind=record.kind,
            retriable=retriable,
            whole_batch=whole_batch,
        )


def _first_card(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    cards = person_of(entry).get("customerCards")
    if isinstance(cards, list):
        for card in cards:
            if isinstance(card, dict):
                number = card.get("number", card.get("cardNumber"))
                if number not in (None, ""):
                    return str(number)
    return ""
