"""Result files in a deep folder (OneDrive for Business under Documents): every path within
the platform's limit, temporary names included, and a file that cannot be written costs
that file only."""

from __future__ import annotations

import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from app.services.results.result_writers import SingleFailureWriter
from app.services.sandbox.sample_customers import make_customer, write_customer_file
from app.util import file_names
from app.util.atomic_files import temp_path
from app.util.file_names import TEMP_NAME_EXTRA, name_length, single_failure_file_name

# the folders a Windows user's results end up in once OneDrive backs up Documents
DEEP = ("first.last", "OneDrive - Företag Åkerö AB", "Documents", "Bulk Customer Import",
        "2026-12-08 10.15.00")
# room left for the app's own folders and names below the results folder: the fixed names
# need about 95 (retry_batches_<stamp>/retry_batch_01_failed.json and its temporary name)
ROOM = 125
FIRST_NAME = "Åsa Öberg-Łódź-Ängelholm"  # the space makes the sandbox refuse it (FAILED)
LAST_NAME = "Åkerström-Ødegård-Łukasiewicz-Żółkiewski-Sjöström"
LONG_ID = "KUND-ÅÄÖ-SE-2026-12-08-LÅNGT-KUNDNUMMER-{:04d}"


def fs_length(path: Path) -> int:
    """What the file system counts: characters on Windows, UTF-8 bytes elsewhere."""
    full = os.path.abspath(path)
    if sys.platform == "win32":
        return len(full.encode("utf-16-le")) // 2
    return len(full.encode("utf-8"))


def deep_folder(tmp_path: Path) -> Path:
    folder = tmp_path.joinpath(*DEEP)
    folder.mkdir(parents=True)
    return folder


def customers(count: int, failing: int, *, long_ids: int = 0, invalid: int = 0
              ) -> list[dict[str, Any]]:
    """`count` customers; the first `failing` are refused by the service (FAILED), with
    long names of Nordic and Polish letters, `long_ids` of them also with long ids that
    differ only at their end; `invalid` more the app refuses before sending."""
    rng = random.Random(3)
    result = []
    for i in range(count + invalid):
        entry = make_customer(60_000_000_000 + i, rng)
        person = entry["person"]
        if i < failing:
            person["firstName"], person["lastName"] = FIRST_NAME, LAST_NAME
            if i < long_ids:
                person["customerId"] = LONG_ID.format(i)
        elif i >= count:
            person["firstName"], person["lastName"] = FIRST_NAME, LAST_NAME
            person["birthday"] = "1987-02-30"
        result.append(entry)
    return result


def sandbox_username(person: dict[str, Any]) -> str:
    """The username the sandbox answers with for a customer it refuses."""
    return f"{person['firstName']} {person['lastName']}-{person['customerId'][-4:]}".upper()


def retry_ids(retry_dir: Path) -> list[str]:
    return sorted(entry["person"]["customerId"]
                  for path in retry_dir.glob("retry_batch_*_failed.json")
                  for entry in json.loads(path.read_text("utf-8"))["data"])


def single_failures(root: Path) -> dict[Path, str]:
    """Each single-failure file and the customer id it holds."""
    return {path: json.loads(path.read_text("utf-8"))["data"][0]["person"]["customerId"]
            for path in root.rglob("customer_*.json") if path.is_file()}


async def test_a_deep_folder_gets_every_file_with_names_that_fit(
        make_engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = deep_folder(tmp_path)
    limit = fs_length(out) + ROOM
    monkeypatch.setattr(file_names, "MAX_PATH_LENGTH", limit)
    entries = customers(40, failing=12, long_ids=4, invalid=2)
    source = tmp_path / "in" / "kunder Åsa.json"
    write_customer_file(source, entries)

    summary = await make_engine([source], output_dir=out, batch_size=10,
                                writer_process=False).run()

    failed_ids = sorted(e["person"]["customerId"] for e in entries[:12])
    assert summary.failed_by_result == {"FAILED": 12, "INVALID": 2}
    assert summary.write_errors == [] and summary.result_files_complete
    # the retry files hold every customer the service refused, once
    assert summary.retry_dir is not None
    assert retry_ids(summary.retry_dir) == failed_ids
    # one single-failure file per customer, each holding that customer
    assert summary.single_failures_dir is not None
    files = single_failures(summary.single_failures_dir)
    assert len(files) == 14
    assert sorted(i for p, i in files.items() if p.parent.name == "FAILED") == failed_ids
    assert len({p.name.casefold() for p in files}) == 14  # also where case is ignored
    # the names had to be shortened (the full ones would not fit) and still say who it is
    full = single_failure_file_name(failed_ids[-1], sandbox_username(entries[11]["person"]))
    assert fs_length(summary.single_failures_dir / "FAILED" / full) + TEMP_NAME_EXTRA > limit
    for path, customer_id in files.items():
        if customer_id.startswith("KUND-"):  # the id cut short, its fingerprint added
            assert re.fullmatch(r"customer_KUND-ÅÄÖ.*~[0-9a-f]{8}\.json", path.name), path.name
        else:
            assert path.name.startswith(f"customer_{customer_id}_ÅSAÖBERG"), path.name
    # every file the import wrote, and its temporary name before, within the limit
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) > len(files) + 4
    too_long = [(fs_length(p), str(p.relative_to(out))) for p in written
                if fs_length(p) + TEMP_NAME_EXTRA > limit]
    assert too_long == []
    # the summaries name the files as written
    listed = json.loads((summary.single_failures_dir / "FAILED" / "_SUMMARY_FAILED.json")
                        .read_text("utf-8"))["customers"]
    assert sorted(e["file"] for e in listed) == sorted(
        p.name for p in files if p.parent.name == "FAILED")


