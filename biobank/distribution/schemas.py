"""JSON shapes of the catalogue, requests, pick lists, shipments and receipts."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, post_load, pre_dump, validate

from biobank.distribution import criteria as criteria_rules
from biobank.distribution import services, shipping
from biobank.distribution.models import REQUEST_STATUSES, SHIPMENT_STATUSES
from biobank.distribution.shipping import Dispatch
from biobank.errors import Invalid
from biobank.schemas import PageArgs
from biobank.storage.positions import grid_for

MAX_ID = 2**31 - 1  # the largest integer key the databases hold

# --- criteria ----------------------------------------------------------------------------


class Codes(fields.List):
    """Codes as a JSON list, a comma-separated string, or (in a query) a repeated argument,
    or any mix of them: ``?visits=BL,M2&visits=M6``."""

    def __init__(self, **kwargs):
        super().__init__(fields.String(validate=validate.Length(max=200)), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [value]
        items = super()._deserialize(value, attr, data, **kwargs)
        return [code for item in items for code in re.split(r"[,\s]+", item) if code]


def _criteria_fields() -> dict:
    return {
        "visits": Codes(load_default=list, metadata={"example": ["BL", "M2"]}),
        "sample_types": Codes(load_default=list, metadata={"example": ["SER"]}),
        "arms": Codes(load_default=list),
        "disease_statuses": Codes(load_default=list),
        "min_volume_ul": fields.Integer(
            load_default=None,
            allow_none=True,
            validate=validate.Range(min=0, max=criteria_rules.MAX_VOLUME_UL),
        ),
        "max_freeze_thaw": fields.Integer(
            load_default=None,
            allow_none=True,
            validate=validate.Range(min=0, max=criteria_rules.MAX_FREEZE_THAW),
        ),
        "within_sop": fields.Boolean(
            load_default=False,
            metadata={
                "description": "Only samples handled within the protocol's SOP limits and "
                "collected within their visit's window."
            },
        ),
    }


def to_criteria(data: dict) -> criteria_rules.Criteria:
    """The loaded fields as a Criteria; the rules' refusals become field errors."""
    try:
        return criteria_rules.parse(data)
    except Invalid as err:
        names = list(err.fields) or ["_schema"]
        raise ValidationError({name: [str(err.message)] for name in names}) from err


class CatalogueArgs(Schema.from_dict(_criteria_fields())):
    """What the catalogue is filtered by (lists: comma-separated or repeated)."""

    @post_load
    def make(self, data, **_):
        return to_criteria(data)


class CriteriaSchema(Schema.from_dict(_criteria_fields())):
    """What a request asks for."""

    per_participant_visit = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=criteria_rules.MAX_PER_PARTICIPANT_VISIT),
        metadata={"description": "aliquots per participant × visit × sample type"},
    )

    @post_load
    def make(self, data, **_):
        return to_criteria(data)


def _number(count) -> int | None:
    """A shown count as a number: exact, or the lowest value of its range; None when
    suppressed."""
    return None if count is None else count.low


def _text(count) -> str | None:
    return None if count is None else str(count)


class CatalogueRowSchema(Schema):
    """A catalogue combination, as the small-cell rule shows it (disclosure.py)."""

    arm = fields.String()
    visit = fields.String()
    sample_type = fields.String()
    participants = fields.Integer(
        metadata={"description": "exact, or the lowest value of the range shown"}
    )
    aliquots = fields.Integer(
        allow_none=True,
        metadata={
            "description": "exact, or the lowest value of the range shown; null when the "
            "participants are fewer than the threshold"
        },
    )
    volume_ul = fields.Integer(
        allow_none=True, metadata={"description": "null without participant-level access"}
    )
    participants_shown = fields.String(metadata={"example": "5–9"})
    aliquots_shown = fields.String(allow_none=True, metadata={"example": "10–14"})
    exact = fields.Boolean(metadata={"description": "false: the counts are ranges"})

    @pre_dump
    def flatten(self, row, **_):
        return {
            "arm": row.arm,
            "visit": row.visit,
            "sample_type": row.sample_type,
            "participants": _number(row.participants),
            "aliquots": _number(row.aliquots),
            "volume_ul": row.volume_ul,
            "participants_shown": str(row.participants),
            "aliquots_shown": _text(row.aliquots),
            "exact": row.participants.exact and bool(row.aliquots and row.aliquots.exact),
        }


