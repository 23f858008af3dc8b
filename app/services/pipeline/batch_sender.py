"""Sends one batch to the API with bounded retries and turns the answer into outcomes.

Retry rules:
- 429, 502, 503, 504, 500, timeouts and connection errors are retried up to `max_retries`
  times with exponential backoff and full jitter; a `Retry-After` header wins over backoff.
- A timeout, 500, 502, 504 or a dropped connection after the body was sent leaves the
  outcome unknown: the batch's customers are marked uncertain, and a CONFLICT for them on a
  later attempt is reported as ALREADY_EXISTS (most likely created by the earlier attempt).
- 413 splits the batch in halves, each sent on its own.
- 401 is judged by the token the request carried (`TokenProvider.after_refusal`): a newer
  token is used, an old one renewed; only a token refused right after it was issued (or a
  failing token service) is fatal. The token is taken when the request leaves, after the
  batch has its concurrency slot, so it cannot expire while the batch waits.
- A redirect (3xx), 404 or 405 means the customers URL is wrong; 407 that the proxy wants
  credentials; a certificate that cannot be verified that the connection is not safe. All
  of these stop the import at once: no other batch could fare better.
- 400 fails the customers the answer names and sends the others once more without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import re
import time
from dataclasses import dataclass, field

import aiohttp

from app.models.records import Batch, CustomerRecord, FailureRecord, RecordKind, Result
from app.services.connection.auth import (
    AuthError,
    TokenProvider,
    households_url_for,
)
from app.services.connection.network import (
    REDIRECT_STATUSES,
    Network,
    redirect_message,
    tls_problem,
)
from app.services.connection.redaction import GENERIC, Redactor
from app.services.pipeline.concurrency_limit import AdaptiveLimit
from app.services.pipeline.import_events import ImportSettings
from app.services.pipeline.response_parser import (
    ParsedAnswer,
    ReportedResult,
    all_succeeded,
    attribute_batch_errors,
    decode_answer,
    match_by_unique_ids,
    match_results,
    parse_answer,
    possible_customers,
)
from app.services.sources.source_options import OnExisting

RETRIABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
WRONG_URL_STATUSES = {404: "404 Not Found", 405: "405 Method Not Allowed"}
MAX_TOKEN_RENEWALS = 20  # per batch: 401s answered by a renewed token before giving up
OVERLOAD_STATUSES = frozenset({429, 503})  # the service asks for fewer requests at once
OUTCOME_UNKNOWN_STATUSES = frozenset({500, 502, 504})
MAX_BODY_SNIPPET = 200


class FatalImportError(Exception):
    """The API refuses to go on (authentication, permission): stop the whole import."""


@dataclass(slots=True)
class Attempt:
    """What came back from one POST (or why nothing did)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""  # set when no answer came
    result_word: str = ""  # our result for a whole-batch failure of this kind
    outcome_unknown: bool = False
    fatal: str = ""  # a problem no retry can fix (certificate, proxy): stop the import
    token: str = field(default="", repr=False)  # the token the request carried
    sent_at: float = 0.0  # when it left (monotonic)


@dataclass(slots=True)
class BatchOutcome:
    """The final outcome of a batch part: customers that succeeded and failure records."""

    succeeded: int = 0
    failures: list[FailureRecord] = field(default_factory=list)
    resend: list[Batch] = field(default_factory=list)  # parts still to send (413 / 400)
    response_to_keep: Attempt | None = None  # a failing answer worth saving for support
    note: str = ""
    created_before_interruption: int = 0  # CONFLICT of a resumed job's earlier attempt
    updated: int = 0  # set by the engine: successes of UPDATE parts
    skipped_existing: int = 0  # CONFLICT answers left alone (duplicate strategy "skip")


