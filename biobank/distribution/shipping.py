"""From the freezer to the receiving laboratory: pick lists and picking by scan,
shipments packed into shipping boxes with their manifest, dispatch, receipt by scan or
rack-scanner file, and what the laboratory did with the tubes.

Transfers between sites (a centre sending its tubes to the central biobank) are
shipments without a request, received into the receiving site's freezers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from biobank.auth import services as auth
from biobank.auth.models import User
from biobank.custody import services as custody
from biobank.custody.services import EventKind
from biobank.db import Page, utcnow
from biobank.distribution import services as requests
from biobank.distribution.models import Reservation, SampleRequest, Shipment, ShipmentItem
from biobank.errors import Conflict, Forbidden, Invalid, NotFound
from biobank.extensions import db
from biobank.i18n import label
from biobank.notifications import services as notifications
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.sites import services as sites
from biobank.sites.models import Site
from biobank.storage import places
from biobank.storage import services as storage
from biobank.storage.models import StoredPosition
from biobank.storage.positions import grid_for
from biobank.storage.rackscan import RackScanError, parse_rack_csv
from biobank.study import services as study
from biobank.study.models import Participant, Visit

PICKABLE_REQUESTS = ("approved", "being_prepared")
# Statuses a tube may leave its site in, for a transfer.
TRANSFERABLE = ("registered", "in_storage", "checked_out", "received")


# --- pick lists --------------------------------------------------------------------------


@dataclass(frozen=True)
class PickItem:
    barcode: str
    sample_type: str
    volume_ul: int
    participant: str
    visit: str
    location: str
    status: str
    consent_withdrawn: bool
    picked_at: datetime | None
    walk: tuple

    @property
    def picked(self) -> bool:
        return self.picked_at is not None


@dataclass(frozen=True)
class PickList:
    request: SampleRequest
    items: list[PickItem]

    @property
    def left(self) -> list[PickItem]:
        return [i for i in self.items if not i.picked]


def _request_to_prepare(request_id: int, actor) -> SampleRequest:
    """A request whose tubes the actor prepares. A request spans the centres whose
    aliquots were reserved for it: a user bound to a centre prepares (picks, packs, ships)
    only their centre's tubes, and a request that never held one is, for them, a request
    with nothing to prepare (not found)."""
    request = requests.get_request(request_id, actor=actor)
    if samples.bound_to_a_centre(actor):
        ours = samples.aliquots_in_reach(
            sa.select(Reservation.id)
            .join(Aliquot, Aliquot.id == Reservation.aliquot_id)
            .where(Reservation.request_id == request.id),
            actor,
        )
        if db.session.execute(ours.limit(1)).first() is None:
            raise NotFound(
                _l("Request %(code)s holds no tube of your centre.", code=request.code),
                fields={"request": request.code},
            )
    return request


def pick_list(request_id: int, *, actor) -> PickList:
    """The request's reserved aliquots in freezer walk order (freezer → shelf → rack →
    box → position), picked or not: those of the actor's centre, for a user bound to one."""
    request = _request_to_prepare(request_id, actor)
    rows = db.session.execute(
        samples.aliquots_in_reach(
            sa.select(
                Aliquot.id,
                Aliquot.barcode,
                Aliquot.sample_type,
                Aliquot.volume_ul,
                Participant.code,
                Visit.visit_code,
                Aliquot.status,
                Participant.consent_status,
                Reservation.picked_at,
                StoredPosition.box_id,
                StoredPosition.row,
                StoredPosition.col,
            )
            .join(Aliquot, Aliquot.id == Reservation.aliquot_id)
            .outerjoin(StoredPosition, StoredPosition.aliquot_id == Aliquot.id)
            .where(Reservation.request_id == request.id, Reservation.closed_at.is_(None)),
            actor,
        )
    ).all()
    where = storage.locations(row[0] for row in rows)
    walks = places.box_places({row[9] for row in rows if row[9] is not None})
    items = []
    for id_, code, kind, volume, pcode, visit, status, consent, picked, box, row, col in rows:
        place = walks.get(box)
        walk = (*place.walk, row, col) if place else ((), 0, 0)
        items.append(
            PickItem(
                code,
                kind,
                volume,
                pcode,
                visit,
                where.get(id_, ""),
                status,
                consent != "given",
                picked,
                walk,
            )
        )
    items.sort(key=lambda i: (i.walk, i.barcode))
    return PickList(request, items)


@dataclass(frozen=True)
class Picked:
    barcode: str
    location: str
    left: int
    # The old label the tube was scanned by (a tube of an imported inventory): it wants
    # its new label. None when its barcode was scanned.
    old_label: str | None = None


def pick(request_id: int, raw_code: str, *, actor) -> Picked:
    """A scanned tube checked against the request's pick list: the right one is checked
    out for the request; any other is refused, saying why."""
    request = _request_to_prepare(request_id, actor)
    if request.status not in PICKABLE_REQUESTS:
        raise Conflict(
            _l("Request %(code)s is %(status)s.", code=request.code, status=request.status),
            code="request.status",
        )
    aliquot = samples.find_aliquot(raw_code, actor=actor)
    reservation = _open_reservation(request.id, aliquot.id)
    if reservation is None:
        raise Conflict(
            _l(
                "Wrong tube: %(code)s is not on the pick list of %(request)s. Put it back.",
                code=aliquot.barcode,
                request=request.code,
            ),
            code="pick.wrong_tube",
            fields={"barcode": aliquot.barcode},
        )
    if reservation.picked_at is not None:
        raise Conflict(
            _l("%(code)s is already picked: nothing more was recorded.", code=aliquot.barcode),
            code="pick.already_picked",
            fields={"barcode": aliquot.barcode},
        )
    _refuse_withdrawn([aliquot])
    where = storage.locations([aliquot.id]).get(aliquot.id, "")
    storage.check_out(
        aliquot.barcode,
        str(_l("Request %(code)s", code=request.code)),
        destination=request.receiving_lab,
        purpose=request.id,
        actor=actor,
    )
    reservation.picked_at = utcnow()
    reservation.picked_by_id = actor.id
    if request.status == "approved":
        # The first tube picked moves the request on, once even if two are picked at once.
        db.session.refresh(request, with_for_update=True)
        if request.status == "approved":
            requests.move_request(request, "being_prepared", actor)
    db.session.flush()
    # The tubes left for this picker: those of their centre, if bound to one.
    left = db.session.execute(
        samples.aliquots_in_reach(
            sa.select(sa.func.count())
            .select_from(Reservation)
            .join(Aliquot, Aliquot.id == Reservation.aliquot_id)
            .where(
                Reservation.request_id == request.id,
                Reservation.closed_at.is_(None),
                Reservation.picked_at.is_(None),
            ),
            actor,
        )
    ).scalar()
    return Picked(aliquot.barcode, where, left, samples.old_label_read(raw_code, aliquot))


