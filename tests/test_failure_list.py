"""The failure list in SQLite: sort keys, the journal's schema for it, the store, and that
neither the list nor the app leaves work for the garbage collector."""

from __future__ import annotations

import gc
import re
import sqlite3
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.models.failure_query import (
    ERROR_TYPE_SQL,
    LIST_COLUMNS_DDL,
    LIST_INDEXES_DDL,
    FailureQuery,
    FailureRecords,
    error_type,
    id_sort_key,
    open_list_connection,
    order_sql,
    positions_of,
    read_counts,
    read_order,
    text_sort_key,
)
from app.models.failure_store import FailureStore
from app.models.failure_table_model import COL_USERNAME, COLUMNS, FailureTableModel
from app.services.jobs.journal import _MIGRATIONS, SCHEMA_VERSION, Journal, journal_path
from app.views.failed_customers_tab import FailedCustomersTab
from tests.conftest import ROOT
from tests.test_failed_customers_tab import make_failures, settle, write_journal

NAMES = ["ÖRJAN NILSSON", "Åsa Öberg", "ÉLODIE DUBOIS", "élodie dubois", "ZOË LEFÈVRE",
         "ÄNGEL BERG", "ŁUKASZ NOWAK", "Sæther", "LØVIK", "straße", "Anders", "zorn", ""]


# -- no process-wide switches -----------------------------------------------------------------


