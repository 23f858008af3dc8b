"""The app's CSV files (exports of failed customers, error reports) use the list separator
Excel expects on this computer, or the one chosen: the locale's decimal comma means `;`, the
window's export and `import --delimiter` choose, Å Ä Ö survive (UTF-8 with a BOM), and the
app reads its own files back whatever their separator."""

from __future__ import annotations

import csv
import io
import json
import locale
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from app.models.failure_store import FailureStore
from app.models.records import FailureRecord
from app.services.results.failure_export import CSV_COLUMNS, export_failures
from app.services.sandbox.sample_customers import generate_customers
from app.services.sources.csv_reader import CsvTable
from app.services.sources.error_report import (
    ERROR_REPORT_COLUMNS,
    ErrorLine,
    ErrorReport,
    write_error_report,
)
from app.services.sources.file_search import find_customer_files
from app.util.csv_separator import (
    SEPARATOR_NAMES,
    checked_separator,
    locale_separator,
    parse_separator,
    separator_for_decimal_point,
    system_separator,
    usable_separator,
)
from app.views.failed_customers_tab import FailedCustomersTab
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
BOM = b"\xef\xbb\xbf"
NAMES = ("ÅSA ÄNGSLYCKA-ÖBERG", "BJÖRN SÖDERBERG", "ÉLISE ŁUKASZEWSKA")
#: Locales whose numbers have a decimal comma, the first one this machine has or can make
DECIMAL_COMMA_LOCALES = ("sv_SE", "nb_NO", "de_DE", "fr_FR")


def rows_of(raw: bytes, delimiter: str) -> list[list[str]]:
    """The cells of a CSV file the app wrote, split as Excel splits them at `delimiter`."""
    assert raw.startswith(BOM)  # without it Excel shows Ã… for Å
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""),
                           delimiter=delimiter))


def failures(count: int = 3) -> list[FailureRecord]:
    records = []
    for n, customer in enumerate(generate_customers(count, start_id=70000000000, seed=5)):
        records.append(FailureRecord(
            customer_id=customer["person"]["customerId"], username=NAMES[n % len(NAMES)],
            result="CONFLICT", error="Customer already exists; see batch 1, record 2",
            timestamp=f"2026-01-0{n + 1}T10:00:00", batch_info="Found in error array",
            original_data=customer, source_file="kunder_västerås.json", record_number=n + 1,
            http_status=409))
    return records


# -- the system's separator ----------------------------------------------------------------


def test_a_decimal_comma_means_semicolon_and_anything_else_comma():
    assert separator_for_decimal_point(",") == ";"
    assert separator_for_decimal_point(".") == ","
    assert separator_for_decimal_point("\u066b") == ","  # Arabic decimal separator
    assert separator_for_decimal_point("") == ","


def test_the_separators_the_command_line_and_the_window_accept():
    assert [parse_separator(t) for t in (";", ",", "tab", "TAB", "\t", "\\t", "semicolon",
                                         " comma ")] == [";", ",", "\t", "\t", "\t", "\t",
                                                         ";", ","]
    for text in ("x", "", ";;", "pipe"):
        with pytest.raises(ValueError):
            parse_separator(text)
    assert list(SEPARATOR_NAMES) == [";", ",", "\t"]
    # a list separator set by hand in Windows is used when it can separate cells
    assert [usable_separator(t) for t in (";", ",", "\t", "|", '"', "\n", "a", "7", ";;",
                                          "", None)] == [True, True, True, True, False,
                                                         False, False, False, False, False,
                                                         False]
    with pytest.raises(ValueError):
        checked_separator('"')
    assert checked_separator(None) == system_separator()


