"""The paper a shipment needs, in the reader's language: the pick list (PDF) and the
manifest (PDF and xlsx), built from the shipping services and drawn by documents.py.
Shared by the pages and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from babel.dates import format_skeleton
from flask_babel import get_locale, get_timezone
from flask_babel import gettext as _

from biobank.db import utcnow
from biobank.distribution import documents, shipping
from biobank.distribution.models import Shipment, ShipmentItem
from biobank.extensions import db
from biobank.samples import services as samples
from biobank.samples.models import Aliquot
from biobank.storage.positions import grid_for
from biobank.storage.services import SEPARATOR
from biobank.study.models import Participant, Visit

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Paper:
    filename: str
    mimetype: str
    content: bytes


def _labels() -> dict[str, str]:
    return {
        "box": _("Box"),
        "position": _("Position"),
        "barcode": _("Barcode"),
        "sample_type": _("Sample type"),
        "volume_ul": _("Volume (µL)"),
        "visit": _("Visit"),
        "participant": _("Participant"),
        "location": _("Location"),
        "picked": _("Picked"),
        "page": _("Page"),
        "of": _("of"),
        "total": _("Total"),
        "tube": _("tube"),
        "tubes": _("tubes"),
        "signature": _("Packed by / date / signature"),
        "received_signature": _("Received by / date / signature"),
    }


def moment(at: datetime) -> str:
    """A date and time as the reader's language writes it, in the reader's time zone, with
    the month in words: "29 nov. 2026, 14:05", "Nov 29, 2026, 14:05" — never a short date
    such as 11/12/26 that reads as two different days on either side of the Atlantic."""
    locale, zone = get_locale(), get_timezone()
    day = format_skeleton("yMMMd", at, tzinfo=zone, locale=locale)
    hour = format_skeleton("Hm", at, tzinfo=zone, locale=locale)
    return locale.datetime_formats["medium"].format(hour, day)


def _date_fact(at: datetime) -> documents.DateFact:
    local = at.astimezone(get_timezone())
    return documents.DateFact(moment(at), local.replace(tzinfo=None))


def _split(location: str) -> tuple[str, str]:
    """ "Freezer › Shelf › Box (BX-1) › B4" → ("Freezer › Shelf › Box (BX-1)", "B4")."""
    where, _sep, position = location.rpartition(SEPARATOR)
    return (where, position) if where else (location, "")


def pick_list_pdf(request_id: int, *, actor) -> Paper:
    found = shipping.pick_list(request_id, actor=actor)
    request = found.request
    header = documents.DocumentHeader(
        title=_("Pick list — request %(code)s", code=request.code),
        reference=request.code,
        lines=(
            (_("Title"), request.title),
            (_("Receiving laboratory"), request.receiving_lab),
            (_("Tubes"), _("%(n)d (%(left)d left)", n=len(found.items), left=len(found.left))),
        ),
        generated=moment(utcnow()),
    )
    lines = [
        documents.PickLine(
            i.barcode,
            i.sample_type,
            i.volume_ul,
            i.participant,
            i.visit,
            *_split(i.location),
            picked=i.picked,
        )
        for i in found.items
    ]
    content = documents.pick_list_pdf(header, lines, labels=_labels())
    return Paper(f"pick-list-{request.code}.pdf", "application/pdf", content)


def _manifest_header(shipment: Shipment) -> documents.DocumentHeader:
    dry_ice = _("no")
    if shipment.dry_ice:
        dry_ice = _("yes") + (f", {shipment.dry_ice_kg:g} kg" if shipment.dry_ice_kg else "")
    facts = [
        (_("From"), shipment.origin_site.name),
        (_("To"), shipment.recipient),
        (_("Contact"), shipment.contact),
        (_("Request"), shipment.request.code if shipment.request else "—"),
        (_("Carrier"), shipment.carrier or "—"),
        (_("Tracking number"), shipment.tracking_number or "—"),
        (_("Dry ice"), dry_ice),
        (_("Temperature logger"), shipment.logger_id or "—"),
        (_("Dispatched"), _date_fact(shipment.dispatched_at) if shipment.dispatched_at else "—"),
    ]
    return documents.DocumentHeader(
        title=_("Shipment manifest %(code)s", code=shipment.code),
        reference=shipment.code,
        lines=tuple(facts),
        generated=moment(utcnow()),
    )


def manifest_lines(shipment: Shipment, *, actor) -> list[documents.ManifestLine]:
    """The shipment's tubes box by box, position by position, in one query (a centre's
    shipment carries that centre's tubes only; the centre rule applies all the same)."""
    grid = grid_for(shipment.box_rows, shipment.box_cols)
    rows = db.session.execute(
        samples.aliquots_in_reach(
            sa.select(
                ShipmentItem.box_number,
                ShipmentItem.row,
                ShipmentItem.col,
                Aliquot.barcode,
                Aliquot.sample_type,
                Aliquot.volume_ul,
                Visit.visit_code,
                Participant.code,
            )
            .join(Aliquot, Aliquot.id == ShipmentItem.aliquot_id)
            .where(ShipmentItem.shipment_id == shipment.id)
            .order_by(ShipmentItem.box_number, ShipmentItem.row, ShipmentItem.col),
            actor,
        )
    )
    return [
        documents.ManifestLine(box, grid.label(row, col), *rest) for box, row, col, *rest in rows
    ]


def manifest(code: str, fmt: str, *, actor) -> Paper:
    """The manifest of a shipment as "pdf" or "xlsx"."""
    shipment = shipping.get_shipment(code, actor=actor)
    header, lines = _manifest_header(shipment), manifest_lines(shipment, actor=actor)
    if fmt == "xlsx":
        content = documents.manifest_xlsx(header, lines, labels=_labels())
        return Paper(f"manifest-{shipment.code}.xlsx", XLSX, content)
    content = documents.manifest_pdf(header, lines, labels=_labels())
    return Paper(f"manifest-{shipment.code}.pdf", "application/pdf", content)
