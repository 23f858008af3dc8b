"""Mappings: the file format, value conversion, automatic mapping, building entries,
saved profiles, and the member export against a conversion written by hand."""

from __future__ import annotations

import codecs
import random
from datetime import date, datetime
from typing import Any

import pytest

from app.models.records import CustomerRecord
from app.services.sources.auto_mapping import auto_map, header_key
from app.services.sources.customer_reader import check_entry
from app.services.sources.mapping import Mapping, MappingError, format_target, parse_target
from app.services.sources.mapping_profiles import (
    delete_profile,
    export_mapping,
    import_profile,
    list_profiles,
    load_mapping,
    profiles_folder,
    save_profile,
)
from app.services.sources.row_mapping import RowMapper
from app.services.sources.row_validation import luhn_check_digit
from app.services.sources.spreadsheet_reader import InvalidRow, SpreadsheetReader, preview_entries
from app.services.sources.value_conversion import (
    ConversionError,
    excel_serial_date,
    to_boolean,
    to_date,
    to_identifier,
    to_text,
)
from app.services.sources.xlsx_reader import XlsxTable
from tests.conftest import ROOT
from tests.excel_files import write_excel_like_workbook

MEMBER_MAPPING = ROOT / "resources" / "mappings" / "member_export.json"

# -- target paths and the mapping file ---------------------------------------------------


def test_target_paths_round_trip():
    path = parse_target("person.customerCards[1].number")
    assert path == ("person", "customerCards", 1, "number")
    assert format_target(path) == "person.customerCards[1].number"


@pytest.mark.parametrize("target", [
    "", "person.", ".person", "person..x", "person[x]", "person.customer-id", "a[100]",
    "person.customerCards[0]number", "__import__('os')",
])
def test_bad_target_paths_are_refused(target):
    with pytest.raises(MappingError):
        parse_target(target)


@pytest.mark.parametrize(("data", "message"), [
    ({"fields": {"person.lastName": "A"}, "constants": {"person.lastName": "x"}}, "twice"),
    ({"fields": {"person.addresses": "A", "person.addresses[0].city": "B"}}, "cannot be inside"),
    ({"fields": {"person.lastName": 3}}, "column name"),
    ({"constants": {"person.addresses": [{"city": "x"}]}}, "single value"),
    ({"constants": {"person.email": None}}, "cannot be null"),
    ({"fields": {}, "colums": {}}, "unknown keys"),
    ({"null_values": "NULL"}, "null_values"),
    ({"types": {"person.since": "timestamp"}}, "type 'timestamp'"),
    ([], "one JSON object"),
])
def test_mapping_files_that_cannot_be_used_say_why(data, message):
    with pytest.raises(MappingError, match=message):
        Mapping.from_dict(data)


def test_a_mapping_round_trips_through_its_file_format():
    mapping = Mapping.from_json(MEMBER_MAPPING.read_bytes())
    assert Mapping.from_json(mapping.to_json()) == mapping
    assert mapping.name == "Member export"
    assert mapping.null_values == ("NULL", "")


def test_constants_every_entry_would_be_refused_for_are_refused_once():
    with pytest.raises(MappingError, match="changeType"):
        RowMapper(Mapping(constants={"changeType": "DELETE"}), ["A"])
    with pytest.raises(MappingError, match="PERSON"):
        RowMapper(Mapping(constants={"type": "COMPANY"}), ["A"])


def test_a_mapped_column_missing_from_the_file_is_named():
    mapping = Mapping(fields={"person.customerId": "MMID", "person.lastName": "LastName"})
    with pytest.raises(MappingError, match="no column 'MMID'"):
        RowMapper(mapping, ["CustomerID", "LastName"])


def test_columns_are_found_without_regard_to_case_and_spaces():
    mapper = RowMapper(Mapping(fields={"person.lastName": "lastname "}), ["LastName"])
    assert mapper.slots[0].column == "LastName"


# -- values ------------------------------------------------------------------------------


@pytest.mark.parametrize("written", [
    "15.01.1955", "1955-01-15", "15/01/1955", "19550115", "15-01-1955", "1955/01/15",
    "1955.01.15", "15.1.1955", " 15.01.1955 ", "1955-01-15T00:00:00",
    "1955-01-15T23:30:00+02:00", "1955-01-15 00:00", "20104", date(1955, 1, 15),
    datetime(1955, 1, 15, 23, 59), 20104.0, 20104.75,
])
def test_every_date_form_gives_the_same_day(written):
    assert to_date(written) == "1955-01-15"


