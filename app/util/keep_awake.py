"""Keeping the computer awake while an import runs.

An import of a million customers takes hours; a computer that goes to sleep halfway stops
it (the service then sees nothing for hours, the sign-in expires). While an import runs the
app asks the system not to sleep when idle. The display may still turn off, and closing a
laptop's lid or a low battery still puts it to sleep.

- Windows: `SetThreadExecutionState(ES_CONTINUOUS | ES_SYSTEM_REQUIRED)`. The state belongs
  to the calling thread: hold and release on the same thread (the GUI thread in the window,
  the main thread on the command line).
- macOS: an IOKit power assertion, `kIOPMAssertionTypePreventUserIdleSystemSleep`. It also
  keeps the app out of App Nap (Apple's Energy Efficiency Guide: an app that holds an IOKit
  power management assertion is not a candidate for App Nap), so a window hidden behind
  others keeps its timers and priority, which the import's progress and events rely on.
- Linux: `systemd-inhibit --what=idle:sleep --mode=block` running `cat`, which waits on its
  standard input: closing that pipe ends both and releases the lock, and so does the app's
  end, however it ends (the pipe closes with it). Nothing where systemd-inhibit is missing.

Keeping awake is a courtesy, never a condition: any failure leaves the system as it is and
is logged once per run of the app (what failed, never anything of an import).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger("bulk_import")

WHO = "Bulk Customer Import"
WHY = "Importing customers"

# Linux: the inhibitor and the command it runs for as long as the lock is held (a module
# value so that a system without systemd's logind, or a test, may name another)
INHIBIT_COMMAND: list[str] = ["systemd-inhibit", "--what=idle:sleep", "--mode=block",
                              f"--who={WHO}", f"--why={WHY}", "cat"]

# Windows: winbase.h
ES_CONTINUOUS = 0x80000000
ES_SYSTEM_REQUIRED = 0x00000001
# macOS: IOKit/pwr_mgt/IOPMLib.h, CoreFoundation/CFString.h
IOPM_ASSERTION_TYPE = b"PreventUserIdleSystemSleep"  # kIOPMAssertionTypePreventUserIdleSystemSleep
IOPM_ASSERTION_LEVEL_ON = 255  # kIOPMAssertionLevelOn
CF_STRING_ENCODING_UTF8 = 0x08000100  # kCFStringEncodingUTF8
IOKIT = "/System/Library/Frameworks/IOKit.framework/IOKit"
CORE_FOUNDATION = "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation"

_logged: set[str] = set()  # the kinds of trouble logged already, this run

Release = Callable[[], None]


class KeepAwake:
    """Holds the computer awake from `hold()` to `release()` (or for a `with` block).

    Both are safe to call twice and never raise. On Windows call both on the same thread.
    """

    def __init__(self) -> None:
        self._release: Release | None = None

    @property
    def held(self) -> bool:
        return self._release is not None

    def hold(self) -> None:
        if self._release is not None:
            return
        try:
            self._release = _hold()
        except Exception as exc:  # a courtesy: the import goes on either way
            _log_once("hold", f"The computer may sleep during the import: keeping it "
                      f"awake failed ({type(exc).__name__}: {exc})")

    def release(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            release()
        except Exception as exc:
            _log_once("release", f"Keeping the computer awake did not work as asked "
                      f"({type(exc).__name__}: {exc})")

    def __enter__(self) -> KeepAwake:
        self.hold()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


def _log_once(kind: str, message: str, level: int = logging.WARNING) -> None:
    """Log `message` unless a message of this `kind` was logged before (every import of a
    run would otherwise say the same)."""
    if kind not in _logged:
        _logged.add(kind)
        log.log(level, "%s", message)


def _hold() -> Release | None:
    """Ask the system to stay awake; the function that lets it sleep again (None: nothing
    was held)."""
    if sys.platform == "win32":
        return _hold_windows()
    if sys.platform == "darwin":
        return _hold_macos()
    return _hold_linux()


def _hold_windows() -> Release:
    if sys.platform != "win32":  # for type checkers on other systems: windll is Windows'
        raise OSError("not Windows")
    set_state = ctypes.windll.kernel32.SetThreadExecutionState
    set_state.argtypes = [ctypes.c_uint32]
    set_state.restype = ctypes.c_uint32  # EXECUTION_STATE: the previous state, 0 on failure
    if not set_state(ES_CONTINUOUS | ES_SYSTEM_REQUIRED):
        raise OSError("SetThreadExecutionState refused")
    thread = threading.get_ident()

    def release() -> None:
        # the state is the thread's: from another thread this would release nothing
        if threading.get_ident() != thread:
            raise RuntimeError("released on another thread than it was held on")
        set_state(ES_CONTINUOUS)

    return release


def _hold_macos() -> Release:
    core = ctypes.CDLL(CORE_FOUNDATION)
    iokit = ctypes.CDLL(IOKIT)
    core.CFStringCreateWithCString.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                               ctypes.c_uint32]
    core.CFStringCreateWithCString.restype = ctypes.c_void_p
    core.CFRelease.argtypes = [ctypes.c_void_p]
    core.CFRelease.restype = None
    create = iokit.IOPMAssertionCreateWithName
    create.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p,
                       ctypes.POINTER(ctypes.c_uint32)]
    create.restype = ctypes.c_int32  # IOReturn: 0 is kIOReturnSuccess
    free = iokit.IOPMAssertionRelease
    free.argtypes = [ctypes.c_uint32]
    free.restype = ctypes.c_int32

    kind = core.CFStringCreateWithCString(None, IOPM_ASSERTION_TYPE, CF_STRING_ENCODING_UTF8)
    name = core.CFStringCreateWithCString(None, WHY.encode(), CF_STRING_ENCODING_UTF8)
    try:
        if not kind or not name:
            raise OSError("CFStringCreateWithCString failed")
        assertion = ctypes.c_uint32(0)
        result = create(kind, IOPM_ASSERTION_LEVEL_ON, name, ctypes.byref(assertion))
    finally:
        for text in (kind, name):
            if text:
                core.CFRelease(text)
    if result != 0:
        raise OSError(f"IOPMAssertionCreateWithName returned {result & 0xFFFFFFFF:#x}")

    def release() -> None:
        result = free(assertion.value)
        if result != 0:
            raise OSError(f"IOPMAssertionRelease returned {result & 0xFFFFFFFF:#x}")

    return release


def _hold_linux() -> Release | None:
    command = list(INHIBIT_COMMAND)
    if not command or shutil.which(command[0]) is None:
        _log_once("missing", f"{command[0] if command else 'No inhibitor'} not found: the "
                  "computer may sleep during imports", logging.INFO)
        return None
    # its own session: a Ctrl+C in the terminal goes to the command line's import (which
    # stops cleanly, taking a few seconds), not to the lock it still needs meanwhile
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)

    def release() -> None:
        ended = process.poll()  # before its end of the pipe closes: had it ended already?
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if ended is not None and ended != 0:
            # e.g. no logind to talk to (a container, a system without systemd's session)
            raise OSError(f"{command[0]} ended early with exit status {ended}")

    return release
