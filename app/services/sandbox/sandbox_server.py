"""Local sandbox of the GK Customer Profile Service (C4R and Engage deployments).

The sandbox keeps customers and households in memory, issues tokens from both
token endpoints and can inject the faults a real deployment shows (rate limits,
5xx answers, answers lost after processing, hangs). See docs/api.md for the
contract.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import dataclasses
import datetime
import functools
import math
import random
import secrets
import signal
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from app.models.entry_json import dumps_exact, loads_exact

__all__ = [
    "SandboxConfig",
    "SandboxServer",
    "SandboxThread",
    "StoredRecords",
    "add_sandbox_arguments",
    "run_sandbox",
]

C4R_IMPORT_PREFIX = "/customer-profile-service/tenants/{tenant}/services/rest/customers-import/v1"
ENGAGE_IMPORT_PREFIX = "/api/customer-profile/services/rest/customers-import/v1"
C4R_TOKEN_PATH = "/auth-service/tenants/{tenant}/oauth/token"
ENGAGE_TOKEN_PATH = "/auth/realms/{realm}/protocol/openid-connect/token"
DEPLOYMENTS = ("c4r", "engage")

SUCCESS = "SUCCESS"
FAILED = "FAILED"
CONFLICT = "CONFLICT"
# Tuples, not sets: a client may send an unhashable value (a list) in these fields.
CHANGE_TYPES = ("CREATE", "UPDATE")
HOUSEHOLD_ROLES = ("HEAD", "MEMBER")

# Error codes in the top-level "errors" array (errors_array mode), by result.
_ERROR_CODES = {FAILED: "VALIDATION_ERROR", CONFLICT: "CONFLICT"}
_NOT_FOUND_CODE = "NOT_FOUND"
_NO_CUSTOMER = "Customer does not exist"

_JSON = "application/json"
_HTML = "text/html"
_MAX_BODY = 256 * 1024 * 1024
_SECRET_FIELDS = frozenset({"client_secret", "static_token"})

Handler = Callable[[web.Request], Awaitable[web.Response]]
# Applies a batch; returns (result entries, entries for the top-level "errors" array).
BatchProcessor = Callable[[list[Any]], tuple[list[dict], list[dict]]]


@dataclass
class SandboxConfig:
    """Behaviour of the sandbox; may be changed while it runs."""

    tenant: str = "demo"
    client_id: str = "bulk-import"
    client_secret: str = "sandbox-secret"
    users: dict[str, str] = field(default_factory=lambda: {"demo": "demo"})
    static_token: str | None = None
    token_ttl_s: float = 3600.0
    require_passport: bool = False
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_after_processing_rate: float = 0.0
    timeout_after_processing_rate: float = 0.0
    hang_s: float = 30.0
    rate_limit_rate: float = 0.0
    retry_after_s: float = 1.0
    max_concurrent: int = 0
    workers: int = 0  # requests beyond this many in flight wait their turn (0 = no queue)
    max_batch_size: int = 0
    shuffle_results: bool = False
    failures_only: bool = False
    errors_array: bool = False
    fail_first_requests: int = 0
    # the first N import requests get no answer for `hang_s` (nothing is processed), then
    # 504: a service too busy to answer in time
    hang_first_requests: int = 0
    reject_invalid_batches: bool = False  # 400 for a whole batch naming its invalid customers
    echo_credentials: bool = False  # error texts repeat the request's credentials (a bad server)
    # import and token requests are answered `redirect_status` with Location
    # `redirect_to` + the request's path (a moved service, a misconfigured gateway)
    redirect_to: str = ""
    redirect_status: int = 302
    seed: int | None = None


def _gateway_timeout() -> web.Response:
    return web.Response(body=b"<html><body><h1>504 Gateway Time-out</h1></body></html>",
                        status=504, content_type=_HTML)


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None
                   ) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type=_JSON,
                        headers=headers)


def _error_response(status: int, message: str, code: str,
                    headers: dict[str, str] | None = None) -> web.Response:
    return _json_response({"errors": [{"message": message, "code": code}]}, status, headers)


def _oauth_error(status: int, error: str, description: str,
                 headers: dict[str, str] | None = None) -> web.Response:
    return _json_response({"error": error, "error_description": description}, status, headers)


def _format_retry_after(seconds: float) -> str:
    # Whole seconds (RFC 9110) from 1 s up; below that a fraction such as "0.05" so
    # tests can exercise back-off without waiting whole seconds.
    if seconds >= 1:
        return str(math.ceil(seconds))
    return f"{max(seconds, 0.0):g}"


def _failed(customer_id: str | None, username: str | None, error: str) -> dict:
    return {"customerId": customer_id, "username": username, "result": FAILED, "error": error}


@functools.lru_cache(maxsize=65536)
def _is_real_date(value: str) -> bool:
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        return False
    year, month, day = value[0:4], value[5:7], value[8:10]
    if not (year.isascii() and year.isdigit() and month.isascii() and month.isdigit()
            and day.isascii() and day.isdigit()):
        return False
    try:
        datetime.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _username(person: dict[str, Any], customer_id: str) -> str:
    first = person.get("firstName")
    last = person.get("lastName")
    name = " ".join(p for p in (first, last) if isinstance(p, str) and p)
    return f"{name}-{customer_id[-4:]}".upper()


def _public_config(config: SandboxConfig) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    for name in _SECRET_FIELDS:
        data.pop(name, None)
    data["users"] = sorted(config.users)
    return data


# Accepted JSON types of each SandboxConfig field, by its annotation (postponed, so a str).
_TYPES_BY_ANNOTATION: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
    "dict[str, str]": (dict,),
}
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    f.name: _TYPES_BY_ANNOTATION[str(f.type)] for f in dataclasses.fields(SandboxConfig)
}


def _check_override(name: str, value: Any) -> str | None:
    """Return why `value` cannot be assigned to config field `name`, or None if it can."""
    types = _FIELD_TYPES.get(name)
    if types is None:
        return f"unknown config field {name!r}"
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        return f"{name} must be {' or '.join(t.__name__ for t in types)}"
    if name == "users" and not (isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )):
        return "users must map user names to passwords"
    return None


def _compact_json(value: Any) -> bytes:
    # orjson's result keeps its allocation slack (~4 kB of RSS per small record when
    # many are retained); an exact-size copy keeps a stored record near its JSON size.
    return memoryview(dumps_exact(value)).tobytes()


class StoredRecords(MutableMapping[str, dict]):
    """Records by id, kept as compact JSON bytes and decoded on access.

    Holding hundreds of thousands of records as Python dicts would cost ~2 kB each and
    make every full garbage collection of the whole process (the GUI too, when the
    sandbox runs in-process) walk them; bytes are ~5x smaller and not GC-tracked.
    Reads return a fresh dict: change a record by assigning it again.
    """

    __slots__ = ("raw",)

    def __init__(self) -> None:
        self.raw: dict[str, bytes] = {}

    def __getitem__(self, key: str) -> dict:
        return loads_exact(self.raw[key])

    def __setitem__(self, key: str, value: dict) -> None:
        self.raw[key] = _compact_json(value)

    def __delitem__(self, key: str) -> None:
        del self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def clear(self) -> None:
        """Remove all records."""
        self.raw.clear()

    def __repr__(self) -> str:
        return f"<StoredRecords: {len(self.raw)} records>"


class SandboxServer:
    """In-memory Customer Profile API serving both the C4R and the Engage URL layout."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config: SandboxConfig = config if config is not None else SandboxConfig()
        self.base_url: str = ""
        self.customers = StoredRecords()
        self.households = StoredRecords()
        # CREATEs received per customer id, whether the id was new, taken already (CONFLICT)
        # or refused: a client that sends a customer twice shows here, where `creations`
        # cannot (the store creates an id once whatever the client sends)
        self.create_attempts: Counter[str] = Counter()
        self.creations: Counter[str] = Counter()
        self.updates: Counter[str] = Counter()  # successful UPDATEs per customer
        self.request_count: int = 0
        self.peak_in_flight: int = 0  # most import requests under way at once (held ones too)
        self.requests_seen: int = 0  # every request of any kind, to any path
        self.fault_counts: Counter[str] = Counter()
        # a fixed prefix: a token starting with "-" would read as an option on a command line
        self._generated_token = "sandbox-" + secrets.token_urlsafe(32)
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._in_flight = 0
        self._queue: tuple[int, asyncio.Semaphore] | None = None
        self._rng = random.Random(self.config.seed)
        self._aux_rng = random.Random(self.config.seed)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.app = self._make_app()

    # -- lifecycle -------------------------------------------------------------------

    @property
    def static_token(self) -> str:
        """Token accepted forever: config.static_token, else one generated at construction."""
        return self.config.static_token or self._generated_token

    async def start(self, host: str = "127.0.0.1", port: int = 0,
                    ssl_context: ssl.SSLContext | None = None) -> str:
        """Start listening and return the base URL, e.g. "http://127.0.0.1:8765" (https://
        with `ssl_context`, which holds the certificate the server shows)."""
        if self._runner is not None:
            raise RuntimeError("sandbox server already started")
        # A fresh event: the previous one may belong to another (closed) loop.
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        scheme = "https" if ssl_context is not None else "http"
        self.base_url = f"{scheme}://{url_host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening; requests held by a hang fault are released at once."""
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def reset(self) -> None:
        """Clear stored data, counters and fault state (issued tokens stay valid)."""
        self.customers.clear()
        self.households.clear()
        self.create_attempts.clear()
        self.creations.clear()
        self.updates.clear()
        self.request_count = 0
        self.peak_in_flight = 0
        self.requests_seen = 0
        self.fault_counts.clear()
        self._rng.seed(self.config.seed)
        self._aux_rng.seed(self.config.seed)

    # -- URLs ------------------------------------------------------------------------

    def _import_prefix(self, deployment: str) -> str:
        if deployment == "c4r":
            return self.base_url + C4R_IMPORT_PREFIX.format(tenant=self.config.tenant)
        if deployment == "engage":
            return self.base_url + ENGAGE_IMPORT_PREFIX
        raise ValueError(f"unknown deployment {deployment!r}; expected one of {DEPLOYMENTS}")

    def customers_url(self, deployment: str = "c4r") -> str:
        """Full URL of the customers import endpoint of "c4r" or "engage"."""
        return self._import_prefix(deployment) + "/customers"

    def households_url(self, deployment: str = "c4r") -> str:
        """Full URL of the households import endpoint of "c4r" or "engage"."""
        return self._import_prefix(deployment) + "/households"

    def token_url(self, deployment: str = "c4r") -> str:
        """Full URL of the token endpoint of "c4r" or "engage"."""
        tenant = self.config.tenant
        if deployment == "c4r":
            return self.base_url + C4R_TOKEN_PATH.format(tenant=tenant)
        if deployment == "engage":
            return self.base_url + ENGAGE_TOKEN_PATH.format(realm=f"{tenant}-operators")
        raise ValueError(f"unknown deployment {deployment!r}; expected one of {DEPLOYMENTS}")

    # -- app -------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY, middlewares=[self._count_request])
        c4r_customers = self._import_handler("customers", c4r=True)
        c4r_households = self._import_handler("households", c4r=True)
        app.router.add_post(C4R_IMPORT_PREFIX + "/customers", c4r_customers)
        app.router.add_post(C4R_IMPORT_PREFIX + "/households", c4r_households)
        app.router.add_post(ENGAGE_IMPORT_PREFIX + "/customers",
                            self._import_handler("customers", c4r=False))
        app.router.add_post(ENGAGE_IMPORT_PREFIX + "/households",
                            self._import_handler("households", c4r=False))
        app.router.add_post(C4R_TOKEN_PATH, self._c4r_token)
        app.router.add_post(ENGAGE_TOKEN_PATH, self._engage_token)
        app.router.add_get("/_sandbox/state", self._state)
        app.router.add_get("/_sandbox/customers/{customer_id}", self._customer_entry)
        app.router.add_post("/_sandbox/reset", self._reset)
        app.router.add_post("/_sandbox/config", self._set_config)
        return app

    @web.middleware
    async def _count_request(
            self, request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        self.requests_seen += 1
        return await handler(request)

    # -- tokens ----------------------------------------------------------------------

    def _issue_token(self) -> web.Response:
        now = time.monotonic()
        if len(self._tokens) > 10_000:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
        token = "sandbox-" + secrets.token_urlsafe(32)
        ttl = max(float(self.config.token_ttl_s), 0.0)
        self._tokens[token] = now + ttl
        expires_in: int | float = int(ttl) if ttl.is_integer() else ttl
        return _json_response(
            {"access_token": token, "token_type": "bearer", "expires_in": expires_in},
            headers={"Cache-Control": "no-store"},
        )

    def _redirect(self, request: web.Request) -> web.Response | None:
        """The redirect fault: every import and token request is sent elsewhere."""
        cfg = self.config
        if not cfg.redirect_to:
            return None
        self.fault_counts["redirect"] += 1
        return web.Response(status=cfg.redirect_status,
                            headers={"Location": cfg.redirect_to.rstrip("/") + request.path_qs})

    async def _c4r_token(self, request: web.Request) -> web.Response:
        cfg = self.config
        if (redirect := self._redirect(request)) is not None:
            return redirect
        if request.match_info["tenant"] != cfg.tenant:
            return _oauth_error(404, "invalid_tenant", "Unknown tenant")
        client = _basic_credentials(request.headers.get("Authorization", ""))
        if client is None or client != (cfg.client_id, cfg.client_secret):
            return _oauth_error(401, "invalid_client", "Bad client credentials",
                                {"WWW-Authenticate": 'Basic realm="oauth"'})
        form = await request.post()
        if form.get("grant_type") != "password":
            return _oauth_error(400, "unsupported_grant_type", "grant_type must be password")
        if not self._user_ok(form.get("username"), form.get("password")):
            return _oauth_error(400, "invalid_grant", "Bad credentials")
        return self._issue_token()

    async def _engage_token(self, request: web.Request) -> web.Response:
        cfg = self.config
        if (redirect := self._redirect(request)) is not None:
            return redirect
        if request.match_info["realm"] != f"{cfg.tenant}-operators":
            return _oauth_error(404, "invalid_realm", "Realm does not exist")
        form = await request.post()
        if form.get("client_id") != cfg.client_id:
            return _oauth_error(401, "invalid_client",
                                "Invalid client or Invalid client credentials")
        if form.get("grant_type") != "password":
            return _oauth_error(400, "unsupported_grant_type", "grant_type must be password")
        if not self._user_ok(form.get("username"), form.get("password")):
            return _oauth_error(401, "invalid_grant", "Invalid user credentials")
        return self._issue_token()

    def _user_ok(self, username: Any, password: Any) -> bool:
        if not isinstance(username, str) or not isinstance(password, str):
            return False
        expected = self.config.users.get(username)
        return expected is not None and secrets.compare_digest(
            expected.encode(), password.encode()
        )

    def _auth_error(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization")
        if not header:
            return _error_response(401, "Missing bearer token", "UNAUTHORIZED",
                                   {"WWW-Authenticate": "Bearer"})
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _error_response(401, "Authorization must be a bearer token", "UNAUTHORIZED",
                                   {"WWW-Authenticate": "Bearer"})
        if token == self.static_token:
            return None
        expiry = self._tokens.get(token)
        if expiry is None:
            return _error_response(401, "Invalid access token", "INVALID_TOKEN",
                                   {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if time.monotonic() >= expiry:
            return _error_response(
                401, "Access token expired", "TOKEN_EXPIRED",
                {"WWW-Authenticate":
                 'Bearer error="invalid_token", error_description="The access token expired"'},
            )
        return None

    # -- import ----------------------------------------------------------------------

    def _decide_fault(self) -> str | None:
        """Pick at most one fault kind for this import request, in the documented order."""
        cfg = self.config
        if self.request_count <= cfg.fail_first_requests:
            return "fail_first_requests"
        if self.request_count <= cfg.hang_first_requests:
            return "hang_first_requests"
        if cfg.max_concurrent > 0 and self._in_flight > cfg.max_concurrent:
            return "max_concurrent"
        # One draw against cumulative bands, so each rate is the real fraction of requests.
        r = self._rng.random()
        band = cfg.rate_limit_rate
        if r < band:
            return "rate_limit"
        band += cfg.error_rate
        if r < band:
            return "error"
        band += cfg.error_after_processing_rate
        if r < band:
            return "error_after_processing"
        band += cfg.timeout_after_processing_rate
        if r < band:
            return "timeout_after_processing"
        return None

    def _import_handler(self, kind: str, *, c4r: bool) -> Handler:
        items_key = "data" if kind == "customers" else "households"
        process: BatchProcessor = (
            self._process_customers if kind == "customers" else self._process_households)

        async def handle(request: web.Request) -> web.Response:
            cfg = self.config
            if (redirect := self._redirect(request)) is not None:
                return redirect
            if c4r and request.match_info["tenant"] != cfg.tenant:
                return _error_response(404, "Unknown tenant", "NOT_FOUND")
            auth_error = self._auth_error(request)
            if auth_error is not None:
                return auth_error
            if c4r and cfg.require_passport and not request.headers.get("GK-Passport"):
                return _error_response(403, "GK-Passport header required", "PASSPORT_REQUIRED")
            self.request_count += 1
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            try:
                return await self._handle_import(request, items_key, process)
            finally:
                self._in_flight -= 1

        return handle

    async def _handle_import(self, request: web.Request, items_key: str,
                             process: BatchProcessor) -> web.Response:
        cfg = self.config
        fault = self._decide_fault()
        if fault is not None:
            self.fault_counts[fault] += 1
        # Read the body even for faulted requests so keep-alive connections stay usable.
        raw = await request.read()
        async with self._worker():
            if cfg.latency_ms > 0 or cfg.latency_jitter_ms > 0:
                delay = cfg.latency_ms + self._aux_rng.uniform(0.0, cfg.latency_jitter_ms)
                await asyncio.sleep(delay / 1000.0)

        if fault == "fail_first_requests":
            return _error_response(503, "Service temporarily unavailable", "SERVICE_UNAVAILABLE")
        if fault == "hang_first_requests":
            await self._hold()
            return _gateway_timeout()
        if fault in ("max_concurrent", "rate_limit"):
            return self._rate_limited()
        if fault == "error":
            return self._random_server_error()

        try:
            # exactly, as a real service reads numbers: a long card number stays a number
            body = loads_exact(raw)
        except (ValueError, RecursionError):
            return _error_response(400, "Request body is not valid JSON", "INVALID_JSON")
        items = body.get(items_key) if isinstance(body, dict) else None
        if not isinstance(items, list):
            return _error_response(400, f"Request body must be an object with a "
                                        f"{items_key!r} list", "INVALID_REQUEST")
        if 0 < cfg.max_batch_size < len(items):
            return _error_response(
                413, f"Batch has {len(items)} items; at most {cfg.max_batch_size} allowed",
                "BATCH_TOO_LARGE")

        if cfg.reject_invalid_batches and items_key == "data":
            refused = [r for r in (self._process_customer(i, apply=False) for i in items)
                       if r["result"] == FAILED]
            if refused:
                return _json_response({"errors": [
                    {"customerId": r["customerId"], "username": r["username"],
                     "message": r["error"], "code": "VALIDATION_FAILED"} for r in refused]},
                    400)

        results, failures = process(items)
        if cfg.echo_credentials:
            _echo_credentials(request, results, failures)

        if fault == "error_after_processing":
            return _error_response(500, "Internal server error", "INTERNAL_ERROR")
        if fault == "timeout_after_processing":
            await self._hold()
            return _gateway_timeout()

        if cfg.failures_only:
            results = [r for r in results if r["result"] != SUCCESS]
        if cfg.shuffle_results:
            self._aux_rng.shuffle(results)
        answer: dict[str, Any] = {items_key: results}
        if cfg.errors_array and failures:
            answer["errors"] = failures
        return web.Response(body=orjson.dumps(answer), content_type=_JSON)

    async def _hold(self) -> None:
        """Keep a request without an answer for `hang_s` (released at once by `stop`)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self.config.hang_s)

    def _worker(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A place among `config.workers` (a server that queues what it cannot take yet)."""
        workers = self.config.workers
        if workers <= 0:
            return contextlib.nullcontext()
        if self._queue is None or self._queue[0] != workers:
            self._queue = (workers, asyncio.Semaphore(workers))
        return self._queue[1]

    def _rate_limited(self) -> web.Response:
        retry_after = max(float(self.config.retry_after_s), 0.0)
        return _json_response(
            {"errors": [{"message": "Too many requests", "code": "RATE_LIMITED",
                         "retryAfterSeconds": retry_after}]},
            429, {"Retry-After": _format_retry_after(retry_after)})

    def _random_server_error(self) -> web.Response:
        status = self._rng.choice((500, 502, 503))
        style = self._rng.choice(("json", "html", "truncated"))
        if style == "json":
            return _error_response(status, "Internal server error", "INTERNAL_ERROR")
        if style == "html":
            body = (f"<html><head><title>{status} Error</title></head>"
                    f"<body><h1>{status} Error</h1><p>upstream failed</p></body></html>")
            return web.Response(body=body.encode(), status=status, content_type=_HTML)
        return web.Response(body=b'{"errors":[{"message":"Internal server error while proc',
                            status=status, content_type=_JSON)

    def _process_customers(self, items: list[Any]) -> tuple[list[dict], list[dict]]:
        process = self._process_customer
        results = [process(item) for item in items]
        failures: list[dict] = []
        if self.config.errors_array:
            for r in results:
                error = r.get("error")
                if error is not None:
                    code = _NOT_FOUND_CODE if error == _NO_CUSTOMER else \
                        _ERROR_CODES.get(r["result"], r["result"])
                    failures.append({"customerId": r["customerId"], "username": r["username"],
                                     "message": error, "code": code})
        return results, failures

    def _process_customer(self, item: Any, apply: bool = True) -> dict:
        """Validate and (if `apply`) store one item; return its result entry."""
        if not isinstance(item, dict):
            return _failed(None, None, "Item must be a JSON object")
        person = item.get("person")
        if not isinstance(person, dict):
            return _failed(None, None, "Item has no person object")
        customer_id = person.get("customerId")
        if customer_id is not None and not isinstance(customer_id, str):
            return _failed(None, None, "customerId must be a string")
        if not customer_id or customer_id.isspace():
            return _failed(None, None, "customerId is missing or empty")
        change_type = item.get("changeType")
        if change_type == "CREATE" and apply:
            self.create_attempts[customer_id] += 1
        first_name = person.get("firstName")
        last_name = person.get("lastName")
        if (isinstance(first_name, str) and first_name and isinstance(last_name, str)
                and last_name):
            username = f"{first_name} {last_name}-{customer_id[-4:]}".upper()
        else:
            username = _username(person, customer_id)
        if change_type not in CHANGE_TYPES:
            return _failed(customer_id, username, "changeType must be CREATE or UPDATE")
        if item.get("type", "PERSON") != "PERSON":
            return _failed(customer_id, username, "type must be PERSON")
        if not isinstance(last_name, str) or not last_name or last_name.isspace():
            return _failed(customer_id, username, "lastName is required")
        if first_name is not None:
            if not isinstance(first_name, str):
                return _failed(customer_id, username, "firstName must be a string")
            if " " in first_name:
                return _failed(customer_id, username, "firstName must not contain spaces")
        birthday = person.get("birthday")
        if birthday is not None and not (isinstance(birthday, str) and _is_real_date(birthday)):
            return _failed(customer_id, username,
                           "birthday must be a real date in the form YYYY-MM-DD")
        customers = self.customers.raw
        if not apply:
            return {"customerId": customer_id, "username": username, "result": SUCCESS}
        if change_type == "CREATE":
            if customer_id in customers:
                return {"customerId": customer_id, "username": username, "result": CONFLICT,
                        "error": "Customer already exists with this ID"}
            customers[customer_id] = _compact_json(person)
            self.creations[customer_id] += 1
        else:
            if customer_id not in customers:
                return _failed(customer_id, username, _NO_CUSTOMER)
            customers[customer_id] = _compact_json(person)
            self.updates[customer_id] += 1
        return {"customerId": customer_id, "username": username, "result": SUCCESS}

    def _process_households(self, items: list[Any]) -> tuple[list[dict], list[dict]]:
        errors_array = self.config.errors_array
        results: list[dict] = []
        failures: list[dict] = []
        for item in items:
            outcome, error, household_id = self._process_household(item)
            if error is None:
                results.append({"householdId": household_id, "result": outcome})
                continue
            results.append({"householdId": household_id, "result": outcome, "error": error})
            if errors_array:
                code = _NOT_FOUND_CODE if error == "Household does not exist" else \
                    _ERROR_CODES.get(outcome, outcome)
                failures.append({"householdId": household_id, "message": error, "code": code})
        return results, failures

    def _process_household(self, item: Any) -> tuple[str, str | None, str | None]:
        """Validate and apply one household item; return (result, error, householdId)."""
        if not isinstance(item, dict):
            return FAILED, "Item must be a JSON object", None
        household = item.get("household")
        if not isinstance(household, dict):
            return FAILED, "Item has no household object", None
        household_id = household.get("householdId")
        if household_id is not None and not isinstance(household_id, str):
            return FAILED, "householdId must be a string", None
        if not household_id or household_id.isspace():
            return FAILED, "householdId is missing or empty", None
        change_type = item.get("changeType")
        if change_type not in CHANGE_TYPES:
            return FAILED, "changeType must be CREATE or UPDATE", household_id
        members = household.get("members", [])
        if not isinstance(members, list):
            return FAILED, "members must be a list", household_id
        heads = 0
        for member in members:
            if not isinstance(member, dict):
                return FAILED, "Each member must be a JSON object", household_id
            member_id = member.get("customerId")
            if not isinstance(member_id, str) or not member_id:
                return FAILED, "Member customerId must be a non-empty string", household_id
            role = member.get("role")
            if role not in HOUSEHOLD_ROLES:
                return FAILED, "Member role must be HEAD or MEMBER", household_id
            heads += role == "HEAD"
            if member_id not in self.customers:
                return FAILED, f"Member customer {member_id} does not exist", household_id
        if heads > 1:
            return FAILED, "A household has at most one HEAD", household_id
        if change_type == "CREATE":
            if household_id in self.households:
                return CONFLICT, "Household already exists with this ID", household_id
        elif household_id not in self.households:
            return FAILED, "Household does not exist", household_id
        self.households[household_id] = household
        return SUCCESS, None, household_id

    # -- inspection ------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Summary of stored data and counters (the /_sandbox/state answer)."""
        return {
            "customers": len(self.customers),
            "households": len(self.households),
            "requests": self.request_count,
            "create_attempts_total": self.create_attempts.total(),
            "repeated_creates": sum(1 for n in self.create_attempts.values() if n > 1),
            "repeated_create_ids": sorted(c for c, n in self.create_attempts.items() if n > 1),
            "duplicate_creations": sorted(c for c, n in self.creations.items() if n > 1),
            "updates": self.updates.total(),
            "faults": dict(self.fault_counts),
            "peak_in_flight": self.peak_in_flight,
        }

    async def _state(self, request: web.Request) -> web.Response:
        return _json_response(self.state())

    async def _customer_entry(self, request: web.Request) -> web.Response:
        customer_id = request.match_info["customer_id"]
        attempts = self.create_attempts.get(customer_id, 0)
        entry = self.customers.get(customer_id)
        if entry is None:
            return _json_response(
                {"errors": [{"message": "Customer does not exist", "code": "NOT_FOUND"}],
                 "createAttempts": attempts}, 404)
        return _json_response({**entry, "createAttempts": attempts,
                               "creations": self.creations.get(customer_id, 0),
                               "updates": self.updates.get(customer_id, 0)})

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _json_response(self.state())

    async def _set_config(self, request: web.Request) -> web.Response:
        try:
            overrides = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error_response(400, "Request body is not valid JSON", "INVALID_JSON")
        if not isinstance(overrides, dict):
            return _error_response(400, "Body must be a JSON object of config fields",
                                   "INVALID_REQUEST")
        problems = [p for name, value in overrides.items()
                    if (p := _check_override(name, value)) is not None]
        if problems:
            return _json_response(
                {"errors": [{"message": p, "code": "INVALID_CONFIG"} for p in problems]}, 400)
        for name, value in overrides.items():
            setattr(self.config, name, float(value) if _FIELD_TYPES[name] == (int, float)
                    else value)
        if "seed" in overrides:
            self._rng.seed(self.config.seed)
            self._aux_rng.seed(self.config.seed)
        return _json_response(_public_config(self.config))


def _echo_credentials(request: web.Request, results: list[dict], failures: list[dict]) -> None:
    """What a careless server does: repeat the request's credentials in its error texts."""
    authorization = request.headers.get("Authorization", "")
    token = authorization.partition(" ")[2]
    echo = (f" [debug: Authorization: {authorization}; token {token}; GK-Passport "
            f"{request.headers.get('GK-Passport', '-')}]")
    for entry in (*results, *failures):
        for key in ("error", "message"):
            if entry.get(key):
                entry[key] += echo
    if results:
        results[0]["debugToken"] = token


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        return None
    return client_id, client_secret


class SandboxThread:
    """Runs a SandboxServer on its own event loop in a daemon thread.

    For GUI tests, CLI tests via subprocess and the app's demo mode.
    """

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.server = SandboxServer(config)
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Base URL of the running server ("" before start)."""
        return self.server.base_url

    def start(self) -> str:
        """Start the thread; block until the server listens; return its base URL."""
        if self._thread is not None:
            raise RuntimeError("sandbox thread already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start(self.host, self.port,
                                                          self.ssl_context))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        thread = threading.Thread(target=run, name="sandbox-server", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        self._loop, self._thread = loop, thread
        return self.server.base_url

    def stop(self) -> None:
        """Stop the server and join the thread (no-op if not running)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    def __enter__(self) -> SandboxThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# -- command line --------------------------------------------------------------------


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `sandbox` command's options to `parser`."""
    d = SandboxConfig()
    a = parser.add_argument
    a("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    a("--port", type=int, default=8765, help="port; 0 picks a free one (default: %(default)s)")
    a("--tenant", default=d.tenant, help="tenant name (default: %(default)s)")
    a("--client-id", default=d.client_id, help="OAuth client id (default: %(default)s)")
    a("--client-secret", default=d.client_secret, help="OAuth client secret (C4R)")
    a("--token", default=None, help="static bearer token accepted forever (default: generated)")
    a("--token-ttl", type=float, default=d.token_ttl_s, metavar="SECONDS",
      help="lifetime of issued tokens (default: %(default)s)")
    a("--require-passport", action="store_true",
      help="answer 403 to C4R imports without a GK-Passport header")
    a("--latency-ms", type=float, default=d.latency_ms, help="delay added to each import request")
    a("--latency-jitter-ms", type=float, default=d.latency_jitter_ms,
      help="random extra delay, 0..N ms")
    a("--error-rate", type=float, default=d.error_rate,
      help="fraction of import requests answered 500/502/503 without processing")
    a("--error-after-processing-rate", type=float, default=d.error_after_processing_rate,
      help="fraction of import requests processed but answered 500")
    a("--timeout-after-processing-rate", type=float, default=d.timeout_after_processing_rate,
      help="fraction of import requests processed, then held --hang seconds")
    a("--hang", type=float, default=d.hang_s, metavar="SECONDS",
      help="how long timeout faults hold the answer (default: %(default)s)")
    a("--rate-limit-rate", type=float, default=d.rate_limit_rate,
      help="fraction of import requests answered 429")
    a("--retry-after", type=float, default=d.retry_after_s, metavar="SECONDS",
      help="Retry-After sent with 429 (default: %(default)s)")
    a("--max-concurrent", type=int, default=d.max_concurrent,
      help="requests in flight beyond this get 429 (0 = unlimited)")
    a("--workers", type=int, default=d.workers,
      help="requests beyond this many in flight wait their turn: answers slow down "
           "instead of failing (0 = no queue)")
    a("--max-batch-size", type=int, default=d.max_batch_size,
      help="batches larger than this get 413 (0 = unlimited)")
    a("--shuffle-results", action="store_true", help="answer results in random order")
    a("--failures-only", action="store_true", help="list only failed records in answers")
    a("--errors-array", action="store_true", help="repeat failures in a top-level errors array")
    a("--fail-first-requests", type=int, default=d.fail_first_requests,
      help="answer the first N import requests with 503")
    a("--hang-first-requests", type=int, default=d.hang_first_requests,
      help="hold the first N import requests --hang seconds unprocessed, then answer 504")
    a("--echo-credentials", action="store_true",
      help="repeat each request's credentials in error texts (a careless server)")
    a("--seed", type=int, default=None, help="random seed for fault decisions")
    a("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (chain) file")
    a("--tls-key", metavar="PEM", help="the private key of --tls-cert (if not in that file)")
    a("--redirect-to", default="", metavar="URL",
      help="answer every import and token request with a redirect to URL + its path")


def _config_from_args(args: argparse.Namespace) -> SandboxConfig:
    d = SandboxConfig()

    def get(name: str, default: Any) -> Any:
        return getattr(args, name, default)

    return SandboxConfig(
        tenant=get("tenant", d.tenant),
        client_id=get("client_id", d.client_id),
        client_secret=get("client_secret", d.client_secret),
        static_token=get("token", None),
        token_ttl_s=get("token_ttl", d.token_ttl_s),
        require_passport=get("require_passport", False),
        latency_ms=get("latency_ms", 0.0),
        latency_jitter_ms=get("latency_jitter_ms", 0.0),
        error_rate=get("error_rate", 0.0),
        error_after_processing_rate=get("error_after_processing_rate", 0.0),
        timeout_after_processing_rate=get("timeout_after_processing_rate", 0.0),
        hang_s=get("hang", d.hang_s),
        rate_limit_rate=get("rate_limit_rate", 0.0),
        retry_after_s=get("retry_after", d.retry_after_s),
        max_concurrent=get("max_concurrent", 0),
        workers=get("workers", 0),
        max_batch_size=get("max_batch_size", 0),
        shuffle_results=get("shuffle_results", False),
        failures_only=get("failures_only", False),
        errors_array=get("errors_array", False),
        fail_first_requests=get("fail_first_requests", 0),
        hang_first_requests=get("hang_first_requests", 0),
        echo_credentials=get("echo_credentials", False),
        redirect_to=get("redirect_to", "") or "",
        seed=get("seed", None),
    )


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server's TLS context from --tls-cert/--tls-key, None for plain HTTP."""
    cert = getattr(args, "tls_cert", None)
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, getattr(args, "tls_key", None) or None)
    return context


async def _serve(server: SandboxServer, host: str, port: int,
                 ssl_context: ssl.SSLContext | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            # Windows: no loop signal handlers; Ctrl+C arrives as KeyboardInterrupt.
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    await server.start(host, port, ssl_context)
    cfg = server.config
    user, password = next(iter(cfg.users.items()), ("", ""))
    print(f"Sandbox Customer Profile API listening on {server.base_url}")
    print(f"C4R customers URL:    {server.customers_url('c4r')}")
    print(f"C4R token URL:        {server.token_url('c4r')}")
    print(f"Engage customers URL: {server.customers_url('engage')}")
    print(f"Engage token URL:     {server.token_url('engage')}")
    print(f"Static token:         {server.static_token}")
    print(f"User / password:      {user} / {password}")
    print(f"Client id / secret:   {cfg.client_id} / {cfg.client_secret} (Engage: id only)")
    print("Press Ctrl+C to stop.")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await server.stop()


def run_sandbox(args: argparse.Namespace) -> int:
    """Run the sandbox until Ctrl+C or SIGTERM; return the exit code."""
    server = SandboxServer(_config_from_args(args))
    try:
        asyncio.run(_serve(server, getattr(args, "host", "127.0.0.1"),
                           getattr(args, "port", 8765), _tls_context(args)))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"sandbox: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0
