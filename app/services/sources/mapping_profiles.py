"""Saved mapping profiles: mapping files in the user's config folder, exported and imported.

A profile is a mapping file (docs/mapping.md) named after the mapping:
`<config>/Bulk Customer Import/mappings/<name>.json`, where <config> is the system's
folder for settings (platformdirs). Files are written atomically and readable by their
owner only, like every file the app writes.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_config_path

from app.models.display_text import printable_path
from app.services.sources.mapping import Mapping, MappingError
from app.util.atomic_files import atomic_write_bytes
from app.util.file_names import safe_file_name

APP_NAME = "Bulk Customer Import"
PROFILE_SUFFIX = ".json"
#: Mappings that come with the app (the member export layout); a saved profile of the same
#: name takes their place.
BUILT_IN_FOLDER = Path(__file__).resolve().parents[3] / "resources" / "mappings"


def profiles_folder() -> Path:
    """Where saved mapping profiles live (it may not exist yet)."""
    return user_config_path(APP_NAME, appauthor=False) / "mappings"


@dataclass(frozen=True, slots=True)
class MappingProfile:
    """A saved profile: its name, its file, and why it cannot be used (None when it can)."""

    name: str
    path: Path
    problem: str | None = None
    built_in: bool = False  # comes with the app: read-only


def _profile_path(name: str, folder: Path) -> Path:
    if not name.strip():
        raise MappingError("a saved mapping needs a name")
    return folder / safe_file_name(name.strip(), PROFILE_SUFFIX)


def read_mapping_file(path: Path) -> Mapping:
    """The mapping in the file at `path`; MappingError (naming the file) when unusable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MappingError(f"{printable_path(path.name)}: cannot be read "
                           f"({exc.strerror or exc})") from None
    try:
        # Notepad and Excel-minded editors save "UTF-8" with a byte-order mark
        mapping = Mapping.from_json(data.removeprefix(codecs.BOM_UTF8))
    except MappingError as exc:
        raise MappingError(f"{printable_path(path.name)}: {exc}") from None
    if not mapping.name:
        mapping.name = path.stem
    return mapping


def list_profiles(folder: Path | None = None) -> list[MappingProfile]:
    """The saved profiles, by name; a file that cannot be used is listed with the reason.

    Without `folder`: the user's profiles and the app's built-in ones (a user's profile of
    the same name wins).
    """
    if folder is not None:
        return _profiles_in(Path(folder))
    profiles = _profiles_in(profiles_folder())
    names = {p.name.casefold() for p in profiles}
    profiles += [p for p in _profiles_in(BUILT_IN_FOLDER, built_in=True)
                 if p.name.casefold() not in names]
    return sorted(profiles, key=lambda p: p.name.casefold())


def _profiles_in(folder: Path, *, built_in: bool = False) -> list[MappingProfile]:
    if not folder.is_dir():
        return []
    profiles = []
    for path in sorted(folder.glob(f"*{PROFILE_SUFFIX}")):
        if path.name.startswith("."):
            continue  # a file being written (atomic_write's temporary name)
        try:
            profiles.append(MappingProfile(read_mapping_file(path).name, path,
                                           built_in=built_in))
        except MappingError as exc:
            profiles.append(MappingProfile(path.stem, path, str(exc), built_in))
    return sorted(profiles, key=lambda p: p.name.casefold())


def load_mapping(name_or_path: str | Path, *, folder: Path | None = None) -> Mapping:
    """A mapping by profile name, or from a mapping file's path (a `Path`, or text naming
    an existing file or ending in .json when no profile has that name).

    Raises MappingError when there is no such mapping or it cannot be used.
    """
    if isinstance(name_or_path, Path):
        return read_mapping_file(name_or_path)
    wanted = name_or_path.strip().casefold()
    for profile in list_profiles(Path(folder) if folder is not None else None):
        if wanted in (profile.name.casefold(), profile.path.stem.casefold()):
            if profile.problem:
                raise MappingError(profile.problem)
            return read_mapping_file(profile.path)
    as_path = Path(name_or_path)
    if as_path.suffix.lower() == PROFILE_SUFFIX or as_path.is_file():
        return read_mapping_file(as_path)
    raise MappingError(f"there is no saved mapping named {name_or_path!r}")


def save_profile(mapping: Mapping, *, folder: Path | None = None, overwrite: bool = True
                 ) -> Path:
    """Save `mapping` as a profile under its name; returns the file written."""
    folder = Path(folder) if folder is not None else profiles_folder()
    mapping.check()
    path = _profile_path(mapping.name, folder)
    if path.exists() and not overwrite:
        raise MappingError(f"a saved mapping named {mapping.name!r} exists already")
    return atomic_write_bytes(path, mapping.to_json())


def export_mapping(mapping: Mapping, path: Path) -> Path:
    """Write `mapping` to a mapping file at `path` (to share it or keep it elsewhere)."""
    mapping.check()
    return atomic_write_bytes(Path(path), mapping.to_json())


def import_profile(path: Path, *, folder: Path | None = None, overwrite: bool = False
                   ) -> Mapping:
    """Check the mapping file at `path` and save it as a profile; returns the mapping.

    Raises MappingError when the file is not a usable mapping, or a profile of the same
    name exists and `overwrite` is False.
    """
    mapping = read_mapping_file(Path(path))
    save_profile(mapping, folder=folder, overwrite=overwrite)
    return mapping


def delete_profile(name: str, *, folder: Path | None = None) -> bool:
    """Remove the saved profile `name`; False when there was none."""
    folder = Path(folder) if folder is not None else profiles_folder()
    for profile in list_profiles(folder):
        if profile.name.casefold() == name.strip().casefold():
            profile.path.unlink(missing_ok=True)
            return True
    return False
