"""How the window looks on Windows and macOS desktops: the system's file dialogs, a first
window that fits the screen, status colours readable in light and dark palettes,
shortcuts written as the system writes them (pytest-qt offscreen, real files, a real
sandbox import, real processes for other screen set-ups)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSettings, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from app.models.file_list_model import FileListModel
from app.models.history_model import HistoryModel
from app.models.jobs import JobState
from app.models.status_colours import (
    MIN_CONTRAST,
    StatusColours,
    Tone,
    contrast_ratio,
    status_colours,
)
from app.services.connection.secret_store import SecretStore
from app.services.pipeline.import_events import ImportProgress, ImportState
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sandbox.sandbox_server import SandboxConfig, SandboxThread
from app.services.sources import mapping_profiles
from app.views.desktop_look import (
    START_IMPORT_KEYS,
    fits_a_screen,
    fitted_window_rect,
    shortcut_text,
    show_tone,
)
from app.views.files_tab import FilesTab
from app.views.history_tab import HistoryTab
from app.views.import_tab import ImportTab
from app.views.main_window import MainWindow
from app.views.mapping_dialog import MappingDialog
from tests.conftest import ROOT
from tests.test_history_tab import job
from tests.test_main_window import connect_to, import_and_wait, open_window, stop_any_import
from tests.test_mapping_dialog import write_member_csv

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
NATIVE = QKeySequence.SequenceFormat.NativeText


def make_palette(window: str, base: str, text: str) -> QPalette:
    """A whole palette from three colours, as a system theme would give it."""
    palette = QPalette(QColor(window), QColor(window))  # (button, window): the rest derived
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        palette.setColor(role, QColor(text))
    palette.setColor(QPalette.ColorRole.Base, QColor(base))
    palette.setColor(QPalette.ColorRole.AlternateBase, QColor(base).lighter(115)
                     if QColor(base).lightnessF() < 0.5 else QColor(base).darker(104))
    return palette


def dark_palette() -> QPalette:
    palette = make_palette("#202020", "#181818", "#e0e0e0")
    palette.setColor(QPalette.ColorRole.Button, QColor("#2d2d2d"))
    palette.setColor(QPalette.ColorRole.Highlight, QColor("#2f65ca"))
    palette.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    palette.setColor(QPalette.ColorRole.PlaceholderText, QColor("#9a9a9a"))
    palette.setColor(QPalette.ColorRole.ToolTipBase, QColor("#2d2d2d"))
    palette.setColor(QPalette.ColorRole.ToolTipText, QColor("#e0e0e0"))
    return palette


@pytest.fixture
def app_palette(qapp: QApplication) -> Iterator[QApplication]:
    """The application; its palette as it was again afterwards (other tests need it)."""
    before = QPalette(QGuiApplication.palette())
    yield qapp
    qapp.setPalette(before)


# -- status colours ---------------------------------------------------------------------------

PALETTES = {
    "dark (as asked)": ("#202020", "#202020", "#e0e0e0"),
    "dark, darker base": ("#202020", "#181818", "#e0e0e0"),
    "macOS dark": ("#323232", "#1e1e1e", "#dfdfdf"),
    "Windows 11 dark": ("#1c1c1c", "#2b2b2b", "#ffffff"),
    "Fusion light": ("#efefef", "#ffffff", "#000000"),
    "macOS light": ("#ececec", "#ffffff", "#000000"),
    "Windows 11 light": ("#f3f3f3", "#ffffff", "#000000"),
    "odd grey theme": ("#808080", "#909090", "#000000"),
}


@pytest.mark.parametrize("name", list(PALETTES))
def test_status_colours_read_well_on_the_palette(name: str) -> None:
    window, base, text = PALETTES[name]
    colours = status_colours(make_palette(window, base, text))
    assert colours.dark == (QColor(window).lightnessF() < 0.5)
    grounds = {"window": QColor(window), "base": QColor(base)}
    checked = 0
    for tone in Tone:
        for ground_name, ground in grounds.items():
            ratio = contrast_ratio(colours.colour(tone), ground)
            assert ratio >= MIN_CONTRAST, (tone, ground_name, ratio)
            checked += 1
    assert checked == 2 * len(Tone) == 8
    # the warning banner and not-imported cells: a background with texts of their own
    banner = colours.warning_background
    for colour in (colours.on_warning, colours.warning, colours.error):
        assert contrast_ratio(colour, banner) >= MIN_CONTRAST


def test_dark_palettes_get_colours_of_their_own() -> None:
    light = status_colours(make_palette("#efefef", "#ffffff", "#000000"))
    dark = status_colours(dark_palette())
    assert (light.dark, dark.dark) == (False, True)
    for tone in Tone:
        # lighter on the dark palette, and still the same hue family (red stays red)
        assert dark.colour(tone).lightness() > light.colour(tone).lightness(), tone
    assert dark.error.red() > dark.error.green() and dark.success.green() > dark.success.red()
    # what the views used to show, fixed, on near-black: the reason for all this
    assert contrast_ratio(QColor("#b3261e"), QColor("#202020")) < MIN_CONTRAST
    assert contrast_ratio(QColor("#1a7f37"), QColor("#202020")) < MIN_CONTRAST


def test_models_colour_their_text_for_the_palette_in_use(app_palette: QApplication,
                                                         tmp_path: Path) -> None:
    history = HistoryModel()
    history.set_jobs([job(1, JobState.FAILED), job(2, JobState.INTERRUPTED),
                      job(3, JobState.COMPLETED)])
    files = FileListModel()
    path = tmp_path / "kunder.json"
    path.write_text("[]", encoding="utf-8")
    files.add_paths([path])
    files.set_status([path], "failed", "stopped")

    def foregrounds() -> dict[str, QColor]:
        colours: dict[str, QColor] = {}
        for row in range(history.rowCount()):
            index = history.index(row, HistoryModel.STATE)
            brush = history.data(index, Qt.ItemDataRole.ForegroundRole)
            colours[history.data(index)] = brush.color()
        brush = files.data(files.index(0, FileListModel.NAME), Qt.ItemDataRole.ForegroundRole)
        colours["file failed"] = brush.color()
        return colours

    for palette in (make_palette("#efefef", "#ffffff", "#000000"), dark_palette()):
        app_palette.setPalette(palette)
        shown = foregrounds()
        assert len(shown) == 4, shown
        expected = status_colours(palette)
        assert shown["file failed"] == expected.error
        assert expected.success in shown.values() and expected.warning in shown.values()
        for colour in shown.values():
            assert contrast_ratio(colour, palette.color(QPalette.ColorRole.Base)) >= 4.5


def test_coloured_labels_follow_a_switch_to_dark(app_palette: QApplication,
                                                 qtbot: QtBot) -> None:
    app_palette.setPalette(make_palette("#efefef", "#ffffff", "#000000"))
    box = QWidget()
    qtbot.addWidget(box)
    label = QLabel("3 failed")
    QVBoxLayout(box).addWidget(label)
    show_tone(label, Tone.ERROR)
    box.show()
    qtbot.waitExposed(box)
    role = QPalette.ColorRole.WindowText
    assert label.palette().color(role) == status_colours().error
    assert not status_colours().dark

    dark = dark_palette()
    app_palette.setPalette(dark)  # the system went dark
    qtbot.waitUntil(lambda: label.palette().color(role) == status_colours(dark).error)
    assert contrast_ratio(label.palette().color(role), QColor("#202020")) >= MIN_CONTRAST
    assert label.palette().color(QPalette.ColorRole.Window) == QColor("#202020")
    show_tone(label, None)  # back to the palette's own text colour
    assert label.palette().color(role) == QColor("#e0e0e0")


def test_the_import_tab_figures_in_a_dark_palette(app_palette: QApplication,
                                                  qtbot: QtBot) -> None:
    app_palette.setPalette(dark_palette())
    tab = ImportTab(SecretStore())
    qtbot.addWidget(tab)
    tab.show()
    qtbot.waitExposed(tab)
    role = QPalette.ColorRole.WindowText
    window = tab.palette().color(QPalette.ColorRole.Window)
    # no failure yet: the figure in the palette's own colour ("0" in red reads as trouble)
    tab.show_progress(ImportProgress(state=ImportState.RUNNING, failed=0))
    assert tab.failed_value.palette().color(role) == tab.palette().color(role)
    tab.show_progress(ImportProgress(state=ImportState.RUNNING, failed=3))
    for label in (tab.succeeded_value, tab.failed_value):
        assert contrast_ratio(label.palette().color(role), window) >= MIN_CONTRAST
    colours: StatusColours = status_colours(tab.palette())
    assert tab.failed_value.palette().color(role) == colours.error
    assert tab.succeeded_value.palette().color(role) == colours.success
    # the pause banner: its own dark background, not the light one of a light palette
    style = tab.pause_banner.styleSheet()
    assert colours.warning_background.name() in style and "#fff4e5" not in style


# -- shortcuts ---------------------------------------------------------------------------------


def _texts_in(source: str) -> list[str]:
    """Every string of a module but its docstrings (those explain; they show nothing)."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                docstrings.add(id(body[0].value))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_no_shortcut_is_spelled_out_by_hand_in_the_views() -> None:
    views = sorted((ROOT / "app" / "views").glob("*.py"))
    assert len(views) > 10
    spelled = [(path.name, text) for path in views
               for text in _texts_in(path.read_text(encoding="utf-8"))
               if "Ctrl+" in text or "Ctrl-" in text or "Cmd+" in text]
    assert spelled == []


