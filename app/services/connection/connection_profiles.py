"""Connection profiles (C4R, Engage, Sandbox, Custom) and the token provider each needs.

Only non-secret fields live here and in the settings file; passwords, tokens, client secrets
and GK-Passport values go through `secret_store`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from app.services.connection.auth import (
    Secret,
    c4r_customers_url,
    c4r_token_url,
    engage_customers_url,
    engage_token_url,
    households_url_for,
)
from app.services.connection.network import ProxyError, parse_proxy, plain_http_warning

AUTH_TOKEN, AUTH_C4R, AUTH_ENGAGE = "token", "c4r", "engage"
AUTH_MODES = {AUTH_TOKEN: "Bearer token", AUTH_C4R: "C4R user and password",
              AUTH_ENGAGE: "Engage user and password (Keycloak)"}
CLIENT_ID_HELP = ("your administrator has it: Keycloak lists it under the realm's Clients, "
                  "C4R gives it with the client secret")


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of deployment: how its URLs are built and which sign-in it uses."""

    key: str
    title: str
    host_label: str  # what the "host" field means for this profile
    default_host: str
    auth_mode: str


PROFILES: dict[str, Profile] = {p.key: p for p in (
    Profile("c4r", "C4R", "Host", "https://", AUTH_C4R),
    Profile("engage-dev", "Engage (dev)", "Environment", "dev", AUTH_ENGAGE),
    Profile("engage-prod", "Engage (prod)", "Environment", "prod", AUTH_ENGAGE),
    Profile("sandbox", "Sandbox (local test API)", "Sandbox address", "http://127.0.0.1:8765",
            AUTH_TOKEN),
    Profile("custom", "Custom URL", "Customers URL", "", AUTH_TOKEN),
)}


@dataclass(slots=True)
class ConnectionSettings:
    """What the Import tab's connection form holds, without secrets."""

    profile: str = "sandbox"
    host: str = "http://127.0.0.1:8765"
    tenant: str = "demo"
    custom_url: str = ""
    auth_mode: str = AUTH_TOKEN
    username: str = ""
    client_id: str = ""  # no default: a real service knows only the clients it was given

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ConnectionSettings:
        known = {k: str(v) for k, v in data.items() if k in cls.__dataclass_fields__}
        settings = cls(**known)
        if settings.profile not in PROFILES:
            settings.profile = "custom"
        if settings.auth_mode not in AUTH_MODES:
            settings.auth_mode = AUTH_TOKEN
        return settings


@dataclass(slots=True)
class ConnectionSecrets:
    """The secret half of a connection; repr never shows values."""

    token: Secret = field(default_factory=lambda: Secret(""))
    password: Secret = field(default_factory=lambda: Secret(""))
    client_secret: Secret = field(default_factory=lambda: Secret(""))
    passport: Secret = field(default_factory=lambda: Secret(""))
    proxy: Secret = field(default_factory=lambda: Secret(""))  # "": environment or system


def engage_base(environment: str) -> str:
    env = environment.strip()
    if env.startswith(("http://", "https://")):
        return env.rstrip("/")
    return f"https://{env or 'dev'}.cse.gk-engage.co"


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url.strip()


def customers_url(settings: ConnectionSettings) -> str:
    """The customers endpoint the settings point at."""
    profile = PROFILES.get(settings.profile, PROFILES["custom"])
    if profile.key == "custom":
        return settings.custom_url.strip()
    if profile.key.startswith("engage"):
        return engage_customers_url(engage_base(settings.host))
    return c4r_customers_url(_origin(settings.host), settings.tenant.strip() or "demo")


def households_url(settings: ConnectionSettings) -> str:
    return households_url_for(customers_url(settings)) if customers_url(settings) else ""


def token_url(settings: ConnectionSettings) -> str:
    """Where the password grants fetch tokens for these settings."""
    tenant = settings.tenant.strip()
    if settings.auth_mode == AUTH_ENGAGE:
        base = (engage_base(settings.host) if settings.profile.startswith("engage")
                else _origin(customers_url(settings)))
        return engage_token_url(base, tenant)
    return c4r_token_url(_origin(customers_url(settings)), tenant)


def problems_with(settings: ConnectionSettings, secrets: ConnectionSecrets) -> list[str]:
    """What is missing before an import can start, in words for the user."""
    problems = []
    url = customers_url(settings)
    if not url.startswith(("http://", "https://")) or not urlsplit(url).netloc:
        problems.append("the customers URL must start with https:// (or http:// for a "
                        "local sandbox) and name a host")
    if settings.auth_mode == AUTH_TOKEN:
        if not secrets.token:
            problems.append("enter the bearer token")
    else:
        if not settings.username.strip():
            problems.append("enter the user name")
        if not secrets.password:
            problems.append("enter the password")
        if not settings.tenant.strip():
            problems.append("enter the tenant")
        if not settings.client_id.strip():
            problems.append(f"enter the client id ({CLIENT_ID_HELP})")
        if settings.auth_mode == AUTH_C4R and not secrets.client_secret:
            problems.append("enter the client secret")
    proxy = secrets.proxy.reveal().strip()
    if proxy:
        try:
            parse_proxy(proxy)
        except ProxyError as exc:
            problems.append(str(exc))
    return problems


def url_warning(settings: ConnectionSettings) -> str | None:
    """A warning for sending credentials unencrypted to another machine, else None."""
    return plain_http_warning(customers_url(settings), sends_secret=True)