@pytest.mark.parametrize(("written", "message"), [
    ("31.02.1980", "not a real date"), ("1980-02-30", "not a real date"),
    ("29.02.1900", "not a real date"), ("15.01.55", "four digits"), ("yesterday", "not a date"),
    ("", "not a date"), ("0", "not an Excel date"), (True, "not a date"),
])
def test_impossible_dates_are_refused(written, message):
    with pytest.raises(ConversionError, match=message):
        to_date(written)


def test_excel_serial_numbers_follow_excel_including_its_1900_leap_day():
    assert excel_serial_date(1) == date(1900, 1, 1)
    assert excel_serial_date(59) == date(1900, 2, 28)
    assert excel_serial_date(61) == date(1900, 3, 1)
    assert excel_serial_date(45658) == date(2025, 1, 1)
    with pytest.raises(ConversionError, match="never was"):
        excel_serial_date(60)


@pytest.mark.parametrize(("written", "expected"), [
    ("true", True), ("FALSE", False), ("1", True), ("0", False), ("yes", True), ("No", False),
    ("ja", True), ("nej", False), ("nei", False), ("SANT", True), ("FALSKT", False),
    (True, True), (0.0, False), (1, True),
])
def test_booleans(written, expected):
    assert to_boolean(written) is expected


def test_a_word_that_is_not_yes_or_no_is_refused():
    with pytest.raises(ConversionError, match="not yes or no"):
        to_boolean("maybe")


def test_numbers_as_text_keep_every_digit():
    assert to_text(9000578.0) == "9000578"
    assert to_text(9000578) == "9000578"
    assert to_text(12.5) == "12.5"
    assert to_text(999_999_999_999_999.0) == "999999999999999"
    with pytest.raises(ConversionError, match="15 digits"):
        to_text(1.2345678901234568e18)
    assert to_identifier("0150") == "0150"
    assert to_identifier("SE-12345") == "SE-12345"
    with pytest.raises(ConversionError, match="scientific notation"):
        to_identifier("9.00058E+12")


# -- automatic mapping -------------------------------------------------------------------


def test_headers_in_english_swedish_norwegian_and_danish_are_recognised():
    columns = ["Kund-ID", "Förnamn", "Etternavn", "Fødselsdato", "E-post", "Mobil",
               "Kortnummer", "Personnummer", "Gatuadress", "Husnummer", "Postnummer",
               "Poststed", "Land", "Språk", "Kundklubb", "Telefon"]
    auto = auto_map(columns)
    assert auto.mapping.fields == {
        "person.customerId": "Kund-ID", "person.firstName": "Förnamn",
        "person.lastName": "Etternavn", "person.birthday": "Fødselsdato",
        "person.email": "E-post", "person.phone": "Mobil",
        "person.customerCards[0].number": "Kortnummer",
        "person.personalNumber": "Personnummer",
        "person.addresses[0].street": "Gatuadress",
        "person.addresses[0].streetNumber": "Husnummer",
        "person.addresses[0].postalCode": "Postnummer",
        "person.addresses[0].city": "Poststed",
        "person.addresses[0].countryCode": "Land", "person.languageCode": "Språk"}
    # not obvious, or a second phone column: left for the user, and shown
    assert auto.unmapped == ["Kundklubb", "Telefon"]


def test_norwegian_and_danish_personal_numbers_are_not_taken_for_swedish_ones():
    # the Swedish check digit would refuse every valid fødselsnummer and CPR number
    auto = auto_map(["Fødselsnummer", "CPR-nummer", "Personnummer"])
    assert auto.mapping.fields == {"person.personalNumber": "Personnummer"}
    assert auto.unmapped == ["Fødselsnummer", "CPR-nummer"]


@pytest.mark.parametrize("header", [
    "CustomerID", "Customer ID", "customer_id", "Kundnummer", "Kund-ID", "KUNDNR"])
def test_customer_id_headers(header):
    assert auto_map([header]).mapping.fields == {"person.customerId": header}


def test_header_keys_ignore_case_accents_and_punctuation():
    assert header_key("FÖDELSE-DATUM") == header_key("Födelsedatum") == "fodelsedatum"
    assert header_key("Fødselsdato") == "fodselsdato"
    assert header_key("E-mail") == "email"


