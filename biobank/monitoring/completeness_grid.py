"""The completeness answer arranged for the page: per centre, a grid of participants
(rows) × visits and tubes (columns), a page of rows at a time, and the words of each
tube's tooltip."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask_babel import format_date
from flask_babel import gettext as _

from biobank.i18n import label
from biobank.monitoring.completeness import STATUS_WORDS, Completeness, Item

# A grid of 1,000 participants × 12 tubes is too long to read and to load on a tablet:
# the page shows this many participants per centre at a time.
ROWS_PER_PAGE = 50

# Each state has a sign as well as a colour, so that the grid reads without colour.
SYMBOLS = {
    "collected": "✓",
    "not_collected": "✗",
    "not_expected": "–",
    "upcoming": "○",
    "due": "◐",
    "missing": "!",
}


@dataclass
class Row:
    participant: str
    arm: str
    tubes: dict[tuple[str, str], Item] = field(default_factory=dict)  # (visit, tube) → item


@dataclass
class CentreGrid:
    code: str
    name: str
    rows: list[Row]  # the page shown
    total: int  # participants listed at this centre in all
    first: int  # number of the first row shown, from 1
    counts: dict[str, dict[str, int]]  # visit → status → tubes, every status asked or not


def grids(result: Completeness, names: dict[str, str], page: int = 1) -> list[CentreGrid]:
    """One grid per centre with something to show, in centre code order, holding the
    ``page``-th slice of its participants."""
    rows_by_centre: dict[str, dict[str, Row]] = {}
    for item in result.items:
        rows = rows_by_centre.setdefault(item.site, {})
        row = rows.get(item.participant)
        if row is None:
            row = rows[item.participant] = Row(item.participant, item.arm)
        row.tubes[(item.visit, item.tube_type)] = item
    start = (page - 1) * ROWS_PER_PAGE
    return [
        CentreGrid(
            code=centre,
            name=names.get(centre, centre),
            rows=list(rows.values())[start : start + ROWS_PER_PAGE],
            total=len(rows),
            first=start + 1,
            counts=result.by_centre_visit.get(centre, {}),
        )
        for centre, rows in sorted(rows_by_centre.items())
    ]


def pages_needed(centres: list[CentreGrid]) -> int:
    """How many pages the largest centre needs."""
    largest = max((grid.total for grid in centres), default=0)
    return max(1, -(-largest // ROWS_PER_PAGE))


def tooltip(item: Item) -> str:
    """What a tube's cell says when pointed at: tube, state, window, date collected,
    why it was not drawn, deviations; one fact per line."""
    lines = [f"{item.visit} · {item.tube_type} · {STATUS_WORDS[item.status]}"]
    if item.window_from is not None:
        opens, closes = _day(item.window_from), _day(item.window_to)
        lines.append(_("window %(opens)s – %(closes)s", opens=opens, closes=closes))
    if item.collected_on is not None:
        lines.append(_("collected on %(date)s", date=_day(item.collected_on)))
    if item.reason:
        reason = str(label(item.reason, "not_collected"))
        lines.append(_("not drawn: %(reason)s", reason=reason))
    if item.note:
        lines.append(item.note)
    lines.extend(str(deviation.message) for deviation in item.deviations)
    return "\n".join(lines)


def _day(value: date | None) -> str:
    return format_date(value, "medium") if value is not None else ""
