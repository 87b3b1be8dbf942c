"""JSON shapes of sites, participants, visits and the protocol."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from biobank.schemas import PageArgs
from biobank.study.models import DISEASE_STATUSES, LEAVING_REASONS
from biobank.study.services import MAX_LEAVING_NOTE


class SiteSchema(Schema):
    code = fields.String()
    name = fields.String()
    timezone = fields.String()
    is_central = fields.Boolean()


class VisitSchema(Schema):
    participant = fields.Function(lambda v: v.participant.code)
    visit = fields.String(attribute="visit_code")
    name = fields.Function(lambda v: v.definition.name)
    collected_on = fields.Date()
    study_day = fields.Integer()
    out_of_window = fields.Boolean()


class ParticipantSchema(Schema):
    code = fields.String()
    study = fields.String(attribute="study_code")
    site = fields.Function(lambda p: p.site.code)
    arm = fields.String(attribute="arm_code")
    disease_status = fields.String()
    included_on = fields.Date()
    consent_status = fields.String()
    consent_given_on = fields.Date()
    consent_withdrawn_on = fields.Date(allow_none=True)
    left_on = fields.Date(allow_none=True)
    left_reason = fields.String(allow_none=True)
    left_note = fields.String()


class ParticipantDetailSchema(ParticipantSchema):
    visits = fields.List(fields.Nested(VisitSchema))


class ParticipantPageSchema(Schema):
    items = fields.List(fields.Nested(ParticipantSchema))
    total = fields.Integer()


class ParticipantArgs(PageArgs):
    site = fields.String()
    arm = fields.String()


class NewParticipantSchema(Schema):
    code = fields.String(required=True, metadata={"example": "LIM-004"})
    site = fields.String(required=True, metadata={"example": "LIM"})
    arm = fields.String(required=True, metadata={"example": "G2"})
    disease_status = fields.String(required=True, validate=validate.OneOf(DISEASE_STATUSES))
    included_on = fields.Date(required=True)
    consent_given_on = fields.Date(required=True)


class LeavingSchema(Schema):
    left_on = fields.Date(required=True, metadata={"example": "2026-09-21"})
    reason = fields.String(
        required=True, metadata={"description": "One of " + ", ".join(LEAVING_REASONS) + "."}
    )
    note = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_LEAVING_NOTE),
        metadata={"description": "Why, in words; required when the reason is other."},
    )


class SamplePlanSchema(Schema):
    tube_type = fields.String()
    aliquots = fields.Integer()
    volume_ul = fields.Integer()


class VisitDefinitionSchema(Schema):
    code = fields.String()
    name = fields.String()
    arms = fields.Function(lambda d: [a.code for a in d.arms])
    nominal_day = fields.Integer()
    window_before_days = fields.Integer()
    window_after_days = fields.Integer()
    samples = fields.List(fields.Nested(SamplePlanSchema), attribute="sample_plans")


class ArmSchema(Schema):
    code = fields.String()
    name = fields.String()
    description = fields.String()


class ProtocolSchema(Schema):
    study = fields.String(attribute="study_code")
    version = fields.String()
    title = fields.String()
    sponsor = fields.String()
    sha256 = fields.String(attribute="content_sha256")
    loaded_at = fields.DateTime()
    arms = fields.List(fields.Nested(ArmSchema))
    visits = fields.List(fields.Nested(VisitDefinitionSchema), attribute="visit_definitions")
