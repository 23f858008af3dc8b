"""The review before Start: every spreadsheet row checked, what is valid, what is refused
and why, and the choice to import the valid rows or go back."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.models.jobs import FileHistory
from app.models.status_colours import Tone
from app.services.sources.error_report import save_report_copy
from app.services.sources.review_tasks import ReviewTasks, Validate
from app.services.sources.source_options import SourceOptions
from app.services.sources.table_source import listed_columns
from app.services.sources.validation_pass import ValidationResult
from app.util.wording import plural
from app.views.desktop_look import show_tone
from app.views.widget_setup import describe, setup_record_table


class ReviewDialog(QDialog):
    """Checks the files of an import (spreadsheets and all) and shows the outcome.

    `start()` runs the validation pass (a `ReviewTasks` worker) with a progress bar and a
    Cancel that goes back. Then: valid and invalid counts, files that cannot be read, the
    first invalid rows with their reasons, columns no target takes, and the error report
    (open or save a copy). *Import Valid Rows Only* (default) accepts, *Back* rejects.
    `imported_before`: by file, what earlier jobs imported of it; those rows are not sent
    again, and the outcome says so next to its counts. Shown with `open()`.

    Signals: reviewed(object) with the ValidationResult once it is shown.
    """

    reviewed = Signal(object)

    def __init__(self, files: list[Path], options: SourceOptions, *,
                 report_path: Path | None, parent: QWidget | None = None,
                 validate: Validate | None = None,
                 imported_before: Mapping[Path, FileHistory] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewDialog")
        self.setWindowTitle("Review before importing")
        self._files = [Path(f) for f in files]
        self._options = options
        self._report_path = report_path
        self._imported_before = {Path(p): h for p, h in (imported_before or {}).items()
                                 if len(h.imported)}
        self._result: Any = None
        self._children: list[QWidget] = []
        self.tasks = ReviewTasks(self, validate=validate)
        self.tasks.progress.connect(self._on_progress)
        self.tasks.finished.connect(self.show_result)
        self.tasks.failed.connect(self.show_failure)
        self._build()
        self.resize(980, 620)

    # -- building ----------------------------------------------------------------------

    def _build(self) -> None:
        # page 0: checking
        self.checking_label = QLabel(f"Checking every row of {plural(len(self._files), 'file')} "
                                     "before anything is sent…")
        self.checking_label.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setTextVisible(False)
        self.rows_label = QLabel("")
        checking = QWidget()
        checking_layout = QVBoxLayout(checking)
        checking_layout.addStretch(1)
        checking_layout.addWidget(self.checking_label)
        checking_layout.addWidget(self.progress_bar)
        checking_layout.addWidget(self.rows_label)
        checking_layout.addStretch(1)

        # page 1: the outcome
        self.summary_label = QLabel()
        self.summary_label.setObjectName("reviewSummary")
        self.summary_label.setWordWrap(True)
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * 1.15)
        big.setBold(True)
        self.summary_label.setFont(big)
        self.imported_before_label = QLabel()
        self.imported_before_label.setObjectName("reviewImportedBefore")
        self.imported_before_label.setWordWrap(True)
        self.imported_before_label.setTextFormat(Qt.TextFormat.PlainText)
        show_tone(self.imported_before_label, Tone.WARNING)
        self.imported_before_label.setVisible(False)
        self.detail_label = QLabel()
        self.detail_label.setWordWrap(True)
        self.detail_label.setTextFormat(Qt.TextFormat.PlainText)
        self.problems_label = QLabel()
        self.problems_label.setWordWrap(True)
        self.problems_label.setTextFormat(Qt.TextFormat.PlainText)
        show_tone(self.problems_label, Tone.ERROR)
        self.invalid_title = QLabel()
        self.invalid_table = QTableWidget(0, 5)
        self.invalid_table.setHorizontalHeaderLabels(("File", "Row", "Column", "Value",
                                                      "Reason"))
        setup_record_table(self.invalid_table)
        self.invalid_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.invalid_table.verticalHeader().setVisible(False)
        header = self.invalid_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        char = self.fontMetrics().horizontalAdvance("0")
        for column, chars in ((0, 18), (1, 7), (2, 16), (3, 18)):
            header.resizeSection(column, char * chars)
        self.unmapped_label = QLabel()
        self.unmapped_label.setWordWrap(True)
        self.unmapped_label.setTextFormat(Qt.TextFormat.PlainText)
        show_tone(self.unmapped_label, Tone.WARNING)
        self.open_report_button = QPushButton("Open Error Report")
        self.save_report_button = QPushButton("Save Error Report As…")
        self.open_report_button.clicked.connect(self.open_report)
        self.save_report_button.clicked.connect(self.open_save_dialog)
        report_row = QHBoxLayout()
        self.report_label = QLabel()
        self.report_label.setWordWrap(True)
        report_row.addWidget(self.report_label, 1)
        report_row.addWidget(self.open_report_button)
        report_row.addWidget(self.save_report_button)
        outcome = QWidget()
        outcome_layout = QVBoxLayout(outcome)
        outcome_layout.setContentsMargins(0, 0, 0, 0)
        outcome_layout.addWidget(self.summary_label)
        outcome_layout.addWidget(self.imported_before_label)
        outcome_layout.addWidget(self.detail_label)
        outcome_layout.addWidget(self.problems_label)
        outcome_layout.addWidget(self.invalid_title)
        outcome_layout.addWidget(self.invalid_table, 1)
        outcome_layout.addWidget(self.unmapped_label)
        outcome_layout.addLayout(report_row)
        self._stretch = QWidget()  # fills the space when there is no table to show
        outcome_layout.addWidget(self._stretch, 1)

        self.pages = QStackedWidget()
        self.pages.addWidget(checking)
        self.pages.addWidget(outcome)

        self.buttons = QDialogButtonBox()
        self.import_button = self.buttons.addButton("Import Valid Rows Only",
                                                    QDialogButtonBox.ButtonRole.AcceptRole)
        self.back_button = self.buttons.addButton("Back", QDialogButtonBox.ButtonRole.RejectRole)
        self.import_button.setDefault(True)
        self.import_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.buttons)
        describe((
            (self.progress_bar, "Checking progress"),
            (self.invalid_table, "Invalid rows", "The first rows that are refused, one line "
             "per reason; the error report lists them all"),
            (self.open_report_button, "Open error report", "Open the error report (CSV, "
             "opens in Excel)"),
            (self.save_report_button, "Save error report as", "Save a copy of the error "
             "report"),
            (self.import_button, "Import valid rows only", "Import every valid row; the "
             "refused ones are not sent"),
            (self.back_button, "Back", "Go back without importing, to fix the mapping or "
             "the files")))

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        """Run the validation pass (call after open())."""
        self.pages.setCurrentIndex(0)
        self.back_button.setText("Cancel")
        self.import_button.setEnabled(False)
        self.tasks.start(self._files, self._options, report_path=self._report_path)

    def _on_progress(self, rows: int) -> None:
        self.rows_label.setText(f"{rows:,} rows checked")

    def imported_before_text(self) -> str:
        """Rows earlier jobs imported, by file: they are counted above but not sent."""
        if not self._imported_before:
            return ""
        parts = [f"{path.name}: {plural(len(history.imported), 'row')} (job "
                 f"#{history.last_job})" for path, history in self._imported_before.items()]
        total = sum(len(h.imported) for h in self._imported_before.values())
        return (f"Imported before, not sent again: {plural(total, 'row')} of the rows "
                "checked (" + "; ".join(parts) + ").")

    def show_result(self, result: ValidationResult) -> None:
        """Show a ValidationResult (from the pass; tests may hand one in)."""
        self._result = result
        self.pages.setCurrentIndex(1)
        self.back_button.setText("Back")
        valid, invalid, rows = int(result.valid), int(result.invalid), int(result.rows)
        problems = list(result.problems or ())
        files = result.files or len(self._files)
        if invalid == 0 and not problems:
            self.summary_label.setText("The row is valid and ready to import." if valid == 1
                                       else f"All {valid:,} rows are valid and ready to "
                                       "import.")
            show_tone(self.summary_label, Tone.SUCCESS)
            self.import_button.setText("Start Import")
        else:
            self.summary_label.setText(f"{valid:,} valid, {invalid:,} invalid")
            show_tone(self.summary_label, Tone.ERROR if invalid else None)
            self.import_button.setText("Import Valid Rows Only")
        self.imported_before_label.setText(self.imported_before_text())
        self.imported_before_label.setVisible(bool(self._imported_before))
        self.detail_label.setText(
            f"{plural(rows, 'row')} checked in {plural(files, 'file')}. "
            + ("Invalid rows are not sent; fix them in the file and import it again later."
               if invalid else ""))
        if problems:
            lines = [f"• {Path(p.source_file).name}: {p.message}" for p in problems[:10]]
            if len(problems) > 10:
                lines.append(f"• and {len(problems) - 10:,} more")
            self.problems_label.setText(f"{plural(len(problems), 'file')} cannot be "
                                        "imported:\n" + "\n".join(lines))
        self.problems_label.setVisible(bool(problems))
        # the error report's first lines: one per reason, with column and value (a file
        # that cannot be read at all is named above, with no row)
        invalid_lines = [(e.file, e.row, e.column, e.value, e.message)
                         for e in result.first_errors if e.row is not None]
        self.invalid_table.setRowCount(len(invalid_lines))
        for row, (name, number, column, value, reason) in enumerate(invalid_lines):
            for col, text in enumerate((name, "" if number is None else str(number), column,
                                        value, reason)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if col == 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.invalid_table.setItem(row, col, item)
        shown_rows = len({(n, r) for n, r, *_ in invalid_lines})
        self.invalid_title.setText(
            f"The first {plural(shown_rows, 'invalid row')}, with the reasons:"
            if shown_rows < invalid else "The invalid rows, with the reasons:")
        has_table = bool(invalid_lines)
        self.invalid_title.setVisible(has_table)
        self.invalid_table.setVisible(has_table)
        self._stretch.setVisible(not has_table)
        unmapped = {Path(f).name: cols for f, cols in (result.unmapped_columns or {}).items()
                    if cols}
        self.unmapped_label.setText("Columns not imported: " + "; ".join(
            f"{name}: {listed_columns(cols)}" for name, cols in unmapped.items()))
        self.unmapped_label.setVisible(bool(unmapped))
        report = self.error_report()
        self.report_label.setText(f"Every reason is in the error report {report.name}."
                                  if report else "")
        for widget in (self.report_label, self.open_report_button, self.save_report_button):
            widget.setVisible(report is not None)
        self.import_button.setEnabled(valid > 0)
        if valid == 0:
            self.import_button.setToolTip("No row can be sent: go back and fix the mapping "
                                          "or the files")
        self.import_button.setFocus()
        self.reviewed.emit(result)

    def show_failure(self, message: str) -> None:
        """The pass could not run: say why; the import itself still checks every row."""
        self.pages.setCurrentIndex(1)
        self.back_button.setText("Back")
        self.summary_label.setText("The rows could not be checked before importing.")
        show_tone(self.summary_label, Tone.ERROR)
        self.detail_label.setText(f"{message[:1].upper()}{message[1:]}. The import still "
                                  "checks every row and sends none that is invalid.")
        for widget in (self.problems_label, self.invalid_title, self.invalid_table,
                       self.unmapped_label, self.report_label, self.open_report_button,
                       self.save_report_button):
            widget.setVisible(False)
        self._stretch.setVisible(True)
        self.import_button.setText("Import Anyway")
        self.import_button.setEnabled(True)

    def validation_result(self) -> Any:
        """The ValidationResult shown (None before)."""
        return self._result

    # -- the error report ---------------------------------------------------------------------

    def error_report(self) -> Path | None:
        report = getattr(self._result, "error_report", None)
        return Path(report) if report and Path(report).is_file() else None

    def open_report(self) -> None:
        report = self.error_report()
        if report is not None and not QDesktopServices.openUrl(QUrl.fromLocalFile(str(report))):
            # no program on this computer opens a .csv: offer to save it where one can
            self.open_save_dialog()

    def open_save_dialog(self) -> QFileDialog | None:
        report = self.error_report()
        if report is None:
            return None
        start = self._files[0].parent if self._files else report.parent
        dialog = QFileDialog(self, "Save the error report", str(start / "error_report.csv"),
                             "CSV files (*.csv)")
        dialog.setObjectName("saveErrorReportDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("csv")
        dialog.fileSelected.connect(lambda path: self.save_report(Path(path)))
        self._children.append(dialog)
        dialog.finished.connect(lambda _result, d=dialog: self._forget(d))
        dialog.open()
        return dialog

    def _forget(self, dialog: QWidget) -> None:
        if dialog in self._children:
            self._children.remove(dialog)
        dialog.deleteLater()

    def save_report(self, path: Path) -> bool:
        report = self.error_report()
        if report is None:
            return False
        try:
            save_report_copy(report, path)
        except OSError as exc:
            self.report_label.setText(f"Not saved: {exc.strerror or exc}")
            return False
        self.report_label.setText(f"Saved a copy as {path}")
        return True

    def done(self, result: int) -> None:
        self.tasks.cancel()  # Cancel while checking: the pass stops
        super().done(result)
