"""How the app reaches a service: the system's trust store, the right proxy, no redirects.

- **TLS** is verified against the operating system's certificates (`truststore`: the
  Windows certificate store, the macOS keychain, the Linux CA bundle), so a company's own
  root certificate, installed the usual way for a TLS-inspecting proxy, is trusted too.
- **Proxies**, as `requests` finds them: one set by hand wins; otherwise `HTTPS_PROXY`,
  `HTTP_PROXY` and `NO_PROXY` from the environment; otherwise the Windows or macOS proxy
  settings (`urllib.request.getproxies()` reads all of these). Credentials in a proxy URL
  (`http://user:p%40ss@proxy:8080`) are sent to the proxy only. A proxy from the system
  settings is not used for this machine's own addresses (127.0.0.1, localhost): a proxy
  elsewhere on the network cannot reach them.
- **Redirects are never followed** for imports and sign-in: a POST repeated elsewhere loses
  its body or carries the password to another host. A 3xx answer is a configuration error
  (`redirect_message` says where it points).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import truststore
from yarl import URL

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PROXY_BY_HAND = "set in the connection settings"
PROXY_FROM_ENVIRONMENT = "from the environment"
PROXY_FROM_SYSTEM = "from the system's proxy settings"
USER_AGENT = "BulkCustomerImport/0.1"


class ProxyError(ValueError):
    """A proxy address that cannot be used (not http://, no host)."""


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """How requests to one host travel: directly, or through `proxy` (without credentials)."""

    proxy: URL | None = None
    source: str = ""
    # Proxy-Authorization: the proxy's user and password, never shown
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def direct(self) -> bool:
        return self.proxy is None

    def describe(self) -> str:
        """"through the proxy http://proxy:8080 (from the environment)", or "directly"."""
        if self.proxy is None:
            return "directly (no proxy)"
        return f"through the proxy {self.proxy} ({self.source})"


def parse_proxy(text: str, source: str = PROXY_BY_HAND) -> ProxyRoute:
    """A route through the proxy `text` (`host:port` or `http://[user:pass@]host:port`)."""
    text = text.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        url = URL(text)
        url.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        # never repeat the text: it may hold the proxy's password
        raise ProxyError("the proxy address is not valid: it should look like "
                         "http://proxy.example.com:8080 (or http://user:password@host:port)"
                         ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ProxyError(f"the proxy address must look like http://proxy.example.com:8080, "
                         f"not {_without_credentials(url)}")
    headers: dict[str, str] = {}
    if url.user is not None:
        pair = f"{url.user}:{url.password or ''}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    bare = url.with_user(None).with_password(None).with_path("").with_query(None)
    return ProxyRoute(bare, source, headers)


def _without_credentials(url: URL) -> str:
    return str(url.with_user(None).with_password(None))


def is_loopback_host(host: str | None) -> bool:
    """Whether `host` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def system_proxies() -> tuple[dict[str, str], str]:
    """The proxies the environment or, without any there, the system settings name."""
    from_environment = urllib.request.getproxies_environment()
    from_environment.pop("no", None)
    if from_environment:
        return from_environment, PROXY_FROM_ENVIRONMENT
    proxies = urllib.request.getproxies()
    proxies.pop("no", None)
    return proxies, PROXY_FROM_SYSTEM


def tls_context(verify: bool = True) -> ssl.SSLContext | bool:
    """What aiohttp's `ssl=` takes: the system's trust store, or False for `--insecure`."""
    if not verify:
        return False
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class Network:
    """One import's (or one check's) way to the service: TLS, proxy and redirect rules.

    `proxy` is a proxy set by hand ("" or None: the environment's or the system's).
    Build one per import; `session()` makes the one `ClientSession` it uses, and
    `request_options(url)` what each request passes along.
    """

    def __init__(self, *, verify_tls: bool = True, proxy: str | None = None,
                 proxies: Mapping[str, str] | None = None, proxy_source: str = "") -> None:
        self.verify_tls = verify_tls
        self._by_hand = parse_proxy(proxy) if proxy and proxy.strip() else None
        if proxies is None:
            found, proxy_source = system_proxies()
        else:
            found = dict(proxies)
        self._proxies = found
        self._proxy_source = proxy_source or PROXY_FROM_ENVIRONMENT
        self._routes: dict[tuple[str, str], ProxyRoute] = {}
        self._tls: ssl.SSLContext | bool | None = None

    @property
    def tls(self) -> ssl.SSLContext | bool:
        if self._tls is None:
            self._tls = tls_context(self.verify_tls)
        return self._tls

    def route(self, url: str | URL) -> ProxyRoute:
        """How a request to `url` travels (worked out once per scheme and host)."""
        target = URL(url) if isinstance(url, str) else url
        key = (target.scheme, target.host or "")
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = self._find_route(target)
        return route

    async def prepare(self, urls: list[str | None]) -> None:
        """Work out the routes to `urls` on a thread: the system's exceptions list may look
        host names up (Windows' ProxyOverride, macOS's address ranges), which must not hold
        up the event loop (the window)."""
        wanted = [URL(u) for u in urls if u]
        await asyncio.to_thread(lambda: [self.route(u) for u in wanted])

    def _find_route(self, target: URL) -> ProxyRoute:
        if self._by_hand is not None:
            return self._by_hand
        # ALL_PROXY (or the system's "all") serves every scheme without one of its own
        address = self._proxies.get(target.scheme) or self._proxies.get("all")
        if not address or not target.host:
            return ProxyRoute()
        if self._proxy_source == PROXY_FROM_SYSTEM and is_loopback_host(target.host):
            return ProxyRoute()
        if _bypassed(target.host, self._proxy_source):
            return ProxyRoute()
        try:
            return parse_proxy(address, self._proxy_source)
        except ProxyError:
            return ProxyRoute()  # a broken system setting: as a browser would, go direct

    def request_options(self, url: str | URL, headers: Mapping[str, str] | None = None
                        ) -> dict[str, Any]:
        """Keyword arguments for `session.post(url, ...)`: `headers` with what the proxy
        needs, the proxy, and no redirects."""
        route = self.route(url)
        options: dict[str, Any] = {"allow_redirects": False, "headers": dict(headers or {})}
        if route.proxy is not None:
            options["proxy"] = route.proxy
            if route.headers:
                # HTTPS: on the CONNECT that opens the tunnel; plain HTTP: on the request
                # itself, which the proxy reads (and drops before passing it on)
                options["proxy_headers"] = dict(route.headers)
                if URL(url).scheme == "http":
                    options["headers"].update(route.headers)
        return options

    def proxy_refusal(self, status: int, url: str | URL) -> str:
        """Why the proxy on the way to `url` refused to pass a request on (407: it wants
        credentials)."""
        route = self.route(url).describe()
        if status == 407:
            return (f"the proxy refused the request (HTTP 407 Proxy Authentication Required); "
                    f"the request went {route}: put the proxy's user and password in its "
                    "address (http://user:password@proxy:port)")
        return f"the proxy answered HTTP {status}; the request went {route}"

    def session(self, *, limit: int, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
        """The one session of an import: this network's TLS, no environment guessing of
        aiohttp's own (the proxy is chosen here, and `.netrc` never adds credentials)."""
        connector = aiohttp.TCPConnector(limit=max(1, limit), ssl=self.tls)
        return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False,
                                     headers={"User-Agent": USER_AGENT})