def test_entries_are_create_person_unless_the_mapping_says_otherwise():
    columns = ["CustomerID", "LastName"]
    mapper = RowMapper(auto_map(columns).mapping, columns)
    entry, issues = mapper.map_row(["1", "Berg"])
    assert issues == []
    assert entry == {"changeType": "CREATE", "type": "PERSON",
                     "person": {"customerId": "1", "lastName": "Berg"}}
    mapper = RowMapper(Mapping(fields={"person.customerId": "CustomerID"},
                               constants={"changeType": "UPDATE"}), columns)
    assert mapper.map_row(["1", "Berg"])[0]["changeType"] == "UPDATE"


# -- building entries --------------------------------------------------------------------

CARD_MAPPING = Mapping(
    fields={"person.customerId": "Id", "person.customerCards[0].number": "Id",
            "person.customerCards[1].number": "Card", "person.addresses[0].city": "City",
            "person.tags[0]": "Tag"},
    constants={"person.customerCards[0].type": "MAIN_CARD",
               "person.customerCards[1].type": "PARTNER_CARD",
               "person.addresses[0].countryCode": "SE", "person.status": "ACTIVE"},
    null_values=("NULL",))


def test_one_column_may_feed_several_targets_and_empty_list_items_are_left_out():
    mapper = RowMapper(CARD_MAPPING, ["Id", "Card", "City", "Tag"])
    full, _ = mapper.map_row(["7", "99", "Lund", "vip"])
    assert full["person"] == {
        "status": "ACTIVE", "customerId": "7",
        "customerCards": [{"type": "MAIN_CARD", "number": "7"},
                          {"type": "PARTNER_CARD", "number": "99"}],
        "addresses": [{"countryCode": "SE", "city": "Lund"}], "tags": ["vip"]}
    sparse, _ = mapper.map_row(["7", "null", " ", ""])
    # the partner card, the address and the tag got nothing from the row: left out,
    # constants and all
    assert sparse["person"] == {"status": "ACTIVE", "customerId": "7",
                                "customerCards": [{"type": "MAIN_CARD", "number": "7"}]}
    only_partner, _ = mapper.map_row(["", "99", "", ""])
    assert only_partner["person"]["customerCards"] == [{"type": "PARTNER_CARD", "number": "99"}]


NULLISH = ["", " ", "NULL", "null", "\u00a0"]
CELLS_BY_COLUMN = {
    "Id": ["7", " 1001 ", "0150", "\u00a0123\u00a0", "SE-5"],
    "First": ["Åsa", " Öberg ", "A\u030asa", "x@example.se", "Per"],
    "Born": ["15.01.1955", "1955-01-15", "19550115", "15/01/1955"],
    "Ok": ["ja", "NEJ", "1", "false", "Yes"],
    "C": ["9000578", "0009", "77"],
    "Zip": ["11122", "0150"],
}
ODD_CELLS = ["9.1E+12", "E12", "31.02.1980", "maybe", 9000578.0, 1.5e18, date(1955, 1, 15),
             True, None, 12.5]


def random_row(rng: random.Random, columns: list[str]) -> list[Any]:
    row = []
    for column in columns:
        pool = ODD_CELLS if rng.random() < 0.02 else (
            NULLISH if rng.random() < 0.15 else CELLS_BY_COLUMN[column])
        row.append(rng.choice(pool))
    return row[:3] if rng.random() < 0.05 else row


def reference_entry(mapping: Mapping, values: dict[str, Any]) -> dict[str, Any]:
    """The entry as docs/mapping.md describes it, built the slow, obvious way: every
    target set by walking its path, then whatever got no value from the row removed."""
    fed_marker = object()
    entry: dict[str, Any] = {"changeType": "CREATE", "type": "PERSON"}
    targets = [(t, v, True) for t, v in values.items() if v is not None]
    targets += [(t, v, False) for t, v in mapping.constants.items()]
    for target, value, fed in targets:
        path = parse_target(target)
        node: Any = entry
        for part, following in zip(path, [*path[1:], None], strict=True):
            if following is None:
                while isinstance(node, list) and len(node) <= part:
                    node.append(None)
                node[part] = (fed_marker, value) if fed else value
            elif isinstance(node, dict):
                node = node.setdefault(part, [] if isinstance(following, int) else {})
            else:  # a list: pad it up to the position
                while len(node) <= part:
                    node.append(None)
                if node[part] is None:
                    node[part] = [] if isinstance(following, int) else {}
                node = node[part]

    def prune(node: Any) -> tuple[Any, bool]:
        """(node without the parts that got nothing from the row, whether any did)."""
        if isinstance(node, tuple) and len(node) == 2 and node[0] is fed_marker:
            return node[1], True
        if isinstance(node, dict):
            kept, fed = {}, False
            for key, child in node.items():
                value, child_fed = prune(child)
                if child_fed:
                    kept[key], fed = value, True
                elif not isinstance(child, dict | list):
                    kept[key] = value  # a constant
            return kept, fed
        if isinstance(node, list):
            kept = [prune(item)[0] for item in node if item is not None and prune(item)[1]]
            return kept, bool(kept)
        return node, False

    pruned, fed = prune(entry)
    return pruned if fed else {}


