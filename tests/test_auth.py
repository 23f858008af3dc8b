"""Token providers against the sandbox's token endpoints, and secrets kept out of sight."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from app.services.connection.auth import (
    AuthError,
    PasswordGrant,
    PasswordGrantSettings,
    Secret,
    StaticToken,
)
from app.services.pipeline.import_engine import ImportEngine
from app.services.pipeline.import_events import ImportSettings
from app.services.sandbox.sample_customers import generate_customers, write_customer_file


def c4r_grant(sandbox, password: str = "demo") -> PasswordGrant:
    return PasswordGrant(PasswordGrantSettings(
        token_url=sandbox.token_url("c4r"), username="demo", password=Secret(password),
        client_id="bulk-import", client_secret=Secret("sandbox-secret")), "C4R")


def engage_grant(sandbox) -> PasswordGrant:
    return PasswordGrant(PasswordGrantSettings(
        token_url=sandbox.token_url("engage"), username="demo", password=Secret("demo"),
        client_id="bulk-import"), "Engage")


@pytest.mark.parametrize("make", [c4r_grant, engage_grant])
async def test_password_grants_fetch_a_token(sandbox, make):
    grant = make(sandbox)
    async with aiohttp.ClientSession() as session:
        token = await grant.token(session)
        assert token and await grant.token(session) == token  # cached while valid
    assert grant.refresh_count == 1


async def test_concurrent_requests_share_one_refresh(sandbox):
    grant = c4r_grant(sandbox)
    async with aiohttp.ClientSession() as session:
        tokens = await asyncio.gather(*(grant.token(session) for _ in range(20)))
        assert len(set(tokens)) == 1 and grant.refresh_count == 1
        stale = tokens[0]
        renewed = await asyncio.gather(*(grant.refresh(session, stale) for _ in range(10)))
        assert len(set(renewed)) == 1 and grant.refresh_count == 2


async def test_wrong_password_is_an_auth_error_without_the_secret(sandbox):
    grant = c4r_grant(sandbox, password="wrong-pässword")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(AuthError) as info:
            await grant.token(session)
    assert "wrong-pässword" not in str(info.value) and "sandbox-secret" not in str(info.value)
    assert "wrong-pässword" not in repr(grant.settings)


def test_secret_never_prints():
    secret = Secret("hunter2")
    assert "hunter2" not in f"{secret} {secret!r} {[secret]}"
    assert secret.reveal() == "hunter2"


async def test_expired_tokens_are_refreshed_during_an_import(sandbox, tmp_path):
    source = tmp_path / "c.json"
    write_customer_file(source, generate_customers(400))
    sandbox.config.token_ttl_s = 0.05  # every token dies almost at once: 401s mid-import
    sandbox.config.latency_ms = 10
    grant = c4r_grant(sandbox)
    settings = ImportSettings(customers_url=sandbox.customers_url("c4r"), batch_size=10,
                              concurrency=3, output_dir=tmp_path / "out")
    summary = await ImportEngine([source], settings, grant).run()
    assert (summary.succeeded, summary.failed, summary.fatal_error) == (400, 0, None)
    assert grant.refresh_count > 1


async def test_failing_token_service_stops_cleanly_with_nothing_lost(sandbox, tmp_path):
    source = tmp_path / "c.json"
    write_customer_file(source, generate_customers(75))
    settings = ImportSettings(customers_url=sandbox.customers_url("c4r"),
                              output_dir=tmp_path / "out")
    summary = await ImportEngine([source], settings, c4r_grant(sandbox, "nope")).run()
    assert summary.exit_code == 3 and "token service" in summary.fatal_error
    assert summary.failed_by_result == {"NOT_SENT": 75}
    assert len(sandbox.customers) == 0


async def test_static_token_is_not_refreshed(sandbox):
    token = StaticToken("abc")
    async with aiohttp.ClientSession() as session:
        assert await token.token(session) == "abc"
        with pytest.raises(AuthError):
            await token.refresh(session, "abc")