def _open_reservation(request_id: int, aliquot_id: int) -> Reservation | None:
    return db.session.execute(
        sa.select(Reservation).where(
            Reservation.request_id == request_id,
            Reservation.aliquot_id == aliquot_id,
            Reservation.closed_at.is_(None),
        )
    ).scalar()


def _refuse_withdrawn(aliquots: list[Aliquot]) -> None:
    """Refuse, naming them, aliquots whose participant withdrew consent (one query, so a
    whole shipment is checked at once)."""
    withdrawn = list(
        db.session.execute(
            sa.select(Aliquot.barcode)
            .join(Specimen, Specimen.id == Aliquot.specimen_id)
            .join(Visit, Visit.id == Specimen.visit_id)
            .join(Participant, Participant.id == Visit.participant_id)
            .where(
                Aliquot.id.in_([a.id for a in aliquots]),
                Participant.consent_status != "given",
            )
            .order_by(Aliquot.barcode)
        ).scalars()
    )
    if withdrawn:
        raise Conflict(
            _l(
                "Biobank consent was withdrawn for %(codes)s: they may not be distributed. "
                "Leave them in the freezer for the manager.",
                codes=", ".join(withdrawn),
            ),
            code="consent.withdrawn",
            fields={"barcode": " ".join(withdrawn)},
        )


# --- shipments ---------------------------------------------------------------------------


def _origin_site(actor) -> Site:
    if actor.site_id is not None:
        return db.session.get(Site, actor.site_id)
    central = db.session.execute(sa.select(Site).where(Site.is_central)).scalar()
    if central is None:
        raise Invalid(_l("No central biobank site is set up."), fields={"origin": ""})
    return central


def create_shipment(
    *,
    request_id: int | None = None,
    destination_site: str | None = None,
    box_rows: int = 9,
    box_cols: int = 9,
    actor,
) -> Shipment:
    """A shipment being packed: for a request (to its receiving laboratory) or a transfer
    to another site."""
    if (request_id is None) == (not destination_site):
        raise Invalid(
            _l("A shipment is either for a request or a transfer to a site."),
            fields={"destination_site": destination_site or ""},
        )
    if not (1 <= box_rows <= 26 and 1 <= box_cols <= 99):
        raise Invalid(_l("Shipping boxes have 1–26 rows and 1–99 columns."), fields={"box": ""})
    origin = _origin_site(actor)
    shipment = Shipment(
        origin_site_id=origin.id,
        box_rows=box_rows,
        box_cols=box_cols,
        created_by_id=actor.id,
    )
    if request_id is not None:
        request = _request_to_prepare(request_id, actor)
        if request.status not in PICKABLE_REQUESTS:
            raise Conflict(
                _l("Request %(code)s is %(status)s.", code=request.code, status=request.status),
                code="request.status",
            )
        shipment.request_id = request.id
        shipment.recipient = request.receiving_lab
        shipment.contact = f"{request.contact_name} <{request.contact_email}>"
    else:
        site = sites.get_site(destination_site)
        if site.id == origin.id:
            raise Invalid(
                _l("A transfer goes to another site."),
                fields={"destination_site": site.code},
            )
        shipment.destination_site_id = site.id
        shipment.recipient = f"{site.name} ({site.code})"
    db.session.add(shipment)
    db.session.flush()
    return shipment


def shipments_in_reach(query, actor):
    """The centre rule of shipments: a user bound to a centre sees those leaving it or
    coming to it. What such a shipment carries is that centre's tubes only (see
    ``_refuse_other_centre``), so seeing it shows nothing of another centre."""
    if samples.bound_to_a_centre(actor):
        query = query.where(
            sa.or_(
                Shipment.origin_site_id == actor.site_id,
                Shipment.destination_site_id == actor.site_id,
            )
        )
    return query


def incoming(query, actor):
    """``query`` on shipments limited to those coming to the actor's centre: its own for a
    user bound to one, the central biobank's for its users (who are bound to none). A
    shipment to a laboratory comes to no centre."""
    if samples.bound_to_a_centre(actor):
        return query.where(Shipment.destination_site_id == actor.site_id)
    central = sa.select(Site.id).where(Site.is_central)
    return query.where(Shipment.destination_site_id.in_(central))


def still_missing(query):
    """``query`` joined to the items of shipments (ShipmentItem) limited to the tubes not
    found at receipt and not found since: the discrepancies still open."""
    return query.where(ShipmentItem.outcome == "missing", Aliquot.status == "missing")


def list_shipments(
    *,
    actor,
    status: str | None = None,
    coming_here: bool = False,
    missing: bool = False,
    limit=100,
    offset=0,
) -> Page:
    """Shipments newest first, those the actor sees; ``coming_here``: those coming to the
    actor's centre; ``missing``: those with a tube still missing since their receipt."""
    query = shipments_in_reach(sa.select(Shipment), actor)
    if status:
        query = query.where(Shipment.status == status)
    if coming_here:
        query = incoming(query, actor)
    if missing:
        holding = sa.select(ShipmentItem.shipment_id).join(
            Aliquot, Aliquot.id == ShipmentItem.aliquot_id
        )
        query = query.where(Shipment.id.in_(still_missing(holding)))
    total = db.session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
    items = db.session.execute(query.order_by(Shipment.id.desc()).limit(limit).offset(offset))
    return Page(list(items.scalars()), total)


