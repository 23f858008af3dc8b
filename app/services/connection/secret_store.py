"""Passwords and tokens in the operating system's keychain (via keyring).

Where no keychain exists (some Linux desktops, locked-down machines) secrets are kept for
this session only, and `available`/`reason` say so, so the window can tell the user instead
of silently writing them to a plain file. A keychain that refuses one secret (Windows'
Credential Manager takes at most 2,560 bytes, 1,280 characters, and fails with its own
`pywintypes.error`, not a `KeyringError`) keeps that secret in memory too, and `problem`
says so.
"""

from __future__ import annotations

import contextlib
import logging

import keyring
from keyring.errors import KeyringError

log = logging.getLogger("bulk_import")
SERVICE = "Bulk Customer Import"

# the words for a secret's field (the last part of its `secret_name`) in a note to the user
FIELD_WORDS = {"token": "token", "password": "password", "client_secret": "client secret",
               "passport": "GK-Passport", "proxy": "proxy address"}


class SecretStore:
    """Reads and writes secrets by name; falls back to memory when no keychain works.

    Never raises: whatever a keychain backend raises (a `KeyringError`, or a platform's own
    error such as Windows' `pywintypes.error`) leaves the secret in memory for this session,
    is logged by its type only, and is described by `problem` until that secret is kept
    again. `note` is what to tell the user about where secrets are kept.
    """

    def __init__(self) -> None:
        self._memory: dict[str, str] = {}
        # names of the secrets the keychain refused to keep / to give / to forget, in the
        # order it did (dicts as ordered sets); a name leaves once that works again
        self._not_kept: dict[str, None] = {}
        self._not_read: dict[str, None] = {}
        self._not_removed: dict[str, None] = {}
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

    @property
    def problem(self) -> str:
        """What went wrong with the keychain this session and is not solved yet ("" when
        nothing): which secrets it refused, could not read or could not forget."""
        parts = []
        if self._not_kept:
            words = _field_words(self._not_kept)
            kept = "they are" if len(words) > 1 else "it is"
            parts.append(f"the keychain refused to keep the {_joined(words)} (too long?): "
                         f"{kept} kept until the app closes")
        if self._not_read:
            parts.append(f"the {_joined(_field_words(self._not_read))} could not be read "
                         "from the keychain: type it again")
        if self._not_removed:
            parts.append(f"the {_joined(_field_words(self._not_removed))} could not be "
                         "removed from the keychain")
        text = "; ".join(parts)
        return text[:1].upper() + text[1:] + "." if text else ""

    @property
    def note(self) -> str:
        """Where secrets are kept, for the user: the problem if there is one, else `reason`."""
        return self.problem or self.reason

    def get(self, name: str) -> str:
        if name in self._memory:
            return self._memory[name]
        if not self.available:
            return ""
        try:
            value = keyring.get_password(SERVICE, name) or ""
        except Exception as exc:  # any backend's own error too: the user types it again
            log.warning("Could not read from the keychain: %s", type(exc).__name__)
            self._not_read[name] = None
            return ""
        self._not_read.pop(name, None)
        return value

    def set(self, name: str, value: str, *, persist: bool = True) -> None:
        """Keep `value` for this session; also in the keychain when `persist` (and one exists).

        `persist=False` removes any copy in the keychain: the user chose not to remember it.
        """
        self._memory[name] = value
        self._not_read.pop(name, None)  # typed now: nothing more to read
        if not self.available:
            return
        if value and persist:
            try:
                keyring.set_password(SERVICE, name, value)
            except Exception as exc:  # e.g. a value too long for Credential Manager
                log.warning("Could not save to the keychain: %s", type(exc).__name__)
                self._not_kept[name] = None
                # an older value stored under that name would come back at the next start
                self._remove(name)
                return
            self._not_kept.pop(name, None)
        else:
            self._not_kept.pop(name, None)
            self._remove(name)

    def _remove(self, name: str) -> None:
        try:
            with contextlib.suppress(KeyringError):  # nothing stored under that name
                keyring.delete_password(SERVICE, name)
        except Exception as exc:  # a backend's own error: the old value may stay there
            log.warning("Could not remove from the keychain: %s", type(exc).__name__)
            self._not_removed[name] = None
            return
        self._not_removed.pop(name, None)


def secret_name(profile: str, field: str, username: str = "") -> str:
    """Key under which a secret is stored: per profile (and user, for passwords)."""
    return f"{profile}/{username}/{field}" if username else f"{profile}/{field}"


def _field_words(names: dict[str, None]) -> list[str]:
    """The fields of these secret names, in words, each once, in the order they failed."""
    words: list[str] = []
    for name in names:
        field = name.rsplit("/", 1)[-1]
        word = FIELD_WORDS.get(field, field.replace("_", " "))
        if word not in words:
            words.append(word)
    return words


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