def test_shortcut_texts_are_the_systems(qtbot: QtBot, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.import_tab.set_run_settings({"output_dir": tmp_path / "out"})
    start = START_IMPORT_KEYS.toString(NATIVE)
    assert shortcut_text(START_IMPORT_KEYS) == start
    assert win.start_action.shortcut() == START_IMPORT_KEYS
    assert win.import_tab.start_button.toolTip() == f"Import every ready file ({start})"
    pause = win.pause_action.shortcut().toString(NATIVE)
    assert win.import_tab.pause_button.toolTip().endswith(f"({pause})")
    copy = QKeySequence(QKeySequence.StandardKey.Copy).toString(NATIVE)
    assert win.failed_tab.copy_button.toolTip().endswith(f"({copy})")
    shortcuts = [action.shortcut().toString(NATIVE) for action in win.view_actions]
    assert len(shortcuts) == 4 and all(shortcuts)
    win.files_tab.shutdown()


# -- file dialogs ------------------------------------------------------------------------------


def test_file_dialogs_are_the_systems(qtbot: QtBot, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Not forced to Qt's own dialog (offscreen, Qt shows its own anyway: there is no
    other), checked on each dialog as the views open it."""
    forced: dict[str, bool] = {}

    def check(name: str, dialog: QFileDialog | None) -> None:
        assert dialog is not None and dialog.isVisible(), name
        forced[name] = dialog.testOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.reject()

    files = FilesTab()
    qtbot.addWidget(files)
    files.open_add_files_dialog()
    check("add files", files.findChild(QFileDialog, "addFilesDialog"))
    qtbot.waitUntil(lambda: files.findChild(QFileDialog) is None)
    files.open_add_directory_dialog()
    check("add folder", files.findChild(QFileDialog, "addDirectoryDialog"))
    files.shutdown()

    tab = ImportTab(SecretStore())
    qtbot.addWidget(tab)
    tab.output_button.click()
    check("results folder", tab.findChild(QFileDialog))

    monkeypatch.setattr(mapping_profiles, "profiles_folder", lambda: tmp_path / "profiles")
    mapping = MappingDialog(write_member_csv(tmp_path / "medlemmar.csv"))
    qtbot.addWidget(mapping)
    check("import mapping", mapping.open_import_dialog())
    check("export mapping", mapping.open_export_dialog())
    mapping.wait()

    report = tmp_path / "error_report_job2.csv"
    report.write_text("\ufefffile,row,column,value,message\r\n", encoding="utf-8")
    history = HistoryTab(lambda: tmp_path)
    qtbot.addWidget(history)
    history.model.set_jobs([replace(job(2), error_report=str(report))])
    assert history.select_job(2)
    check("save report copy", history.open_save_report_dialog())

    assert forced == dict.fromkeys(("add files", "add folder", "results folder",
                                    "import mapping", "export mapping", "save report copy"),
                                   False)


# -- the window's size -------------------------------------------------------------------------


def test_fitted_window_rect() -> None:
    preferred = QSize(1180, 780)
    # 1920×1080 at 150 %: 1280×720 logical pixels, 40 of them the task bar
    laptop = QRect(0, 0, 1280, 680)
    rect = fitted_window_rect(laptop, preferred)
    assert rect == QRect(64, 34, 1152, 612)  # 90 % of it, centred
    assert fits_a_screen(rect, [laptop])
    # a big screen: the preferred size, centred; a screen right of the main one too
    assert fitted_window_rect(QRect(0, 0, 2560, 1400), preferred) == QRect(690, 310, 1180, 780)
    assert fitted_window_rect(QRect(1920, 25, 1920, 1055), preferred).center() == \
        QRect(1920, 25, 1920, 1055).center()
    # never below what the layout needs, unless the screen itself is smaller
    assert fitted_window_rect(laptop, preferred, QSize(1200, 300)).size() == QSize(1200, 612)
    assert fitted_window_rect(QRect(0, 0, 800, 600), preferred, QSize(840, 465)) == \
        QRect(0, 30, 800, 540)
    assert not fits_a_screen(QRect(1500, 200, 1600, 1000), [laptop])
    assert fits_a_screen(QRect(1500, 200, 1600, 1000), [laptop, QRect(1280, 0, 2560, 1400)])


SCREEN_SCRIPT = """
import json, sys
from PySide6.QtCore import QRect, QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.views.main_window import MainWindow
settings = QSettings(sys.argv[1], QSettings.Format.IniFormat)
window = MainWindow(settings=settings)
window.show()
app.processEvents()
if len(sys.argv) > 2:  # moved there by the user, then closed
    window.setGeometry(QRect(*json.loads(sys.argv[2])))
    app.processEvents()  # the window system says which screen it is on now
    window.save_settings()
g, f = window.geometry(), window.frameGeometry()
areas = [s.availableGeometry() for s in app.screens()]
print(json.dumps({"geometry": [g.x(), g.y(), g.width(), g.height()],
                  "frame": [f.x(), f.y(), f.width(), f.height()],
                  "areas": [[a.x(), a.y(), a.width(), a.height()] for a in areas]}))
window.files_tab.shutdown()
"""


def run_on_screens(tmp_path: Path, screens: list[tuple[int, int, int, int]],
                   settings: Path, move_to: tuple[int, int, int, int] | None = None
                   ) -> dict[str, list]:
    """The app's window in a process of its own whose (offscreen) screens are `screens`."""
    config = tmp_path / f"screens_{len(screens)}.json"
    config.write_text(json.dumps({"screens": [
        {"name": f"screen{i}", "x": x, "y": y, "width": w, "height": h, "logicalDpi": 96,
         "logicalBaseDpi": 96, "dpr": 1} for i, (x, y, w, h) in enumerate(screens)]}),
        encoding="utf-8")
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}",
               HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / "config"))
    args = [sys.executable, "-c", SCREEN_SCRIPT, str(settings)]
    if move_to is not None:
        args.append(json.dumps(list(move_to)))
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_window_fits_a_small_screen_and_a_saved_place_must_fit(tmp_path: Path) -> None:
    laptop = (0, 0, 1280, 680)  # 1080p at 150 %, without the task bar
    monitor = (1280, 0, 2560, 1400)
    settings = tmp_path / "settings.ini"
    first = run_on_screens(tmp_path, [laptop], settings)
    assert first["areas"] == [list(laptop)]
    assert first["geometry"] == [64, 34, 1152, 612]  # 90 % of the work area, centred
    assert QRect(*laptop).contains(QRect(*first["frame"]))

    # moved to the big monitor and closed there; opened again with the monitor present
    on_monitor = (1500, 200, 1600, 1000)
    run_on_screens(tmp_path, [laptop, monitor], settings, move_to=on_monitor)
    assert run_on_screens(tmp_path, [laptop, monitor], settings)["geometry"] == \
        list(on_monitor)
    # ... and without it: not squeezed to the whole laptop screen, but the first size
    again = run_on_screens(tmp_path, [laptop], settings)
    assert again["geometry"] == [64, 34, 1152, 612]