class MatchSchema(Schema):
    """How many a request would get, as the small-cell rule shows it: fewer participants
    than the threshold (zero included) are null counts, ``suppressed``, "< N"."""

    participants = fields.Integer(allow_none=True)
    aliquots = fields.Integer(allow_none=True)
    held_back = fields.Integer(
        allow_none=True,
        metadata={"description": "last aliquots of their group, kept unless a manager overrides"},
    )
    suppressed = fields.Boolean()
    shown_as = fields.String(
        allow_none=True, metadata={"description": '"< N" when the participants are suppressed'}
    )
    participants_shown = fields.String(metadata={"example": "5–9"})
    aliquots_shown = fields.String(allow_none=True)
    held_back_shown = fields.String(allow_none=True)
    exact = fields.Boolean(metadata={"description": "false: the counts are ranges"})

    @pre_dump
    def flatten(self, found, **_):
        people = found.participants
        return {
            "participants": _number(people),
            "aliquots": _number(found.aliquots),
            "held_back": _number(found.held_back),
            "suppressed": people.suppressed,
            "shown_as": str(people) if people.suppressed else None,
            "participants_shown": str(people),
            "aliquots_shown": _text(found.aliquots),
            "held_back_shown": _text(found.held_back),
            "exact": people.exact,
        }


# --- requests ----------------------------------------------------------------------------


class RequestArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(REQUEST_STATUSES))


class NewRequestSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    aim = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    receiving_lab = fields.String(required=True, validate=validate.Length(min=1, max=200))
    contact_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    contact_email = fields.Email(required=True, validate=validate.Length(max=200))
    criteria = fields.Nested(CriteriaSchema, required=True)


class RequestEventSchema(Schema):
    status = fields.String()
    at = fields.DateTime()
    actor = fields.String(attribute="actor_name")
    note = fields.String()


class RequestSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    title = fields.String()
    status = fields.String()
    receiving_lab = fields.String()
    researcher = fields.Function(lambda r: r.researcher.username)
    created_at = fields.DateTime()


class RequestPageSchema(Schema):
    items = fields.List(fields.Nested(RequestSchema))
    total = fields.Integer()


class RequestDetailSchema(RequestSchema):
    aim = fields.String()
    contact_name = fields.String()
    contact_email = fields.String()
    contact_confirmed = fields.Boolean(
        metadata={"description": "false: the contact's address is not mailed"}
    )
    contact_confirmed_at = fields.DateTime(allow_none=True)
    contact_confirmed_by = fields.Function(
        lambda r: r.contact_confirmed_by.username if r.contact_confirmed else None,
        allow_none=True,
    )
    criteria = fields.Function(lambda r: json.loads(r.criteria))
    updated_at = fields.DateTime()
    decision_reason = fields.String()
    events = fields.List(fields.Nested(RequestEventSchema))
    # A read for the shape only: how many aliquots the request holds, by state.
    reservations = fields.Function(
        lambda r: (
            {"reserved": 0, "picked": 0, "shipped": 0} | dict(services.reservation_summary(r.id))
        ),
        metadata={"description": "aliquots by state: reserved, picked, shipped, cancelled…"},
    )
    receipt = fields.Function(
        lambda r: dataclasses.asdict(shipping.request_receipt(r.id)),
        metadata={
            "description": "tubes shipped, arrived (damaged or not), damaged, missing, and "
            "awaited (in shipments not received yet)"
        },
    )


class ProposalArgs(Schema):
    per_participant_visit = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=criteria_rules.MAX_PER_PARTICIPANT_VISIT),
        metadata={"description": "fewer than the request asks for; default: as asked"},
    )
    max_participants = fields.Integer(load_default=None, validate=validate.Range(min=1))
    allow_last = fields.Boolean(
        load_default=False,
        metadata={"description": "include the last aliquot of a group (needs an override)"},
    )


class CandidateSchema(Schema):
    barcode = fields.String()
    participant = fields.String()
    visit = fields.String()
    sample_type = fields.String()
    volume_ul = fields.Integer()
    freeze_thaw = fields.Integer()


class HeldBackSchema(Schema):
    participant = fields.String(
        allow_none=True,
        metadata={"description": "its code; null when none of its aliquots is chosen"},
    )
    participant_id = fields.Integer()
    visit = fields.String()
    sample_type = fields.String()
    count = fields.Integer()


