"""Passwords and tokens in the operating system's keychain (via keyring).

Where no keychain exists (some Linux desktops, locked-down machines) secrets are kept for
this session only, and `available`/`reason` say so, so the window can tell the user instead
of silently writing them to a plain file.
"""

from __future__ import annotations

import contextlib
import logging

import keyring
from keyring.errors import KeyringError

log = logging.getLogger("bulk_import")
SERVICE = "Bulk Customer Import"


class SecretStore:
    """Reads and writes secrets by name; falls back to memory when no keychain works."""

    def __init__(self) -> None:
        self._memory: dict[str, str] = {}
        self.available, self.reason = self._probe()

    @staticmethod
    def _probe() -> tuple[bool, str]:
        try:
            backend = keyring.get_keyring()
        except Exception as exc:  # a broken backend must not stop the app
            return False, f"no keychain ({type(exc).__name__})"
        priority = getattr(backend, "priority", 0)
        name = type(backend).__name__
        # fail.Keyring and null.Keyring (and an empty chain) have priority 0 or less
        if priority <= 0:
            return False, "no system keychain was found: secrets are kept until you quit"
        return True, f"kept in the system keychain ({name})"

    def get(self, name: str) -> str:
        if name in self._memory:
            return self._memory[name]
        if not self.available:
            return ""
        try:
            return keyring.get_password(SERVICE, name) or ""
        except KeyringError as exc:
            log.warning("Could not read from the keychain: %s", type(exc).__name__)
            return ""

    def set(self, name: str, value: str, *, persist: bool = True) -> None:
        """Keep `value` for this session; also in the keychain when `persist` (and one exists).

        `persist=False` removes any copy in the keychain: the user chose not to remember it.
        """
        self._memory[name] = value
        if not self.available:
            return
        try:
            if value and persist:
                keyring.set_password(SERVICE, name, value)
            else:
                with contextlib.suppress(KeyringError):  # nothing stored under that name
                    keyring.delete_password(SERVICE, name)
        except KeyringError as exc:
            log.warning("Could not save to the keychain: %s", type(exc).__name__)


def secret_name(profile: str, field: str, username: str = "") -> str:
    """Key under which a secret is stored: per profile (and user, for passwords)."""
    return f"{profile}/{username}/{field}" if username else f"{profile}/{field}"