# -- screenshots in light and dark -------------------------------------------------------------


def test_screenshots_of_the_four_tabs_in_light_and_dark(app_palette: QApplication, qtbot,
                                                        qloop, tmp_path: Path) -> None:
    files = tmp_path / "in"
    write_customer_file(files / "kunder_åäö.json", generate_customers(300, refused=6,
                                                                        invalid=3))
    broken = files / "trasig.json"
    broken.write_text('{"data": [', encoding="utf-8")  # cannot be imported: red
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    with SandboxThread(SandboxConfig(static_token="gui-test-token", seed=5)) as sandbox:
        app_palette.setPalette(make_palette("#efefef", "#ffffff", "#000000"))
        win = open_window(qtbot, settings, tmp_path / "out", max_retries=0)
        try:
            win.files_tab.add_paths([files])
            qtbot.waitUntil(lambda: len(win.files_tab.ready_files()) == 1
                            and not win.files_tab.is_counting(), timeout=10_000)
            connect_to(win, sandbox)
            win.import_tab.set_run_settings({"concurrency": 1})
            summary = import_and_wait(qtbot, qloop, win)
            assert summary.total == 300 and summary.failed > 0
            qtbot.waitUntil(lambda: win.failed_tab.model.rowCount() == summary.failed,
                            timeout=5000)
            qtbot.waitUntil(lambda: win.history_tab.model.rowCount() == 1, timeout=5000)
            SCREENSHOTS.mkdir(exist_ok=True)
            saved = 0
            for look, palette in (("light", None), ("dark", dark_palette())):
                if palette is not None:
                    app_palette.setPalette(palette)  # the system went dark
                    qtbot.waitUntil(lambda: win.failed_tab.table.palette().color(
                        QPalette.ColorRole.Window) == QColor("#202020"))  # posted to them
                window = win.palette().color(QPalette.ColorRole.Window)
                red = win.import_tab.failed_value.palette().color(QPalette.ColorRole.WindowText)
                assert contrast_ratio(red, window) >= MIN_CONTRAST, look
                assert red == status_colours(win.palette()).error
                for index, name in enumerate(("files", "import", "failed_customers",
                                              "history")):
                    win.tabs.setCurrentIndex(index)
                    path = SCREENSHOTS / f"{name}_tab_{look}.png"
                    assert win.grab().save(str(path))
                    assert path.stat().st_size > 10_000
                    saved += 1
            assert saved == 8
        finally:
            stop_any_import(qloop, win)
            win.files_tab.shutdown()


