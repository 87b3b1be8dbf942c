"""Spreadsheets built to exhaust a reader: the workbook that claims the whole grid and the
zip bomb. Used by the upload attack tests and by bench/upload_limits.py."""

from __future__ import annotations

import io
import zipfile

import openpyxl

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def sparse_xlsx() -> bytes:
    """A 5 KB workbook whose only cells are A1 and XFD1048576: its sheet spans the whole
    grid Excel allows (its <dimension> says A1:XFD1048576)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Plate 1"
    sheet["A1"] = 0.5
    sheet["XFD1048576"] = 0.5
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def bomb_xlsx(cells: int = 5_000_000, width: int = 10) -> bytes:
    """A workbook of ``cells`` cells in a few hundred kilobytes: its sheet's XML, tens of
    megabytes of one repeated row, is written into the zip chunk by chunk, so the test
    never holds it whole."""
    base = io.BytesIO()
    book = openpyxl.Workbook()
    book.active.title = "Plate 1"
    book.active["A1"] = 1
    book.save(base)
    row = b"<row>" + b"<c><v>1</v></c>" * width + b"</row>"
    chunk = row * 1000
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(base.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb,
    ):
        for item in source.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                bomb.writestr(item, source.read(item.filename))
                continue
            with bomb.open(item.filename, "w", force_zip64=True) as sheet:
                sheet.write(f'<worksheet xmlns="{MAIN}"><sheetData>'.encode())
                for _ in range(cells // (width * 1000)):
                    sheet.write(chunk)
                sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()