def _bypassed(host: str, source: str) -> bool:
    """NO_PROXY (environment) or the system's exceptions list says: go direct."""
    try:
        if source == PROXY_FROM_ENVIRONMENT:
            # in urllib.request on every system, but missing from typeshed
            return bool(urllib.request.proxy_bypass_environment(host))  # type: ignore[attr-defined]
        return bool(urllib.request.proxy_bypass(host))
    except OSError:  # an unreadable system setting
        return False


def redirect_message(what: str, status: int, location: str | None, url: str) -> str:
    """Why a redirect stops the import, and which address to use instead."""
    if location:
        target = URL(url).join(URL(location)) if not URL(location).is_absolute() \
            else URL(location)
        where = str(target.with_user(None).with_password(None).with_query(None))
        return (f"the {what} redirects to {where} (HTTP {status}); use that address in "
                "the connection settings (the app does not follow redirects, which would "
                "send customers or the password elsewhere)")
    return (f"the {what} answers with a redirect (HTTP {status}) without saying where to; "
            "check the address in the connection settings")


def plain_http_warning(url: str, *, sends_secret: bool) -> str | None:
    """A warning for credentials sent unencrypted to another machine, else None."""
    target = URL(url) if url else None
    if target is None or target.scheme != "http" or not sends_secret:
        return None
    if is_loopback_host(target.host):
        return None
    return (f"{target.host} is reached over plain http://: the token or password and every "
            "customer travel unencrypted; use https:// unless this is a test service")