class BatchSender:
    """Posts batches through one shared session; knows nothing of files or queues."""

    def __init__(self, session: aiohttp.ClientSession, settings: ImportSettings,
                 auth: TokenProvider, stop_event: asyncio.Event, resume_event: asyncio.Event,
                 known_uncertain: set[str] | None = None,
                 duplicate_ids: set[str] | None = None,
                 redactor: Redactor = GENERIC,
                 limit: AdaptiveLimit | None = None,
                 network: Network | None = None) -> None:
        self.session = session
        self.network = network or Network(verify_tls=settings.verify_tls)
        self.settings = settings
        self.auth = auth
        self.stop_event = stop_event
        self.resume_event = resume_event
        self.known_uncertain = known_uncertain or set()
        # ids read more than once in this import (the engine's set, growing as it reads)
        self.duplicate_ids = duplicate_ids if duplicate_ids is not None else set()
        self.redactor = redactor
        # requests in flight: at most the user's concurrency, fewer while the service strains
        self.limit = limit or AdaptiveLimit(settings.concurrency)
        self.on_existing = OnExisting(settings.on_existing)
        self.in_flight: set[asyncio.Task[Attempt]] = set()

    def url_for(self, batch: Batch) -> str:
        if batch.kind is RecordKind.HOUSEHOLDS:
            return self.settings.households_url or households_url_for(self.settings.customers_url)
        return self.settings.customers_url

    async def send(self, batch: Batch) -> BatchOutcome:
        """Send until the batch has a final outcome (or the import stops)."""
        attempt_number = 0
        renewals = 0
        while True:
            if self.stop_event.is_set():
                return self.not_sent(batch, "the import was stopped before this batch was sent")
            if not self.resume_event.is_set():
                await self._wait_resumed()
                continue
            async with self.limit.slot() as slot:
                attempt = await self._post_tracked(batch)
                if attempt.sent_at:  # the answer's latency, not a token renewal's before it
                    slot.sent_at = attempt.sent_at
                await self.limit.observe(
                    slot, overloaded=(attempt.status in OVERLOAD_STATUSES
                                      or attempt.result_word == Result.TIMEOUT),
                    answered=attempt.status is not None)
            if attempt.status is None and attempt.result_word == "CANCELLED":
                note = ("the import was cancelled while this batch was being sent; "
                        "the service may have created some of these customers")
                batch.uncertain_ids.update(batch.ids)
                return self.not_sent(batch, note)
            if attempt.fatal:
                raise FatalImportError(attempt.fatal)
            if attempt.outcome_unknown:
                batch.uncertain_ids.update(batch.ids)
            status = attempt.status
            if status == 401:
                renewals += 1
                if renewals > MAX_TOKEN_RENEWALS:
                    raise FatalImportError(
                        f"the service refused {MAX_TOKEN_RENEWALS} new tokens in a row "
                        "(HTTP 401); check user, password and tenant")
                try:
                    await self.auth.after_refusal(self.session, attempt.token, attempt.sent_at)
                except AuthError as exc:
                    raise FatalImportError(str(exc)) from None
                continue
            if status in REDIRECT_STATUSES or status in WRONG_URL_STATUSES or status == 407:
                raise FatalImportError(self._wrong_address(batch, attempt))
            if status == 403:
                raise FatalImportError("the service answered 403 Forbidden: these credentials "
                                       "may not import customers (or GK-Passport is missing)")
            if status is not None and 200 <= status < 300:
                return self.outcome_from_answer(batch, attempt)
            if status == 413:
                if len(batch) > 1:
                    return BatchOutcome(resend=split_batch(batch),
                                        note=f"{batch.label} too large (HTTP 413): split")
                return self.whole_batch_failure(batch, attempt, Result.TOO_LARGE,
                                                "the service refuses even this single "
                                                "customer as too large (HTTP 413)")
            if status == 400:
                return self.outcome_of_rejection(batch, attempt)
            if status is None or status in RETRIABLE_STATUSES:
                attempt_number += 1
                if attempt_number > self.settings.max_retries:
                    word = attempt.result_word or Result.HTTP_ERROR
                    return self.whole_batch_failure(
                        batch, attempt, word,
                        f"{describe_attempt(attempt)}; gave up after "
                        f"{self.settings.max_retries} retries")
                await self._sleep_unless_stopped(self.retry_delay(attempt, attempt_number))
                continue
            return self.whole_batch_failure(batch, attempt, Result.HTTP_ERROR,
                                            describe_attempt(attempt))

    def _wrong_address(self, batch: Batch, attempt: Attempt) -> str:
        """Why an answer that no retry can change (3xx, 404, 405, 407) stops the import."""
        url = self.url_for(batch)
        status = attempt.status or 0
        if status == 407:
            return self.network.proxy_refusal(status, url)
        what = "households URL" if batch.kind is RecordKind.HOUSEHOLDS else "customers URL"
        if status in WRONG_URL_STATUSES:
            return (f"the {what} answers {WRONG_URL_STATUSES[status]}: check the tenant and "
                    "the path in the connection settings")
        return redirect_message(what, status, attempt.headers.get("Location"), url)

    async def _wait_resumed(self) -> None:
        stop = asyncio.ensure_future(self.stop_event.wait())
        resume = asyncio.ensure_future(self.resume_event.wait())
        try:
            await asyncio.wait({stop, resume}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            resume.cancel()

    async def _sleep_unless_stopped(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), timeout=delay)

    def retry_delay(self, attempt: Attempt, attempt_number: int) -> float:
        retry_after = parse_retry_after(attempt.headers.get("Retry-After"))
        if retry_after is not None:
            return min(retry_after, self.settings.max_retry_after_s)
        ceiling = min(self.settings.backoff_max_s,
                      self.settings.backoff_base_s * 2 ** (attempt_number - 1))
        # "equal jitter": at least half the backoff, so retries still spread out
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _post_tracked(self, batch: Batch) -> Attempt:
        task = asyncio.ensure_future(self._post(batch))
        self.in_flight.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we ourselves are being cancelled, not just the request
            return Attempt(result_word="CANCELLED", error="cancelled while in flight",
                           outcome_unknown=True)
        finally:
            self.in_flight.discard(task)

    def abort_in_flight(self) -> None:
        for task in list(self.in_flight):
            task.cancel()

    async def _post(self, batch: Batch) -> Attempt:
        # the token is taken as the request leaves: a batch waiting for its turn (a slot,
        # a Retry-After) never carries a token that expired meanwhile
        try:
            token = await self.auth.token(self.session)
        except AuthError as exc:
            return Attempt(fatal=str(exc))
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   "Accept": "application/json", **self.settings.extra_headers}
        url = self.url_for(batch)
        sent_at = time.monotonic()
        try:
            async with self.session.post(url, data=batch.body,
                                         **self.network.request_options(url, headers)
                                         ) as response:
                body = await response.read()
                attempt = Attempt(response.status, dict(response.headers), body,
                                  token=token, sent_at=sent_at)
        except TimeoutError:
            return Attempt(error=f"no answer within {self.settings.timeout_s:g} s",
                           result_word=Result.TIMEOUT, outcome_unknown=True)
        except aiohttp.ClientHttpProxyError as exc:
            # the proxy refused to open the tunnel: nothing reached the service
            return Attempt(fatal=self.network.proxy_refusal(exc.status, url))
        except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch) as exc:
            problem = tls_problem(exc, url)
            return Attempt(fatal=problem or f"the secure connection to the service failed "
                                            f"({type(exc).__name__}); nothing was sent")
        except aiohttp.ClientConnectorError as exc:
            # could not connect at all: nothing was sent
            return Attempt(error=f"cannot connect to the service ({exc.os_error or exc})",
                           result_word=Result.CONNECTION_ERROR)
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                aiohttp.ClientOSError) as exc:
            return Attempt(error=f"the connection broke ({type(exc).__name__})",
                           result_word=Result.CONNECTION_ERROR, outcome_unknown=True)
        except aiohttp.ClientError as exc:
            return Attempt(error=f"request failed ({type(exc).__name__})",
                           result_word=Result.CONNECTION_ERROR, outcome_unknown=True)
        if attempt.status in OUTCOME_UNKNOWN_STATUSES:
            attempt.outcome_unknown = True
        if attempt.status in RETRIABLE_STATUSES:
            attempt.result_word = Result.HTTP_ERROR
        return attempt

    # -- outcomes --------------------------------------------------------------------------

    def _is_uncertain(self, batch: Batch, customer_id: str) -> bool:
        return customer_id in batch.uncertain_ids or customer_id in self.known_uncertain

    def outcome_from_answer(self, batch: Batch, attempt: Attempt) -> BatchOutcome:
        data = decode_answer(attempt.body)
        if data is not None and all_succeeded(data, batch.ids):
            return BatchOutcome(succeeded=len(batch))
        answer = parse_answer(attempt.body, data)
        if not answer.readable:
            attempt.outcome_unknown = True
            batch.uncertain_ids.update(batch.ids)
            return self.whole_batch_failure(
                batch, attempt, Result.UNREADABLE_RESPONSE,
                f"HTTP {attempt.status} but the answer could not be read "
                f"({snippet(attempt.body)}); the customers may or may not be imported")
        outcome = BatchOutcome()
        results, batch_errors = self._results_with_attributed_errors(answer, batch)
        fast = match_by_unique_ids(results, batch.ids)
        matched, unmatched = fast if fast is not None else match_results(results, batch.records)
        lists_success = any(r.success for r in results)
        unmatched_failures = [r for r in unmatched if not r.success]
        # the customers those failures could be about (None: any unmentioned one)
        maybe_failed = (possible_customers(unmatched_failures, batch.records, matched)
                        if unmatched_failures else set())
        # the duplicate strategy: what a CONFLICT means (never for an UPDATE sent by it)
        strategy = None if batch.update_of_existing else self.on_existing
        if strategy is OnExisting.CREATE:
            strategy = None
        existing: list[CustomerRecord] = []
        for i in range(len(batch)):
            reported = matched.get(i)
            if reported is not None and reported.success:
                outcome.succeeded += 1
                continue
            if reported is not None and reported.result.upper() == "CONFLICT" \
                    and batch.ids[i] in batch.resumed_ids \
                    and strategy is not OnExisting.UPDATE:
                # sent before the job was interrupted: that attempt created the customer
                # (under "update" it goes out as UPDATE below: it may have existed before)
                outcome.succeeded += 1
                outcome.created_before_interruption += 1
                continue
            if strategy is not None and reported is not None \
                    and reported.result.upper() == "CONFLICT":
                if strategy is OnExisting.SKIP:
                    outcome.skipped_existing += 1
                else:
                    existing.append(batch.records[i])
                continue
            record = batch.records[i]  # decoded only when a customer failed
            if reported is None:
                if lists_success:
                    outcome.failures.append(self._failure(
                        batch, record, attempt, Result.NO_RESULT,
                        "the answer listed other customers but returned no result for this one"
                        + _joined(batch_errors), "Missing from structured response data"))
                elif unmatched_failures and (maybe_failed is None or i in maybe_failed):
                    messages = "; ".join(f"{r.customer_id or r.username}: {r.error or r.result}"
                                         for r in unmatched_failures[:5])
                    batch.uncertain_ids.add(record.record_id)
                    outcome.failures.append(self._failure(
                        batch, record, attempt, "UNMATCHED",
                        f"the answer reported failures that match no customer sent "
                        f"({messages}); this customer may or may not be imported",
                        "Unmatched failure in response"))
                elif batch_errors:
                    outcome.failures.append(self._failure(
                        batch, record, attempt, "ERROR", "; ".join(batch_errors),
                        "Found in response errors array"))
                else:
                    outcome.succeeded += 1
            else:
                outcome.failures.append(self._failure_from_report(batch, record, attempt,
                                                                  reported))
        if existing:
            outcome.resend.append(update_batch(batch, existing))
        if outcome.failures:
            outcome.response_to_keep = attempt
        return outcome

    def _results_with_attributed_errors(self, answer: ParsedAnswer, batch: Batch
                                        ) -> tuple[list[ReportedResult], list[str]]:
        if not answer.batch_errors:
            return answer.results, []
        attributed, rest = attribute_batch_errors(answer.batch_errors, batch.records)
        return answer.results + attributed, rest

    def _failure_from_report(self, batch: Batch, record: CustomerRecord, attempt: Attempt,
                             reported: ReportedResult) -> FailureRecord:
        result = reported.result
        error = reported.error or f"the service answered {result}"
        retriable = None
        if result.upper() == "CONFLICT" and record.record_id in self.duplicate_ids:
            # sending it again can only conflict again: it stays out of the retry files
            retriable = False
            error = (f"{error}; the files of this import hold this id more than once, so "
                     "another record with it was most probably created first (check which "
                     "one is right; this one is not put in the retry files)")
        elif result.upper() == "CONFLICT" and self._is_uncertain(batch, record.record_id):
            result = Result.ALREADY_EXISTS
            error = ("the service says this customer exists; an earlier attempt whose outcome "
                     "was unknown most probably created it, unless the files hold this id "
                     f"twice (service: {error})")
        return self._failure(batch, record, attempt, result, error, reported.method,
                             username=reported.username, retriable=retriable)

    def outcome_of_rejection(self, batch: Batch, attempt: Attempt) -> BatchOutcome:
        answer = parse_answer(attempt.body)
        results, batch_errors = self._results_with_attributed_errors(answer, batch)
        matched, _ = match_results([r for r in results if not r.success], batch.records)
        general = "; ".join(batch_errors) or snippet(attempt.body) or "no reason given"
        outcome = BatchOutcome(response_to_keep=attempt)
        if matched and len(matched) < len(batch) and not batch.resent_after_rejection:
            # the service named the culprits: fail them, send the rest once more
            rest = [r for i, r in enumerate(batch.records) if i not in matched]
            for i, reported in matched.items():
                outcome.failures.append(self._failure(
                    batch, batch.records[i], attempt, Result.REJECTED,
                    reported.error or reported.result, "Batch rejected (HTTP 400); named "
                    "in response", username=reported.username))
            part = Batch.from_records(batch.number, batch.kind, rest,
                                      uncertain_ids=set(batch.uncertain_ids),
                                      parent_number=batch.number, resent_after_rejection=True,
                                      resumed_ids=set(batch.resumed_ids),
                                      update_of_existing=batch.update_of_existing,
                                      file_index=batch.file_index)
            outcome.resend.append(part)
            outcome.note = (f"{batch.label} rejected (HTTP 400) because of {len(matched)} "
                            f"customers; sending the other {len(rest)} again")
            return outcome
        for i, record in enumerate(batch.records):
            named = matched.get(i)
            error = (named.error if named and named.error else
                     f"the whole batch was rejected (HTTP 400): {general}")
            outcome.failures.append(self._failure(batch, record, attempt, Result.REJECTED,
                                                  error, "Batch rejected (HTTP 400)",
                                                  whole_batch=named is None))
        return outcome

    def whole_batch_failure(self, batch: Batch, attempt: Attempt, result: str,
                            error: str) -> BatchOutcome:
        if batch.uncertain_ids:
            error += "; an attempt's outcome was unknown, so some may already exist"
        outcome = BatchOutcome(response_to_keep=attempt)
        info = f"Whole batch failed ({describe_attempt(attempt, short=True)})"
        outcome.failures = [self._failure(batch, r, attempt, result, error, info,
                                          whole_batch=True) for r in batch.records]
        return outcome

    def not_sent(self, batch: Batch, reason: str) -> BatchOutcome:
        return BatchOutcome(failures=not_sent_failures(batch, reason))

    def _failure(self, batch: Batch, record: CustomerRecord, attempt: Attempt, result: str,
                 error: str, info: str, username: str = "",
                 retriable: bool | None = None, whole_batch: bool = False) -> FailureRecord:
        # error texts and user names come from the answer: never keep a credential it echoes
        return FailureRecord.for_record(
            record, result=str(result), error=self.redactor.text(error),
            batch_info=f"{info} · {batch.label}", username=self.redactor.text(username),
            batch_number=batch.number, http_status=attempt.status, retriable=retriable,
            whole_batch=whole_batch)