def test_the_app_never_switches_the_garbage_collector():
    calls = re.compile(r"\bgc\.(disable|enable|freeze|unfreeze|set_threshold|collect)\b"
                       r"|^\s*(import gc|from gc import)|sys\.setswitchinterval", re.MULTILINE)
    found = [f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
             for path in sorted((ROOT / "app").rglob("*.py"))
             for match in calls.finditer(path.read_text(encoding="utf-8"))]
    assert found == []
    conftest = (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8")
    assert not calls.search(conftest)
    assert not (ROOT / "app" / "views" / "main_thread_gc.py").exists()


def test_a_listed_failure_is_no_python_object(qtbot):
    store = FailureStore()
    store.upsert(make_failures(30))
    model = FailureTableModel(store)
    settle(qtbot, model)
    model.sort(COL_USERNAME, Qt.SortOrder.AscendingOrder)
    settle(qtbot, model)
    gc.collect()
    before = len(gc.get_objects())
    store.upsert(make_failures(20_000, start_id=60000000000))
    model.reload()
    settle(qtbot, model)
    model.sort(COL_USERNAME, Qt.SortOrder.DescendingOrder)
    for row in range(0, 20_030, 1000):  # scrolled through: a few pages kept
        model.data(model.index(row, COL_USERNAME))
    gc.collect()
    assert model.rowCount() == 20_030
    # what the collector walks grew by the pages on screen, not by the 20,000 failures
    assert len(gc.get_objects()) - before < 2000
    model.detach()
    store.close()


# -- sort keys --------------------------------------------------------------------------------


@pytest.fixture
def table(tmp_path: Path) -> sqlite3.Connection:
    """A journal holding failures of the names and ids above."""
    records = make_failures(len(NAMES))
    ids = ["100", "99", "abc", "0098", "X-7", "", "5", "50000001000", "7", "Ab", "12", "3",
           "0"]
    for record, name, customer_id in zip(records, NAMES, ids, strict=True):
        record.username, record.customer_id = name, customer_id
        record.error = f"  Kunden {customer_id or 'x'} {name} finns redan 1234567\nrad två "
    write_journal(tmp_path, records)
    connection = open_list_connection(journal_path(tmp_path))
    yield connection
    connection.close()


def test_python_keys_are_the_sql_keys(table):
    rows = table.execute("SELECT username, name_key, customer_id, id_key, error, error_key, "
                         f"{ERROR_TYPE_SQL} FROM failures").fetchall()
    assert len(rows) == len(NAMES)
    for username, name_key, customer_id, id_key, error, error_key, kind in rows:
        assert text_sort_key(username) == name_key
        assert id_sort_key(customer_id) == id_key
        assert text_sort_key(error[:100]) == error_key
        assert error_type(error) == kind
    assert error_type("  Kunden 12 finns redan 1234567\nrad två") == "Kunden # finns redan #"
    assert error_type(" \n ") == "(no error text)"


def test_names_sort_in_swedish_order_and_ids_as_numbers(table):
    by_name = read_order(table, FailureQuery(sort_column=COLUMNS.index("Username")))
    names = dict(table.execute("SELECT rowid, username FROM failures"))
    assert [names[r] for r in by_name] == [
        "", "Anders", "ÉLODIE DUBOIS", "élodie dubois", "ŁUKASZ NOWAK", "LØVIK", "straße",
        "Sæther", "ZOË LEFÈVRE", "zorn", "Åsa Öberg", "ÄNGEL BERG", "ÖRJAN NILSSON"]
    by_id = read_order(table, FailureQuery(sort_column=COLUMNS.index("Customer ID")))
    ids = dict(table.execute("SELECT rowid, customer_id FROM failures"))
    assert [ids[r] for r in by_id] == ["0", "3", "5", "7", "12", "0098", "99", "100",
                                       "50000001000", "", "Ab", "abc", "X-7"]
    descending = read_order(table, FailureQuery(sort_column=COLUMNS.index("Customer ID"),
                                                descending=True))
    assert list(descending) == list(reversed(by_id))


def test_every_sort_of_the_open_failures_is_an_index_scan(table):
    for column in range(-1, len(COLUMNS)):
        sql, args = order_sql(FailureQuery(sort_column=column))
        plan = " ".join(row[3] for row in table.execute(f"EXPLAIN QUERY PLAN {sql}", args))
        assert "INDEX" in plan and "TEMP B-TREE" not in plan, (column, plan)


def test_search_is_case_insensitive_in_every_script(table):
    names = dict(table.execute("SELECT rowid, username FROM failures"))
    for needle, expected in (("ÖRJAN", {"ÖRJAN NILSSON"}), ("łukasz", {"ŁUKASZ NOWAK"}),
                             ("ÉLODIE", {"ÉLODIE DUBOIS", "élodie dubois"}),
                             ("zoë", {"ZOË LEFÈVRE"}), ("anders", {"Anders"}),
                             ("kunder_västerås", set(names.values()))):
        found = read_order(table, FailureQuery(search=needle.casefold()))
        assert {names[r] for r in found} == expected, needle
    assert read_counts(table).by_result == {"CONFLICT": 5, "FAILED": 4, "INVALID": 4}


def test_positions_and_records_read_a_slice_at_a_time(table, tmp_path):
    order = read_order(table, FailureQuery(sort_column=COLUMNS.index("Username")))
    assert positions_of(order, [order[3], order[7]]) == {order[3]: 3, order[7]: 7}
    assert positions_of(order, list(order)) == {rowid: n for n, rowid in enumerate(order)}
    assert positions_of(order, [10_000]) == {}
    records = FailureRecords(journal_path(tmp_path), [*order, 10_000], chunk=4)
    assert len(records) == len(NAMES) + 1
    assert [r.username for r in records] == [
        dict(table.execute("SELECT rowid, username FROM failures"))[r] for r in order]
    assert records[1].username == "Anders"


# -- the journal's schema ---------------------------------------------------------------------


def write_old_journal(folder: Path, version: int) -> None:
    """A journal as `version` of the schema left it, with two open failures."""
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(journal_path(folder))
    try:
        for step in range(1, version + 1):
            db.executescript(_MIGRATIONS[step])
        for n, name in enumerate(("ÖRJAN NILSSON", "ÅSA ÖBERG")):
            db.execute(
                "INSERT INTO failures (key, state, customer_id, username, result, error, "
                "timestamp, batch_info, source_file, record_number, batch_number, "
                "http_status, kind, retriable, whole_batch, original, attempts, first_job, "
                "last_job) VALUES (?, 'open', ?, ?, 'FAILED', 'Tjänsten svarade', ?, "
                "'Batch 1', 'kunder.json', ?, 1, 200, 'customers', 1, 0, '{}', 1, 1, 1)",
                (f"customers:id:{n}", str(n), name, f"2025-11-03T10:00:0{n}", n + 1))
        db.execute(f"PRAGMA user_version = {version}")
        db.commit()
    finally:
        db.close()


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_journal_gets_the_list_s_columns_and_indexes(tmp_path, version):
    write_old_journal(tmp_path, version)
    journal = Journal.open(tmp_path, create=False)
    try:
        db = journal.connection
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        indexes = {name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {re.search(r"EXISTS (\w+)", ddl).group(1) for ddl in LIST_INDEXES_DDL} <= indexes
        columns = {row[1] for row in db.execute("PRAGMA table_xinfo(failures)")}
        assert {re.search(r"COLUMN (\w+)", ddl).group(1) for ddl in LIST_COLUMNS_DDL} <= columns
        assert [r[1] for r in journal.failure_rows()] == ["ÖRJAN NILSSON", "ÅSA ÖBERG"]
    finally:
        journal.close()
    connection = open_list_connection(journal_path(tmp_path))
    try:
        names = dict(connection.execute("SELECT rowid, username FROM failures"))
        order = read_order(connection, FailureQuery(sort_column=COL_USERNAME))
        assert [names[r] for r in order] == ["ÅSA ÖBERG", "ÖRJAN NILSSON"]
    finally:
        connection.close()


def test_the_tab_brings_an_older_journal_up_to_date(qtbot, tmp_path):
    write_old_journal(tmp_path, 2)
    store = FailureStore()
    tab = FailedCustomersTab(store, lambda: tmp_path)
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.refreshFinished, timeout=10_000) as blocker:
        tab.refresh()
    assert blocker.args == [2] and store.journal == journal_path(tmp_path)
    tab.table.sortByColumn(COL_USERNAME, Qt.SortOrder.AscendingOrder)
    settle(qtbot, tab.model)
    assert [tab.model.data(tab.model.index(r, COL_USERNAME)) for r in range(2)] == \
        ["ÅSA ÖBERG", "ÖRJAN NILSSON"]


# -- the store --------------------------------------------------------------------------------


def test_the_store_keeps_what_it_is_fed_until_it_lists_a_journal(tmp_path):
    store = FailureStore()
    notices: list[int] = []
    store.add_listener(notices.append)
    assert store.source.path is None and len(store) == 0  # nothing made yet
    records = make_failures(6)
    assert store.upsert(records) == 6
    again = make_failures(1)[0]
    again.error = "failed once more"
    store.upsert([again])
    store.resolve([records[2].customer_key, "customers:id:unknown"], 4,
                  "2026-01-01T12:00:00")
    assert len(notices) == 3  # a notice per change, as it happened
    assert len(store) == 6 and store.open_count == 5
    listed = {r.customer_key: r for r in store.records(open_only=False)}
    assert listed[again.customer_key].attempts == 2
    assert listed[again.customer_key].error == "failed once more"
    assert listed[records[2].customer_key].resolved_job == 4
    store.upsert([records[2]])  # failing again reopens it
    assert store.open_count == 6

    write_journal(tmp_path, make_failures(3, start_id=70000000000))
    generation = store.generation
    store.attach(journal_path(tmp_path))
    assert store.generation == generation + 1 and notices[-1] == 0
    assert [r.customer_id for r in store.records()] == \
        ["70000000000", "70000000001", "70000000002"]
    store.upsert(make_failures(2))  # the import's journal writer records these
    assert len(store) == 3

    store.clear()
    assert store.journal is None and len(store) == 0 and store.generation == generation + 2
    store.close()
    assert store.source.path is None
