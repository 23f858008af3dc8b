"""Text colours for errors, warnings, success and dimmed text that read well on the palette
in use, light or dark: the item models' ForegroundRole colours and the views' coloured
labels all come from here.

Windows and macOS switch the application palette when the system goes dark; a fixed red
that reads well on white is hard to read on near-black. The choice goes by the palette's
window colour (the app supports Qt versions before `QStyleHints.colorScheme()`), and each
colour is checked against the WCAG contrast ratio for normal text (4.5:1) on the
palette's window and base colours, moved towards black or white until it passes: an
unusual or high-contrast theme stays readable too.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from PySide6.QtGui import QColor, QGuiApplication, QPalette

MIN_CONTRAST = 4.5  # WCAG 2 level AA, normal text


class Tone(enum.Enum):
    """What a coloured text says."""

    ERROR = "error"
    WARNING = "warning"
    SUCCESS = "success"
    DIMMED = "dimmed"  # still readable, but clearly in the background (e.g. resolved)


@dataclass(frozen=True)
class StatusColours:
    """The text colours of one palette, and a background for warning banners and cells
    with the text colour for it (the warning colour reads on it too)."""

    error: QColor
    warning: QColor
    success: QColor
    dimmed: QColor
    warning_background: QColor
    on_warning: QColor  # a banner's text on warning_background
    dark: bool

    def colour(self, tone: Tone) -> QColor:
        return QColor(getattr(self, tone.value))


# the text colours for light and for dark palettes, before the contrast check
_LIGHT = {Tone.ERROR: "#b3261e", Tone.WARNING: "#8a5100", Tone.SUCCESS: "#18753a",
          Tone.DIMMED: "#6b6b6b"}
_DARK = {Tone.ERROR: "#ff8a80", Tone.WARNING: "#ffb74d", Tone.SUCCESS: "#6fdc8c",
         Tone.DIMMED: "#a6a6a6"}
_LIGHT_WARNING_BACKGROUND, _LIGHT_ON_WARNING = "#fff4e5", "#3d2a00"
_DARK_WARNING_BACKGROUND, _DARK_ON_WARNING = "#3d2e14", "#ffe8c2"


def relative_luminance(colour: QColor) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 black … 1 white)."""
    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    rgb = colour.toRgb()
    return (0.2126 * linear(rgb.redF()) + 0.7152 * linear(rgb.greenF())
            + 0.0722 * linear(rgb.blueF()))


def contrast_ratio(first: QColor, second: QColor) -> float:
    """WCAG 2 contrast ratio of two colours, 1 (none) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)),
                             reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def is_dark(palette: QPalette) -> bool:
    """Whether the palette is a dark one (light text on a dark window)."""
    return _is_dark_window(palette.color(QPalette.ColorRole.Window))


def _is_dark_window(window: QColor) -> bool:
    return window.lightnessF() < 0.5


def _mix(colour: QColor, other: QColor, share: float) -> QColor:
    a, b = colour.toRgb(), other.toRgb()
    return QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * share,
                           a.greenF() + (b.greenF() - a.greenF()) * share,
                           a.blueF() + (b.blueF() - a.blueF()) * share)


def _readable(colour: QColor, backgrounds: Iterable[QColor], towards: QColor) -> QColor:
    """`colour`, moved towards `towards` (black or white) only as far as it takes to read
    at MIN_CONTRAST on every background."""
    grounds = list(backgrounds)
    for step in range(21):
        candidate = _mix(colour, towards, step / 20)
        if all(contrast_ratio(candidate, ground) >= MIN_CONTRAST for ground in grounds):
            return QColor(candidate.name())  # whole 8-bit channels, as painted
    return QColor(towards)


@lru_cache(maxsize=16)
def _colours_for(window_rgba: int, base_rgba: int) -> StatusColours:
    window, base = QColor.fromRgba(window_rgba), QColor.fromRgba(base_rgba)
    dark = _is_dark_window(window)
    towards = QColor("#ffffff") if dark else QColor("#000000")
    choice = _DARK if dark else _LIGHT
    background = QColor(_DARK_WARNING_BACKGROUND if dark else _LIGHT_WARNING_BACKGROUND)
    grounds = (window, base)
    return StatusColours(
        # an error text may stand on the warning background too (a missing column that
        # is not imported)
        error=_readable(QColor(choice[Tone.ERROR]), (*grounds, background), towards),
        warning=_readable(QColor(choice[Tone.WARNING]), (*grounds, background), towards),
        success=_readable(QColor(choice[Tone.SUCCESS]), grounds, towards),
        dimmed=_readable(QColor(choice[Tone.DIMMED]), grounds, towards),
        warning_background=background,
        on_warning=_readable(QColor(_DARK_ON_WARNING if dark else _LIGHT_ON_WARNING),
                             (background,), towards),
        dark=dark)


def status_colours(palette: QPalette | None = None) -> StatusColours:
    """The status colours for `palette` (by default the application's)."""
    if palette is None:
        palette = QGuiApplication.palette()
    return _colours_for(palette.color(QPalette.ColorRole.Window).rgba(),
                        palette.color(QPalette.ColorRole.Base).rgba())