class ReservationProposalSchema(Schema):
    request = fields.String()
    per_participant_visit = fields.Integer()
    max_participants = fields.Integer(allow_none=True)
    allow_last = fields.Boolean()
    participants = fields.Integer()
    aliquots = fields.List(
        fields.Nested(CandidateSchema),
        metadata={"description": "in freezer walk order; post their barcodes to approve"},
    )
    last_aliquots = fields.List(
        fields.String(), metadata={"description": "chosen only under allow_last"}
    )
    held_back = fields.List(fields.Nested(HeldBackSchema))

    @pre_dump
    def flatten(self, proposal, **_):
        chosen = proposal.selection
        # Selection.held_back is keyed by participant id; a group held back entirely has
        # no chosen candidate to name its participant's code.
        codes = {c.participant_id: c.participant for c in chosen.chosen}
        held_back = [
            {
                "participant": codes.get(pid),
                "participant_id": pid,
                "visit": visit,
                "sample_type": kind,
                "count": count,
            }
            for (pid, visit, kind), count in sorted(chosen.held_back.items())
        ]
        return {
            "request": proposal.request.code,
            "per_participant_visit": proposal.per_participant_visit,
            "max_participants": proposal.max_participants,
            "allow_last": proposal.allow_last,
            "participants": chosen.participants,
            "aliquots": chosen.chosen,
            "last_aliquots": [c.barcode for c in chosen.last_ones],
            "held_back": held_back,
        }


class ApproveSchema(Schema):
    aliquots = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=services.MAX_BARCODES),
        metadata={"description": "the barcodes of the proposal reviewed"},
    )
    per_participant_visit = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=criteria_rules.MAX_PER_PARTICIPANT_VISIT),
    )
    override_reason = fields.String(
        load_default="",
        validate=validate.Length(max=2000),
        metadata={"description": "required to hand out the last aliquot of a group"},
    )
    note = fields.String(load_default="", validate=validate.Length(max=5000))


class ApprovalSchema(Schema):
    request = fields.Nested(RequestDetailSchema)
    reserved = fields.Integer()
    participants = fields.Integer()
    last_aliquots = fields.List(fields.String(), attribute="last_ones")


class ContactSchema(Schema):
    contact_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    contact_email = fields.Email(required=True, validate=validate.Length(max=200))


class ConfirmContactSchema(Schema):
    contact_email = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "the address confirmed, as the request shows it"},
    )


class ReasonSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


# --- picking -----------------------------------------------------------------------------


class BarcodeSchema(Schema):
    barcode = fields.String(required=True, validate=validate.Length(min=1, max=64))


class PickItemSchema(Schema):
    barcode = fields.String()
    sample_type = fields.String()
    volume_ul = fields.Integer()
    participant = fields.String()
    visit = fields.String()
    location = fields.String()
    status = fields.String()
    consent_withdrawn = fields.Boolean()
    picked = fields.Boolean()
    picked_at = fields.DateTime(allow_none=True)


class PickListSchema(Schema):
    request = fields.Function(lambda p: p.request.code)
    items = fields.List(fields.Nested(PickItemSchema))
    left = fields.Function(lambda p: len(p.left), metadata={"description": "tubes not picked"})


class PickedSchema(Schema):
    barcode = fields.String()
    location = fields.String()
    left = fields.Integer()
    old_label = fields.String(
        allow_none=True,
        metadata={"description": "the old label the tube was scanned by: print its new label"},
    )


# --- shipments ---------------------------------------------------------------------------


class ShipmentArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(SHIPMENT_STATUSES))


class NewShipmentSchema(Schema):
    request_id = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "for a request"},
    )
    destination_site = fields.String(
        load_default=None, metadata={"description": "for a transfer: the site's code"}
    )
    box_rows = fields.Integer(load_default=9, validate=validate.Range(min=1, max=26))
    box_cols = fields.Integer(load_default=9, validate=validate.Range(min=1, max=99))


def _position(item) -> str:
    return grid_for(item.shipment.box_rows, item.shipment.box_cols).label(item.row, item.col)


class ShipmentItemSchema(Schema):
    barcode = fields.Function(lambda i: i.aliquot.barcode)
    box = fields.Integer(attribute="box_number")
    position = fields.Function(_position)
    outcome = fields.String(allow_none=True)


class ShipmentSchema(Schema):
    code = fields.String()
    status = fields.String()
    request = fields.Function(lambda s: s.request.code if s.request else None, allow_none=True)
    origin = fields.Function(lambda s: s.origin_site.code)
    destination = fields.Function(
        lambda s: s.destination_site.code if s.destination_site else None, allow_none=True
    )
    recipient = fields.String()
    contact = fields.String()
    created_at = fields.DateTime()
    dispatched_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime(allow_none=True)


class ShipmentPageSchema(Schema):
    items = fields.List(fields.Nested(ShipmentSchema))
    total = fields.Integer()


