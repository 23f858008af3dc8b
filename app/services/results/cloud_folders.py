"""Recognise a results folder inside a cloud-synced folder (OneDrive, iCloud Drive, Dropbox,
Google Drive), so the user hears of it before an import writes thousands of files there.

A failing import writes one file per failed customer; a sync client then uploads each one,
which is slow, uses the network and may send personal data where it should not go. The most
common case is not a choice at all: Windows' OneDrive backup moves Documents (the default
results folder) into OneDrive.

Pure Python, no Qt: the command line and the window share it. The check looks at the path
(and, where a client writes one down, at where that client keeps its folder); it never asks
the sync client, so a folder synced by some other tool goes unnoticed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePath

ONEDRIVE, ICLOUD, DROPBOX, GOOGLE_DRIVE = "OneDrive", "iCloud Drive", "Dropbox", "Google Drive"

# Windows sets these to the OneDrive folders of the signed-in accounts
ONEDRIVE_VARIABLES = ("OneDrive", "OneDriveCommercial", "OneDriveConsumer")


def cloud_sync_service(folder: PurePath | str, *, env: Mapping[str, str] | None = None,
                       home: Path | None = None) -> str | None:
    """The sync service whose folder holds `folder` ("OneDrive", ...), or None.

    `folder` may be a path of another system (PureWindowsPath on Linux, for tests); `env`
    and `home` default to this process's environment and home folder. Symbolic links are
    followed for real paths, so a link into a synced folder counts.
    """
    path = PurePath(folder) if isinstance(folder, str) else folder
    env = os.environ if env is None else env
    candidates = [path]
    if isinstance(path, Path):
        resolved = Path(os.path.realpath(path))
        if resolved != path:
            candidates.append(resolved)
    for candidate in candidates:
        service = _from_variables(candidate, env) or _from_names(candidate)
        if service is None and isinstance(candidate, Path):
            service = _from_dropbox_info(candidate, env, home)
        if service:
            return service
    return None


def cloud_folder_note(folder: PurePath | str, service: str) -> str:
    """One sentence for the user: what is synced and why it matters for an import."""
    return (f"The results folder {folder} is inside {service}, which uploads every file "
            f"written there: an import with many failures writes one file per failed "
            f"customer (thousands on a large import), and {service} then syncs each one. "
            f"The import history (import_history.sqlite, a database written at every "
            f"batch) is there too: while {service} uploads or locks it the import waits, "
            f"and copies of it changed on two computers cannot be merged. "
            f"Choose a results folder outside {service} if that is unwanted.")


def _inside(path: PurePath, folder_text: str) -> bool:
    if not folder_text.strip():
        return False
    folder = type(path)(folder_text)  # same flavour: Windows paths compare case-blind
    return folder.is_absolute() and path.is_relative_to(folder)


def _from_variables(path: PurePath, env: Mapping[str, str]) -> str | None:
    if any(_inside(path, env.get(name, "")) for name in ONEDRIVE_VARIABLES):
        return ONEDRIVE
    return None


def _from_names(path: PurePath) -> str | None:
    """Recognise the folder names the sync clients create, on any system."""
    parts = [part.casefold() for part in path.parts]
    for index, part in enumerate(parts):
        before = parts[index - 1] if index else ""
        # macOS: ~/Library/Mobile Documents is iCloud Drive (and apps' iCloud folders)
        if part == "mobile documents" and before == "library":
            return ICLOUD
        # macOS File Provider folders: ~/Library/CloudStorage/OneDrive-Contoso, Dropbox, ...
        if before == "cloudstorage" and index >= 2 and parts[index - 2] == "library":
            return _service_of(part.split("-", 1)[0]) or path.parts[index].split("-", 1)[0]
        # Windows and older macOS clients: ~/OneDrive, ~/OneDrive - Contoso, ~/Dropbox,
        # ~/Dropbox (Contoso), ~/Google Drive
        service = _service_of(part)
        if service:
            return service
        # Google Drive for desktop on Windows: a drive (G:) holding "My Drive"
        if index == 1 and path.drive and part in ("my drive", "shared drives"):
            return GOOGLE_DRIVE
    return None


def _service_of(name: str) -> str | None:
    if name == "onedrive" or name.startswith("onedrive - "):
        return ONEDRIVE
    if name == "dropbox" or name.startswith("dropbox ("):
        return DROPBOX
    if name in ("google drive", "googledrive"):
        return GOOGLE_DRIVE
    if name in ("icloud drive", "iclouddrive"):
        return ICLOUD
    return None


def _from_dropbox_info(path: Path, env: Mapping[str, str], home: Path | None) -> str | None:
    """Dropbox writes where its folders are to info.json; a renamed folder is found there."""
    home = Path.home() if home is None else home
    places = [home / ".dropbox" / "info.json"]
    places += [Path(env[name]) / "Dropbox" / "info.json"
               for name in ("APPDATA", "LOCALAPPDATA") if env.get(name)]
    for info in places:
        try:
            accounts = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(accounts, dict):
            continue
        for account in accounts.values():
            folder = account.get("path") if isinstance(account, dict) else None
            if isinstance(folder, str) and _inside(path, folder):
                return DROPBOX
    return None
