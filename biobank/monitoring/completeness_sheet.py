"""Collection completeness as an xlsx workbook: one row per participant × visit × tube.

Every cell goes through biobank/tabular.py: a note typed "=HYPERLINK(…)" when a tube was
recorded as not drawn stays text in the coordinator's spreadsheet.
"""

from __future__ import annotations

import io

import openpyxl
from flask_babel import gettext as _

from biobank import tabular
from biobank.i18n import label
from biobank.monitoring.completeness import STATUS_WORDS, Completeness, Item


def _headers() -> list[str]:
    return [
        _("Participant"),
        _("Centre"),
        _("Arm"),
        _("Visit"),
        _("Tube type"),
        _("Status"),
        _("Window opens"),
        _("Window closes"),
        _("Collected on"),
        _("Why not collected"),
        _("Note"),
        _("Deviations"),
    ]


def _row(item: Item) -> list:
    return [
        item.participant,
        item.site,
        item.arm,
        item.visit,
        item.tube_type,
        str(STATUS_WORDS[item.status]),
        item.window_from,
        item.window_to,
        item.collected_on,
        str(label(item.reason, "not_collected")) if item.reason else None,
        item.note or None,
        "; ".join(str(d.message) for d in item.deviations) or None,
    ]


def completeness_xlsx(result: Completeness, filters: dict[str, str]) -> bytes:
    """The items of ``result``, then a sheet saying what day and which filters they
    answer (``filters``: name in words → value)."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(_("Completeness"))
    sheet.append(tabular.xlsx_row(sheet, _headers()))
    for item in result.items:
        sheet.append(tabular.xlsx_row(sheet, _row(item)))
    about = book.create_sheet(_("About"))
    about.append(tabular.xlsx_row(about, [_("As of"), result.as_of]))
    for name, value in filters.items():
        about.append(tabular.xlsx_row(about, [name, value]))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
