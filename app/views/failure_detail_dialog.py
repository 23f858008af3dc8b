"""A window with everything known about one failed customer, including its original data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.models.records import FailureRecord


def original_json(data: Any) -> str:
    """The original customer as indented JSON, letters such as Å Ä Ö kept as they are."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def record_fields(record: FailureRecord) -> list[tuple[str, str]]:
    """(label, value) pairs for every field of `record` except the original data."""
    source = Path(record.source_file).name if record.source_file else ""
    if source and record.record_number:
        source = f"{source}, record {record.record_number:,}"
    fields = [
        ("Customer ID", record.customer_id or "(no id)"),
        ("Username", record.username or "(unknown)"),
        ("Result", record.result if record.attempts < 2
         else f"{record.result} (failed {record.attempts} times)"),
        ("Timestamp", record.timestamp),
        ("Batch info", record.batch_info),
        ("Source", source or "(unknown)"),
        ("Source file", record.source_file or "(unknown)"),
        ("HTTP status", "(none)" if record.http_status is None else str(record.http_status)),
        ("Kind", record.kind.value),
    ]
    if record.resolved_job is not None:
        when = (record.resolved_at or "").replace("T", " ")
        fields.append(("Resolved", f"imported by job #{record.resolved_job} {when}".rstrip()))
    return [*fields, ("Error", record.error)]


class FailureDetailDialog(QDialog):
    """Non-modal window showing one failure in full: every field, the whole error text and
    the original customer data as indented JSON (selectable, copyable).

    It deletes itself when closed. Emits only QDialog's own signals (`finished`).
    """

    def __init__(self, record: FailureRecord, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.record = record
        self.setModal(False)  # the main window stays usable while this is open
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(f"Failed customer {record.customer_id or '(no id)'}")
        self.setAccessibleName("Failed customer details")
        self.resize(680, 620)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.field_labels: dict[str, QLabel] = {}
        for label, value in record_fields(record):
            if label == "Error":
                continue
            field = QLabel(value)
            field.setTextFormat(Qt.TextFormat.PlainText)  # data, never markup
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.TextSelectableByKeyboard)
            field.setWordWrap(True)
            field.setAccessibleName(label)
            form.addRow(f"{label}:", field)
            self.field_labels[label] = field

        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.error_edit = QPlainTextEdit(record.error)
        self.error_edit.setReadOnly(True)
        self.error_edit.setAccessibleName("Error, complete text")
        self.error_edit.setToolTip("The complete error message")
        self.error_edit.setMaximumHeight(self.fontMetrics().lineSpacing() * 5 + 12)
        form.addRow("Error:", self.error_edit)

        self.json_edit = QPlainTextEdit(original_json(record.original_data))
        self.json_edit.setReadOnly(True)  # read-only still lets the user select and copy
        self.json_edit.setFont(fixed)
        self.json_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.json_edit.setAccessibleName("Original customer data (JSON)")
        self.json_edit.setToolTip("The customer exactly as read from the file")

        self.copy_button = QPushButton("Copy all")
        self.copy_button.setToolTip("Copy every field and the original data to the clipboard")
        self.copy_button.setAccessibleName("Copy all details")
        self.copy_button.clicked.connect(self.copy_all)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        self.close_button = buttons.button(QDialogButtonBox.StandardButton.Close)
        self.close_button.setToolTip("Close this window")
        self.close_button.setAccessibleName("Close")

        original_label = QLabel("Original customer data:")
        original_label.setBuddy(self.json_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(original_label)
        layout.addWidget(self.json_edit, 1)
        layout.addWidget(buttons)

    def text(self) -> str:
        """Everything the window shows, as plain text."""
        lines = [f"{label}: {value}" for label, value in record_fields(self.record)]
        lines += ["", "Original data:", original_json(self.record.original_data)]
        return "\n".join(lines)

    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText(self.text())
