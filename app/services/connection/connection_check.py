"""Test Connection: sign in and send an empty batch, to tell the user what works."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from PySide6.QtCore import QObject, Signal

from app.services.connection.auth import AuthError, TokenProvider


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    ok: bool
    message: str


async def check_connection(customers_url: str, auth: TokenProvider,
                           extra_headers: dict[str, str] | None = None,
                           timeout_s: float = 15.0) -> ConnectionCheck:
    """Fetch a token, then POST `{"data": []}`: nothing is imported, but every layer answers."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            token = await auth.token(session)
        except AuthError as exc:
            return ConnectionCheck(False, f"Sign-in failed: {exc}")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   **(extra_headers or {})}
        try:
            async with session.post(customers_url, data=b'{"data": []}',
                                    headers=headers) as response:
                status = response.status
                await response.read()
        except TimeoutError:
            return ConnectionCheck(False, f"No answer within {timeout_s:g} s from the service")
        except aiohttp.ClientConnectorError as exc:
            return ConnectionCheck(False, f"Cannot reach the service ({exc.os_error or exc})")
        except aiohttp.ClientError as exc:
            return ConnectionCheck(False, f"The request failed ({type(exc).__name__})")
        except ValueError:
            return ConnectionCheck(False, "The customers URL is not valid")
    signed_in = "signed in" if auth.can_refresh else "token accepted"
    if 200 <= status < 300:
        return ConnectionCheck(True, f"Connected: {signed_in}, the import endpoint answers "
                                     f"(HTTP {status}).")
    if status == 400:
        return ConnectionCheck(True, f"Connected: {signed_in}; the service refused the empty "
                                     "test batch (HTTP 400), which is expected.")
    if status == 401:
        return ConnectionCheck(False, "The service refused the credentials (HTTP 401).")
    if status == 403:
        return ConnectionCheck(False, "Signed in, but not allowed to import (HTTP 403). "
                                      "Is a GK-Passport needed?")
    if status == 404:
        return ConnectionCheck(False, "The import endpoint was not found (HTTP 404): check "
                                      "host, tenant or URL.")
    return ConnectionCheck(False, f"The service answered HTTP {status}; try again later.")


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
              extra_headers: dict[str, str] | None = None) -> None:
        if self.running:
            return
        self._task = asyncio.ensure_future(self._run(customers_url, auth, extra_headers))

    async def _run(self, customers_url: str, auth: TokenProvider,
                   extra_headers: dict[str, str] | None) -> None:
        result = await check_connection(customers_url, auth, extra_headers)
        self.finished.emit(result.ok, result.message)
