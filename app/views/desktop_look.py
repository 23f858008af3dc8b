"""How the window fits each desktop: shortcuts as the system writes them (⌘ on macOS),
status colours that follow a light or dark palette, and a first window size that fits the
screen."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QByteArray, QEvent, QKeyCombination, QObject, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication, QKeySequence, QPalette
from PySide6.QtWidgets import QWidget

from app.models.status_colours import StatusColours, Tone, status_colours

# -- shortcuts -------------------------------------------------------------------------------
# Qt's Ctrl is the Command key on macOS: these are ⌘-shortcuts there.


def _ctrl(key: Qt.Key, *, shift: bool = False) -> QKeySequence:
    modifiers = Qt.KeyboardModifier.ControlModifier
    if shift:
        modifiers |= Qt.KeyboardModifier.ShiftModifier
    return QKeySequence(QKeyCombination(modifiers, key))


ADD_DIRECTORY_KEYS = _ctrl(Qt.Key.Key_O, shift=True)
LOAD_RETRY_KEYS = _ctrl(Qt.Key.Key_R)
OPEN_RESULTS_KEYS = _ctrl(Qt.Key.Key_R, shift=True)
START_IMPORT_KEYS = _ctrl(Qt.Key.Key_Return)
PAUSE_KEYS = _ctrl(Qt.Key.Key_P)
CANCEL_KEYS = _ctrl(Qt.Key.Key_Period)
TEST_CONNECTION_KEYS = _ctrl(Qt.Key.Key_T)
TAB_KEYS = tuple(_ctrl(key) for key in (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3,
                                        Qt.Key.Key_4))


def shortcut_text(keys: QKeySequence | QKeySequence.StandardKey) -> str:
    """A shortcut as this system shows it in menus: "Ctrl+P" on Windows, "⌘P" on macOS."""
    return QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)


# -- status colours --------------------------------------------------------------------------


def _surroundings(widget: QWidget) -> QPalette:
    # the palette the widget inherits: its own holds the colours set here
    parent = widget.parentWidget()
    return parent.palette() if parent is not None else QGuiApplication.palette()


class _PaletteFollower(QObject):
    """Applies a widget's colours now and again whenever its palette changes (the system
    switching between light and dark, or the widget moving into another window)."""

    def __init__(self, widget: QWidget, apply: Callable[[QWidget, StatusColours], None]
                 ) -> None:
        super().__init__(widget)
        self._apply = apply
        self._applied: StatusColours | None = None
        widget.installEventFilter(self)
        self.update(widget)

    def set_apply(self, widget: QWidget,
                  apply: Callable[[QWidget, StatusColours], None]) -> None:
        self._apply = apply
        self._applied = None
        self.update(widget)

    def update(self, widget: QWidget) -> None:
        colours = status_colours(_surroundings(widget))
        if colours != self._applied:  # setting them changes the palette again: once only
            self._applied = colours
            self._apply(widget, colours)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.PaletteChange and isinstance(watched, QWidget):
            self.update(watched)
        return False


def follow_palette(widget: QWidget, apply: Callable[[QWidget, StatusColours], None]) -> None:
    """Call `apply(widget, colours)` now and whenever the palette around `widget` changes;
    a later call replaces the earlier `apply`."""
    follower = widget.findChild(_PaletteFollower, "",
                                Qt.FindChildOption.FindDirectChildrenOnly)
    if follower is None:
        _PaletteFollower(widget, apply)
    else:
        follower.set_apply(widget, apply)


def show_tone(widget: QWidget, tone: Tone | None) -> None:
    """Show the widget's text in the colour of `tone` for the palette in use, now and after
    palette changes; None: the palette's own text colour again."""
    def apply(target: QWidget, colours: StatusColours) -> None:
        if tone is None:
            target.setPalette(QPalette())  # nothing of its own: all inherited
            return
        palette = target.palette()
        colour = colours.colour(tone)
        for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text):
            palette.setColor(role, colour)
        target.setPalette(palette)

    follow_palette(widget, apply)


def tone_name(widget: QWidget, tone: Tone) -> str:
    """The colour of `tone` around `widget`, as #rrggbb for rich text."""
    return status_colours(widget.palette()).colour(tone).name()


# -- the window's size -----------------------------------------------------------------------

SCREEN_SHARE = 0.9  # the most of the screen's free area a new window takes


def fitted_window_rect(available: QRect, preferred: QSize, minimum: QSize | None = None,
                       share: float = SCREEN_SHARE) -> QRect:
    """The `preferred` size, shrunk to at most `share` of the `available` area (the
    screen without task bar, Dock and menu bar) but not below `minimum` (what the window's
    layout needs) unless the area itself is smaller, centred in the area."""
    least = minimum if minimum is not None else QSize(0, 0)
    width = max(min(preferred.width(), int(available.width() * share)), least.width())
    height = max(min(preferred.height(), int(available.height() * share)), least.height())
    size = QSize(min(width, available.width()), min(height, available.height()))
    rect = QRect(available.topLeft(), size)
    rect.moveCenter(available.center())
    return rect


def fits_a_screen(rect: QRect, available: Iterable[QRect]) -> bool:
    """Whether `rect` lies wholly inside one of the `available` screen areas."""
    return any(area.contains(rect) for area in available)


PREFERRED_WINDOW_SIZE = QSize(1180, 780)  # the first window's size where the screen has room


def place_window(window: QWidget, saved: object, normal_rect: object) -> None:
    """The saved size and place (`restoreGeometry`) if they fit on a screen present now (a
    second monitor may be gone, or the scaling changed); else a size that fits this
    screen (also once after settings saved without the rectangle).

    The saved rectangle is checked, not what restoreGeometry makes of it: Qt squeezes a
    window that no longer fits to nearly the whole screen instead."""
    areas = [screen.availableGeometry() for screen in QGuiApplication.screens()]
    if (isinstance(saved, QByteArray | bytes) and isinstance(normal_rect, QRect)
            and fits_a_screen(normal_rect, areas) and window.restoreGeometry(saved)):
        return
    screen = window.screen() or QGuiApplication.primaryScreen()
    window.setGeometry(fitted_window_rect(screen.availableGeometry(), PREFERRED_WINDOW_SIZE,
                                          window.minimumSizeHint()))
