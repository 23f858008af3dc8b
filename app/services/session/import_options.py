"""An import's options, typed: where it connects, how it runs, how its files are read.

The window's tabs and the command line both produce these; `import_settings()` and
`token_provider()` turn them into what the engine runs with, the same way for both.

Adding a run option touches three places: a field of `RunOptions` (named as the
`ImportSettings` field it sets, which takes it by name; saved settings and a resumed job's
values are read by name too), the Import tab's widget for it, and the command line's
argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from app.services.connection.auth import Secret, SignIn, TokenProvider, make_token_provider
from app.services.connection.connection_profiles import (
    AUTH_TOKEN,
    PROFILES,
    ConnectionSecrets,
    ConnectionSettings,
    customers_url,
    problems_with,
    token_url,
)
from app.services.jobs.journal_writer import JOURNAL_WAIT_S
from app.services.pipeline.import_events import ImportSettings, default_output_dir
from app.services.sources.source_options import OnExisting, SourceOptions

#: The profile of a connection made on the command line (not one of the window's).
COMMAND_LINE = "command line"


def _no_secret() -> Secret:
    return Secret("")


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """Where an import sends its customers and how it signs in; secrets stay `Secret`s.

    `profile` is one of the window's profiles (a key of PROFILES; host and tenant are its
    fields) or COMMAND_LINE. `households_url` "" is the customers URL's sibling;
    `token_url` is where a password grant signs in ("" with a bearer token); `proxy` ""
    uses the environment's or the system's; `headers` are extra request headers.
    """

    profile: str = COMMAND_LINE
    customers_url: str = ""
    households_url: str = ""
    host: str = ""
    tenant: str = ""
    auth_mode: str = AUTH_TOKEN
    username: str = ""
    client_id: str = ""
    token_url: str = ""
    token: Secret = field(default_factory=_no_secret)
    password: Secret = field(default_factory=_no_secret)
    client_secret: Secret = field(default_factory=_no_secret)
    passport: Secret = field(default_factory=_no_secret)
    proxy: Secret = field(default_factory=_no_secret)
    headers: tuple[tuple[str, str], ...] = ()
    verify_tls: bool = True

    @classmethod
    def from_profile(cls, settings: ConnectionSettings,
                     secrets: ConnectionSecrets) -> ConnectionOptions:
        """The window's connection form: a profile's fields and the secrets typed for it."""
        return cls(profile=settings.profile, customers_url=customers_url(settings),
                   host=settings.host, tenant=settings.tenant, auth_mode=settings.auth_mode,
                   username=settings.username, client_id=settings.client_id,
                   token_url="" if settings.auth_mode == AUTH_TOKEN else token_url(settings),
                   token=secrets.token, password=secrets.password,
                   client_secret=secrets.client_secret, passport=secrets.passport,
                   proxy=secrets.proxy)

    def profile_settings(self) -> ConnectionSettings:
        """These options as the window's connection form holds them (no secrets)."""
        profile = self.profile if self.profile in PROFILES else "custom"
        return ConnectionSettings(
            profile=profile, host=self.host, tenant=self.tenant,
            custom_url=self.customers_url if profile == "custom" else "",
            auth_mode=self.auth_mode, username=self.username, client_id=self.client_id)

    def profile_secrets(self) -> ConnectionSecrets:
        return ConnectionSecrets(token=self.token, password=self.password,
                                 client_secret=self.client_secret, passport=self.passport,
                                 proxy=self.proxy)

    def problems(self) -> list[str]:
        """What is missing before an import can start, in words for the user."""
        return problems_with(self.profile_settings(), self.profile_secrets())

    def sign_in(self) -> SignIn:
        return SignIn(mode=self.auth_mode, token=self.token, token_url=self.token_url,
                      username=self.username, password=self.password,
                      client_id=self.client_id, client_secret=self.client_secret)

    def extra_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        passport = self.passport.reveal().strip()
        if passport:
            headers["GK-Passport"] = passport
        return headers

    def description(self) -> dict[str, str]:
        """What the job keeps of the connection, never a secret: enough to resume it."""
        if self.profile in PROFILES:
            return self.profile_settings().to_dict()
        info = {"profile": self.profile, "auth": self.auth_mode, "client_id": self.client_id}
        for name, value in (("username", self.username), ("tenant", self.tenant),
                            ("token_url", self.token_url)):
            if value:
                info[name] = value
        return info


def _read(value: object, like: object) -> object:
    """`value` (from a settings file, a job, a caller) as the type of `like`; raises
    ValueError or TypeError when it cannot be read so."""
    if isinstance(like, bool):
        return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1")
    if isinstance(like, int):
        return int(float(str(value)))
    if isinstance(like, float):
        return float(str(value))
    if isinstance(like, Path):
        if not str(value).strip():
            raise ValueError("no folder named")
        return Path(str(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How an import runs; each field sets the `ImportSettings` field of its name."""

    batch_size: int = 50
    concurrency: int = 5
    max_retries: int = 5
    timeout_s: float = 60.0
    output_dir: Path = field(default_factory=default_output_dir)
    on_existing: str = OnExisting.CREATE.value  # a customer the service has already
    write_single_failures: bool = True
    keep_history: bool = True
    journal_wait_s: float = JOURNAL_WAIT_S

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, read back by `updated`."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["output_dir"] = str(self.output_dir)
        return data

    def updated(self, values: Mapping[str, object]) -> RunOptions:
        """These options with those of `values` (saved settings, a job's, a caller's) that
        can be read; unknown names and unreadable values leave the option as it is."""
        changes: dict[str, Any] = {}
        for option in fields(self):
            if values.get(option.name) is None:
                continue
            try:
                changes[option.name] = _read(values[option.name], getattr(self, option.name))
                if option.name == "on_existing":
                    OnExisting(changes[option.name])
            except (TypeError, ValueError):
                changes.pop(option.name, None)
        return replace(self, **changes)


def import_settings(connection: ConnectionOptions, run: RunOptions,
                    sources: SourceOptions) -> ImportSettings:
    """What the engine runs with, from the typed options (the window and the command line)."""
    return ImportSettings(
        customers_url=connection.customers_url,
        households_url=connection.households_url or None,
        extra_headers=connection.extra_headers(), verify_tls=connection.verify_tls,
        proxy=connection.proxy.reveal().strip(), connection=connection.description(),
        mapping=sources.mapping, file_mappings=dict(sources.file_mappings),
        sheet=sources.sheet, file_sheets=dict(sources.file_sheets),
        assignment=dict(sources.assignment),
        **{option.name: getattr(run, option.name) for option in fields(run)})


def token_provider(connection: ConnectionOptions, run: RunOptions) -> TokenProvider:
    """The sign-in of `connection`; a token request may take as long as any other."""
    return make_token_provider(connection.sign_in(), timeout_s=float(run.timeout_s))
