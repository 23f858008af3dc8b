"""A keychain that refuses a secret: Windows' Credential Manager keeps at most 2,560 bytes
(1,280 characters, as keyring stores UTF-16) and fails with its own `pywintypes.error`, not a
`KeyringError`. The secret is then kept until the app closes, the user is told, and Start
goes on with what was typed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from PySide6.QtCore import QSettings

from app.services.connection.secret_store import SERVICE, SecretStore, secret_name
from app.services.sandbox.sample_customers import generate_customers
from app.services.sandbox.sandbox_server import SandboxThread
from tests.test_import_process import load_files
from tests.test_main_window import connect_to, import_and_wait, open_window

CREDENTIAL_BLOB_MAX = 2560  # bytes: CRED_MAX_CREDENTIAL_BLOB_SIZE


class CredentialError(OSError):
    """Stands for `pywintypes.error` (an error of its own, not a KeyringError), which is
    only on Windows: (1783, 'CredWrite', 'The stub received bad data.')."""


class CredentialManagerLike(KeyringBackend):
    """A keychain that behaves like Windows' Credential Manager: a value over 2,560 bytes
    of UTF-16 fails with a non-keyring error. `broken` makes every call fail so."""

    priority = 1  # type: ignore[assignment]  # above 0: a real keychain

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.broken = False

    def _fail_if_broken(self, call: str) -> None:
        if self.broken:
            raise CredentialError(1312, call, "A specified logon session does not exist.")

    def get_password(self, service: str, username: str) -> str | None:
        self._fail_if_broken("CredRead")
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._fail_if_broken("CredWrite")
        if len(password.encode("utf-16-le")) > CREDENTIAL_BLOB_MAX:
            raise CredentialError(1783, "CredWrite", "The stub received bad data.")
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._fail_if_broken("CredDelete")
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("Element not found")


@pytest.fixture
def keychain() -> Iterator[CredentialManagerLike]:
    """This keychain for the test; the one before it afterwards."""
    previous = keyring.get_keyring()
    backend = CredentialManagerLike()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_a_secret_too_long_for_the_keychain_is_kept_for_the_session(
        keychain: CredentialManagerLike, caplog: pytest.LogCaptureFixture) -> None:
    store = SecretStore()
    assert store.available and store.problem == ""
    name = secret_name("c4r", "token")
    fits = "Å" * 1280  # 2,560 bytes of UTF-16: just fits
    store.set(name, fits)
    assert keychain.entries == {(SERVICE, name): fits}

    too_long = "tök-" + "Ä" * 1996  # 2,000 characters
    with caplog.at_level(logging.WARNING, logger="bulk_import"):
        store.set(name, too_long)  # raises nothing
    assert store.get(name) == too_long  # kept for this session
    assert store.problem == ("The keychain refused to keep the token (too long?): it is "
                             "kept until the app closes.")
    assert store.note == store.problem
    # the older value is not left there to come back at the next start
    assert keychain.entries == {}
    assert SecretStore().get(name) == ""
    (warning,) = [r for r in caplog.records if r.name == "bulk_import"]
    assert "CredentialError" in warning.getMessage()
    assert "tök" not in caplog.text and "ÄÄ" not in caplog.text

    # a second secret refused: both named; a shorter one kept again: only the other
    passport = secret_name("c4r", "passport")
    store.set(passport, "P" * 1281)
    assert store.problem.startswith("The keychain refused to keep the token and GK-Passport "
                                    "(too long?): they are kept")
    store.set(name, "kort-Ö")
    assert keychain.entries == {(SERVICE, name): "kort-Ö"}
    assert store.problem.startswith("The keychain refused to keep the GK-Passport (too")
    store.set(passport, "P" * 1281, persist=False)  # not to be remembered: nothing to refuse
    assert store.problem == "" and store.note == store.reason
    assert store.get(passport) == "P" * 1281


def test_a_keychain_failing_every_call_never_raises(keychain: CredentialManagerLike) -> None:
    name = secret_name("engage-prod", "password", "åsa.öberg")
    keychain.entries[(SERVICE, name)] = "gammalt"
    keychain.broken = True
    store = SecretStore()
    assert store.get(name) == ""  # raises nothing: the user types it again
    assert store.problem == ("The password could not be read from the keychain: type it "
                             "again.")
    store.set(name, "lösenord-Łé")
    assert store.get(name) == "lösenord-Łé"
    assert store.problem.startswith("The keychain refused to keep the password (too long?)")
    assert "could not be removed from the keychain" in store.problem
    store.set(name, "lösenord-Łé", persist=False)
    assert store.problem == "The password could not be removed from the keychain."
    keychain.broken = False
    store.set(name, "lösenord-Łé", persist=False)
    assert store.problem == "" and keychain.entries == {}


def test_an_import_with_a_token_too_long_for_the_keychain_starts_and_says_so(
        qtbot, qloop, keychain: CredentialManagerLike, sandbox_thread: SandboxThread,
        tmp_path: Path) -> None:
    token = "sandbox-" + "x" * 1992  # 2,000 characters, as some identity providers issue
    passport = "GKP-" + "7" * 1996
    sandbox_thread.server.config.static_token = token
    window = open_window(qtbot, QSettings(str(tmp_path / "settings.ini"),
                                          QSettings.Format.IniFormat),
                         tmp_path / "out", max_retries=0)
    panel = window.import_tab.connection
    assert panel.remember_check.isChecked() and "refused" not in panel.keychain_label.text()
    connect_to(window, sandbox_thread)
    panel.passport_edit.setText(passport)
    load_files(qtbot, window, tmp_path / "in" / "kunder_åäö.json", generate_customers(30))

    summary = import_and_wait(qtbot, qloop, window)

    assert (summary.succeeded, summary.failed) == (30, 0)  # with the token as typed
    assert panel.keychain_label.isVisible()
    assert panel.keychain_label.text() == (
        "The keychain refused to keep the token and GK-Passport (too long?): they are kept "
        "until the app closes.")
    assert window.secrets.get(secret_name("sandbox", "token")) == token
    assert window.secrets.get(secret_name("sandbox", "passport")) == passport
    assert keychain.entries == {}  # the empty fields were not stored either