@pytest.fixture(scope="session")
def decimal_comma_locale(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment variables that select a locale with a decimal comma: an installed one
    (Swedish first), else one compiled into a temporary folder (LOCPATH); skipped when this
    machine has none and cannot make one."""
    listed = (subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
              if shutil.which("locale") else [])
    for base in DECIMAL_COMMA_LOCALES:
        for name in listed:
            if name.startswith(f"{base}.") and name.lower().endswith(("utf8", "utf-8")):
                return {"LC_ALL": name}
    localedef = shutil.which("localedef")
    if localedef is not None:
        folder = tmp_path_factory.mktemp("locales")
        for base in DECIMAL_COMMA_LOCALES:
            name = f"{base}.UTF-8"
            subprocess.run([localedef, "-i", base, "-f", "UTF-8", str(folder / name)],
                           capture_output=True)
            if (folder / name / "LC_NUMERIC").is_file():
                return {"LC_ALL": name, "LOCPATH": str(folder)}
    pytest.skip(f"no locale with a decimal comma ({', '.join(DECIMAL_COMMA_LOCALES)}) on "
                "this machine, and none can be compiled")


def environment(**variables: str) -> dict[str, str]:
    """This process's environment with the locale variables replaced by `variables`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LC_") and k not in ("LANG", "LANGUAGE", "LOCPATH")}
    return {**env, "PYTHONIOENCODING": "utf-8", **variables}


SEPARATOR_PROBE = """
import json, locale, sys
if sys.argv[1]:  # the process chose a locale of its own first (as Qt does on start)
    locale.setlocale(locale.LC_NUMERIC, sys.argv[1])
from app.util.csv_separator import locale_separator, system_separator
before = locale.setlocale(locale.LC_NUMERIC)
separator = system_separator()
print(json.dumps({"separator": separator, "again": locale_separator(),
                  "before": before, "after": locale.setlocale(locale.LC_NUMERIC),
                  "all": locale.setlocale(locale.LC_ALL),
                  "formatted": locale.format_string("%.1f", 1.5)}))
"""


def probe_separator(env: dict[str, str], process_locale: str = "") -> dict[str, str]:
    done = subprocess.run([sys.executable, "-c", SEPARATOR_PROBE, process_locale], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_locale_of_the_environment_decides_and_is_left_as_it_was(decimal_comma_locale):
    name = decimal_comma_locale["LC_ALL"]
    swedish = probe_separator(environment(**decimal_comma_locale))
    assert (swedish["separator"], swedish["again"]) == (";", ";")
    # the process's number formatting was not switched to the decimal comma
    assert swedish["before"] == swedish["after"] == "C"
    assert swedish["formatted"] == "1.5"

    english = probe_separator(environment(LC_ALL="C.UTF-8"))
    assert english["separator"] == ","
    unknown = probe_separator(environment(LC_ALL="xx_YY.UTF-8"))  # a locale nobody has
    assert unknown["separator"] == ","

    # a process that uses a decimal-comma locale itself keeps it, whatever the
    # environment says
    chosen = probe_separator(environment(LC_ALL="C.UTF-8",
                                         **{k: v for k, v in decimal_comma_locale.items()
                                            if k == "LOCPATH"}), name)
    assert chosen["separator"] == ","
    assert chosen["before"] == chosen["after"] == name
    assert chosen["formatted"] == "1,5"


def test_looking_leaves_this_process_locale_alone():
    before = (locale.setlocale(locale.LC_NUMERIC), locale.setlocale(locale.LC_ALL))
    assert locale_separator() in (";", ",")
    assert (locale.setlocale(locale.LC_NUMERIC), locale.setlocale(locale.LC_ALL)) == before


# -- the exports of failed customers ---------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_an_export_is_separated_as_asked_with_names_intact(tmp_path, delimiter):
    records = failures()
    raw = export_failures(records, tmp_path / "f.csv", delimiter=delimiter).read_bytes()
    rows = rows_of(raw, delimiter)
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 4 and {len(row) for row in rows} == {len(CSV_COLUMNS)}
    assert [row[1] for row in rows[1:]] == list(NAMES)
    # a cell holding the separator is quoted, not split
    assert rows[1][3] == "Customer already exists; see batch 1, record 2"
    assert json.loads(rows[1][9]) == records[0].original_data
    assert raw.count(b"\r\n") == 4


def test_an_export_without_a_choice_uses_the_system_separator(tmp_path):
    raw = export_failures(failures(), tmp_path / "f.csv").read_bytes()
    assert raw.startswith(BOM + system_separator().join(CSV_COLUMNS[:3]).encode())
    with pytest.raises(ValueError):
        export_failures(failures(), tmp_path / "g.csv", delimiter="ab")
    assert not (tmp_path / "g.csv").exists()


@pytest.fixture
def store() -> Iterator[FailureStore]:
    store = FailureStore()
    yield store
    store.close()


@pytest.fixture
def make_tab(qtbot, store: FailureStore, tmp_path: Path) -> Callable[[], FailedCustomersTab]:
    def make() -> FailedCustomersTab:
        store.upsert(failures())
        tab = FailedCustomersTab(store, lambda: tmp_path / "out")
        qtbot.addWidget(tab)
        tab.resize(1100, 600)
        tab.show()
        qtbot.waitExposed(tab)
        qtbot.waitUntil(lambda: tab.model.rowCount() == 3 and not tab.model.is_busy()
                        and tab.model.is_idle(), timeout=10_000)
        return tab

    return make


def export_through_dialog(qtbot, tab: FailedCustomersTab, path: Path) -> Path:
    """Press Export…, choose `path` in its dialog and wait for the file."""
    qtbot.mouseClick(tab.export_button, Qt.MouseButton.LeftButton)
    dialog = tab.findChild(QFileDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.selectFile(str(path))
    with qtbot.waitSignal(tab.exportFinished, timeout=10_000) as blocker:
        dialog.accept()
    qtbot.waitUntil(lambda: tab.findChild(QFileDialog) is None, timeout=2000)
    assert blocker.args[0] == str(path)
    return Path(blocker.args[0])


def test_the_window_exports_with_the_separator_chosen(qtbot, make_tab, tmp_path):
    tab = make_tab()
    (tmp_path / "ut").mkdir()
    combo = tab.separator_combo
    assert [combo.itemData(i) for i in range(combo.count())] == [";", ",", "\t"]
    # this computer's separator is chosen at first, and named so
    assert tab.csv_separator() == system_separator()
    assert combo.currentText().endswith("(this computer's)")
    assert combo.accessibleName() and combo.toolTip()
    assert tab.separator_label.buddy() is combo

    combo.setCurrentIndex(combo.findData(";"))
    raw = export_through_dialog(qtbot, tab, tmp_path / "ut" / "semikolon.csv").read_bytes()
    assert raw.startswith(BOM + b"Customer ID;Username;Result;Error;")
    rows = rows_of(raw, ";")
    assert len(rows) == 4 and {len(row) for row in rows} == {len(CSV_COLUMNS)}
    assert sorted(row[1] for row in rows[1:]) == sorted(NAMES)

    combo.setCurrentIndex(combo.findData(","))
    raw = export_through_dialog(qtbot, tab, tmp_path / "ut" / "komma.csv").read_bytes()
    assert raw.startswith(BOM + b"Customer ID,Username,Result,Error,")
    rows = rows_of(raw, ",")
    assert len(rows) == 4 and {len(row) for row in rows} == {len(CSV_COLUMNS)}
    assert sorted(row[1] for row in rows[1:]) == sorted(NAMES)
    assert tab.csv_separator() == ","  # kept for the next export


TAB_PROBE = """
import json, locale, sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.models.failure_store import FailureStore
from app.views.failed_customers_tab import FailedCustomersTab
store = FailureStore()
before = locale.setlocale(locale.LC_NUMERIC)
tab = FailedCustomersTab(store, lambda: Path(sys.argv[1]))
print(json.dumps({"chosen": tab.csv_separator(), "text": tab.separator_combo.currentText(),
                  "before": before, "after": locale.setlocale(locale.LC_NUMERIC)}))
tab.deleteLater()
store.close()
"""


def test_the_window_offers_the_locale_separator_first(decimal_comma_locale, tmp_path):
    env = environment(QT_QPA_PLATFORM="offscreen", **decimal_comma_locale)
    done = subprocess.run([sys.executable, "-c", TAB_PROBE, str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["chosen"] == ";"
    assert shown["text"] == "Semicolon (;) (this computer's)"
    assert shown["before"] == shown["after"]


# -- error reports -------------------------------------------------------------------------

LINES = [ErrorLine("kunder_åäö.csv", 3, "Efternamn", "Ärlig; Öberg", "a last name is needed"),
         ErrorLine("kunder_åäö.csv", 5, "Födelsedatum", "31.02.1970",
                   "not a date (day, month, year: 31.02.1970)")]


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_the_error_report_uses_the_separator_given(tmp_path, delimiter):
    path = tmp_path / "error_report.csv"
    assert write_error_report(path, LINES, delimiter=delimiter) == 2
    raw = path.read_bytes()
    assert raw.startswith(BOM + delimiter.join(ERROR_REPORT_COLUMNS).encode())
    rows = rows_of(raw, delimiter)
    assert rows == [list(ERROR_REPORT_COLUMNS),
                    ["kunder_åäö.csv", "3", "Efternamn", "Ärlig; Öberg",
                     "a last name is needed"],
                    ["kunder_åäö.csv", "5", "Födelsedatum", "31.02.1970",
                     "not a date (day, month, year: 31.02.1970)"]]

    report = ErrorReport()
    report.lines.extend(LINES)
    copy = report.write(tmp_path / "copy.csv", delimiter=delimiter)
    assert copy.read_bytes() == raw


def test_the_error_report_without_a_choice_uses_the_system_separator(tmp_path):
    write_error_report(tmp_path / "r.csv", LINES)
    assert (tmp_path / "r.csv").read_bytes().startswith(
        BOM + system_separator().join(ERROR_REPORT_COLUMNS).encode())
    with pytest.raises(ValueError):
        write_error_report(tmp_path / "bad.csv", LINES, delimiter='"')
    assert not (tmp_path / "bad.csv").exists()


# -- reading them back ---------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_the_app_reads_its_own_files_back_and_skips_them_in_folders(tmp_path, delimiter):
    records = failures()
    export = export_failures(records, tmp_path / "failed_customers_20260101.csv",
                             delimiter=delimiter)
    report = tmp_path / "error_report_20260101_100000.csv"
    write_error_report(report, LINES, delimiter=delimiter)

    with CsvTable(export) as table:
        assert table.format.delimiter == delimiter
        assert table.columns == list(CSV_COLUMNS)
        rows = [cells for _number, cells in table.rows()]
    assert [row[1] for row in rows] == list(NAMES)
    assert json.loads(rows[0][9]) == records[0].original_data
    with CsvTable(report) as table:
        assert table.format.delimiter == delimiter
        assert [cells[3] for _number, cells in table.rows()] == ["Ärlig; Öberg", "31.02.1970"]

    # a results folder added as input: the app's own files are skipped, not imported
    search = find_customer_files([tmp_path])
    assert search.files == []
    assert sorted(Path(s.path).name for s in search.skipped) == sorted(
        [export.name, report.name])


# -- the command line ----------------------------------------------------------------------

MEMBER_HEADER = ("CustomerID;MMID;HHID;LoyaltyAccountid;FirstName;LastName;SSN;BirthDate;"
                 "IshouseholdOwner;MemberStatus;ReasonCode")


def member_file(path: Path) -> Path:
    """A member export with one row to refuse (31 February)."""
    rows = ["1;9000578;H1;L1;Åsa;Öberg;NULL;01.05.1966;1;Active;NULL",
            "2;9000590;H2;L2;Björn;Ärlig-Łukasz;NULL;31.02.1970;0;Active;NULL"]
    path.write_bytes(("\ufeff" + "\r\n".join([MEMBER_HEADER, *rows]) + "\r\n").encode())
    return path


def dry_run(source: Path, out: Path, *options: str, env: dict[str, str] | None = None
            ) -> bytes:
    done = run_cli("import", str(source), "--mapping", "Member export", "--dry-run",
                   "--output-dir", str(out), "--json", *options, env=env)
    assert done.returncode == 1, done.stderr
    return Path(json.loads(done.stdout)["error_report"]).read_bytes()


def test_the_command_line_writes_the_separator_asked_for(tmp_path):
    source = member_file(tmp_path / "medlemmar.csv")
    for option, separator in ((";", ";"), (",", ","), ("tab", "\t")):
        raw = dry_run(source, tmp_path / f"out{ord(separator)}", "--delimiter", option)
        rows = rows_of(raw, separator)
        assert rows[0] == list(ERROR_REPORT_COLUMNS)
        assert rows[1][:4] == ["medlemmar.csv", "3", "BirthDate", "31.02.1970"]
        assert len(rows) == 2

    done = run_cli("import", str(source), "--dry-run", "--delimiter", "|",
                   "--output-dir", str(tmp_path / "bad"))
    assert done.returncode == 2
    assert "--delimiter" in done.stderr and "';', ',' or 'tab'" in done.stderr


def test_the_command_line_uses_the_locale_separator_by_default(decimal_comma_locale,
                                                               tmp_path):
    source = member_file(tmp_path / "medlemmar.csv")
    raw = dry_run(source, tmp_path / "out", env=environment(**decimal_comma_locale))
    assert raw.startswith(BOM + b"file;row;column;value;message\r\n")
    assert rows_of(raw, ";")[1][:4] == ["medlemmar.csv", "3", "BirthDate", "31.02.1970"]


def test_an_import_writes_its_error_report_with_the_separator_asked_for(sandbox_thread,
                                                                        tmp_path):
    server = sandbox_thread.server
    source = member_file(tmp_path / "medlemmar.csv")
    done = run_cli("import", str(source), "--mapping", "Member export",
                   "--url", server.customers_url("c4r"), "--token", server.static_token,
                   "--output-dir", str(tmp_path / "out"), "--json", "--delimiter", ";")
    summary = json.loads(done.stdout)
    assert (summary["valid"], summary["invalid"]) == (1, 1), done.stderr
    raw = Path(summary["error_report"]).read_bytes()
    assert raw.startswith(BOM + b"file;row;column;value;message\r\n")
    rows = rows_of(raw, ";")
    assert len(rows) == 2 and rows[1][:4] == ["medlemmar.csv", "3", "BirthDate", "31.02.1970"]
