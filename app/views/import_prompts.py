"""The window's questions and notes: message boxes, the review before Start, folder dialogs.

Each opens without blocking (the event loop, and with it a running import, goes on) and is
deleted once answered; its answer goes to the callable given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, SignalInstance
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractButton,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QWidget,
)

from app.models.file_list_model import FileEntry
from app.models.jobs import JobRecord, files_text
from app.models.records import EXISTING_CUSTOMER_RESULTS
from app.services.jobs.job_plan import Repeat
from app.services.session.import_session import RetryOffer, ReviewRequest
from app.util.atomic_files import make_private_folder
from app.util.wording import plural
from app.version import app_version, runtime_versions
from app.views.review_dialog import ReviewDialog
from app.views.widget_setup import when_yes

MAX_FILES_NAMED = 8
PROMPT_DELAY_MS = 50  # a question that leaves the window usable waits this long


def ask(parent: QWidget, name: str, title: str, text: str, icon: QMessageBox.Icon,
        on_yes: Callable[[], object], *, modal: bool = True) -> QMessageBox:
    """A Yes/No question (No by default); `on_yes` runs once on Yes. Modal to the window
    unless `modal` is False (then shown PROMPT_DELAY_MS later)."""
    box = QMessageBox(icon, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
    box.setObjectName(name)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    when_yes(box, on_yes)
    if modal:
        box.open()
    else:
        box.setModal(False)
        box.setWindowModality(Qt.WindowModality.NonModal)
        # shown a moment later: the window first paints what led to it (an import's end,
        # its list of failures), then repaints for the prompt taking the focus; both in
        # one go would freeze it for twice as long
        QTimer.singleShot(PROMPT_DELAY_MS, box, box.show)
    return box


def ask_about_imported_files(parent: QWidget, before: Sequence[FileEntry],
                             answer: Callable[[Repeat | None], None]) -> QMessageBox:
    """Files of the list were imported before: send the rest, skip them, or send them
    again? `answer` gets the choice (None: Cancel)."""
    lines = []
    for entry in before[:MAX_FILES_NAMED]:
        history = entry.history
        assert history is not None
        when = history.last_imported_at.replace("T", " ")[:16]
        if history.all_imported:
            what = f"all {history.records:,} customers imported"
        else:
            what = (f"{len(history.imported):,} imported, "
                    f"{history.records - len(history.imported):,} not yet")
        lines.append(f"• {entry.name}: {what} ({when}, job #{history.last_job})")
    if len(before) > MAX_FILES_NAMED:
        lines.append(f"• and {len(before) - MAX_FILES_NAMED:,} more")
    box = QMessageBox(QMessageBox.Icon.Question, "Imported before",
                      f"{plural(len(before), 'file')} of the list "
                      f"{'was' if len(before) == 1 else 'were'} imported into this "
                      "results folder before:\n\n" + "\n".join(lines), parent=parent)
    box.setObjectName("imported_before_prompt")
    rest = box.addButton("Send Only What Is Not Imported", QMessageBox.ButtonRole.AcceptRole)
    choices: dict[QAbstractButton, Repeat] = {
        rest: Repeat.REST,
        box.addButton("Skip Them", QMessageBox.ButtonRole.RejectRole): Repeat.SKIP,
        box.addButton("Import Them Again", QMessageBox.ButtonRole.DestructiveRole):
            Repeat.ALL}
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(rest)
    box.setInformativeText("Sending customers that are in the service already only "
                           "gives CONFLICT failures.")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.finished.connect(lambda _result: answer(choices.get(box.clickedButton())))
    box.open()
    return box


def note(parent: QWidget, name: str, title: str, text: str) -> QMessageBox:
    """A warning that leaves the window usable (an import goes on meanwhile)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName(name)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.show()
    return box


def choose_folder(parent: QWidget, name: str, caption: str, start: Path,
                  chosen: Callable[[Path], object]) -> QFileDialog:
    """A folder chooser (the system's own dialog); `chosen` gets the folder."""
    dialog = QFileDialog(parent, caption, str(start))
    dialog.setObjectName(name)
    dialog.setFileMode(QFileDialog.FileMode.Directory)
    dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    dialog.fileSelected.connect(lambda path: chosen(Path(path)))
    dialog.finished.connect(dialog.deleteLater)
    dialog.open()
    return dialog


