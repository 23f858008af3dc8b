"""Test Connection: sign in and send an empty batch, to tell the user what works."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from PySide6.QtCore import QObject, Signal

from app.services.connection.auth import AuthError, TokenProvider
from app.services.connection.network import (
    REDIRECT_STATUSES,
    Network,
    ProxyError,
    redirect_message,
    tls_problem,
)


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    ok: bool
    message: str


async def check_connection(customers_url: str, auth: TokenProvider,
                           extra_headers: dict[str, str] | None = None,
                           timeout_s: float = 15.0, *, proxy: str = "",
                           verify_tls: bool = True) -> ConnectionCheck:
    """Fetch a token, then POST `{"data": []}`: nothing is imported, but every layer answers
    (the proxy, TLS, the sign-in, the endpoint). The message says which way the request
    went (directly or through which proxy)."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        network = Network(verify_tls=verify_tls, proxy=proxy or None)
        await network.prepare([customers_url, auth.token_url])
        route = network.route(customers_url).describe()
    except (ProxyError, ValueError) as exc:
        return ConnectionCheck(False, f"{_sentence(str(exc))}")
    auth.network = network
    via = f" The request went {route}."
    async with network.session(limit=2, timeout=timeout) as session:
        try:
            token = await auth.token(session)
        except AuthError as exc:
            sign_in = network.route(auth.token_url or customers_url).describe()
            return ConnectionCheck(False, f"Sign-in failed: {exc}. The request went {sign_in}.")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   **(extra_headers or {})}
        try:
            async with session.post(customers_url, data=b'{"data": []}',
                                    **network.request_options(customers_url, headers)
                                    ) as response:
                status = response.status
                location = response.headers.get("Location")
                await response.read()
        except TimeoutError:
            return ConnectionCheck(False, f"No answer within {timeout_s:g} s from the "
                                          f"service.{via}")
        except aiohttp.ClientHttpProxyError as exc:
            refusal = network.proxy_refusal(exc.status, customers_url)
            return ConnectionCheck(False, _sentence(refusal))
        except aiohttp.ClientConnectorError as exc:
            problem = tls_problem(exc, customers_url)
            if problem is not None:
                return ConnectionCheck(False, f"{_sentence(problem)}{via}")
            return ConnectionCheck(False, f"Cannot reach the service ({exc.os_error or exc})."
                                          f"{via}")
        except aiohttp.ClientError as exc:
            return ConnectionCheck(False, f"The request failed ({type(exc).__name__}).{via}")
        except ValueError:
            return ConnectionCheck(False, "The customers URL is not valid")
    signed_in = "signed in" if auth.can_refresh else "token accepted"
    if 200 <= status < 300:
        return ConnectionCheck(True, f"Connected: {signed_in}, the import endpoint answers "
                                     f"(HTTP {status}).{via}")
    if status == 400:
        return ConnectionCheck(True, f"Connected: {signed_in}; the service refused the empty "
                                     f"test batch (HTTP 400), which is expected.{via}")
    if status in REDIRECT_STATUSES:
        return ConnectionCheck(False, _sentence(redirect_message(
            "customers URL", status, location, customers_url)) + via)
    if status == 407:
        return ConnectionCheck(False, _sentence(network.proxy_refusal(status, customers_url)))
    if status == 401:
        return ConnectionCheck(False, f"The service refused the credentials (HTTP 401).{via}")
    if status == 403:
        return ConnectionCheck(False, "Signed in, but not allowed to import (HTTP 403). "
                                      f"Is a GK-Passport needed?{via}")
    if status in (404, 405):
        return ConnectionCheck(False, f"The import endpoint was not found (HTTP {status}): "
                                      f"check host, tenant or URL.{via}")
    return ConnectionCheck(False, f"The service answered HTTP {status}; try again later."
                                  f"{via}")


def _sentence(text: str) -> str:
    """`text` as a sentence: capital first letter, a full stop at the end."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


class ConnectionTester(QObject):
    """Runs Test Connection on the (qasync) event loop; holds the task while it runs.

    Signals: finished(ok, message).
    """

    finished = Signal(bool, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._task: asyncio.Future[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, customers_url: str, auth: TokenProvider,
              extra_headers: dict[str, str] | None = None, proxy: str = "") -> None:
        if self.running:
            return
        self._task = asyncio.ensure_future(self._run(customers_url, auth, extra_headers,
                                                     proxy))

    async def _run(self, customers_url: str, auth: TokenProvider,
                   extra_headers: dict[str, str] | None, proxy: str) -> None:
        result = await check_connection(customers_url, auth, extra_headers, proxy=proxy)
        self.finished.emit(result.ok, result.message)