def shipments_of(request_id: int, *, actor) -> list[Shipment]:
    """A request's shipments that the actor may see."""
    query = shipments_in_reach(sa.select(Shipment), actor)
    return list(
        db.session.execute(
            query.where(Shipment.request_id == request_id).order_by(Shipment.id)
        ).scalars()
    )


def get_shipment(code: str | int, *, actor, lock: bool = False) -> Shipment:
    """A shipment by its code (S00012) or number; a centre's user sees only its own.

    ``lock`` holds its row to the end of the transaction, for a change: two people packing,
    scanning or completing the receipt of one shipment at once are served one after the
    other, each seeing what the other did (SQLite's writers queue anyway)."""
    text = str(code).strip().upper().removeprefix("S")
    number = int(text) if text.isdigit() and len(text) <= 9 else None
    shipment = (
        db.session.get(Shipment, number, with_for_update=lock or None, populate_existing=lock)
        if number
        else None
    )
    sites = (shipment.origin_site_id, shipment.destination_site_id) if shipment else ()
    if actor.site_id is not None and actor.site_id not in sites:
        shipment = None
    if shipment is None:
        raise NotFound(_l("No shipment %(code)s.", code=code), fields={"shipment": str(code)})
    return shipment


def _require_status(shipment: Shipment, status: str) -> None:
    if shipment.status != status:
        raise Conflict(
            _l("Shipment %(code)s is %(status)s.", code=shipment.code, status=shipment.status),
            code="shipment.status",
        )


def _next_place(shipment: Shipment) -> tuple[int, int, int]:
    grid = grid_for(shipment.box_rows, shipment.box_cols)
    taken = {(i.box_number, i.row, i.col) for i in shipment.items}
    box = 1
    while True:
        for row, col in grid.fill_order():
            if (box, row, col) not in taken:
                return box, row, col
        box += 1


def _in_open_shipment(aliquot_id: int, other_than: int) -> str | None:
    found = db.session.execute(
        sa.select(Shipment.id)
        .join(ShipmentItem, ShipmentItem.shipment_id == Shipment.id)
        .where(
            ShipmentItem.aliquot_id == aliquot_id,
            Shipment.id != other_than,
            Shipment.status.in_(("preparing", "dispatched")),
        )
    ).scalar()
    return None if found is None else f"S{found:05d}"


def add_to_shipment(code: str, raw_code: str, *, actor) -> ShipmentItem:
    """Pack a scanned tube into the next free place of the shipping boxes. For a request,
    only its reserved tubes (picked now if not yet); for a transfer, any tube of the site
    that no request holds."""
    shipment = get_shipment(code, actor=actor, lock=True)
    _require_status(shipment, "preparing")
    aliquot = samples.find_aliquot(raw_code, actor=actor)
    packed = next((i for i in shipment.items if i.aliquot_id == aliquot.id), None)
    if packed is not None:
        grid = grid_for(shipment.box_rows, shipment.box_cols)
        raise Conflict(
            _l(
                "%(code)s is already packed (box %(box)d, position %(position)s): nothing more "
                "was recorded.",
                code=aliquot.barcode,
                box=packed.box_number,
                position=grid.label(packed.row, packed.col),
            ),
            code="shipment.already_packed",
            fields={"barcode": aliquot.barcode},
        )
    elsewhere = _in_open_shipment(aliquot.id, shipment.id)
    if elsewhere:
        raise Conflict(
            _l("%(code)s is in shipment %(other)s.", code=aliquot.barcode, other=elsewhere),
            code="shipment.elsewhere",
            fields={"barcode": aliquot.barcode},
        )
    _refuse_other_centre(shipment, aliquot)
    _refuse_withdrawn([aliquot])
    if shipment.request_id is not None:
        _pack_reserved(shipment, aliquot, actor)
    else:
        _pack_for_transfer(shipment, aliquot, actor)
    box, row, col = _next_place(shipment)
    item = ShipmentItem(shipment=shipment, aliquot_id=aliquot.id, box_number=box, row=row, col=col)
    db.session.add(item)
    db.session.flush()
    return item


def _refuse_other_centre(shipment: Shipment, aliquot: Aliquot) -> None:
    """A shipment from or to a centre carries only that centre's tubes (the central
    biobank's carry any): the centre's users, who see the shipment, its manifest and its
    receipt, thus see none of another centre's. Packed by a central user, a tube of
    another centre is refused here."""
    site_id = aliquot.specimen.visit.participant.site_id
    for end in (shipment.origin_site, shipment.destination_site):
        if end is not None and not end.is_central and end.id != site_id:
            raise Conflict(
                _l(
                    "%(code)s is a tube of another centre: a shipment from or to %(site)s "
                    "carries only that centre's tubes.",
                    code=aliquot.barcode,
                    site=end.code,
                ),
                code="shipment.other_centre",
                fields={"barcode": aliquot.barcode},
            )


def _pack_reserved(shipment: Shipment, aliquot: Aliquot, actor) -> None:
    reservation = _open_reservation(shipment.request_id, aliquot.id)
    if reservation is None:
        raise Conflict(
            _l(
                "Wrong tube: %(code)s is not reserved for request %(request)s.",
                code=aliquot.barcode,
                request=shipment.request.code,
            ),
            code="pick.wrong_tube",
            fields={"barcode": aliquot.barcode},
        )
    if reservation.picked_at is None:
        pick(shipment.request_id, aliquot.barcode, actor=actor)


def _pack_for_transfer(shipment: Shipment, aliquot: Aliquot, actor) -> None:
    if aliquot.status not in TRANSFERABLE:
        raise Conflict(
            _l(
                "%(code)s is %(status)s: it cannot travel.",
                code=aliquot.barcode,
                status=aliquot.status,
            ),
            code="aliquot.not_transferable",
            fields={"barcode": aliquot.barcode},
        )
    if aliquot.status == "in_storage":
        storage.check_out(
            aliquot.barcode,
            str(_l("Transfer %(code)s", code=shipment.code)),
            destination=shipment.recipient,
            actor=actor,
        )
    else:
        storage.check_take_out(aliquot)