_EXPIRED = "its certificate has expired"
_WRONG_NAME = "its certificate is made out to another name"
_UNTRUSTED = ("its certificate was issued by an authority this computer does not trust (a "
              "company proxy's own certificate must be installed in the system's certificate "
              "store)")
# the system's own codes: Windows' messages come in the user's language, so words can't tell
_PROBLEM_BY_CODE = {
    # Windows (CertVerifyCertificateChainPolicy)
    0x800B0101: _EXPIRED,  # CERT_E_EXPIRED
    0x800B010F: _WRONG_NAME,  # CERT_E_CN_NO_MATCH
    0x800B0109: _UNTRUSTED,  # CERT_E_UNTRUSTEDROOT
    0x800B010A: _UNTRUSTED,  # CERT_E_CHAINING
    0x800B010D: _UNTRUSTED,  # CERT_E_UNTRUSTEDTESTROOT
    # macOS (SecTrustEvaluateWithError)
    -67818: _EXPIRED,  # errSecCertificateExpired
    -67602: _WRONG_NAME,  # errSecHostNameMismatch
    -67843: _UNTRUSTED,  # errSecNotTrusted
    # OpenSSL (Linux)
    10: _EXPIRED,  # X509_V_ERR_CERT_HAS_EXPIRED
    62: _WRONG_NAME,  # X509_V_ERR_HOSTNAME_MISMATCH
    64: _WRONG_NAME,  # X509_V_ERR_IP_ADDRESS_MISMATCH
    18: _UNTRUSTED,  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    19: _UNTRUSTED,  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    20: _UNTRUSTED,  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: _UNTRUSTED,  # X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
}
_PROBLEM_BY_WORDS = (  # OpenSSL's messages (Linux), and macOS's in English
    (("expired",), _EXPIRED),
    (("hostname mismatch", "ip address mismatch", "doesn't match", "does not match"),
     _WRONG_NAME),
    (("self-signed", "self signed", "unable to get local issuer", "unknown ca",
      "not trusted"), _UNTRUSTED),
)


def _certificate_problem(error: ssl.SSLCertVerificationError) -> str:
    """Why a certificate was refused, in plain words, on each system."""
    code = getattr(error, "verify_code", None)
    if isinstance(code, int):
        known = _PROBLEM_BY_CODE.get(code) or _PROBLEM_BY_CODE.get(code & 0xFFFFFFFF)
        if known:
            return known
    message = str(getattr(error, "verify_message", "") or error)
    lowered = message.lower()
    if "not yet valid" in lowered:
        return "its certificate is not valid yet (check this computer's clock)"
    for words, problem in _PROBLEM_BY_WORDS:
        if any(word in lowered for word in words):
            return problem
    return f"its certificate cannot be verified ({message})"


def tls_problem(exc: BaseException, url: str) -> str | None:
    """Plain words for a certificate problem in `exc` (None when it is none)."""
    cause: ssl.SSLError | None = None
    for candidate in (getattr(exc, "certificate_error", None), getattr(exc, "os_error", None),
                      exc.__cause__, exc):
        if isinstance(candidate, ssl.SSLError):
            cause = candidate
            break
    if cause is None:
        return None
    host = URL(url).host or url
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = _certificate_problem(cause)
    else:
        why = f"the secure connection failed ({cause.reason or cause})"
    return f"the secure connection to {host} was refused: {why}; nothing was sent"
