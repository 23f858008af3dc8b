"""The error report's lines go to disk as they are found (not held until the import ends)."""

from __future__ import annotations

import tracemalloc

from app.services.sources.error_report import ErrorLine, ErrorLineSpool, write_error_report


def lines(count: int, start: int = 0) -> list[ErrorLine]:
    return [ErrorLine("medlemmar_åäö.csv", n + 2, "FirstName", f"Åsa {n}",
                      "firstName must not contain spaces") for n in range(start, start + count)]


def test_a_spooled_report_is_the_report_and_costs_little_memory(tmp_path):
    expected = tmp_path / "expected.csv"
    write_error_report(expected, lines(20_000), delimiter=";")

    spool = ErrorLineSpool(tmp_path / "resultat", ";")
    tracemalloc.start()
    try:
        for start in range(0, 20_000, 500):  # as chunks of a file arrive
            spool.add(lines(500, start))
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a chunk of lines at a time: 20,000 lines held in memory would take about 5 MB
    assert spool.count == 20_000
    report = tmp_path / "resultat" / "error_report.csv"
    assert spool.write(report) == 20_000
    spool.close()
    assert report.read_bytes() == expected.read_bytes()
    assert peak < 2 << 20, peak
    # nothing of it stays behind in the results folder
    assert sorted(p.name for p in (tmp_path / "resultat").iterdir()) == ["error_report.csv"]


def test_lines_are_kept_in_memory_when_no_temporary_file_can_be_made(tmp_path):
    blocked = tmp_path / "en fil"
    blocked.write_text("a file where the folder would be")
    spool = ErrorLineSpool(blocked, ",")  # the temporary file cannot be made there
    spool.add(lines(3))
    assert spool.count == 3
    report = tmp_path / "rapport.csv"
    spool.write(report)
    expected = tmp_path / "expected.csv"
    write_error_report(expected, lines(3), delimiter=",")
    assert report.read_bytes() == expected.read_bytes()
    assert report.read_bytes().count(b"\r\n") == 4  # header + 3 lines