async def test_a_single_failure_file_that_cannot_be_written_costs_that_file_only(
        make_engine, tmp_path: Path) -> None:
    out = tmp_path / "Bulk Customer Import"
    entries = customers(10, failing=6)
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, entries)
    # where the batch's first refused customer's file goes, a folder is in the way
    first = entries[0]["person"]
    blocked = SingleFailureWriter(out).path_for(
        "FAILED", first["customerId"], sandbox_username(first), "customers", str(source), 1)
    blocked.mkdir(parents=True)

    summary = await make_engine([source], output_dir=out, batch_size=50,
                                writer_process=False).run()

    failed_ids = sorted(e["person"]["customerId"] for e in entries[:6])
    assert summary.failed_by_result == {"FAILED": 6}
    # the batch's retry file is whole
    assert summary.retry_dir is not None
    assert retry_ids(summary.retry_dir) == failed_ids
    assert len(summary.retry_files) == 1
    # the rest of the group has its files
    assert summary.single_failures_dir is not None
    files = single_failures(summary.single_failures_dir)
    assert sorted(files.values()) == failed_ids[1:] == sorted(
        e["person"]["customerId"] for e in entries[1:6])
    assert blocked.is_dir()
    # and the problem is told, without naming the customer
    assert len(summary.write_errors) == 1
    message = summary.write_errors[0]
    assert message.startswith("1 single-failure file could not be written in ")
    assert first["customerId"] not in message and "ÅSA" not in message.upper()
    assert not summary.result_files_complete
    listed = json.loads((summary.single_failures_dir / "FAILED" / "_SUMMARY_FAILED.json")
                        .read_text("utf-8"))["customers"]
    assert {e["customerId"]: e["file"] for e in listed}[first["customerId"]] is None
    assert sum(1 for e in listed if e["file"]) == 5


def test_names_are_shortened_to_the_room_the_folder_leaves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    username = sandbox_username({"firstName": FIRST_NAME, "lastName": LAST_NAME,
                                 "customerId": "50000001000"})
    full = single_failure_file_name("50000001000", username)
    assert full.startswith("customer_50000001000_ÅSAÖBERG-ŁÓDŹ")
    # the username shortened first, by whole letters (Å is two bytes in UTF-8)
    short = single_failure_file_name("50000001000", username, max_length=40)
    assert short.startswith("customer_50000001000_ÅSA") and name_length(short) <= 40
    assert short.encode().decode() == short
    # then dropped, then the id cut short with its fingerprint: one name per customer
    assert single_failure_file_name("50000001000", username, max_length=27) == \
        "customer_50000001000.json"
    ids = [LONG_ID.format(n) for n in range(50)]
    names = [single_failure_file_name(i, username, max_length=40) for i in ids]
    assert len({n.casefold() for n in names}) == 50
    assert all(name_length(n) <= 40 for n in names)
    assert names[0].startswith("customer_KUND-ÅÄÖ")
    # the same in every run: a customer failing again replaces their file
    assert names == [single_failure_file_name(i, username, max_length=40) for i in ids]
    # no room at all: the shortest name there is
    assert re.fullmatch(r"customer_~[0-9a-f]{8}\.json",
                        single_failure_file_name(ids[0], username, max_length=5))

    # the budget: the folder's full path, a separator and the temporary name's extra
    folder = tmp_path / "Åsa"
    monkeypatch.setattr(file_names, "MAX_PATH_LENGTH", fs_length(folder) + 100)
    assert file_names.name_budget(folder) == 100 - 1 - TEMP_NAME_EXTRA
    monkeypatch.setattr(file_names, "MAX_PATH_LENGTH", None)
    if sys.platform == "win32":  # 32,766 where long paths are enabled
        assert file_names.max_path_length() in (259, 32_766)
    else:
        assert file_names.max_path_length() == (1023 if sys.platform == "darwin" else 4095)
    # never more than a name may have, temporary name included
    assert file_names.name_budget(folder) <= 255 - TEMP_NAME_EXTRA
    if sys.platform != "win32":
        assert name_length("Å") == 2  # bytes, as Linux and macOS count them


def test_temporary_names_stay_within_the_room_kept_for_them(tmp_path: Path) -> None:
    target = tmp_path / "customer_1_ÅSA.json"
    temp = temp_path(target)
    assert temp.parent == target.parent
    match = re.fullmatch(rf"\.{re.escape(target.name)}\.(\d+)-(\d+)\.part", temp.name)
    assert match is not None
    # a process id of up to 10 digits (Windows' are 32-bit) and a counter of up to 12
    fixed = len(temp.name) - len(target.name) - len(match[1]) - len(match[2])
    assert fixed + 10 + 12 == TEMP_NAME_EXTRA