def remove_from_shipment(code: str, raw_code: str, *, actor) -> None:
    """Take a tube out of a shipment still being packed (it stays checked out, to be put
    back in its place)."""
    shipment = get_shipment(code, actor=actor, lock=True)
    _require_status(shipment, "preparing")
    barcode = samples.find_aliquot(raw_code, actor=actor).barcode
    item = next((i for i in shipment.items if i.aliquot.barcode == barcode), None)
    if item is None:
        raise NotFound(
            _l("%(code)s is not in this shipment.", code=barcode), fields={"barcode": barcode}
        )
    shipment.items.remove(item)
    db.session.delete(item)
    db.session.flush()


@dataclass(frozen=True)
class Dispatch:
    carrier: str
    tracking_number: str
    dry_ice: bool
    dry_ice_kg: float | None
    logger_id: str
    dispatched_at: datetime | None = None


def dispatch(code: str, details: Dispatch, *, actor) -> Shipment:
    """The shipment leaves: every tube gets a SHIPPED custody event, its freezer position
    is freed, the request's reservations are fulfilled and its researcher told."""
    shipment = get_shipment(code, actor=actor, lock=True)
    _require_status(shipment, "preparing")
    if not shipment.items:
        raise Invalid(_l("Pack at least one tube first."), fields={"items": ""})
    carrier = requests.required_text(details.carrier, "carrier", 100)
    tracking = requests.required_text(details.tracking_number, "tracking_number", 100)
    if details.dry_ice_kg is not None and not 0 < details.dry_ice_kg <= 200:
        raise Invalid(
            _l("Dry ice: from 0 to 200 kg."), fields={"dry_ice_kg": str(details.dry_ice_kg)}
        )
    when = (details.dispatched_at or utcnow()).astimezone(UTC)
    if when > utcnow():
        raise Invalid(_l("The dispatch time is in the future."), fields={"dispatched_at": ""})
    if when < shipment.created_at:
        raise Invalid(
            _l("The dispatch time is before the shipment was started."),
            fields={"dispatched_at": when.isoformat()},
        )
    aliquots = [item.aliquot for item in shipment.items]
    _refuse_withdrawn(aliquots)
    not_out = [a.barcode for a in aliquots if a.status not in ("checked_out", "registered")]
    if not_out:
        raise Conflict(
            _l("Not ready to travel: %(codes)s.", codes=", ".join(not_out)),
            code="shipment.not_ready",
        )
    shipment.carrier, shipment.tracking_number = carrier, tracking
    shipment.dry_ice, shipment.dry_ice_kg = details.dry_ice, details.dry_ice_kg
    shipment.logger_id = (details.logger_id or "").strip()[:100]
    shipment.status, shipment.dispatched_at, shipment.dispatched_by_id = (
        "dispatched",
        when,
        actor.id,
    )
    where = storage.release_positions(a.id for a in aliquots)
    grid = grid_for(shipment.box_rows, shipment.box_cols)
    changes = []
    for item in shipment.items:
        item.aliquot.status = "shipped"
        changes.append(
            (
                item.aliquot,
                {
                    "at": when,
                    "from_location": where.get(item.aliquot_id) or shipment.origin_site.name,
                    "to_location": shipment.recipient[:200],
                    "details": {
                        "shipment": shipment.code,
                        "box": item.box_number,
                        "position": grid.label(item.row, item.col),
                        "carrier": carrier,
                        "tracking_number": tracking,
                    },
                },
            )
        )
    db.session.flush()
    custody.record_many(changes, EventKind.SHIPPED, actor)
    if shipment.request is not None:
        _fulfil(shipment, actor)
    db.session.flush()
    return shipment


def _fulfil(shipment: Shipment, actor) -> None:
    request = shipment.request
    shipped = {item.aliquot_id for item in shipment.items}
    held = requests.open_reservations(request.id)
    requests.close_reservations([r for r in held if r.aliquot_id in shipped], "shipped", actor)
    if all(r.aliquot_id in shipped for r in held):
        requests.move_request(request, "shipped", actor, shipment.code)
    notifications.notify_each(
        "shipment.dispatched",
        requests.told_of(request),
        _l("Request %(code)s shipped (%(shipment)s)", code=request.code, shipment=shipment.code),
        _l(
            "%(n)d tubes for request %(code)s left on %(when)s with %(carrier)s, tracking "
            "number %(tracking)s. Please scan them on arrival against manifest %(shipment)s.",
            n=len(shipment.items),
            code=request.code,
            when=notifications.when_utc(shipment.dispatched_at),
            carrier=shipment.carrier,
            tracking=shipment.tracking_number,
            shipment=shipment.code,
        ),
    )


# --- receipt -----------------------------------------------------------------------------


def _may_receive(shipment: Shipment, actor) -> None:
    site = shipment.destination_site_id
    if site is not None and actor.site_id is not None and actor.site_id != site:
        raise Forbidden(_l("Only the receiving site records this receipt."))


@dataclass(frozen=True)
class Checked:
    barcode: str
    # received, damaged; unexpected (not on the manifest); found (missing at the receipt,
    # found and received since)
    outcome: str
    box: int | None
    position: str | None
    # An unexpected tube: the other shipment it travels in, if any.
    elsewhere: str | None = None
    # The old label the tube was scanned by (a tube of an imported inventory), else None.
    old_label: str | None = None


def _unexpected(shipment: Shipment) -> list[str]:
    return json.loads(shipment.unexpected or "[]")


def _item(shipment: Shipment, barcode: str) -> ShipmentItem | None:
    return next((i for i in shipment.items if i.aliquot.barcode == barcode), None)


def _travelling_in(barcode: str, other_than: int) -> str | None:
    """The shipment on its way (or being packed) that lists ``barcode``, if another does."""
    found = db.session.execute(
        sa.select(Shipment.id)
        .join(ShipmentItem, ShipmentItem.shipment_id == Shipment.id)
        .join(Aliquot, Aliquot.id == ShipmentItem.aliquot_id)
        .where(
            Aliquot.barcode == barcode,
            Shipment.id != other_than,
            Shipment.status.in_(("preparing", "dispatched")),
        )
        .order_by(Shipment.id.desc())
    ).scalar()
    return None if found is None else f"S{found:05d}"