@pytest.mark.parametrize("typed_cells", [False, True])
def test_the_compiled_path_gives_what_the_general_path_gives(typed_cells):
    mapping = Mapping(
        fields={"person.customerId": "Id", "person.firstName": "First",
                "person.birthday": "Born", "person.statisticalUseAllowed": "Ok",
                "person.customerCards[0].number": "Id", "person.customerCards[1].number": "C",
                "person.addresses[0].postalCode": "Zip", "person.email": "First",
                "person.tags[2]": "C", "person.tags[0]": "Zip"},
        constants={"person.customerCards[1].type": "PARTNER_CARD", "person.status": "A",
                   "person.addresses[0].countryCode": "SE"},
        null_values=("NULL",))
    columns = ["Id", "First", "Born", "Ok", "C", "Zip"]
    mapper = RowMapper(mapping, columns, typed_cells=typed_cells)
    rng = random.Random(5)
    compiled = with_other_cells = built = 0
    for _ in range(3000):
        row = random_row(rng, columns)
        fast = mapper.convert_text(row)
        slow, issues = mapper.convert_closely(row)
        if fast is not None:
            compiled += 1
            with_other_cells += any(not isinstance(cell, str) for cell in row)
            assert issues is None
            assert fast == slow, row
        if not issues:
            expected = reference_entry(mapping, {
                slot.target: value for slot, value in zip(mapper.slots, slow, strict=True)})
            assert mapper.build(slow) == expected, row
            built += 1
    # the comparisons really ran on many rows of each kind
    assert 500 < compiled < 2900
    assert built > 1000
    # workbook cells (numbers, dates) take the compiled path only where they may
    assert (with_other_cells > 10) if typed_cells else (with_other_cells == 0)


# -- the member export -------------------------------------------------------------------

MEMBER_HEADER = ("CustomerID;MMID;HHID;LoyaltyAccountid;FirstName;LastName;SSN;BirthDate;"
                 "IshouseholdOwner;MemberStatus;ReasonCode")
FIRST = ["Åsa", "Björn", "Örjan", "Märta", "Linnéa", "Sølvi", "Øystein", "Hélène", "François"]
LAST = ["Öberg", "Sjöberg", "Åström", "Näslund", "Østergaard", "Sæther", "Lefèvre", "Ek"]