def not_sent_failures(batch: Batch, reason: str) -> list[FailureRecord]:
    return [FailureRecord.for_record(r, result=Result.NOT_SENT, error=reason,
                                     batch_info=f"Not sent · {batch.label}",
                                     batch_number=batch.number, whole_batch=True)
            for r in batch.records]


def update_batch(batch: Batch, records: list[CustomerRecord]) -> Batch:
    """The customers of `batch` the service already has, to send once more as UPDATE."""
    entries = []
    for record in records:
        entry = dict(record.data) if isinstance(record.data, dict) else record.data
        if isinstance(entry, dict):
            entry["changeType"] = "UPDATE"
        entries.append(CustomerRecord(entry, record.source_file, record.record_number,
                                      record.kind))
    return Batch.from_records(batch.number, batch.kind, entries,
                              uncertain_ids=set(batch.uncertain_ids),
                              parent_number=batch.number, update_of_existing=True,
                              file_index=batch.file_index)


def split_batch(batch: Batch) -> list[Batch]:
    middle = len(batch) // 2
    halves = []
    for records in (batch.records[:middle], batch.records[middle:]):
        halves.append(Batch.from_records(batch.number, batch.kind, records,
                                         uncertain_ids=set(batch.uncertain_ids),
                                         parent_number=batch.number,
                                         resumed_ids=set(batch.resumed_ids),
                                         update_of_existing=batch.update_of_existing,
                                         file_index=batch.file_index))
    return halves


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def snippet(body: bytes) -> str:
    """A short, readable reason from an error body: its messages, an HTML title, or text."""
    answer = decode_answer(body)
    if isinstance(answer, dict):
        parsed = parse_answer(body, answer)
        messages = parsed.batch_errors + [r.error for r in parsed.results if r.error]
        if not messages and answer.get("message"):
            messages = [str(answer["message"])]
        if messages:
            text = "; ".join(dict.fromkeys(messages))
            return text if len(text) <= MAX_BODY_SNIPPET else text[:MAX_BODY_SNIPPET] + "…"
    text = body.decode("utf-8", "replace").strip()
    if text.lstrip().startswith("<"):
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = f"HTML page: {title.group(1).strip()}" if title else "an HTML page"
    text = " ".join(text.split())
    return text if len(text) <= MAX_BODY_SNIPPET else text[:MAX_BODY_SNIPPET] + "…"


def describe_attempt(attempt: Attempt, short: bool = False) -> str:
    if attempt.status is None:
        return attempt.error or "no answer"
    if short:
        return f"HTTP {attempt.status}"
    body = snippet(attempt.body)
    return f"HTTP {attempt.status}" + (f": {body}" if body else "")


def _joined(messages: list[str]) -> str:
    return f" ({'; '.join(messages)})" if messages else ""
