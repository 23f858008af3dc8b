"""Ways of getting a bearer token: a static token, the C4R password grant, Engage's Keycloak.

Tokens are fetched lazily and refreshed shortly before they expire. Concurrent requests
that need a token wait for one shared refresh rather than starting one each. A refused
token (HTTP 401) is judged by the token the request carried (`after_refusal`): a newer one
is simply used, an older one renewed, and only a token the service has just issued and
refuses at once stops the import. Token requests follow no redirects and use the import's
`Network` (trust store, proxy). Secrets are
held in `Secret`, whose repr and str never show the value, so they cannot leak into logs,
exceptions or response files by accident.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from app.services.connection.network import (
    REDIRECT_STATUSES,
    Network,
    redirect_message,
    tls_problem,
)

REFRESH_MARGIN_S = 30.0  # refresh this long before the announced expiry
# a token refused within this long of being issued is refused for good (not merely expired)
JUST_ISSUED_S = 10.0


class Secret:
    """A password or token that prints as *** everywhere except through `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        # by value: two sets of options with the same secrets are the same options
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class AuthError(Exception):
    """Authentication failed for good: the import must stop (exit status 3)."""


class TokenProvider:
    """Base class: hands out a bearer token and refreshes it when the server refuses it."""

    description = "token"

    def __init__(self) -> None:
        self._token: Secret | None = None
        self._expires_at = float("inf")
        self._issued_at = 0.0  # monotonic time the current token was fetched
        self._lifetime: float | None = None
        self._lock = asyncio.Lock()
        self.refresh_count = 0
        self.network: Network | None = None  # set by the import; else found on first use
        # told each new token, so that it can be kept out of stored answers and logs
        self.on_new_token: Callable[[str], None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to start an import in a helper process) without what belongs to the
        process it runs in: its lock, its network and whom it tells of new tokens."""
        state = dict(self.__dict__)
        del state["_lock"]
        state["network"] = state["on_new_token"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = asyncio.Lock()

    def known_secrets(self) -> list[str]:
        """Every secret this provider holds now (to be kept out of files and logs)."""
        return [self._token.reveal()] if self._token is not None else []

    async def token(self, session: aiohttp.ClientSession) -> str:
        """A valid token, fetching one first if there is none or it is about to expire."""
        if self._token is not None and time.monotonic() < self._expires_at:
            return self._token.reveal()
        stale = self._token.reveal() if self._token is not None else None
        return await self.refresh(session, stale)

    async def refresh(self, session: aiohttp.ClientSession, stale: str | None) -> str:
        """Fetch a new token unless another request already replaced `stale`."""
        async with self._lock:
            current = self._token.reveal() if self._token is not None else None
            if current is not None and current != stale and time.monotonic() < self._expires_at:
                return current
            return await self._renew(session)

    async def after_refusal(self, session: aiohttp.ClientSession, refused: str,
                            sent_at: float) -> None:
        """A request sent at `sent_at` (monotonic) carrying `refused` was answered 401.

        Returns once a token worth trying exists: a newer one fetched meanwhile, or a new
        one fetched now. Raises `AuthError` when no new token can help: a token that cannot
        be renewed, or one the service refused right after issuing it.
        """
        async with self._lock:
            current = self._token.reveal() if self._token is not None else None
            if current is not None and current != refused:
                return  # renewed since that request left: try again with the new one
            if not self.can_refresh:
                raise AuthError(self.refused_message)
            if current is not None and sent_at - self._issued_at < self._just_issued_s():
                raise AuthError("the service refused the credentials (HTTP 401) right after "
                                "issuing a token for them; check user, password, client "
                                "and tenant")
            await self._renew(session)

    def _just_issued_s(self) -> float:
        lifetime = self._lifetime
        return min(JUST_ISSUED_S, lifetime / 2) if lifetime else JUST_ISSUED_S

    async def _renew(self, session: aiohttp.ClientSession) -> str:
        token, lifetime = await self._fetch(session)
        self.refresh_count += 1
        self._token = Secret(token)
        if self.on_new_token is not None:
            self.on_new_token(token)
        self._issued_at = time.monotonic()
        self._lifetime = lifetime or None
        margin = min(REFRESH_MARGIN_S, lifetime * 0.1) if lifetime else 0.0
        self._expires_at = (time.monotonic() + lifetime - margin) if lifetime else float("inf")
        return token

    @property
    def refused_message(self) -> str:
        return ("the service refused the token (HTTP 401); check that it is current and "
                "meant for this tenant")

    @property
    def can_refresh(self) -> bool:
        return True

    @property
    def token_url(self) -> str | None:
        """Where tokens come from (None: nowhere, the token is given)."""
        return None

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float | None]:
        raise NotImplementedError


class StaticToken(TokenProvider):
    """A token given by the user; it cannot be renewed, so a 401 with it is final."""

    description = "static token"

    def __init__(self, token: str) -> None:
        super().__init__()
        self._given = Secret(token)

    @property
    def can_refresh(self) -> bool:
        return False

    def known_secrets(self) -> list[str]:
        return [self._given.reveal(), *super().known_secrets()]

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float | None]:
        if self.refresh_count:
            raise AuthError(self.refused_message)
        return self._given.reveal(), None


@dataclass(slots=True)
class PasswordGrantSettings:
    """What a password grant needs; secrets stay wrapped."""

    token_url: str
    username: str
    password: Secret
    client_id: str
    client_secret: Secret | None = None  # C4R: HTTP Basic client credentials


class PasswordGrant(TokenProvider):
    """OAuth2 password grant: C4R's auth-service (client secret) or Engage's Keycloak."""

    def __init__(self, settings: PasswordGrantSettings, description: str,
                 timeout_s: float = 30.0) -> None:
        super().__init__()
        self.settings = settings
        self.description = description
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    @property
    def token_url(self) -> str | None:
        return self.settings.token_url

    def known_secrets(self) -> list[str]:
        s = self.settings
        given = [s.password.reveal(), s.client_secret.reveal() if s.client_secret else ""]
        return [*given, *super().known_secrets()]

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float | None]:
        s = self.settings
        form = {"grant_type": "password", "username": s.username,
                "password": s.password.reveal()}
        headers = {"Accept": "application/json"}
        if s.client_secret:
            pair = f"{s.client_id}:{s.client_secret.reveal()}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            form["client_id"] = s.client_id
        network = self.network or Network()
        try:
            async with session.post(s.token_url, data=form, timeout=self._timeout,
                                    **network.request_options(s.token_url, headers)
                                    ) as response:
                body = await response.read()
                status = response.status
                location = response.headers.get("Location")
        except aiohttp.ClientHttpProxyError as exc:
            raise AuthError(network.proxy_refusal(exc.status, s.token_url)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            problem = tls_problem(exc, s.token_url)
            if problem is not None:
                raise AuthError(problem) from None
            raise AuthError(f"the token service at {_safe_url(s.token_url)} could not be "
                            f"reached ({type(exc).__name__})") from None
        if status in REDIRECT_STATUSES:
            raise AuthError(redirect_message("token URL", status, location, s.token_url))
        if status == 407:
            raise AuthError(network.proxy_refusal(status, s.token_url))
        if status != 200:
            raise AuthError(f"the token service answered HTTP {status}"
                            f"{_token_error_hint(status, body, bool(s.client_secret))}")
        try:
            data = orjson.loads(body)
            token = data["access_token"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise AuthError("the token service's answer holds no access_token") from None
        lifetime = data.get("expires_in")
        try:
            lifetime = float(lifetime) if lifetime is not None else None
        except (TypeError, ValueError):
            lifetime = None
        return str(token), lifetime


#: How each password grant describes itself (kept with a job; never a secret).
GRANT_TITLES = {"c4r": "C4R password grant", "engage": "Engage Keycloak grant"}


@dataclass(frozen=True, slots=True)
class SignIn:
    """How an import signs in: a bearer token (`mode` "token"), or a password grant at
    `token_url`: "c4r" (the client secret goes along) or "engage" (Keycloak)."""

    mode: str = "token"
    token: Secret = field(default_factory=lambda: Secret(""))
    token_url: str = ""
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    client_id: str = ""
    client_secret: Secret = field(default_factory=lambda: Secret(""))


def make_token_provider(sign_in: SignIn, timeout_s: float = 30.0) -> TokenProvider:
    """The token provider for `sign_in`: the window and the command line both use this."""
    if sign_in.mode not in GRANT_TITLES:
        return StaticToken(sign_in.token.reveal().strip())
    grant = PasswordGrantSettings(
        token_url=sign_in.token_url, username=sign_in.username.strip(),
        password=sign_in.password, client_id=sign_in.client_id.strip(),
        client_secret=sign_in.client_secret if sign_in.mode == "c4r" and sign_in.client_secret
        else None)
    return PasswordGrant(grant, GRANT_TITLES[sign_in.mode], timeout_s=timeout_s)


def _token_error_hint(status: int, body: bytes, has_secret: bool) -> str:
    """What the token service's refusal most likely means, for the user."""
    try:
        error = orjson.loads(body).get("error", "")
    except (orjson.JSONDecodeError, AttributeError):
        error = ""
    if error == "invalid_client":
        where = ("the client id and secret come from the C4R administrator" if has_secret
                 else "an administrator finds the client id in Keycloak's admin console, "
                      "under the realm's Clients")
        return f": the client id is not known to this service ({where})"
    if status in (400, 401):
        return " (wrong user name, password or client?)"
    return ""


def _safe_url(url: str) -> str:
    """The URL without any user-info or query part (which could hold secrets)."""
    from yarl import URL

    parsed = URL(url)
    return str(parsed.with_user(None).with_query(None))


def c4r_token_url(base_url: str, tenant: str) -> str:
    return f"{base_url.rstrip('/')}/auth-service/tenants/{quote(tenant)}/oauth/token"


def engage_token_url(base_url: str, tenant: str) -> str:
    return (f"{base_url.rstrip('/')}/auth/realms/{quote(tenant)}-operators/protocol/"
            "openid-connect/token")


def c4r_customers_url(base_url: str, tenant: str) -> str:
    return (f"{base_url.rstrip('/')}/customer-profile-service/tenants/{quote(tenant)}"
            "/services/rest/customers-import/v1/customers")


def engage_customers_url(base_url: str) -> str:
    return (f"{base_url.rstrip('/')}/api/customer-profile/services/rest/customers-import"
            "/v1/customers")


def households_url_for(customers_url: str) -> str:
    """The sibling households endpoint of a customers endpoint."""
    base, _, _last = customers_url.rstrip("/").rpartition("/")
    return f"{base}/households"