def member_rows(count: int) -> list[list[str]]:
    rng = random.Random(11)
    rows = []
    for n in range(count):
        year, month, day = rng.randint(1930, 2004), rng.randint(1, 12), rng.randint(1, 28)
        ssn = "NULL"
        if n % 5:
            nine = f"{year % 100:02d}{month:02d}{day:02d}{rng.randint(0, 999):03d}"
            ssn = f"{year}{nine[2:]}{luhn_check_digit(nine)}"
            if n % 3 == 0:
                ssn = ssn[:8] + "-" + ssn[8:]
        rows.append([
            str(500000 + n), str(9000000 + n), "NULL" if n % 4 else str(70000 + n // 4),
            str(800000 + n), rng.choice(FIRST), rng.choice(LAST), ssn,
            f"{day:02d}.{month:02d}.{year}" if n % 7 else "NULL",
            rng.choice(["1", "0"]), "A", "NULL"])
    return rows


def hand_written_conversion(row: dict[str, str]) -> dict[str, Any]:
    """What someone converting the member export by hand produces, in plain Python."""
    def value(column: str) -> str | None:
        text = row[column].strip()
        return None if text in ("", "NULL") else text

    person: dict[str, Any] = {
        "status": "ACTIVE", "statisticalUseAllowed": True, "declarationAvailable": True,
        "customerId": value("MMID")}
    if value("FirstName"):
        person["firstName"] = value("FirstName")
    if value("LastName"):
        person["lastName"] = value("LastName")
    born = value("BirthDate")
    if born:
        day, month, year = born.split(".")
        person["birthday"] = f"{year}-{month}-{day}"
    cards = [{"type": "MAIN_CARD", "number": value("MMID")}]
    if value("SSN"):
        cards.append({"type": "PARTNER_CARD", "number": value("SSN")})
    person["customerCards"] = cards
    return {"changeType": "CREATE", "type": "PERSON", "person": person}


def test_the_member_export_gives_exactly_the_hand_written_conversion(tmp_path):
    rows = member_rows(400)
    path = tmp_path / "members.csv"
    path.write_bytes(codecs.BOM_UTF8 + "\r\n".join(
        [MEMBER_HEADER] + [";".join(row) for row in rows]).encode("utf-8") + b"\r\n")
    mapping = load_mapping(MEMBER_MAPPING)
    reader = SpreadsheetReader(path, mapping)
    items = list(reader)
    assert reader.description == "CSV, UTF-8 with BOM, semicolon"
    assert all(isinstance(item, CustomerRecord) and not isinstance(item, InvalidRow)
               for item in items), [str(i.problem) for i in items if isinstance(i, InvalidRow)]
    assert len(items) == 400
    header = MEMBER_HEADER.split(";")
    for number, (item, row) in enumerate(zip(items, rows, strict=True), start=2):
        assert item.record_number == number
        assert item.data == hand_written_conversion(dict(zip(header, row, strict=True)))
        assert check_entry(item) is None
    assert reader.unmapped_columns == ["CustomerID", "HHID", "LoyaltyAccountid",
                                       "IshouseholdOwner", "MemberStatus", "ReasonCode"]
    # spot checks against the brief, so a shared mistake above cannot hide
    first = items[1].data["person"]
    assert first["customerId"] == "9000001"
    assert first["customerCards"][0] == {"type": "MAIN_CARD", "number": "9000001"}
    assert first["customerCards"][1]["type"] == "PARTNER_CARD"
    assert "customerCards" in items[0].data["person"]
    assert len(items[0].data["person"]["customerCards"]) == 1  # SSN was NULL


def test_the_member_export_refuses_a_wrong_check_digit_in_the_ssn(tmp_path):
    rows = member_rows(3)
    rows[1][6] = rows[1][6][:-1] + str((int(rows[1][6][-1]) + 1) % 10)
    path = tmp_path / "members.csv"
    path.write_text("\n".join([MEMBER_HEADER] + [";".join(r) for r in rows]),
                    encoding="utf-8-sig")
    items = list(SpreadsheetReader(path, load_mapping(MEMBER_MAPPING)))
    assert [type(i).__name__ for i in items] == ["CustomerRecord", "InvalidRow",
                                                  "CustomerRecord"]
    invalid = items[1]
    assert isinstance(invalid, InvalidRow)
    assert (invalid.problem.record_number, invalid.problem.field) == (3, "SSN")
    assert "check digit" in invalid.problem.message
    assert invalid.record.data["SSN"] == rows[1][6]
    assert invalid.record.data["MMID"] == rows[1][1]


def test_the_member_export_as_a_workbook_gives_the_same_entries(tmp_path):
    rows = member_rows(50)
    header = MEMBER_HEADER.split(";")
    csv_path = tmp_path / "members.csv"
    csv_path.write_text("\n".join([MEMBER_HEADER] + [";".join(r) for r in rows]),
                        encoding="utf-8-sig")

    def as_cell(column: str, text: str) -> Any:
        # as Excel users keep it: ids as numbers, dates as dates
        if column in ("CustomerID", "MMID") and text != "NULL":
            return int(text)
        if column == "BirthDate" and text != "NULL":
            day, month, year = text.split(".")
            return date(int(year), int(month), int(day))
        return text

    xlsx_path = write_excel_like_workbook(tmp_path / "members.xlsx", [("Members", [
        header, *([as_cell(c, t) for c, t in zip(header, row, strict=True)] for row in rows)])])
    mapping = load_mapping(MEMBER_MAPPING)
    from_csv = [(i.record_number, i.data) for i in SpreadsheetReader(csv_path, mapping)]
    from_xlsx = [(i.record_number, i.data) for i in SpreadsheetReader(xlsx_path, mapping)]
    assert len(from_csv) == 50
    assert from_xlsx == from_csv


def test_preview_maps_the_first_rows_only(tmp_path):
    rows = member_rows(30)
    rows[2][5] = "NULL"  # no last name
    path = tmp_path / "members.csv"
    path.write_text("\n".join([MEMBER_HEADER] + [";".join(r) for r in rows]), encoding="utf-8")
    preview = preview_entries(path, load_mapping(MEMBER_MAPPING), count=5)
    assert [p.row_number for p in preview] == [2, 3, 4, 5, 6]
    assert [p.entry is None for p in preview] == [False, False, True, False, False]
    assert [i.message for i in preview[2].issues] == ["last name is missing"]
    assert preview[0].entry["person"]["customerId"] == rows[0][1]


def test_a_sheet_chosen_by_name_for_the_preview(tmp_path):
    path = write_excel_like_workbook(tmp_path / "two.xlsx", [
        ("Notes", [["read me"]]), ("Data", [["CustomerID", "LastName"], [5, "Berg"]])])
    assert XlsxTable(path).sheet_name == "Notes"  # the first sheet with data
    preview = preview_entries(path, auto_map(["CustomerID", "LastName"]).mapping,
                              sheet="Data")
    assert [(p.row_number, p.entry["person"]) for p in preview] == [
        (2, {"customerId": "5", "lastName": "Berg"})]


# -- saved profiles ----------------------------------------------------------------------


def test_profiles_are_saved_listed_loaded_exported_imported_and_deleted(tmp_path):
    folder = tmp_path / "config" / "mappings"
    assert list_profiles(folder) == []
    member = load_mapping(MEMBER_MAPPING)
    saved = save_profile(member, folder=folder)
    assert saved.parent == folder and saved.name == "Member export.json"
    other = Mapping(name="Kassa/Ekonomi", fields={"person.customerId": "Kundnummer"})
    save_profile(other, folder=folder)
    (folder / "broken.json").write_text("{not json", encoding="utf-8")
    listed = list_profiles(folder)
    assert [(p.name, p.problem is None) for p in listed] == [
        ("broken", False), ("Kassa/Ekonomi", True), ("Member export", True)]
    assert load_mapping("member EXPORT", folder=folder) == member
    assert load_mapping("Kassa/Ekonomi", folder=folder) == other
    with pytest.raises(MappingError, match="no saved mapping named 'Nope'"):
        load_mapping("Nope", folder=folder)
    with pytest.raises(MappingError, match="not valid JSON"):
        load_mapping("broken", folder=folder)

    exported = export_mapping(member, tmp_path / "share" / "members.json")
    assert Mapping.from_json(exported.read_bytes()) == member
    with pytest.raises(MappingError, match="exists already"):
        import_profile(exported, folder=folder)
    assert delete_profile("Member export", folder=folder)
    assert not delete_profile("Member export", folder=folder)
    assert import_profile(exported, folder=folder) == member
    assert [p.name for p in list_profiles(folder) if p.problem is None] == [
        "Kassa/Ekonomi", "Member export"]


def test_the_profiles_folder_is_in_the_users_config_folder():
    folder = profiles_folder()
    assert folder.name == "mappings"
    assert folder.parent.name == "Bulk Customer Import"


def test_an_imported_mapping_without_a_name_takes_the_file_name(tmp_path):
    source = tmp_path / "Kassa 2024.json"
    source.write_text('{"fields": {"person.customerId": "Id"}}', encoding="utf-8")
    mapping = import_profile(source, folder=tmp_path / "profiles")
    assert mapping.name == "Kassa 2024"
    assert (tmp_path / "profiles" / "Kassa 2024.json").is_file()


def test_a_mapping_file_saved_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "notepad.json"
    path.write_bytes(codecs.BOM_UTF8 + b'{"name": "Kassa", "fields": {"person.lastName": '
                     b'"Efternamn"}}')
    assert load_mapping(path).fields == {"person.lastName": "Efternamn"}


def test_the_committed_member_mapping_is_a_valid_profile(tmp_path):
    mapping = import_profile(MEMBER_MAPPING, folder=tmp_path)
    assert mapping.fields["person.customerCards[1].number"] == "SSN"
    assert mapping.constants["person.statisticalUseAllowed"] is True