def _already_checked_in(shipment: Shipment, item: ShipmentItem) -> Conflict:
    grid = grid_for(shipment.box_rows, shipment.box_cols)
    values = {
        "code": item.aliquot.barcode,
        "outcome": label(item.outcome, "item_outcome"),
        "box": item.box_number,
        "position": grid.label(item.row, item.col),
    }
    if shipment.status == "dispatched":
        message = _l(
            "%(code)s is already checked in (%(outcome)s, box %(box)d, position %(position)s): "
            "nothing more was recorded. To record damage, scan it again with “damaged” ticked.",
            **values,
        )
    else:
        message = _l(
            "%(code)s is already checked in (%(outcome)s, box %(box)d, position %(position)s): "
            "nothing more was recorded.",
            **values,
        )
    return Conflict(
        message, code="receipt.already_checked_in", fields={"barcode": item.aliquot.barcode}
    )


def check_in(code: str, raw_code: str, *, damaged: bool = False, note: str = "", actor) -> Checked:
    """One tube scanned on arrival, against the manifest.

    A tube the manifest does not list is noted as unexpected (and is not received), with the
    shipment it travels in if another one lists it. A tube scanned again is refused
    (``receipt.already_checked_in``) and nothing is written twice, unless the new scan marks
    it damaged or adds a note. Once the receipt is complete, scanning a tube it recorded
    missing records it found and received (``found``). A tube of an imported inventory may
    be scanned by its old label: ``old_label`` then says so, for the page to ask for its
    new label.
    """
    shipment = get_shipment(code, actor=actor, lock=True)
    _may_receive(shipment, actor)
    # The manifest names its tubes whoever's they are: the code scanned, barcode or old
    # label, is looked up across the bank.
    barcode = samples.barcode_named(raw_code)
    note = (note or "").strip()[:500]
    checked = _check_in(shipment, barcode, damaged, note, actor)
    if samples.code_as_scanned(raw_code) == barcode:
        return checked
    old_label = db.session.execute(
        sa.select(Aliquot.legacy_barcode).where(Aliquot.barcode == barcode)
    ).scalar()
    return replace(checked, old_label=old_label)


def _check_in(shipment: Shipment, barcode: str, damaged: bool, note: str, actor) -> Checked:
    """``check_in`` of the tube whose barcode is ``barcode``."""
    if shipment.status == "received":
        return _found_at_receipt(shipment, barcode, damaged, note, actor)
    _require_status(shipment, "dispatched")
    item = _item(shipment, barcode)
    if item is None:
        listed = _unexpected(shipment)
        if barcode not in listed:
            shipment.unexpected = json.dumps(sorted([*listed, barcode]))
        db.session.flush()
        return Checked(barcode, "unexpected", None, None, _travelling_in(barcode, shipment.id))
    if item.outcome is not None:
        marks_damage = damaged and item.outcome != "damaged"
        if not (marks_damage or (note and note != item.note)):
            raise _already_checked_in(shipment, item)
    else:
        item.checked_at = utcnow()
    if damaged:
        item.outcome = "damaged"
    item.outcome = item.outcome or "received"
    item.note = note or item.note
    db.session.flush()
    return _checked(shipment, item)


def _found_at_receipt(shipment: Shipment, barcode: str, damaged: bool, note: str, actor) -> Checked:
    """A tube scanned on the receive page after the receipt was completed."""
    item = _item(shipment, barcode)
    if item is None:
        raise Conflict(
            _l(
                "%(code)s is not on the manifest of %(shipment)s, whose receipt is complete: "
                "nothing was recorded. Set it aside and tell the sender.",
                code=barcode,
                shipment=shipment.code,
            ),
            code="receipt.not_on_manifest",
            fields={"barcode": barcode},
        )
    if item.outcome != "missing":
        raise _already_checked_in(shipment, item)
    aliquot = item.aliquot
    now = utcnow()
    recipient = shipment.recipient[:200]
    if aliquot.status == "missing":
        aliquot.status = "received"
        custody.record(
            aliquot,
            EventKind.FOUND,
            actor,
            at=now,
            to_location=recipient,
            reason=note or None,
            details={"shipment": shipment.code},
        )
    elif aliquot.status == "checked_out" and _found_for(aliquot, shipment):
        aliquot.status = "received"
    else:
        raise Conflict(
            _l(
                "%(code)s was missing from %(shipment)s but has been found since and is now "
                "%(status)s: nothing was recorded.",
                code=barcode,
                shipment=shipment.code,
                status=label(aliquot.status, "status"),
            ),
            code="receipt.no_longer_missing",
            fields={"barcode": barcode},
        )
    item.outcome = "damaged" if damaged else "received"
    item.checked_at = now
    item.note = note
    custody.record(
        aliquot,
        EventKind.RECEIVED,
        actor,
        at=now,
        to_location=recipient,
        reason=note or None,
        details={
            "shipment": shipment.code,
            "condition": shipment.receipt_condition,
            "damaged": damaged,
        },
    )
    _tell_found(aliquot, shipment, recipient)
    db.session.flush()
    checked = _checked(shipment, item)
    return Checked(checked.barcode, "found", checked.box, checked.position)


def _found_for(aliquot: Aliquot, shipment: Shipment) -> bool:
    """Whether the aliquot's newest custody event says it was found after going missing
    from ``shipment`` (recorded found elsewhere, now received with the shipment)."""
    newest = custody.history(aliquot.id, limit=1, newest_first=True)
    return (
        bool(newest)
        and newest[0].kind == EventKind.FOUND
        and json.loads(newest[0].details).get("shipment") == shipment.code
    )


def _missing_from(aliquot_id: int) -> Shipment | None:
    """The shipment whose receipt recorded this aliquot missing, the latest one."""
    return db.session.execute(
        sa.select(Shipment)
        .join(ShipmentItem, ShipmentItem.shipment_id == Shipment.id)
        .where(ShipmentItem.aliquot_id == aliquot_id, ShipmentItem.outcome == "missing")
        .order_by(Shipment.id.desc())
        .limit(1)
    ).scalar()


