"""Keeps credentials out of everything an import stores or shows.

A service may echo what it was sent: a token in an error message, a GK-Passport in a debug
field. Every text that comes from an answer (error messages, user names, kept answers)
passes through a `Redactor` before it reaches a result file, an export, the log or the
window. It knows the secrets of the import itself (token, password, client secret,
passport, and each token fetched while it runs) and replaces them wherever they appear;
it also blanks the values of fields and headers named like secrets.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable

MASK = "***"
#: Shorter values are too likely to be ordinary words or numbers to replace everywhere.
MIN_SECRET_LENGTH = 4

_SECRET_NAMES = (r"access_token|refresh_token|id_token|password|passwd|client_secret|secret|"
                 r"token|api[_-]?key|gk[_-]?passport|passport|authorization")
_SECRET_FIELD = re.compile(r'("(?:' + _SECRET_NAMES + r')"\s*:\s*)"(?:[^"\\]|\\.)*"',
                           re.IGNORECASE)
_SECRET_ASSIGNMENT = re.compile(r"\b(" + _SECRET_NAMES + r")(\s*[=:]\s*)(?!\*\*\*)[^\s,;&\"']+",
                                re.IGNORECASE)
_SCHEME = re.compile(r"\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
#: Request headers whose values are credentials (GK-Passport, Authorization, API keys).
SECRET_HEADER = re.compile(r"passport|authori[sz]ation|token|secret|api[_-]?key|cookie",
                           re.IGNORECASE)
SAFE_RESPONSE_HEADERS = ("content-type", "retry-after", "date", "x-request-id",
                         "x-correlation-id", "server")


class Redactor:
    """Replaces known secrets and secret-looking values with `***`. Thread-safe.

    `add` takes more secrets as they become known (a token fetched mid-import).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            return
        # as sent, and as it reads inside a JSON string (a "/" may come back as "\/")
        forms = {secret, json.dumps(secret)[1:-1], secret.replace("/", "\\/")}
        with self._lock:
            for form in forms:
                if form not in self._secrets:
                    self._secrets.append(form)
            self._secrets.sort(key=len, reverse=True)  # longest first: no partial leftovers

    def text(self, text: str) -> str:
        """`text` without any secret."""
        if not text:
            return text
        with self._lock:
            secrets = list(self._secrets)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _SECRET_FIELD.sub(r'\1"' + MASK + '"', text)
        text = _SCHEME.sub(r"\1\2" + MASK, text)
        return _SECRET_ASSIGNMENT.sub(r"\1\2" + MASK, text)

    def body(self, body: bytes) -> bytes:
        """An answer body without any secret (decoded as UTF-8 for the search)."""
        return self.text(body.decode("utf-8", "replace")).encode("utf-8")

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        """Only the headers worth keeping for troubleshooting, their values redacted."""
        return {name: self.text(value) for name, value in headers.items()
                if name.lower() in SAFE_RESPONSE_HEADERS}


#: For texts where no import's secrets are known: field names and schemes only.
GENERIC = Redactor()
