"""The connection form: profile, URLs, sign-in mode, credentials, Test Connection."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from app.models.status_colours import Tone
from app.services.connection.auth import Secret, make_token_provider
from app.services.connection.connection_check import ConnectionTester
from app.services.connection.connection_profiles import (
    AUTH_C4R,
    AUTH_MODES,
    AUTH_TOKEN,
    PROFILES,
    ConnectionSecrets,
    ConnectionSettings,
    customers_url,
    households_url,
    problems_with,
    url_warning,
)
from app.services.connection.secret_store import SecretStore, secret_name
from app.services.session.import_options import ConnectionOptions
from app.views.desktop_look import show_tone
from app.views.widget_setup import describe


class ConnectionPanel(QGroupBox):
    """Edits a `ConnectionSettings` plus its secrets; `options()` is the whole connection.

    Signals: changed() whenever a field changes; tested(bool ok, str message) after Test
    Connection.
    """

    changed = Signal()
    tested = Signal(bool, str)

    def __init__(self, secrets: SecretStore, parent: QWidget | None = None) -> None:
        super().__init__("Connection", parent)
        self.secret_store = secrets
        self._loading = False
        self._secrets_profile = ""  # the profile whose secrets the fields hold
        self.tester = ConnectionTester(self)
        self.tester.finished.connect(self._test_finished)

        self.profile_combo = QComboBox()
        for key, profile in PROFILES.items():
            self.profile_combo.addItem(profile.title, key)
        self.host_label = QLabel("Host")
        self.host_edit = QLineEdit()
        self.tenant_edit = QLineEdit()
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("https://…/customers-import/v1/customers")
        self.households_label = QLabel()
        self.households_label.setWordWrap(True)
        show_tone(self.households_label, Tone.DIMMED)
        self.auth_combo = QComboBox()
        for key, title in AUTH_MODES.items():
            self.auth_combo.addItem(title, key)
        self.token_edit = self._masked("Bearer token")
        self.user_edit = QLineEdit()
        self.password_edit = self._masked("Password")
        self.client_id_edit = QLineEdit()
        self.client_id_edit.setPlaceholderText("From your administrator")
        self.client_secret_edit = self._masked("Client secret")
        self.passport_edit = self._masked("GK-Passport (optional)")
        self.proxy_edit = QLineEdit()
        self.proxy_edit.setPlaceholderText("Empty: the system's settings, or http://proxy:8080")
        self.url_warning = QLabel()
        self.url_warning.setWordWrap(True)
        show_tone(self.url_warning, Tone.ERROR)
        self.url_warning.setVisible(False)
        self.remember_check = QCheckBox("Remember secrets in the system keychain")
        self.remember_check.setChecked(secrets.available)
        self.remember_check.setEnabled(secrets.available)
        self.keychain_label = QLabel()
        self.keychain_label.setWordWrap(True)
        self._show_keychain_state()
        self.test_button = QPushButton("Test Connection")
        self.test_result = QLabel()
        self.test_result.setWordWrap(True)

        form = QFormLayout(self)
        form.addRow("&Profile", self.profile_combo)
        form.addRow(self.host_label, self.host_edit)
        form.addRow("&Tenant", self.tenant_edit)
        form.addRow("Customers &URL", self.url_edit)
        form.addRow("", self.households_label)
        form.addRow("", self.url_warning)
        form.addRow("&Sign-in", self.auth_combo)
        form.addRow("To&ken", self.token_edit)
        form.addRow("User &name", self.user_edit)
        form.addRow("Pass&word", self.password_edit)
        form.addRow("Client &ID", self.client_id_edit)
        form.addRow("Client secr&et", self.client_secret_edit)
        form.addRow("&GK-Passport", self.passport_edit)
        form.addRow("Pro&xy", self.proxy_edit)
        form.addRow("", self.remember_check)
        form.addRow("", self.keychain_label)
        row = QHBoxLayout()
        row.addWidget(self.test_button)
        row.addStretch(1)
        form.addRow(row)
        # a row of its own: a long answer wraps to as many lines as it needs (beside the
        # button, the row kept the button's height and cut the text off)
        form.addRow(self.test_result)
        self.form = form
        self.host_label.setBuddy(self.host_edit)

        describe(((self.profile_combo, "Connection profile"),
                  (self.host_edit, "Host or environment"),
                  (self.tenant_edit, "Tenant"),
                  (self.url_edit, "Customers endpoint URL"),
                  (self.auth_combo, "Sign-in method"),
                  (self.token_edit, "Bearer token"), (self.user_edit, "User name"),
                  (self.password_edit, "Password"),
                  (self.client_id_edit, "OAuth client id"),
                  (self.client_secret_edit, "OAuth client secret"),
                  (self.passport_edit, "GK-Passport header"),
                  (self.proxy_edit, "Proxy",
                   "A proxy for this connection; empty uses the system's proxy settings. "
                   "Its user and password may be part of the address and are kept in the "
                   "keychain"),
                  (self.remember_check, "Remember secrets"),
                  (self.test_button, "Test connection",
                   "Sign in and send an empty batch: nothing is imported")))

        self.profile_combo.currentIndexChanged.connect(self._profile_changed)
        self.auth_combo.currentIndexChanged.connect(self._fields_changed)
        for edit in (self.host_edit, self.tenant_edit, self.url_edit, self.user_edit,
                     self.client_id_edit, self.token_edit, self.password_edit,
                     self.client_secret_edit, self.passport_edit, self.proxy_edit):
            edit.textChanged.connect(self._fields_changed)
        self.test_button.clicked.connect(self.start_test)
        self.set_settings(ConnectionSettings())

    @staticmethod
    def _masked(placeholder: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setEchoMode(QLineEdit.EchoMode.Password)
        edit.setPlaceholderText(placeholder)
        return edit

    # -- settings in and out -----------------------------------------------------------

    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            profile=self.profile_combo.currentData(), host=self.host_edit.text().strip(),
            tenant=self.tenant_edit.text().strip(), custom_url=self.url_edit.text().strip()
            if self.profile_combo.currentData() == "custom" else "",
            auth_mode=self.auth_combo.currentData(), username=self.user_edit.text().strip(),
            client_id=self.client_id_edit.text().strip())

    def secrets(self) -> ConnectionSecrets:
        return ConnectionSecrets(token=Secret(self.token_edit.text().strip()),
                                 password=Secret(self.password_edit.text()),
                                 client_secret=Secret(self.client_secret_edit.text()),
                                 passport=Secret(self.passport_edit.text().strip()),
                                 proxy=Secret(self.proxy_edit.text().strip()))

    def options(self) -> ConnectionOptions:
        """The connection as entered, secrets included."""
        return ConnectionOptions.from_profile(self.settings(), self.secrets())

    def set_options(self, options: ConnectionOptions) -> None:
        """Show `options`: its profile's fields, and the secrets it holds (a secret it
        leaves empty stays as kept for the profile)."""
        self.set_settings(options.profile_settings())
        for field, edit in self._secret_edits().items():
            value = getattr(options, field)
            if value:
                edit.setText(value.reveal())

    def set_settings(self, settings: ConnectionSettings) -> None:
        """Show `settings`. Secrets come from the store; one typed for the same profile and
        user, that the store does not hold (no keychain), stays as typed."""
        typed = {field: edit.text() for field, edit in self._secret_edits().items()} \
            if (self._secrets_profile, self.user_edit.text().strip()) \
            == (settings.profile, settings.username.strip()) else {}
        self._loading = True
        try:
            self.profile_combo.setCurrentIndex(max(0, self.profile_combo.findData(
                settings.profile)))
            self.host_edit.setText(settings.host)
            self.tenant_edit.setText(settings.tenant)
            self.url_edit.setText(settings.custom_url)
            self.auth_combo.setCurrentIndex(max(0, self.auth_combo.findData(
                settings.auth_mode)))
            self.user_edit.setText(settings.username)
            self.client_id_edit.setText(settings.client_id)
            self._load_secrets(keep=typed)
        finally:
            self._loading = False
        self._refresh_form()

    def _secret_key(self, field: str, profile: str | None = None) -> str:
        user = self.user_edit.text().strip() if field == "password" else ""
        return secret_name(profile or self.profile_combo.currentData(), field, user)

    def _load_secrets(self, keep: dict[str, str] | None = None) -> None:
        """The profile's secrets from the store; `keep`: typed values kept where the store
        has none (never wipe what the user entered for this profile)."""
        self._secrets_profile = self.profile_combo.currentData()
        for field, edit in self._secret_edits().items():
            stored = self.secret_store.get(self._secret_key(field))
            edit.setText(stored or (keep or {}).get(field, ""))
        self._show_keychain_state()

    def save_secrets(self, profile: str | None = None) -> None:
        """Keep the secrets for this session, and in the keychain if the user wants that."""
        remember = self.remember_check.isChecked()
        for field, edit in self._secret_edits().items():
            self.secret_store.set(self._secret_key(field, profile), edit.text(),
                                  persist=remember)
        self._show_keychain_state()

    def _show_keychain_state(self) -> None:
        """Where the secrets are kept; in red when the keychain refused one (it is then
        kept until the app closes, and the user should know it will not come back)."""
        self.keychain_label.setText(self.secret_store.note)
        show_tone(self.keychain_label,
                  Tone.ERROR if self.secret_store.problem else Tone.DIMMED)

    def missing_secrets(self) -> list[tuple[str, QLineEdit]]:
        """The secrets the sign-in chosen needs and that are empty: (label, field)."""
        mode = self.auth_combo.currentData()
        needed = [("Bearer token", self.token_edit)] if mode == AUTH_TOKEN else \
            [("Password", self.password_edit)] + (
                [("Client secret", self.client_secret_edit)] if mode == AUTH_C4R else [])
        return [(label, edit) for label, edit in needed if not edit.text()]

    def _secret_edits(self) -> dict[str, QLineEdit]:
        return {"token": self.token_edit, "password": self.password_edit,
                "client_secret": self.client_secret_edit, "passport": self.passport_edit,
                "proxy": self.proxy_edit}

    # -- reacting to edits -------------------------------------------------------------

    def _profile_changed(self) -> None:
        if self._loading:
            return
        # what was typed for the previous profile stays for when the user comes back
        self.save_secrets(self._secrets_profile)
        profile = PROFILES[self.profile_combo.currentData()]
        self._loading = True
        try:
            self.host_edit.setText(profile.default_host)
            self.auth_combo.setCurrentIndex(self.auth_combo.findData(profile.auth_mode))
            self._load_secrets()
        finally:
            self._loading = False
        self._refresh_form()

    def _fields_changed(self) -> None:
        if not self._loading:
            self._refresh_form()

    def _refresh_form(self) -> None:
        profile = PROFILES[self.profile_combo.currentData()]
        auth = self.auth_combo.currentData()
        custom = profile.key == "custom"
        self.host_label.setText(profile.host_label if not custom else "Host")
        self.form.setRowVisible(self.host_edit, not custom)
        self.form.setRowVisible(self.tenant_edit, not custom or auth != AUTH_TOKEN)
        self.url_edit.setReadOnly(not custom)
        settings = self.settings()
        url = customers_url(settings)
        if not custom:
            self.url_edit.blockSignals(True)  # derived from the fields: not an edit of its own
            self.url_edit.setText(url)
            self.url_edit.blockSignals(False)
        self.households_label.setText(f"Households go to {households_url(settings)}"
                                      if url else "")
        warning = url_warning(settings)
        self.url_warning.setText(f"Warning: {warning}." if warning else "")
        self.url_warning.setVisible(warning is not None)
        self.form.setRowVisible(self.token_edit, auth == AUTH_TOKEN)
        for edit in (self.user_edit, self.password_edit, self.client_id_edit):
            self.form.setRowVisible(edit, auth != AUTH_TOKEN)
        self.form.setRowVisible(self.client_secret_edit, auth == AUTH_C4R)
        self.test_result.clear()
        self.changed.emit()

    def problems(self) -> list[str]:
        return problems_with(self.settings(), self.secrets())

    # -- Test Connection ---------------------------------------------------------------

    def start_test(self) -> None:
        problems = self.problems()
        if problems:
            self._show_test_result(False, "Before testing: " + "; ".join(problems) + ".")
            return
        self.test_button.setEnabled(False)
        self.test_result.setText("Testing…")
        options = self.options()
        self.tester.start(options.customers_url, make_token_provider(options.sign_in()),
                          options.extra_headers(), proxy=options.proxy.reveal())

    def _test_finished(self, ok: bool, message: str) -> None:
        self.test_button.setEnabled(True)
        self._show_test_result(ok, message)

    def _show_test_result(self, ok: bool, message: str) -> None:
        show_tone(self.test_result, Tone.SUCCESS if ok else Tone.ERROR)
        self.test_result.setText(message)
        self.tested.emit(ok, message)
