"""Workbooks for tests and benchmarks, laid out as Excel saves them.

openpyxl writes every text as an inline string; Excel keeps text in a shared-string table
(`xl/sharedStrings.xml`, cells `t="s"` pointing into it), stores whole numbers as numbers
and dates as serial numbers with a date style. `write_excel_like_workbook` writes that
layout, streaming, so a 210,000-row benchmark file takes seconds rather than a minute.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from app.services.sources.table_source import column_letter

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_EXCEL_EPOCH = date(1899, 12, 30)
_DATE_STYLE = 1  # cellXfs entry with number format 14 (the short date)


def _cell(ref: str, value: Any, strings: dict[str, int]) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        index = strings.setdefault(value, len(strings))
        return f'<c r="{ref}" t="s"><v>{index}</v></c>'
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return f'<c r="{ref}" s="{_DATE_STYLE}"><v>{(value - _EXCEL_EPOCH).days}</v></c>'
    return f'<c r="{ref}"><v>{value!r}</v></c>'


def write_excel_like_workbook(path: Path,
                              sheets: Sequence[tuple[str, Iterable[Sequence[Any]]]]) -> Path:
    """Write `sheets` ([(name, rows)], rows from row 1) as an .xlsx with shared strings."""
    strings: dict[str, int] = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for number, (_, rows) in enumerate(sheets, start=1):
            with archive.open(f"xl/worksheets/sheet{number}.xml", "w",
                              force_zip64=True) as sheet:
                sheet.write(f'{_HEAD}<worksheet xmlns="{_MAIN}"><sheetData>'.encode())
                pending: list[str] = []
                for row_number, row in enumerate(rows, start=1):
                    cells = "".join(_cell(f"{column_letter(col)}{row_number}", value, strings)
                                    for col, value in enumerate(row))
                    if cells:
                        pending.append(f'<row r="{row_number}">{cells}</row>')
                    if len(pending) >= 1000:
                        sheet.write("".join(pending).encode())
                        pending.clear()
                sheet.write(("".join(pending) + "</sheetData></worksheet>").encode())
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as table:
            table.write(f'{_HEAD}<sst xmlns="{_MAIN}" count="{len(strings)}" '
                        f'uniqueCount="{len(strings)}">'.encode())
            pending = []
            for text in strings:
                space = ' xml:space="preserve"' if text != text.strip() else ""
                pending.append(f"<si><t{space}>{escape(text)}</t></si>")
                if len(pending) >= 1000:
                    table.write("".join(pending).encode())
                    pending.clear()
            table.write(("".join(pending) + "</sst>").encode())
        count = len(sheets)
        archive.writestr("xl/styles.xml", (
            f'{_HEAD}<styleSheet xmlns="{_MAIN}"><fonts count="1"><font><sz val="11"/>'
            '<name val="Calibri"/></font></fonts><fills count="1"><fill>'
            '<patternFill patternType="none"/></fill></fills><borders count="1"><border/>'
            '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
            'borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" '
            'fillId="0" borderId="0" xfId="0"/><xf numFmtId="14" fontId="0" fillId="0" '
            'borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>'))
        sheet_list = "".join(
            f'<sheet name={quoteattr(name)} sheetId="{n}" r:id="rId{n}"/>'
            for n, (name, _) in enumerate(sheets, start=1))
        archive.writestr("xl/workbook.xml", (
            f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>{sheet_list}'
            "</sheets></workbook>"))
        relations = "".join(
            f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" '
            f'Target="worksheets/sheet{n}.xml"/>' for n in range(1, count + 1))
        relations += (f'<Relationship Id="rId{count + 1}" Type="{_REL}/styles" '
                      'Target="styles.xml"/>'
                      f'<Relationship Id="rId{count + 2}" Type="{_REL}/sharedStrings" '
                      'Target="sharedStrings.xml"/>')
        archive.writestr("xl/_rels/workbook.xml.rels",
                         f'{_HEAD}<Relationships xmlns="{_PACKAGE_REL}">{relations}'
                         "</Relationships>")
        archive.writestr("_rels/.rels", (
            f'{_HEAD}<Relationships xmlns="{_PACKAGE_REL}"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'))
        kind = "application/vnd.openxmlformats-officedocument.spreadsheetml"
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
            f'ContentType="{kind}.worksheet+xml"/>' for n in range(1, count + 1))
        archive.writestr("[Content_Types].xml", (
            f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
            f'ContentType="{kind}.sheet.main+xml"/>{overrides}<Override '
            f'PartName="/xl/styles.xml" ContentType="{kind}.styles+xml"/><Override '
            f'PartName="/xl/sharedStrings.xml" ContentType="{kind}.sharedStrings+xml"/>'
            "</Types>"))
    return Path(path)
