"""Tests of the sandbox Customer Profile API, over loopback with a real aiohttp client."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from app.services.sandbox.sandbox_server import (
    SandboxConfig,
    SandboxServer,
    SandboxThread,
    add_sandbox_arguments,
)

TOKEN = "test-static-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    server = SandboxServer(SandboxConfig(static_token=TOKEN, seed=7))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def person(customer_id: str, first: str = "Anna", last: str = "Berg", **extra: Any) -> dict:
    return {"customerId": customer_id, "status": "ACTIVE", "firstName": first,
            "lastName": last, "languageCode": "sv", **extra}


def item(p: dict, change: str = "CREATE") -> dict:
    return {"changeType": change, "type": "PERSON", "person": p}


async def post_customers(session: aiohttp.ClientSession, server: SandboxServer,
                         items: list[Any], deployment: str = "c4r",
                         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with session.post(server.customers_url(deployment), data=orjson.dumps({"data": items}),
                            headers=headers if headers is not None else AUTH) as resp:
        raw = await resp.read()
        try:
            return resp.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return resp.status, raw


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def c4r_token(session: aiohttp.ClientSession, server: SandboxServer,
                    secret: str = "sandbox-secret", password: str = "demo"
                    ) -> aiohttp.ClientResponse:
    resp = await session.post(
        server.token_url("c4r"), headers={"Authorization": basic_auth("bulk-import", secret)},
        data={"grant_type": "password", "username": "demo", "password": password})
    await resp.read()
    return resp


async def engage_token(session: aiohttp.ClientSession, server: SandboxServer,
                       client_id: str = "bulk-import", password: str = "demo"
                       ) -> aiohttp.ClientResponse:
    resp = await session.post(
        server.token_url("engage"),
        data={"grant_type": "password", "client_id": client_id, "username": "demo",
              "password": password})
    await resp.read()
    return resp


# -- tokens ----------------------------------------------------------------------------


async def test_c4r_token_good_credentials(sandbox: SandboxServer,
                                          session: aiohttp.ClientSession) -> None:
    resp = await c4r_token(session, sandbox)
    assert resp.status == 200
    body = await resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    status, answer = await post_customers(
        session, sandbox, [item(person("C-1"))],
        headers={"Authorization": f"Bearer {body['access_token']}"})
    assert status == 200
    assert answer["data"][0]["result"] == "SUCCESS"


@pytest.mark.parametrize(("secret", "password", "status", "error"), [
    ("wrong", "demo", 401, "invalid_client"),
    ("sandbox-secret", "wrong", 400, "invalid_grant"),
])
async def test_c4r_token_bad_credentials(sandbox: SandboxServer, session: aiohttp.ClientSession,
                                         secret: str, password: str, status: int,
                                         error: str) -> None:
    resp = await c4r_token(session, sandbox, secret=secret, password=password)
    assert resp.status == status
    assert (await resp.json())["error"] == error


async def test_c4r_token_requires_basic_auth(sandbox: SandboxServer,
                                             session: aiohttp.ClientSession) -> None:
    async with session.post(sandbox.token_url("c4r"), data={
            "grant_type": "password", "username": "demo", "password": "demo"}) as resp:
        assert resp.status == 401


async def test_engage_token_good_credentials(sandbox: SandboxServer,
                                             session: aiohttp.ClientSession) -> None:
    assert sandbox.token_url("engage").endswith(
        "/auth/realms/demo-operators/protocol/openid-connect/token")
    resp = await engage_token(session, sandbox)
    assert resp.status == 200
    body = await resp.json()
    assert body["token_type"] == "bearer"
    status, answer = await post_customers(
        session, sandbox, [item(person("E-1"))], deployment="engage",
        headers={"Authorization": f"Bearer {body['access_token']}"})
    assert status == 200
    assert answer["data"][0]["result"] == "SUCCESS"
    assert "E-1" in sandbox.customers


@pytest.mark.parametrize(("client_id", "password", "error"), [
    ("someone-else", "demo", "invalid_client"),
    ("bulk-import", "wrong", "invalid_grant"),
])
async def test_engage_token_bad_credentials(sandbox: SandboxServer,
                                            session: aiohttp.ClientSession, client_id: str,
                                            password: str, error: str) -> None:
    resp = await engage_token(session, sandbox, client_id=client_id, password=password)
    assert resp.status == 401
    assert (await resp.json())["error"] == error


async def test_engage_unknown_realm_is_404(sandbox: SandboxServer,
                                           session: aiohttp.ClientSession) -> None:
    url = sandbox.base_url + "/auth/realms/other-operators/protocol/openid-connect/token"
    async with session.post(url, data={"grant_type": "password", "client_id": "bulk-import",
                                       "username": "demo", "password": "demo"}) as resp:
        assert resp.status == 404


async def test_expired_token_is_rejected(sandbox: SandboxServer,
                                         session: aiohttp.ClientSession) -> None:
    sandbox.config.token_ttl_s = 0
    resp = await c4r_token(session, sandbox)
    body = await resp.json()
    assert body["expires_in"] == 0
    status, answer = await post_customers(
        session, sandbox, [item(person("C-1"))],
        headers={"Authorization": f"Bearer {body['access_token']}"})
    assert status == 401
    assert answer["errors"][0]["code"] == "TOKEN_EXPIRED"
    assert sandbox.customers == {}


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Basic YTpi"},
])
async def test_import_without_valid_token_is_401(sandbox: SandboxServer,
                                                 session: aiohttp.ClientSession,
                                                 headers: dict[str, str]) -> None:
    status, answer = await post_customers(session, sandbox, [item(person("C-1"))],
                                          headers=headers)
    assert status == 401
    assert answer["errors"][0]["message"]
    assert sandbox.customers == {}
    assert sandbox.request_count == 0


async def test_generated_static_token(session: aiohttp.ClientSession) -> None:
    server = SandboxServer()
    await server.start()
    try:
        assert len(server.static_token) >= 32
        status, _ = await post_customers(
            session, server, [item(person("C-1"))],
            headers={"Authorization": f"Bearer {server.static_token}"})
        assert status == 200
    finally:
        await server.stop()


async def test_passport_required(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    sandbox.config.require_passport = True
    status, _ = await post_customers(session, sandbox, [item(person("C-1"))])
    assert status == 403
    status, _ = await post_customers(session, sandbox, [item(person("C-1"))],
                                     headers={**AUTH, "GK-Passport": "opaque"})
    assert status == 200


async def test_wrong_tenant_is_404(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    url = sandbox.customers_url("c4r").replace("/tenants/demo/", "/tenants/other/")
    async with session.post(url, data=b'{"data": []}', headers=AUTH) as resp:
        assert resp.status == 404


# -- customers -------------------------------------------------------------------------


async def test_create_twice_conflicts(sandbox: SandboxServer,
                                      session: aiohttp.ClientSession) -> None:
    status, first = await post_customers(session, sandbox,
                                         [item(person("1000009966", "Björn", "Jansson"))])
    assert status == 200
    assert first == {"data": [{"customerId": "1000009966", "username": "BJÖRN JANSSON-9966",
                               "result": "SUCCESS"}]}
    status, second = await post_customers(session, sandbox,
                                          [item(person("1000009966", "Björn", "Jansson"))])
    assert status == 200
    result = second["data"][0]
    assert result["result"] == "CONFLICT"
    assert result["error"] == "Customer already exists with this ID"
    assert sandbox.create_attempts["1000009966"] == 2
    assert sandbox.creations["1000009966"] == 1


async def test_update(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    _, missing = await post_customers(session, sandbox, [item(person("U-1"), "UPDATE")])
    assert missing["data"][0] == {"customerId": "U-1", "username": "ANNA BERG-U-1",
                                  "result": "FAILED", "error": "Customer does not exist"}
    await post_customers(session, sandbox, [item(person("U-1"))])
    _, updated = await post_customers(session, sandbox,
                                      [item(person("U-1", last="Lind"), "UPDATE")])
    assert updated["data"][0]["result"] == "SUCCESS"
    assert sandbox.customers["U-1"]["lastName"] == "Lind"
    assert sandbox.creations["U-1"] == 1


@pytest.mark.parametrize(("entry", "message"), [
    (item({"customerId": "V-1", "firstName": "Anna"}), "lastName is required"),
    (item(person("V-1", birthday="1990-02-30")), "birthday"),
    (item(person("V-1", birthday="1990-2-3")), "birthday"),
    (item(person("V-1", first="Anna Maria")), "firstName must not contain spaces"),
    (item(person("")), "customerId"),
    (item({"firstName": "Anna", "lastName": "Berg"}), "customerId"),
    ({"changeType": "CREATE", "type": "PERSON"}, "person"),
    ("not an object", "object"),
    (item(person("V-1"), "DELETE"), "changeType"),
    ({"changeType": ["CREATE"], "person": person("V-1")}, "changeType"),
    (item({"customerId": 1234, "lastName": "Berg"}), "customerId must be a string"),
])
async def test_validation_failures(sandbox: SandboxServer, session: aiohttp.ClientSession,
                                   entry: Any, message: str) -> None:
    good = item(person("OK-1"))
    status, answer = await post_customers(session, sandbox, [good, entry])
    assert status == 200
    assert answer["data"][0]["result"] == "SUCCESS"
    failed = answer["data"][1]
    assert failed["result"] == "FAILED"
    assert message in failed["error"]
    assert set(sandbox.customers) == {"OK-1"}


async def test_valid_birthday_and_nested_data_stored(sandbox: SandboxServer,
                                                     session: aiohttp.ClientSession) -> None:
    p = person("B-1", birthday="2000-02-29",
               addresses=[{"street": "Storgatan 1", "city": "Malmö"}],
               customerCards=[{"number": "4711", "type": "LOYALTY", "scope": "GLOBAL"}])
    _, answer = await post_customers(session, sandbox, [item(p)])
    assert answer["data"][0]["result"] == "SUCCESS"
    assert sandbox.customers["B-1"] == p


async def test_non_ascii_names_round_trip(sandbox: SandboxServer,
                                          session: aiohttp.ClientSession) -> None:
    p = person("7700009966", "Åsa-Björn", "Patrik-Jansson Öhlén")
    async with session.post(sandbox.customers_url(), data=orjson.dumps({"data": [item(p)]}),
                            headers=AUTH) as resp:
        raw = await resp.read()
    assert "ÅSA-BJÖRN PATRIK-JANSSON ÖHLÉN-9966".encode() in raw
    assert b"\\u" not in raw
    async with session.get(f"{sandbox.base_url}/_sandbox/customers/7700009966") as resp:
        stored = await resp.json()
    assert stored["firstName"] == "Åsa-Björn"
    assert stored["lastName"] == "Patrik-Jansson Öhlén"
    assert stored["createAttempts"] == 1


async def test_engage_and_c4r_share_the_store(sandbox: SandboxServer,
                                              session: aiohttp.ClientSession) -> None:
    await post_customers(session, sandbox, [item(person("S-1"))], deployment="engage")
    _, answer = await post_customers(session, sandbox, [item(person("S-1"))], deployment="c4r")
    assert answer["data"][0]["result"] == "CONFLICT"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"data": {}}', b'{"households": []}'])
async def test_bad_request_body_is_400(sandbox: SandboxServer, session: aiohttp.ClientSession,
                                       body: bytes) -> None:
    async with session.post(sandbox.customers_url(), data=body, headers=AUTH) as resp:
        assert resp.status == 400
        answer = await resp.json()
    assert answer["errors"][0]["code"]
    assert answer["errors"][0]["message"]


async def test_batch_too_large_is_413(sandbox: SandboxServer,
                                      session: aiohttp.ClientSession) -> None:
    sandbox.config.max_batch_size = 2
    status, _ = await post_customers(session, sandbox, [item(person(f"M-{i}")) for i in range(2)])
    assert status == 200
    status, answer = await post_customers(session, sandbox,
                                          [item(person(f"N-{i}")) for i in range(3)])
    assert status == 413
    assert answer["errors"][0]["code"] == "BATCH_TOO_LARGE"
    assert not any(c.startswith("N-") for c in sandbox.customers)


# -- households ------------------------------------------------------------------------


async def test_households(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    await post_customers(session, sandbox, [item(person("H-1")), item(person("H-2"))])
    households = [
        {"changeType": "CREATE", "household": {"householdId": "HH-1", "name": "Berg",
                                               "members": [{"customerId": "H-1", "role": "HEAD"},
                                                           {"customerId": "H-2",
                                                            "role": "MEMBER"}]}},
        {"changeType": "CREATE", "household": {"householdId": "HH-2", "name": "Ghost",
                                               "members": [{"customerId": "nope",
                                                            "role": "HEAD"}]}},
        {"changeType": "UPDATE", "household": {"householdId": "HH-3", "members": []}},
    ]
    url = sandbox.households_url("engage")
    async with session.post(url, data=orjson.dumps({"households": households}),
                            headers=AUTH) as resp:
        assert resp.status == 200
        answer = await resp.json()
    results = answer["households"]
    assert [r["householdId"] for r in results] == ["HH-1", "HH-2", "HH-3"]
    assert [r["result"] for r in results] == ["SUCCESS", "FAILED", "FAILED"]
    assert "does not exist" in results[1]["error"]
    assert set(sandbox.households) == {"HH-1"}
    async with session.post(sandbox.households_url("c4r"),
                            data=orjson.dumps({"households": households[:1]}),
                            headers=AUTH) as resp:
        assert (await resp.json())["households"][0]["result"] == "CONFLICT"


# -- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "header"), [(0.05, "0.05"), (2.0, "2"), (1.5, "2")])
async def test_rate_limit_429_with_retry_after(sandbox: SandboxServer,
                                               session: aiohttp.ClientSession,
                                               retry_after: float, header: str) -> None:
    sandbox.config.rate_limit_rate = 1.0
    sandbox.config.retry_after_s = retry_after
    async with session.post(sandbox.customers_url(),
                            data=orjson.dumps({"data": [item(person("R-1"))]}),
                            headers=AUTH) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == header
    assert sandbox.customers == {}
    assert sandbox.fault_counts["rate_limit"] == 1


async def test_max_concurrent_429(sandbox: SandboxServer,
                                  session: aiohttp.ClientSession) -> None:
    # The first request is processed and then held (hang fault), so it stays in flight.
    sandbox.config.max_concurrent = 1
    sandbox.config.timeout_after_processing_rate = 1.0
    sandbox.config.retry_after_s = 0.1
    held = asyncio.create_task(post_customers(session, sandbox, [item(person("K-1"))]))
    async with asyncio.timeout(5):
        while "K-1" not in sandbox.customers:
            await asyncio.sleep(0.005)
    status, answer = await post_customers(session, sandbox, [item(person("K-2"))])
    held.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await held
    assert status == 429
    assert answer["errors"][0]["code"] == "RATE_LIMITED"
    assert sandbox.fault_counts["max_concurrent"] == 1
    assert "K-2" not in sandbox.customers


async def test_fail_first_requests(sandbox: SandboxServer,
                                   session: aiohttp.ClientSession) -> None:
    sandbox.config.fail_first_requests = 2
    statuses = [(await post_customers(session, sandbox, [item(person("F-1"))]))[0]
                for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert sandbox.creations["F-1"] == 1
    assert sandbox.create_attempts["F-1"] == 1


async def test_error_rate_answers_5xx_without_processing(sandbox: SandboxServer,
                                                         session: aiohttp.ClientSession) -> None:
    sandbox.config.error_rate = 1.0
    seen: set[int] = set()
    for i in range(12):
        status, _ = await post_customers(session, sandbox, [item(person(f"X-{i}"))])
        seen.add(status)
    assert seen <= {500, 502, 503}
    assert len(seen) > 1
    assert sandbox.customers == {}
    assert sandbox.fault_counts["error"] == 12


async def test_error_after_processing_stores_but_answers_500(
        sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    sandbox.config.error_after_processing_rate = 1.0
    status, _ = await post_customers(session, sandbox, [item(person("P-1"))])
    assert status == 500
    assert "P-1" in sandbox.customers
    # A blind retry of the CREATE is refused, so the customer is never created twice.
    sandbox.config.error_after_processing_rate = 0.0
    _, answer = await post_customers(session, sandbox, [item(person("P-1"))])
    assert answer["data"][0]["result"] == "CONFLICT"
    assert sandbox.creations["P-1"] == 1


async def test_hang_first_requests_holds_them_unprocessed(
        sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    sandbox.config.hang_first_requests = 2
    sandbox.config.hang_s = 30
    held = [asyncio.create_task(post_customers(session, sandbox, [item(person(f"H-{i}"))]))
            for i in range(2)]
    async with asyncio.timeout(5):
        while sandbox.fault_counts["hang_first_requests"] < 2:
            await asyncio.sleep(0.005)
    # the two held ones are still under way while the third is answered
    status, answer = await post_customers(session, sandbox, [item(person("H-2"))])
    assert status == 200 and answer["data"][0]["result"] == "SUCCESS"
    assert not any(task.done() for task in held)
    assert sandbox.peak_in_flight == 3
    assert set(sandbox.customers) == {"H-2"}  # nothing held was processed
    assert sandbox.create_attempts == {"H-2": 1}
    for task in held:
        task.cancel()
    for task in held:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_timeout_after_processing(sandbox: SandboxServer,
                                        session: aiohttp.ClientSession) -> None:
    sandbox.config.timeout_after_processing_rate = 1.0
    sandbox.config.hang_s = 30
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(post_customers(session, sandbox, [item(person("T-1"))]),
                               timeout=0.3)
    assert "T-1" in sandbox.customers
    assert sandbox.fault_counts["timeout_after_processing"] == 1


async def test_seeded_faults_are_reproducible(session: aiohttp.ClientSession) -> None:
    async def run() -> list[int]:
        server = SandboxServer(SandboxConfig(static_token=TOKEN, seed=42, error_rate=0.3,
                                             rate_limit_rate=0.2, retry_after_s=0.01))
        await server.start()
        try:
            return [(await post_customers(session, server, [item(person(f"D-{i}"))]))[0]
                    for i in range(20)]
        finally:
            await server.stop()

    first = await run()
    assert first == await run()
    assert 429 in first and 200 in first


# -- answer shapes ---------------------------------------------------------------------


def mixed_batch() -> list[Any]:
    return [item(person(f"Q-{i}")) if i % 3 else item(person(f"Q-{i}", first="A B"))
            for i in range(20)]


async def test_shuffle_results(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    sandbox.config.shuffle_results = True
    _, answer = await post_customers(session, sandbox, mixed_batch())
    ids = [r["customerId"] for r in answer["data"]]
    expected = [f"Q-{i}" for i in range(20)]
    assert sorted(ids) == sorted(expected)
    assert ids != expected


async def test_failures_only(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    sandbox.config.failures_only = True
    _, answer = await post_customers(session, sandbox, mixed_batch())
    assert [r["customerId"] for r in answer["data"]] == [f"Q-{i}" for i in range(0, 20, 3)]
    assert all(r["result"] == "FAILED" for r in answer["data"])
    assert "errors" not in answer
    assert len(sandbox.customers) == 13


async def test_failures_only_all_good_is_empty(sandbox: SandboxServer,
                                               session: aiohttp.ClientSession) -> None:
    sandbox.config.failures_only = True
    _, answer = await post_customers(session, sandbox, [item(person("G-1"))])
    assert answer == {"data": []}


async def test_errors_array(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    sandbox.config.errors_array = True
    await post_customers(session, sandbox, [item(person("Z-1"))])
    _, answer = await post_customers(session, sandbox, [
        item(person("Z-1")), item(person("Z-2", first="A B")), item(person("Z-3"))])
    assert [r["result"] for r in answer["data"]] == ["CONFLICT", "FAILED", "SUCCESS"]
    assert answer["errors"] == [
        {"customerId": "Z-1", "username": "ANNA BERG-Z-1",
         "message": "Customer already exists with this ID", "code": "CONFLICT"},
        {"customerId": "Z-2", "username": "A B BERG-Z-2",
         "message": "firstName must not contain spaces", "code": "VALIDATION_ERROR"},
    ]


# -- inspection endpoints --------------------------------------------------------------


async def test_sandbox_state_and_reset(sandbox: SandboxServer,
                                       session: aiohttp.ClientSession) -> None:
    await post_customers(session, sandbox, [item(person("I-1")), item(person("I-2"))])
    await post_customers(session, sandbox, [item(person("I-1"))])
    async with session.get(f"{sandbox.base_url}/_sandbox/state") as resp:
        state = await resp.json()
    assert state == {"customers": 2, "households": 0, "requests": 2,
                     "create_attempts_total": 3, "repeated_creates": 1,
                     "repeated_create_ids": ["I-1"], "duplicate_creations": [],
                     "updates": 0, "faults": {}, "peak_in_flight": 1}
    async with session.get(f"{sandbox.base_url}/_sandbox/customers/missing") as resp:
        assert resp.status == 404
        assert (await resp.json())["createAttempts"] == 0
    async with session.get(f"{sandbox.base_url}/_sandbox/customers/I-1") as resp:
        entry = await resp.json()
    assert entry["createAttempts"] == 2
    assert entry["lastName"] == "Berg"
    async with session.post(f"{sandbox.base_url}/_sandbox/reset") as resp:
        assert (await resp.json())["customers"] == 0
    assert sandbox.customers == {}
    assert sandbox.request_count == 0 and sandbox.peak_in_flight == 0
    assert not sandbox.create_attempts


async def test_create_attempts_count_every_create_sent(sandbox: SandboxServer,
                                                       session: aiohttp.ClientSession) -> None:
    # new, taken already, refused, and twice in one batch: each CREATE received counts;
    # an UPDATE is not a create attempt, nor is a request refused before it is read
    await post_customers(session, sandbox, [item(person("A-1")), item(person("A-2"))])
    await post_customers(session, sandbox, [item(person("A-1")), item(person("A-3", last="")),
                                            item(person("A-4")), item(person("A-4"))])
    await post_customers(session, sandbox, [item(person("A-2"), "UPDATE")])
    sandbox.config.fail_first_requests = sandbox.request_count + 1
    status, _ = await post_customers(session, sandbox, [item(person("A-5"))])
    assert status == 503
    assert sandbox.create_attempts == {"A-1": 2, "A-2": 1, "A-3": 1, "A-4": 2}
    assert sandbox.creations == {"A-1": 1, "A-2": 1, "A-4": 1}
    state = sandbox.state()
    assert (state["create_attempts_total"], state["repeated_creates"]) == (6, 2)
    assert state["repeated_create_ids"] == ["A-1", "A-4"]
    assert state["duplicate_creations"] == []


async def test_sandbox_config(sandbox: SandboxServer, session: aiohttp.ClientSession) -> None:
    url = f"{sandbox.base_url}/_sandbox/config"
    async with session.post(url, data=orjson.dumps({"max_batch_size": 1,
                                                    "failures_only": True,
                                                    "latency_ms": 1})) as resp:
        assert resp.status == 200
        public = await resp.json()
    assert public["max_batch_size"] == 1
    assert public["failures_only"] is True
    assert "client_secret" not in public
    assert "static_token" not in public
    assert public["users"] == ["demo"]
    assert "sandbox-secret" not in orjson.dumps(public).decode()
    assert sandbox.config.max_batch_size == 1
    assert sandbox.config.latency_ms == 1.0
    status, _ = await post_customers(session, sandbox, [item(person("W-1")), item(person("W-2"))])
    assert status == 413
    for bad in ({"nope": 1}, {"max_batch_size": "ten"}, {"failures_only": 1}, [1]):
        async with session.post(url, data=orjson.dumps(bad)) as resp:
            assert resp.status == 400


def test_urls_before_start() -> None:
    server = SandboxServer(SandboxConfig(tenant="acme"))
    assert server.customers_url() == (
        "/customer-profile-service/tenants/acme/services/rest/customers-import/v1/customers")
    assert server.households_url("engage") == (
        "/api/customer-profile/services/rest/customers-import/v1/households")
    assert server.token_url() == "/auth-service/tenants/acme/oauth/token"
    with pytest.raises(ValueError):
        server.customers_url("other")


# -- thread and command line -----------------------------------------------------------


async def test_sandbox_thread(session: aiohttp.ClientSession) -> None:
    thread = SandboxThread(SandboxConfig(static_token=TOKEN))
    base_url = await asyncio.to_thread(thread.start)
    try:
        assert base_url.startswith("http://127.0.0.1:")
        status, answer = await post_customers(session, thread.server, [item(person("TH-1"))])
        assert status == 200
        assert answer["data"][0]["result"] == "SUCCESS"
        assert "TH-1" in thread.server.customers
    finally:
        await asyncio.to_thread(thread.stop)
    with pytest.raises(aiohttp.ClientConnectionError):
        await post_customers(session, thread.server, [item(person("TH-2"))])


def test_sandbox_thread_context_manager_and_port_in_use() -> None:
    with SandboxThread() as running:
        port = int(running.base_url.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            SandboxThread(port=port).start()
    assert running._thread is None


def test_cli_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_sandbox_arguments(parser)
    args = parser.parse_args(["--port", "0", "--error-rate", "0.5", "--shuffle-results",
                              "--seed", "3", "--token", "abc", "--retry-after", "0.2",
                              "--hang-first-requests", "2"])
    assert args.hang_first_requests == 2
    assert args.port == 0
    assert args.host == "127.0.0.1"
    assert args.error_rate == 0.5
    assert args.shuffle_results is True
    assert args.failures_only is False
    assert args.seed == 3
    assert args.token == "abc"
    assert parser.parse_args([]).port == 8765


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGTERM")
async def test_run_sandbox_subprocess(session: aiohttp.ClientSession) -> None:
    code = ("import argparse, sys\n"
            "from app.services.sandbox.sandbox_server import add_sandbox_arguments, run_sandbox\n"
            "p = argparse.ArgumentParser(); add_sandbox_arguments(p)\n"
            "sys.exit(run_sandbox(p.parse_args(sys.argv[1:])))\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, "--port", "0", "--token", TOKEN,
        stdout=asyncio.subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    try:
        lines = []
        while not any(line.startswith("Press Ctrl+C") for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
            assert line, "sandbox exited early"
            lines.append(line.decode())
        text = "".join(lines)
        assert TOKEN in text
        assert "demo / demo" in text
        base_url = lines[0].split()[-1]
        assert f"{base_url}/api/customer-profile/services/rest/customers-import/v1/customers" \
            in text
        async with session.get(f"{base_url}/_sandbox/state") as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(proc.wait(), timeout=20)
    assert returncode == 0