def _tell_found(aliquot: Aliquot, shipment: Shipment | None, where: str) -> None:
    barcode = aliquot.barcode
    reference = shipment.code if shipment is not None else "—"
    notifications.notify_each(
        "receipt.found",
        _managers_of(aliquot.specimen.visit.participant.site_id),
        _l("%(code)s found (missing from %(shipment)s)", code=barcode, shipment=reference),
        _l(
            "Aliquot %(code)s, recorded missing at the receipt of shipment %(shipment)s, "
            "was found: %(where)s.",
            code=barcode,
            shipment=reference,
            where=where,
        ),
    )


def record_found(raw_code: str, where: str, *, note: str = "", actor) -> Aliquot:
    """A tube recorded missing at a receipt turned up elsewhere than in its parcel (in the
    sender's dispatch room, at another laboratory): FOUND, saying where. It is then in
    hand, checked out of any freezer: it can be stored again (its return, into a box) or,
    if it reached the laboratory after all, received on its shipment's receive page."""
    aliquot = samples.find_aliquot(raw_code, actor=actor)
    where = requests.required_text(where, "where", 200)
    if aliquot.status != "missing":
        raise Conflict(
            _l(
                "%(code)s is %(status)s, not missing: nothing was recorded.",
                code=aliquot.barcode,
                status=label(aliquot.status, "status"),
            ),
            code="aliquot.not_missing",
            fields={"barcode": aliquot.barcode},
        )
    shipment = _missing_from(aliquot.id)
    aliquot.status = "checked_out"
    custody.record(
        aliquot,
        EventKind.FOUND,
        actor,
        to_location=where,
        reason=(note or "").strip()[:500] or None,
        details={"shipment": shipment.code if shipment is not None else None},
    )
    _tell_found(aliquot, shipment, where)
    db.session.flush()
    return aliquot


def _checked(shipment: Shipment, item) -> Checked:
    grid = grid_for(shipment.box_rows, shipment.box_cols)
    return Checked(
        item.aliquot.barcode, item.outcome, item.box_number, grid.label(item.row, item.col)
    )


def last_checked(receipt: Receipt, barcode: str | None) -> Checked | None:
    """What the receipt recorded for ``barcode`` (the tube scanned last), if anything."""
    if not barcode:
        return None
    if barcode in receipt.unexpected:
        elsewhere = _travelling_in(barcode, receipt.shipment.id)
        return Checked(barcode, "unexpected", None, None, elsewhere)
    item = _item(receipt.shipment, barcode)
    if item is None or item.outcome is None:
        return None
    checked = _checked(receipt.shipment, item)
    received_at = receipt.shipment.received_at
    if received_at is not None and item.checked_at is not None and item.checked_at > received_at:
        # Checked in after the receipt was completed: it was missing, and found.
        return Checked(checked.barcode, "found", checked.box, checked.position)
    return checked


def check_in_rack(code: str, data: bytes, *, actor) -> list[Checked]:
    """A rack-scanner file of the arriving tubes: each tube read and not yet checked in is
    checked in (reading the same rack twice records nothing twice)."""
    try:
        scan = parse_rack_csv(data)
    except RackScanError as err:
        raise Invalid(str(err), code="rack.unreadable", fields={"file": str(err)}) from err
    shipment = get_shipment(code, actor=actor, lock=True)
    _require_status(shipment, "dispatched")
    done = {i.aliquot.barcode for i in shipment.items if i.outcome is not None}
    read = [r.barcode for r in scan.reads if r.barcode is not None]
    named = samples.barcodes_named(read)  # a tube read by its old label is its tube
    return [check_in(code, raw, actor=actor) for raw in read if named.get(raw, raw) not in done]


@dataclass(frozen=True)
class Receipt:
    shipment: Shipment
    received: list[str]
    damaged: list[str]
    not_scanned: list[str]  # while the shipment is on its way
    missing: list[str]  # recorded missing when the receipt was completed
    unexpected: list[str]

    def outcomes(self) -> dict[str, str]:
        """Barcode → what the receipt found (received, damaged, missing)."""
        found = dict.fromkeys(self.received, "received")
        found |= dict.fromkeys(self.damaged, "damaged")
        return found | dict.fromkeys(self.missing, "missing")

    def statuses(self) -> dict[str, str]:
        """Barcode → the aliquot's status now (a missing tube may have been found since)."""
        return {i.aliquot.barcode: i.aliquot.status for i in self.shipment.items}


def receipt(code: str, *, actor) -> Receipt:
    """What has been checked in so far (or at completion), by outcome."""
    shipment = get_shipment(code, actor=actor)
    by: dict[str | None, list[str]] = {"received": [], "damaged": [], None: [], "missing": []}
    for item in shipment.items:
        by[item.outcome].append(item.aliquot.barcode)
    return Receipt(
        shipment, by["received"], by["damaged"], by[None], by["missing"], _unexpected(shipment)
    )


def _already_received(shipment: Shipment) -> Conflict:
    by = db.session.get(User, shipment.received_by_id) if shipment.received_by_id else None
    return Conflict(
        _l(
            "The receipt of shipment %(code)s was already recorded by %(who)s: nothing more was "
            "recorded.",
            code=shipment.code,
            who=by.username if by is not None else "—",
        ),
        code="receipt.already_recorded",
    )