class ShipmentDetailSchema(ShipmentSchema):
    box_rows = fields.Integer()
    box_cols = fields.Integer()
    carrier = fields.String()
    tracking_number = fields.String()
    dry_ice = fields.Boolean()
    dry_ice_kg = fields.Float(allow_none=True)
    logger_id = fields.String()
    receipt_condition = fields.String()
    receipt_temperature_c = fields.Float(allow_none=True)
    items = fields.List(fields.Nested(ShipmentItemSchema))
    unexpected = fields.Function(lambda s: json.loads(s.unexpected or "[]"))


def _utc(when: datetime | None) -> datetime | None:
    # Stored in UTC anyway; converted now so that what the services answer and write in
    # their messages ("… UTC") is UTC too, not the offset the client sent.
    return when.astimezone(UTC) if when is not None else None


class DispatchSchema(Schema):
    carrier = fields.String(required=True, validate=validate.Length(min=1, max=100))
    tracking_number = fields.String(required=True, validate=validate.Length(min=1, max=100))
    dry_ice = fields.Boolean(required=True)
    dry_ice_kg = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, max=200, min_inclusive=False),
    )
    logger_id = fields.String(load_default="", validate=validate.Length(max=100))
    dispatched_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "with its UTC offset; default: now"},
    )

    @post_load
    def make(self, data, **_):
        return Dispatch(**{**data, "dispatched_at": _utc(data["dispatched_at"])})


class ManifestLineSchema(Schema):
    box = fields.Integer(attribute="box_number")
    position = fields.String()
    barcode = fields.String()
    sample_type = fields.String()
    volume_ul = fields.Integer()
    visit = fields.String()
    participant = fields.String()


class ManifestSchema(Schema):
    shipment = fields.Function(lambda m: m["shipment"].code)
    items = fields.List(fields.Nested(ManifestLineSchema))


class CheckInSchema(Schema):
    barcode = fields.String(required=True, validate=validate.Length(min=1, max=64))
    damaged = fields.Boolean(load_default=False)
    note = fields.String(load_default="", validate=validate.Length(max=500))


class CheckedSchema(Schema):
    barcode = fields.String()
    outcome = fields.String(
        metadata={
            "description": "received, damaged, unexpected (not on the manifest), or found "
            "(recorded missing at the receipt, found and received now)"
        }
    )
    box = fields.Integer(allow_none=True)
    position = fields.String(allow_none=True)
    elsewhere = fields.String(
        allow_none=True,
        metadata={"description": "an unexpected tube: the other shipment that lists it"},
    )
    old_label = fields.String(
        allow_none=True,
        metadata={"description": "the old label the tube was scanned by: print its new label"},
    )


class RackFileSchema(Schema):
    file = Upload(required=True, metadata={"description": "the rack scanner's CSV"})


class ReceiptSchema(Schema):
    shipment = fields.Function(lambda r: r.shipment.code)
    status = fields.Function(lambda r: r.shipment.status)
    received = fields.List(fields.String())
    damaged = fields.List(fields.String())
    not_scanned = fields.List(
        fields.String(), metadata={"description": "not scanned yet (the receipt is open)"}
    )
    missing = fields.List(
        fields.String(),
        metadata={"description": "never scanned, recorded missing when the receipt was completed"},
    )
    unexpected = fields.List(fields.String())


class FoundSchema(Schema):
    where = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"example": "in the dispatch room's dry-ice box"},
    )
    note = fields.String(load_default="", validate=validate.Length(max=500))


class CompleteReceiptSchema(Schema):
    received_at = fields.AwareDateTime(
        load_default=None, allow_none=True, metadata={"description": "default: now"}
    )
    condition = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"example": "dry ice left, logger within range"},
    )
    temperature_c = fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(min=-273, max=60)
    )

    @post_load
    def in_utc(self, data, **_):
        return {**data, "received_at": _utc(data["received_at"])}


class UseSchema(Schema):
    barcode = fields.String(required=True, validate=validate.Length(min=1, max=64))
    used_ul = fields.Integer(required=True, validate=validate.Range(min=0))
    returned = fields.Boolean(
        load_default=False, metadata={"description": "sent back with what is left"}
    )


# --- consent withdrawal ------------------------------------------------------------------


class WithdrawalSchema(Schema):
    withdrawn_on = fields.Date(required=True)


class AffectedSchema(Schema):
    barcode = fields.String()
    sample_type = fields.String()
    visit = fields.String()
    status = fields.String()
    location = fields.String()
    reserved_for = fields.String(allow_none=True)


class AffectedListSchema(Schema):
    affected = fields.List(fields.Nested(AffectedSchema))


class DestroySchema(Schema):
    aliquots = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=10_000),
    )
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class DestroyedSchema(Schema):
    destroyed = fields.Integer()