def offer_retry(parent: QWidget, offer: RetryOffer,
                accept: Callable[[RetryOffer], object]) -> QMessageBox:
    """Customers a retry may fix: load them now? Names the others, which a retry cannot
    fix. (It leaves the window usable.)"""
    text = (f"{plural(offer.customers, 'customer')} could not be imported for reasons a "
            "retry can fix: the service was unavailable or did not answer in time, or the "
            "import stopped before sending them.")
    if offer.to_correct:
        count = sum(offer.to_correct.values())
        results = ", ".join(f"{n:,} {result}" for result, n in offer.to_correct.most_common())
        text += (f"\n\n{plural(count, 'other customer')} failed for their data "
                 f"({results}): a retry would fail again. Correct them first (Failed "
                 "Customers tab).")
        if not EXISTING_CUSTOMER_RESULTS.isdisjoint(offer.to_correct):
            text += (" Customers that exist already can be updated instead: import them "
                     "again with \"On existing customers: Update\".")
    text += "\n\nLoad the ones a retry can fix now?"
    return ask(parent, "retry_prompt", "Import again?", text, QMessageBox.Icon.Information,
               lambda: accept(offer), modal=False)


def ask_sign_in(parent: QWidget, job: JobRecord, missing: list[tuple[str, QLineEdit]],
                resume: Callable[[], object]) -> QDialog | None:
    """The secrets a resume lacks (no keychain kept them), asked for in a small dialog of
    its own: typed there, they go into the connection's fields, and the job resumes. None
    when nothing it could ask for is missing (the Import tab's state line says what is)."""
    if not missing:
        return None
    dialog = QDialog(parent)
    dialog.setObjectName("sign_in_prompt")
    dialog.setWindowTitle(f"Resume job #{job.id}")
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    layout = QFormLayout(dialog)
    intro = QLabel(f"Job #{job.id} signs in as it did when it started. This computer keeps "
                   "no secrets between starts (no keychain): enter them again.")
    intro.setWordWrap(True)
    intro.setMinimumWidth(380)
    layout.addRow(intro)
    fields: list[tuple[QLineEdit, QLineEdit]] = []
    for label, target in missing:
        edit = QLineEdit(dialog)
        edit.setEchoMode(QLineEdit.EchoMode.Password)
        edit.setAccessibleName(label)
        layout.addRow(f"{label}:", edit)
        fields.append((edit, target))
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel, dialog)
    ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
    ok.setText("Resume")
    ok.setEnabled(False)
    for edit, _target in fields:
        edit.textChanged.connect(lambda _text: ok.setEnabled(
            all(e.text().strip() for e, _t in fields)))
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout.addRow(buttons)

    def accepted() -> None:
        for edit, target in fields:
            target.setText(edit.text().strip())
        resume()

    dialog.accepted.connect(accepted)
    dialog.open()
    return dialog


def offer_resume(parent: QWidget, job: JobRecord,
                 resume: Callable[[JobRecord], object]) -> QMessageBox:
    return ask(parent, "resume_prompt", "Resume the interrupted import?",
               f"Job #{job.id} (started {job.started.replace('T', ' ')[:16]}, "
               f"{files_text(job)}) stopped before it finished: {job.succeeded:,} customers "
               "were imported. Resume it now? Only what was not sent yet is sent.",
               QMessageBox.Icon.Question, lambda: resume(job))


def confirm_cancel(parent: QWidget, text: str, cancel: Callable[[], object],
                   moot: SignalInstance) -> QMessageBox:
    """Stop the import? The question closes itself when `moot` is emitted (the import
    ended meanwhile): left open, it would sit under the next prompt and block it."""
    box = ask(parent, "cancel_prompt", "Cancel the import?", text, QMessageBox.Icon.Question,
              cancel)
    moot.connect(box.reject)  # disconnected by Qt once the box is gone
    return box


def confirm_close(parent: QWidget, stop: Callable[[], object],
                  moot: SignalInstance) -> QMessageBox:
    """Stop the import and close? Closes itself when `moot` is emitted, as `confirm_cancel`."""
    box = ask(parent, "close_prompt", "Close during an import?",
              "An import is running. Stop it and close? Customers not sent yet go to the "
              "retry files.", QMessageBox.Icon.Warning, stop)
    moot.connect(box.reject)
    return box


def review(parent: QWidget, request: ReviewRequest,
           answer: Callable[[bool], object]) -> ReviewDialog:
    """The review before Start: every row of the spreadsheets is checked; `answer` gets
    True for Import Valid Rows Only, False for Back."""
    dialog = ReviewDialog(request.files, request.sources, report_path=request.report,
                          parent=parent, imported_before=request.imported_before)

    def answered(result: int) -> None:
        dialog.deleteLater()
        answer(result == ReviewDialog.DialogCode.Accepted)

    dialog.finished.connect(answered)
    dialog.open()
    dialog.start()
    return dialog


def show_about(parent: QWidget, title: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, f"About {title}",
                      f"{title} {app_version()}\n\nLoads customer files, imports them in "
                      "batches to the Customer Profile API, shows every customer that failed "
                      "and why, and re-imports the failures.\n\n"
                      f"{runtime_versions()}", QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("about_box")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def open_folder(folder: Path) -> None:
    """Show `folder` in the file manager (made first, private, when it does not exist)."""
    make_private_folder(folder)
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