def complete_receipt(
    code: str,
    *,
    received_at: datetime | None = None,
    condition: str = "",
    temperature_c: float | None = None,
    actor,
) -> Receipt:
    """Close the receipt. Received and damaged tubes get a RECEIVED custody event (the
    damage and the note on the tube in it); every tube never scanned becomes ``missing``
    with a MISSING event naming the shipment. The request moves to received, and the
    managers are told of any tube missing, damaged or unexpected.

    Completed once: a second completion (a reload, the back button, a colleague at the same
    moment) is refused with ``receipt.already_recorded`` and writes nothing."""
    shipment = get_shipment(code, actor=actor, lock=True)
    _may_receive(shipment, actor)
    if shipment.status == "received":
        raise _already_received(shipment)
    _require_status(shipment, "dispatched")
    when = (received_at or utcnow()).astimezone(UTC)
    if when < shipment.dispatched_at or when > utcnow():
        raise Invalid(
            _l("The receipt time must be after dispatch and not in the future."),
            fields={"received_at": ""},
        )
    condition = requests.required_text(condition, "condition", 2000)
    arrived, missing = [], []
    for item in shipment.items:
        if item.outcome is None:
            item.outcome = "missing"
            item.aliquot.status = "missing"
            missing.append(
                (
                    item.aliquot,
                    {
                        "at": when,
                        "details": {
                            "shipment": shipment.code,
                            "carrier": shipment.carrier,
                            "tracking_number": shipment.tracking_number,
                        },
                    },
                )
            )
            continue
        item.aliquot.status = "received"
        arrived.append(
            (
                item.aliquot,
                {
                    "at": when,
                    "to_location": shipment.recipient[:200],
                    "reason": item.note or None,
                    "details": {
                        "shipment": shipment.code,
                        "condition": condition,
                        "damaged": item.outcome == "damaged",
                    }
                    | ({"temperature_c": temperature_c} if temperature_c is not None else {}),
                },
            )
        )
    shipment.status = "received"
    shipment.received_at, shipment.received_by_id = when, actor.id
    shipment.receipt_condition, shipment.receipt_temperature_c = condition, temperature_c
    db.session.flush()
    custody.record_many(arrived, EventKind.RECEIVED, actor)
    custody.record_many(missing, EventKind.MISSING, actor)
    request = shipment.request
    if request is not None and request.status == "shipped":
        db.session.refresh(request, with_for_update=True)
        if request.status == "shipped":
            requests.move_request(request, "received", actor, shipment.code)
    db.session.flush()
    done = receipt(shipment.code, actor=actor)
    if done.missing or done.damaged or done.unexpected:
        _tell_discrepancy(done)
    return done


def _managers_of(*site_ids: int | None) -> list[notifications.Recipient]:
    """The managers and administrators who may see the tubes of these sites: the central
    biobank's and those bound to one of these sites. A message naming tubes is written for
    them only: the managers of another centre are told nothing of them."""
    return notifications.recipients(
        *(
            user
            for user in auth.users_with_role("manager", "admin")
            if user.site_id is None or user.site_id in site_ids
        )
    )


def _centres_of(shipment: Shipment) -> list[int]:
    """The centres whose tubes a shipment may carry (none for the central biobank's)."""
    return [
        end.id
        for end in (shipment.origin_site, shipment.destination_site)
        if end is not None and not end.is_central
    ]


def _tell_discrepancy(done: Receipt) -> None:
    shipment = done.shipment
    notes = {i.aliquot.barcode: i.note for i in shipment.items if i.note}
    damaged = [f"{code} ({notes[code]})" if code in notes else code for code in done.damaged]
    reference = shipment.code + (f" ({shipment.request.code})" if shipment.request else "")
    notifications.notify_each(
        "receipt.discrepancy",
        _managers_of(*_centres_of(shipment)),
        _l(
            "Receipt of %(shipment)s: %(missing)d missing, %(damaged)d damaged, "
            "%(unexpected)d unexpected",
            shipment=reference,
            missing=len(done.missing),
            damaged=len(done.damaged),
            unexpected=len(done.unexpected),
        ),
        _l(
            "Shipment %(shipment)s to %(recipient)s was received with discrepancies.\n"
            "Received in good condition: %(received)d.\n"
            "Missing: %(missing)s.\n"
            "Damaged: %(damaged)s.\n"
            "Not on the manifest: %(unexpected)s.\n"
            "Condition on arrival: %(condition)s.",
            shipment=reference,
            recipient=shipment.recipient,
            received=len(done.received),
            missing=", ".join(done.missing) or "—",
            damaged=", ".join(damaged) or "—",
            unexpected=", ".join(done.unexpected) or "—",
            condition=shipment.receipt_condition,
        ),
    )


@dataclass(frozen=True)
class RequestReceipt:
    """What reached the laboratory of a request, over its received shipments."""

    shipped: int
    arrived: int  # received, damaged or not
    damaged: int
    missing: int  # still missing (a tube found and received since counts as arrived)
    awaited: int  # in shipments not received yet

    @property
    def any(self) -> bool:
        return self.shipped > 0


def request_receipt(request_id: int) -> RequestReceipt:
    """How many of a request's tubes arrived, arrived damaged, went missing, are on their
    way: one aggregate query over its shipments."""
    rows = db.session.execute(
        sa.select(Shipment.status, ShipmentItem.outcome, sa.func.count())
        .join(ShipmentItem, ShipmentItem.shipment_id == Shipment.id)
        .where(Shipment.request_id == request_id, Shipment.status.in_(("dispatched", "received")))
        .group_by(Shipment.status, ShipmentItem.outcome)
    ).all()
    counts = {(status, outcome): n for status, outcome, n in rows}

    def received(outcome):
        return counts.get(("received", outcome), 0)

    awaited = sum(n for (status, _), n in counts.items() if status == "dispatched")
    return RequestReceipt(
        shipped=sum(counts.values()),
        arrived=received("received") + received("damaged"),
        damaged=received("damaged"),
        missing=received("missing"),
        awaited=awaited,
    )


@dataclass(frozen=True)
class Travel:
    """One shipment an aliquot travelled in, and what its receipt found."""

    shipment: Shipment
    outcome: str | None
    note: str
    checked_at: datetime | None


@dataclass(frozen=True)
class Travels:
    barcode: str
    status: str
    travels: list[Travel]


def travels_of(aliquot_id: int) -> Travels:
    """The shipments that carried an aliquot, oldest first, and its status now (for its
    page: a tube missing since a receipt is recorded found there)."""
    aliquot = db.session.get(Aliquot, aliquot_id)
    rows = db.session.execute(
        sa.select(Shipment, ShipmentItem.outcome, ShipmentItem.note, ShipmentItem.checked_at)
        .join(ShipmentItem, ShipmentItem.shipment_id == Shipment.id)
        .where(ShipmentItem.aliquot_id == aliquot_id)
        .order_by(Shipment.id)
    ).all()
    return Travels(aliquot.barcode, aliquot.status, [Travel(*row) for row in rows])