def test_mapping_dialog_in_a_dark_palette(app_palette: QApplication, qtbot: QtBot,
                                          tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mapping_profiles, "profiles_folder", lambda: tmp_path / "profiles")
    app_palette.setPalette(dark_palette())
    dialog = MappingDialog(write_member_csv(tmp_path / "medlemmar.csv"))
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitUntil(lambda: bool(dialog.preview_rows()), timeout=10_000)
    colours = status_colours(dialog.columns_table.palette())
    assert colours.dark
    table = dialog.columns_table
    unmapped = [table.item(row, 0) for row in range(table.rowCount())
                if table.item(row, 0).text() in dialog.unmapped_columns()]
    assert len(unmapped) == 2  # Butik, Telefon: orange on a dark amber, not on light cream
    for item in unmapped:
        assert item.background().color() == colours.warning_background
        assert item.foreground().color() == colours.warning
        assert contrast_ratio(item.foreground().color(),
                              item.background().color()) >= MIN_CONTRAST
    role = QPalette.ColorRole.WindowText
    assert dialog.unmapped_label.palette().color(role) == colours.warning
    # the refused row of the preview is in the dark palette's red
    assert colours.error.name() in dialog.preview_view.toHtml()
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / "mapping_dialog_dark.png"
    assert dialog.grab().save(str(path))
    assert path.stat().st_size > 10_000
    dialog.wait()
