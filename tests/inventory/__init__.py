"""Inventory files for the tests: rows as dicts, written as a centre would (.xlsx, .csv)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import openpyxl

HEADER = (
    "participant",
    "site",
    "arm",
    "included_on",
    "consent_given_on",
    "disease_status",
    "visit",
    "tube_type",
    "collected_at",
    "spun_at",
    "frozen_at",
    "volume_ul",
    "legacy_barcode",
    "box",
    "position",
)
# What the same columns are called in French, as a French centre's file names them.
FRENCH = {
    "participant": "Participant",
    "site": "Centre",
    "arm": "Bras",
    "included_on": "Date d'inclusion",
    "consent_given_on": "Date du consentement",
    "disease_status": "Statut de la maladie",
    "visit": "Visite",
    "tube_type": "Type de tube",
    "collected_at": "Prélevé le",
    "spun_at": "Centrifugé le",
    "frozen_at": "Congelé le",
    "volume_ul": "Volume (µL)",
    "legacy_barcode": "Ancien code-barres",
    "box": "Boîte",
    "position": "Position",
}
BOX = "BX-0001"


def aliquot(n: int = 1, **changes) -> dict:
    """One row: aliquot ``n`` of LIM-101's baseline serum tube (a participant new to the
    bank, enrolled by the file), stored at position n of box BX-0001 (9 × 9)."""
    row = {
        "participant": "LIM-101",
        "site": "LIM",
        "arm": "G2",
        "included_on": "2026-01-05",
        "consent_given_on": "2026-01-03",
        "disease_status": "de_novo",
        "visit": "BL",
        "tube_type": "SST",
        "collected_at": "2026-01-05 08:30",
        "spun_at": "2026-01-05 09:30",
        "frozen_at": "2026-01-05 10:00",
        "volume_ul": 500,
        "legacy_barcode": f"OLD-{n:04d}",
        "box": BOX,
        "position": f"A{n}",
    }
    row.update(changes)
    return row


def tube(count: int = 3, first: int = 1, **changes) -> list[dict]:
    """The ``count`` aliquots of one tube, numbered from ``first``."""
    return [aliquot(n, **changes) for n in range(first, first + count)]


def xlsx(
    rows: Sequence[dict],
    header: Sequence[str] = HEADER,
    *,
    titles: dict[str, str] | None = None,
    sheet: str = "Inventory",
) -> bytes:
    """A workbook of the rows under ``header`` (each key written as ``titles`` says)."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    ws.append([(titles or {}).get(key, key) for key in header])
    for row in rows:
        ws.append([row.get(key) for key in header])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_file(rows: Sequence[dict], header: Sequence[str] = HEADER, delimiter: str = ";") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(key) is None else row.get(key) for key in header])
    return out.getvalue().encode("utf-8")