def to_store(code: str, *, actor) -> list[int]:
    """The tubes of a received transfer still waiting for a place in the receiving site's
    freezers (for storage's allocation)."""
    shipment = get_shipment(code, actor=actor)
    return [
        i.aliquot_id
        for i in shipment.items
        if i.outcome in ("received", "damaged") and i.aliquot.status == "received"
    ]


# --- what the laboratory did -------------------------------------------------------------


def record_use(code: str, raw_code: str, used_ul: int, *, returned: bool, actor) -> Aliquot:
    """A received tube used by the laboratory: consumed (with the volume used), or sent
    back with what is left (it is then stored again like any received tube)."""
    shipment = get_shipment(code, actor=actor)
    _require_status(shipment, "received")
    aliquot = samples.find_aliquot(raw_code, actor=actor)
    if not any(i.aliquot_id == aliquot.id for i in shipment.items) or aliquot.status != "received":
        raise Conflict(
            _l("%(code)s is not a received tube of this shipment.", code=aliquot.barcode),
            code="use.not_received",
            fields={"barcode": aliquot.barcode},
        )
    if not 0 <= used_ul <= aliquot.volume_ul:
        raise Invalid(
            _l("The volume used must be between 0 and %(n)d µL.", n=aliquot.volume_ul),
            fields={"used_ul": str(used_ul)},
        )
    before = aliquot.volume_ul
    aliquot.volume_ul = before - used_ul
    details = {"shipment": shipment.code, "volume_ul_before": before, "used_ul": used_ul}
    if returned:
        aliquot.freeze_thaw_count += 1
        custody.record(
            aliquot,
            EventKind.RETURNED,
            actor,
            from_location=shipment.recipient[:200],
            details=details | {"volume_ul": aliquot.volume_ul},
        )
    else:
        aliquot.status = "consumed"
        custody.record(aliquot, EventKind.CONSUMED, actor, details=details)
    db.session.flush()
    return aliquot


# --- consent withdrawal ------------------------------------------------------------------


@dataclass(frozen=True)
class Affected:
    barcode: str
    sample_type: str
    visit: str
    status: str
    location: str
    reserved_for: str | None


def affected_by_withdrawal(participant_code: str, *, actor) -> list[Affected]:
    """Every aliquot of a participant still in the bank or on its way: what the manager has
    destroyed (or asks the laboratory to destroy) after a withdrawal of consent."""
    participant = study.get_participant(participant_code, actor=actor)
    rows = db.session.execute(
        sa.select(
            Aliquot.id,
            Aliquot.barcode,
            Aliquot.sample_type,
            Visit.visit_code,
            Aliquot.status,
            Reservation.request_id,
        )
        .join(Specimen, Specimen.id == Aliquot.specimen_id)
        .join(Visit, Visit.id == Specimen.visit_id)
        .outerjoin(
            Reservation,
            sa.and_(Reservation.aliquot_id == Aliquot.id, Reservation.closed_at.is_(None)),
        )
        .where(
            Visit.participant_id == participant.id,
            Aliquot.status.notin_(("consumed", "destroyed", "lost")),
        )
        .order_by(Visit.collected_on, Aliquot.barcode)
    ).all()
    where = storage.locations(r[0] for r in rows)
    return [
        Affected(code, kind, visit, status, where.get(id_, ""), held and f"R{held:05d}")
        for id_, code, kind, visit, status, held in rows
    ]


def withdraw_consent(participant_code: str, withdrawn_on, *, actor) -> list[Affected]:
    """Record the withdrawal and stop distribution at once: open reservations of the
    participant's aliquots are released. Returns the aliquots affected."""
    participant = study.withdraw_consent(participant_code, withdrawn_on, actor=actor)
    held = db.session.execute(
        sa.select(Reservation)
        .join(Aliquot, Aliquot.id == Reservation.aliquot_id)
        .join(Specimen, Specimen.id == Aliquot.specimen_id)
        .join(Visit, Visit.id == Specimen.visit_id)
        .where(Visit.participant_id == participant.id, Reservation.closed_at.is_(None))
    ).scalars()
    requests.close_reservations(
        list(held), "consent_withdrawn", actor, str(_l("Biobank consent withdrawn"))
    )
    return affected_by_withdrawal(participant.code, actor=actor)


def destroy_withdrawn(participant_code: str, barcodes: list[str], reason: str, *, actor) -> int:
    """Record the destruction of aliquots of a participant who withdrew consent."""
    affected = {a.barcode: a for a in affected_by_withdrawal(participant_code, actor=actor)}
    chosen = sorted({b.strip().upper() for b in barcodes if b.strip()})
    if not chosen:
        raise Invalid(_l("Tick the aliquots destroyed."), fields={"aliquots": ""})
    foreign = [b for b in chosen if b not in affected]
    if foreign:
        raise Invalid(
            _l(
                "Not aliquots of %(p)s still in the bank: %(codes)s.",
                p=participant_code,
                codes=", ".join(foreign),
            ),
            fields={"aliquots": " ".join(foreign)},
        )
    # Only a tube in hand is destroyed here: one at a laboratory, or missing since a
    # receipt, is asked back or looked for first.
    away = [b for b in chosen if affected[b].status in ("shipped", "missing")]
    if away:
        raise Conflict(
            _l(
                "Not in the bank's hands: %(codes)s. Record their destruction once they are "
                "back (or found).",
                codes=", ".join(f"{b} ({label(affected[b].status, 'status')})" for b in away),
            ),
            code="aliquot.not_in_hand",
            fields={"aliquots": " ".join(away)},
        )
    participant = study.get_participant(participant_code, actor=actor)
    if participant.consent_status != "withdrawn":
        raise Conflict(_l("Consent of %(code)s stands.", code=participant.code))
    for barcode in chosen:
        storage.destroy(barcode, reason, actor=actor)
    return len(chosen)
