"""Folder searches do not follow links to other folders: they name them in a note.

Windows' Documents folder holds junctions ("My Music", "My Pictures", "My Videos") whose
listing is denied; a symlink to a folder can loop or lead out of the folder chosen.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sources.file_search import find_customer_files, windows_link_kind
from tests.conftest import ROOT

posix_links = pytest.mark.skipif(os.name != "posix", reason="POSIX symlinks")

# the attributes Windows gives Documents\My Music: directory, hidden, system, reparse point
JUNCTION_ATTRIBUTES = (stat.FILE_ATTRIBUTE_DIRECTORY | stat.FILE_ATTRIBUTE_HIDDEN
                       | stat.FILE_ATTRIBUTE_SYSTEM | stat.FILE_ATTRIBUTE_REPARSE_POINT)
IO_REPARSE_TAG_MOUNT_POINT = 0xA0000003  # a junction
IO_REPARSE_TAG_SYMLINK = 0xA000000C  # mklink /D
IO_REPARSE_TAG_CLOUD_6 = 0x9000601A  # a OneDrive folder whose files are online only


@posix_links
def test_links_to_folders_are_named_and_not_followed(tmp_path: Path) -> None:
    chosen = tmp_path / "Kunder Åsa"
    write_customer_file(chosen / "öst.json", generate_customers(2))
    write_customer_file(chosen / "Ärenden" / "väst.json", generate_customers(3, start_id=500))
    outside = tmp_path / "annan mapp"
    write_customer_file(outside / "utanför.json", generate_customers(1, start_id=900))
    (chosen / "Länk till annan").symlink_to(outside, target_is_directory=True)
    (chosen / "tillbaka").symlink_to(chosen, target_is_directory=True)  # a loop
    (chosen / "ping").symlink_to(chosen / "pong")  # ping -> pong -> ping: ELOOP
    (chosen / "pong").symlink_to(chosen / "ping")
    (chosen / "borta").symlink_to(tmp_path / "finns inte", target_is_directory=True)

    search = find_customer_files([chosen])

    assert search.problems == []
    assert sorted(p.name for p in search.files) == ["väst.json", "öst.json"]
    reasons = {Path(link.path).name: link.reason for link in search.links}
    assert reasons == {
        "Länk till annan": "a link to another folder: not searched",
        "tillbaka": "a link to another folder: not searched",
        "ping": "a link that leads back to itself (a link loop): skipped",
        "pong": "a link that leads back to itself (a link loop): skipped",
        "borta": "a link to a file or folder that does not exist: skipped",
    }
    assert search.skipped == []  # only this app's own files are "skipped"
    assert "Länk till annan: a link to another folder: not searched" in search.link_notes()


@posix_links
def test_a_folder_given_through_a_link_is_searched(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write_customer_file(real / "a.json", generate_customers(2))
    link = tmp_path / "genväg"
    link.symlink_to(real, target_is_directory=True)
    search = find_customer_files([link])
    assert [p.name for p in search.files] == ["a.json"]
    assert search.problems == [] and search.links == []


@posix_links
def test_a_link_named_like_a_customer_file_is_still_a_problem(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_customer_file(folder / "ok.json", generate_customers(1))
    (folder / "borta.json").symlink_to(folder / "saknas.json")
    search = find_customer_files([folder])
    assert [p.name for p in search.files] == ["ok.json"]
    assert len(search.problems) == 1
    assert "a link to a file or folder that does not exist" in search.problems[0].message
    assert search.links == []


_SEARCH_AS_CHILD = """
import json, os, sys
from app.services.sources.file_search import find_customer_files
denied = sys.argv[2]
try:
    os.listdir(denied)
    listing_denied = False
except PermissionError:
    listing_denied = True
search = find_customer_files([sys.argv[1]])
print(json.dumps({"listing_denied": listing_denied,
                  "files": [os.path.basename(p) for p in search.files],
                  "problems": [str(p) for p in search.problems],
                  "links": [str(link) for link in search.links]}))
"""


@posix_links
def test_a_denied_folder_behind_a_link_is_no_problem() -> None:
    """The junction case on POSIX: the link's target cannot be listed."""
    base = Path(tempfile.mkdtemp(prefix="links-"))
    chosen, denied = base / "Dokument", base / "Min musik"
    try:
        write_customer_file(chosen / "kunder.json", generate_customers(2))
        write_customer_file(denied / "hemlig.json", generate_customers(1, start_id=700))
        (chosen / "Min musik").symlink_to(denied, target_is_directory=True)
        # the unprivileged child below must reach everything but the denied folder
        for path in (base, chosen):
            path.chmod(0o755)
        (chosen / "kunder.json").chmod(0o644)
        denied.chmod(0)
        user = None
        if os.geteuid() == 0:  # root lists any folder: search as someone who cannot
            user = "nobody"
            try:
                import pwd
                pwd.getpwnam(user)
            except KeyError:
                pytest.skip("no unprivileged user to search as")
        done = subprocess.run(
            [sys.executable, "-c", _SEARCH_AS_CHILD, str(chosen), str(denied)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, user=user,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["listing_denied"] is True  # the case is real
        assert answer["problems"] == []
        assert answer["files"] == ["kunder.json"]
        assert answer["links"] == ["Min musik: a link to another folder: not searched"]
    finally:
        if denied.exists():
            denied.chmod(0o755)
        shutil.rmtree(base)


@pytest.mark.parametrize(("attributes", "tag", "expected"), [
    (JUNCTION_ATTRIBUTES, IO_REPARSE_TAG_MOUNT_POINT,
     "a junction (a link to another folder): not searched"),
    (stat.FILE_ATTRIBUTE_DIRECTORY | stat.FILE_ATTRIBUTE_REPARSE_POINT, IO_REPARSE_TAG_SYMLINK,
     "a link to another folder: not searched"),
    # a reparse point without its tag, or another name surrogate: never entered
    (JUNCTION_ATTRIBUTES, 0, "a link to another place (a reparse point): not searched"),
    (JUNCTION_ATTRIBUTES, 0xA0000019,
     "a link to another place (a reparse point): not searched"),
    # OneDrive's online-only folders are reparse points too, and real folders
    (stat.FILE_ATTRIBUTE_DIRECTORY | stat.FILE_ATTRIBUTE_REPARSE_POINT
     | 0x00400000,  # FILE_ATTRIBUTE_RECALL_ON_DATA_ACCESS
     IO_REPARSE_TAG_CLOUD_6, None),
    (stat.FILE_ATTRIBUTE_DIRECTORY, 0, None),
    (stat.FILE_ATTRIBUTE_DIRECTORY | stat.FILE_ATTRIBUTE_HIDDEN, 0, None),
])
def test_windows_decides_by_attributes_and_tag(attributes: int, tag: int,
                                               expected: str | None) -> None:
    assert windows_link_kind(attributes, tag) == expected
