"""JSON shapes of specimens, aliquots and custody events; the registration request."""

from __future__ import annotations

import json

from marshmallow import Schema, fields, post_load, validate

from biobank.samples import deviations, services
from biobank.samples.models import NOT_COLLECTED_REASONS, TEMPERATURE_CLASSES
from biobank.samples.services import MAX_NOT_COLLECTED_NOTE, NotCollected, SpinEntry, TubeEntry


class CustodyEventSchema(Schema):
    seq = fields.Integer()
    kind = fields.String()
    at = fields.DateTime()
    actor = fields.String(attribute="actor_name")
    from_location = fields.String(allow_none=True)
    to_location = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    details = fields.Function(lambda e: json.loads(e.details))
    prev_hash = fields.String()
    hash = fields.String()


class CustodySchema(Schema):
    barcode = fields.String()
    legacy_barcode = fields.String(
        allow_none=True, metadata={"description": "the code of its old label, if any"}
    )
    items = fields.List(fields.Nested(CustodyEventSchema))


class AliquotSchema(Schema):
    """An aliquot as a scan finds it (dumps an AliquotSummary)."""

    barcode = fields.String(metadata={"description": "its barcode in this bank"})
    legacy_barcode = fields.String(
        allow_none=True,
        metadata={
            "description": "the code of its old label, for a tube of an imported inventory "
            "(a scan of either code finds it); null otherwise"
        },
    )
    status = fields.String()
    volume_ul = fields.Integer()
    initial_volume_ul = fields.Integer()
    sample_type = fields.String()
    series = fields.String(attribute="series_label")
    freeze_thaw_count = fields.Integer()
    participant = fields.String()
    visit = fields.String()
    site = fields.String()
    tube_type = fields.String()
    sprec_code = fields.String()
    collected_at = fields.DateTime()
    location = fields.String(allow_none=True)
    registered_at = fields.DateTime()
    custody_events = fields.Integer(attribute="custody_count")


class AliquotPageSchema(Schema):
    items = fields.List(fields.Nested(AliquotSchema))
    total = fields.Integer()


class SpinSchema(Schema):
    temperature_c = fields.Float(required=True, validate=validate.Range(min=-20, max=45))
    force_g = fields.Integer(required=True, validate=validate.Range(min=1, max=100_000))
    minutes = fields.Integer(required=True, validate=validate.Range(min=1, max=240))
    braking = fields.Boolean(load_default=True)

    @post_load
    def make(self, data, **_):
        return SpinEntry(**data)


class TubeSchema(Schema):
    tube_type = fields.String(required=True, metadata={"example": "SST"})
    tube_barcode = fields.String(load_default=None, allow_none=True)
    collected_at = fields.AwareDateTime(required=True)
    received_at = fields.AwareDateTime(load_default=None, allow_none=True)
    precentrifugation_temperature = fields.String(
        load_default="RT", validate=validate.OneOf(TEMPERATURE_CLASSES)
    )
    spun_at = fields.AwareDateTime(required=True)
    spin = fields.Nested(SpinSchema, required=True)
    second_spin = fields.Nested(SpinSchema, load_default=None, allow_none=True)
    postcentrifugation_temperature = fields.String(
        load_default="RT", validate=validate.OneOf(TEMPERATURE_CLASSES)
    )
    frozen_at = fields.AwareDateTime(required=True)
    storage_temperature_c = fields.Integer(load_default=-80)
    aliquots = fields.Integer(load_default=None, allow_none=True)
    volume_ul = fields.Integer(load_default=None, allow_none=True)
    notes = fields.String(load_default="")

    @post_load
    def make(self, data, **_):
        return TubeEntry(**data)


class NotCollectedSchema(Schema):
    tube_type = fields.String(required=True, metadata={"example": "EDTA"})
    reason = fields.String(
        required=True,
        metadata={"description": "One of " + ", ".join(NOT_COLLECTED_REASONS) + "."},
    )
    note = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_NOT_COLLECTED_NOTE),
        metadata={"description": "Why, in words; required when the reason is other."},
    )

    @post_load
    def make(self, data, **_):
        return NotCollected(**data)


class RegistrationRequestSchema(Schema):
    participant = fields.String(required=True, metadata={"example": "LIM-001"})
    visit = fields.String(required=True, metadata={"example": "M2"})
    tubes = fields.List(
        fields.Nested(TubeSchema), load_default=list, validate=validate.Length(max=10)
    )
    not_collected = fields.List(
        fields.Nested(NotCollectedSchema),
        load_default=list,
        validate=validate.Length(max=10),
        metadata={"description": "The tubes not drawn at this visit, each with its reason."},
    )
    collected_on = fields.Date(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "The day of the visit, read only when no tube was drawn "
            "(otherwise the first tube's draw dates it)."
        },
    )


class RegisteredAliquotSchema(Schema):
    barcode = fields.String()
    sample_type = fields.String()
    series = fields.String(attribute="series_label")
    volume_ul = fields.Integer()
    status = fields.String()


def _deviations(found) -> list[dict]:
    return [{"code": d.code, "message": d.message} for d in found]


class SpecimenSchema(Schema):
    tube_type = fields.String()
    sample_type = fields.String()
    sprec_code = fields.String()
    collected_at = fields.DateTime()
    aliquots = fields.List(fields.Nested(RegisteredAliquotSchema))
    deviations = fields.Function(
        lambda s: _deviations(deviations.listed(s.deviations)),
        metadata={
            "description": "Where the tube's handling broke the protocol's SOP limits: "
            "[{code, message}], the message in the caller's language. A warning: the "
            "tube is registered all the same."
        },
    )


class UncollectedTubeSchema(Schema):
    tube_type = fields.String()
    reason = fields.String()
    note = fields.String()
    recorded_at = fields.DateTime()


class RegistrationSchema(Schema):
    participant = fields.Function(lambda r: r.visit.participant.code)
    visit = fields.Function(lambda r: r.visit.visit_code)
    collected_on = fields.Function(lambda r: r.visit.collected_on.isoformat())
    out_of_window = fields.Function(lambda r: r.visit.out_of_window)
    specimens = fields.List(fields.Nested(SpecimenSchema))
    deviations = fields.Function(
        lambda r: _deviations(filter(None, [services.visit_deviation(r.visit)])),
        metadata={"description": "The visit's own deviation (outside its window), if any."},
    )
    not_collected = fields.List(fields.Nested(UncollectedTubeSchema), attribute="uncollected")


class VolumeCorrectionSchema(Schema):
    volume_ul = fields.Integer(required=True, validate=validate.Range(min=0))
    reason = fields.String(required=True, validate=validate.Length(min=1))
