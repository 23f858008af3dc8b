"""The way to the service as offices have it: HTTPS with the system's certificates, proxies,
redirects refused, a wrong URL, tokens that expire while batches wait, an ambiguous answer.

Every test talks to the project's sandbox over loopback, through a real TLS server (a local
certificate authority made by trustme) and a real proxy (tests/local_proxy.py) where the
behaviour depends on them.
"""

from __future__ import annotations

import datetime
import json
import ssl
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme
import truststore

from app.services.connection.auth import (
    PasswordGrant,
    PasswordGrantSettings,
    Secret,
    StaticToken,
)
from app.services.connection.connection_check import check_connection
from app.services.connection.connection_profiles import (
    AUTH_ENGAGE,
    ConnectionSecrets,
    ConnectionSettings,
    problems_with,
    url_warning,
)
from app.services.connection.network import Network, plain_http_warning, tls_problem
from app.services.pipeline.import_engine import ImportEngine
from app.services.pipeline.import_events import ImportSettings
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sandbox.sandbox_server import SandboxServer
from tests.conftest import RecordingListener, run_cli, running_sandbox
from tests.local_proxy import LocalProxy

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY",
                   "https_proxy", "http_proxy", "no_proxy", "all_proxy")
# the system's trust store is OpenSSL's on Linux, where SSL_CERT_FILE adds a test CA to it;
# the Windows and macOS stores would need the CA installed system-wide (the release
# workflow's packaged smoke test does that)
linux_only = pytest.mark.skipif(sys.platform != "linux",
                                reason="the test CA is trusted through SSL_CERT_FILE")


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test CA is what this machine trusts (SSL_CERT_FILE, as OpenSSL reads it)."""
    path = tmp_path / "trusted-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    return path


def server_context(certificate: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    return context


def https_sandbox(certificate: trustme.LeafCert):
    """The sandbox over HTTPS, showing `certificate`."""
    return running_sandbox(ssl_context=server_context(certificate))


@pytest.fixture
async def tls_sandbox(ca: trustme.CA) -> AsyncIterator[SandboxServer]:
    async with https_sandbox(ca.issue_cert("127.0.0.1", "localhost")) as server:
        yield server


@pytest.fixture
async def other_host() -> AsyncIterator[SandboxServer]:
    """Where a redirect points: it must never see a request."""
    async with running_sandbox(seed=2) as server:
        yield server


@pytest.fixture
def customers(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "kunder.json"
    write_customer_file(path, generate_customers(200))
    yield path


@pytest.fixture
def many_customers(tmp_path: Path) -> Iterator[Path]:
    """60 batches of 50: an import that stops "at once" must send far fewer."""
    path = tmp_path / "många_kunder.json"
    write_customer_file(path, generate_customers(3000))
    yield path


def engine_for(server: SandboxServer, paths: list[Path], out: Path, *,
               auth: PasswordGrant | StaticToken | None = None,
               **settings: object) -> ImportEngine:
    settings.setdefault("backoff_base_s", 0.01)
    settings.setdefault("backoff_max_s", 0.05)
    config = ImportSettings(customers_url=server.customers_url("c4r"), output_dir=out,
                            **settings)  # type: ignore[arg-type]
    return ImportEngine(paths, config, auth or StaticToken(server.static_token),
                        listener=RecordingListener())


def engage_grant(server: SandboxServer, client_id: str = "bulk-import") -> PasswordGrant:
    return PasswordGrant(PasswordGrantSettings(
        token_url=server.token_url("engage"), username="demo", password=Secret("demo"),
        client_id=client_id), "Engage")


def assert_nothing_imported(summary, total: int) -> None:
    assert summary.exit_code == 3 and summary.fatal_error
    assert summary.succeeded == 0 and summary.total == total
    assert summary.retry_customers == total  # every customer ready to import again


# -- 1. HTTPS with the system's certificates ------------------------------------------------

def test_the_system_trust_store_verifies_certificates():
    assert isinstance(Network().tls, truststore.SSLContext)
    assert Network(verify_tls=False).tls is False


@linux_only
async def test_https_import_is_verified_by_the_system_store(tls_sandbox, trusted, customers,
                                                            tmp_path):
    summary = await engine_for(tls_sandbox, [customers], tmp_path / "out").run()
    assert tls_sandbox.base_url.startswith("https://")
    assert (summary.succeeded, summary.failed, summary.exit_code) == (200, 0, 0)
    assert len(tls_sandbox.customers) == 200


@linux_only
async def test_https_sign_in_and_test_connection_use_the_system_store(tls_sandbox, trusted,
                                                                      customers, tmp_path):
    summary = await engine_for(tls_sandbox, [customers], tmp_path / "out",
                               auth=engage_grant(tls_sandbox)).run()
    assert summary.succeeded == 200
    check = await check_connection(tls_sandbox.customers_url("c4r"),
                                   StaticToken(tls_sandbox.static_token))
    assert check.ok, check.message
    assert "directly (no proxy)" in check.message


@linux_only
@pytest.mark.parametrize(("certificate", "why"), [
    ("unknown issuer", "issued by an authority this computer does not trust"),
    ("expired", "its certificate has expired"),
    ("wrong name", "made out to another name"),
])
async def test_a_certificate_problem_stops_before_anything_is_sent(
        ca, trusted, customers, tmp_path, certificate, why):
    if certificate == "unknown issuer":
        leaf = trustme.CA().issue_cert("127.0.0.1")
    elif certificate == "expired":
        past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
        leaf = ca.issue_cert("127.0.0.1", not_before=past - datetime.timedelta(days=365),
                             not_after=past)
    else:
        leaf = ca.issue_cert("service.example.org")
    async with https_sandbox(leaf) as server:
        summary = await engine_for(server, [customers], tmp_path / "out").run()
        check = await check_connection(server.customers_url("c4r"),
                                       StaticToken(server.static_token))
        requests = server.requests_seen
    assert_nothing_imported(summary, 200)
    assert "secure connection to 127.0.0.1" in summary.fatal_error
    assert why in summary.fatal_error
    assert summary.failed_by_result == {"NOT_SENT": 200}
    assert requests == 0  # no request reached the service's code
    assert not check.ok and why in check.message


@linux_only
async def test_insecure_import_goes_through_and_warns_on_every_run(tmp_path, customers):
    async with https_sandbox(trustme.CA().issue_cert("127.0.0.1")) as server:
        # the command line runs in a thread's process, while this loop serves the sandbox
        done = await _run_cli_async("import", str(customers), "--url",
                                    server.customers_url("c4r"), "--token",
                                    server.static_token, "--insecure", "--output-dir",
                                    str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["succeeded"] == 200
    assert "warning: --insecure: TLS certificates are not verified" in done.stderr


async def _run_cli_async(*args: str, env: dict[str, str] | None = None):
    import asyncio

    return await asyncio.to_thread(run_cli, *args, env=env)


# -- 2. Proxies -------------------------------------------------------------------------------

@linux_only
async def test_https_through_the_environments_proxy_with_credentials(
        tls_sandbox, trusted, customers, tmp_path, monkeypatch):
    proxy = LocalProxy(credentials=("kontor", "p@ss"))
    await proxy.start()
    try:
        port = proxy.url.rsplit(":", 1)[1]
        monkeypatch.setenv("HTTPS_PROXY", f"http://kontor:p%40ss@127.0.0.1:{port}")
        summary = await engine_for(tls_sandbox, [customers], tmp_path / "out",
                                   auth=engage_grant(tls_sandbox)).run()
        check = await check_connection(tls_sandbox.customers_url("c4r"),
                                       StaticToken(tls_sandbox.static_token))
    finally:
        await proxy.stop()
    assert summary.succeeded == 200 and summary.exit_code == 0
    # the token request and the batches went through tunnels, with the decoded password
    assert len(proxy.counts.tunnels) >= 2
    assert set(proxy.counts.credentials) == {("kontor", "p@ss")}
    assert check.ok and f"through the proxy http://127.0.0.1:{port}" in check.message
    assert "from the environment" in check.message and "p@ss" not in check.message


async def test_plain_http_through_a_proxy_set_by_hand_wins_over_the_environment(
        sandbox, customers, tmp_path, monkeypatch):
    unused = LocalProxy()
    chosen = LocalProxy(credentials=("kontor", "p@ss"))
    await unused.start()
    await chosen.start()
    try:
        monkeypatch.setenv("HTTP_PROXY", unused.url)
        port = chosen.url.rsplit(":", 1)[1]
        summary = await engine_for(sandbox, [customers], tmp_path / "out",
                                   proxy=f"http://kontor:p%40ss@127.0.0.1:{port}").run()
    finally:
        await unused.stop()
        await chosen.stop()
    assert summary.succeeded == 200
    assert len(chosen.counts.forwarded) == sandbox.request_count == 4  # 200 / 50
    assert chosen.counts.refused == 0 and set(chosen.counts.credentials) == {("kontor", "p@ss")}
    assert unused.counts.forwarded == [] and unused.counts.tunnels == []


async def test_no_proxy_sends_directly(sandbox, customers, tmp_path, monkeypatch):
    proxy = LocalProxy()
    await proxy.start()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        summary = await engine_for(sandbox, [customers], tmp_path / "out").run()
    finally:
        await proxy.stop()
    assert summary.succeeded == 200 and sandbox.request_count == 4
    assert proxy.counts.forwarded == []


async def test_a_proxy_that_wants_credentials_gets_its_own_message(
        sandbox, tls_sandbox, many_customers, tmp_path):
    proxy = LocalProxy(credentials=("kontor", "hemligt"))
    await proxy.start()
    try:
        summary = await engine_for(sandbox, [many_customers], tmp_path / "out",
                                   proxy=proxy.url).run()
        tunnelled = await engine_for(tls_sandbox, [many_customers], tmp_path / "out2",
                                     proxy=proxy.url).run()
        check = await check_connection(sandbox.customers_url("c4r"),
                                       StaticToken(sandbox.static_token), proxy=proxy.url)
    finally:
        await proxy.stop()
    for stopped in (summary, tunnelled):
        assert_nothing_imported(stopped, 3000)
        assert "HTTP 407 Proxy Authentication Required" in stopped.fatal_error
        assert f"through the proxy {proxy.url}" in stopped.fatal_error
    assert sandbox.request_count == 0 and tls_sandbox.requests_seen == 0
    assert not check.ok and "407" in check.message
    # the first requests of each import (concurrency 5) and the check: not 60 per import
    assert 3 <= proxy.counts.refused <= 2 * 6 + 1


def test_proxy_for_this_machine_from_the_system_settings_is_not_used():
    system = Network(proxies={"http": "http://proxy.example.com:8080"},
                     proxy_source="from the system's proxy settings")
    assert system.route("http://127.0.0.1:8765/x").direct
    assert not system.route("http://crm.example.com/x").direct
    environment = Network(proxies={"http": "http://127.0.0.1:3128"},
                          proxy_source="from the environment")
    assert not environment.route("http://127.0.0.1:8765/x").direct


# -- 3. Redirects -----------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirecting_customers_url_stops_and_nothing_reaches_the_other_host(
        sandbox, other_host, many_customers, tmp_path, status):
    sandbox.config.redirect_to = other_host.base_url
    sandbox.config.redirect_status = status
    summary = await engine_for(sandbox, [many_customers], tmp_path / "out",
                               extra_headers={"GK-Passport": "pass-123"}).run()
    assert_nothing_imported(summary, 3000)
    assert f"the customers URL redirects to {other_host.base_url}/" in summary.fatal_error
    assert "use that address" in summary.fatal_error
    assert other_host.requests_seen == 0
    assert 1 <= sandbox.fault_counts["redirect"] <= 6  # the first answers, not 60 batches


@pytest.mark.parametrize("status", [302, 307])
async def test_a_redirecting_token_url_never_sends_the_password_elsewhere(
        sandbox, other_host, customers, tmp_path, status):
    sandbox.config.redirect_to = other_host.base_url
    sandbox.config.redirect_status = status
    summary = await engine_for(sandbox, [customers], tmp_path / "out",
                               auth=engage_grant(sandbox)).run()
    assert_nothing_imported(summary, 200)
    assert "the token URL redirects to" in summary.fatal_error
    assert other_host.requests_seen == 0


async def test_test_connection_names_the_redirect(sandbox, other_host):
    sandbox.config.redirect_to = other_host.base_url
    check = await check_connection(sandbox.customers_url("c4r"),
                                   StaticToken(sandbox.static_token))
    assert not check.ok and "redirects to" in check.message
    assert other_host.requests_seen == 0


def test_plain_http_to_another_machine_with_credentials_is_warned_about():
    warning = plain_http_warning("http://crm.example.com/customers", sends_secret=True)
    assert warning is not None and "crm.example.com" in warning
    assert plain_http_warning("http://127.0.0.1:8765/customers", sends_secret=True) is None
    assert plain_http_warning("https://crm.example.com/customers", sends_secret=True) is None
    custom = ConnectionSettings(profile="custom", custom_url="http://crm.example.com/c")
    assert url_warning(custom) == warning


# -- 4. A wrong URL stops at once --------------------------------------------------------------

async def test_a_wrong_tenant_stops_after_the_first_answers(sandbox, many_customers,
                                                            tmp_path):
    source = many_customers
    config = ImportSettings(customers_url=sandbox.customers_url("c4r").replace(
        "/tenants/demo/", "/tenants/fel-tenant/"), output_dir=tmp_path / "out",
        concurrency=5)
    summary = await ImportEngine([source], config, StaticToken(sandbox.static_token),
                                 listener=RecordingListener()).run()
    assert_nothing_imported(summary, 3000)
    assert "the customers URL answers 404 Not Found: check the tenant and the path" \
        in summary.fatal_error
    assert summary.failed_by_result == {"NOT_SENT": 3000}
    assert 1 <= sandbox.requests_seen <= 6  # the first answers (concurrency 5), not 60


# -- 5. Tokens that expire while batches wait ---------------------------------------------------

async def test_short_lived_tokens_under_rate_limits_never_stop_an_import(sandbox, tmp_path):
    # tokens live 1 s; a third of the requests are refused with Retry-After, so batches
    # wait (for a slot, for the retry) longer than a token lives
    sandbox.config.token_ttl_s = 1.0
    sandbox.config.rate_limit_rate = 0.35
    sandbox.config.retry_after_s = 0.3
    sandbox.config.latency_ms = 100
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(800))
    outcomes = []
    for run in range(3):
        sandbox.reset()
        grant = engage_grant(sandbox)
        summary = await engine_for(sandbox, [source], tmp_path / f"out{run}", auth=grant,
                                   batch_size=25, concurrency=8, max_retries=20,
                                   keep_history=False).run()
        outcomes.append((summary.succeeded, summary.failed, summary.fatal_error))
        assert grant.refresh_count >= 2  # the import outlived several tokens
    assert outcomes == [(800, 0, None)] * 3


async def test_a_token_refused_right_after_it_was_issued_stops_the_import(sandbox, tmp_path,
                                                                         customers):
    sandbox.config.token_ttl_s = 0.0  # every token is expired when it arrives
    summary = await engine_for(sandbox, [customers], tmp_path / "out",
                               auth=engage_grant(sandbox)).run()
    assert_nothing_imported(summary, 200)
    assert "right after issuing a token" in summary.fatal_error
    assert sandbox.requests_seen <= 20


# -- 6. Engage needs a real client id --------------------------------------------------------

def test_engage_without_a_client_id_is_refused_with_where_to_find_it(tmp_path, customers):
    done = run_cli("import", str(customers), "--url", "https://engage.example.com/api/x",
                   "--auth", "engage", "--tenant", "demo", "--username", "anna",
                   "--output-dir", str(tmp_path / "out"),
                   env={"BULK_IMPORT_PASSWORD": "hemligt"})
    assert done.returncode == 2
    assert "--auth engage needs --client-id" in done.stderr
    assert "Clients" in done.stderr
    settings = ConnectionSettings(profile="engage-dev", host="dev", auth_mode=AUTH_ENGAGE,
                                  username="anna")
    problems = problems_with(settings, ConnectionSecrets(password=Secret("hemligt")))
    assert any(p.startswith("enter the client id") for p in problems)


async def test_an_unknown_client_id_says_where_an_administrator_finds_it(sandbox, customers,
                                                                         tmp_path):
    summary = await engine_for(sandbox, [customers], tmp_path / "out",
                               auth=engage_grant(sandbox, client_id="fel-klient")).run()
    assert_nothing_imported(summary, 200)
    assert "the client id is not known to this service" in summary.fatal_error
    assert "Clients" in summary.fatal_error
# -- 7. Only the customers an ambiguous failure could be about are uncertain:
#        tests/test_response_parser.py::test_unmatched_failures_leave_only_their_possible_...


@pytest.mark.parametrize(("code", "words"), [
    (0x800B0109, "issued by an authority this computer does not trust"),  # Windows
    (0x800B0101, "has expired"),
    (0x800B010F, "made out to another name"),
    (-67843, "issued by an authority this computer does not trust"),  # macOS
    (-67818, "has expired"),
    (-67602, "made out to another name"),
])
def test_certificate_problems_are_told_apart_by_the_systems_codes(code, words):
    # Windows words its messages in the user's language: the code decides
    error = ssl.SSLCertVerificationError("Kedjan slutar i ett rotcertifikat som inte är betrott")
    error.verify_code = code
    error.verify_message = str(error)
    assert words in (tls_problem(error, "https://crm.example.com/x") or "")
