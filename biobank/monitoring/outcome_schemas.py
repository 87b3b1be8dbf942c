"""JSON shapes of the trial's primary outcome: readiness, per-arm figures, participants."""

from __future__ import annotations

from marshmallow import Schema, fields

from biobank.assays.schemas import ResponseSchema
from biobank.monitoring.outcome import QUARTILE_METHOD, STATES


class ReadinessSchema(Schema):
    visit = fields.String()
    analyte = fields.String(metadata={"description": "VEGF (serum) or M_SPIKE"})
    state = fields.String(metadata={"description": " | ".join(STATES)})
    reason = fields.String(
        metadata={
            "description": "why it is not reportable: visit_not_registered, window_not_open, "
            "tube_not_collected, no_serum_specimen, left_study, no_result, no_value, "
            "preview, rejected; empty when reportable"
        }
    )
    explanation = fields.String(metadata={"description": "the reason in words"})
    value = fields.Float(allow_none=True, metadata={"description": "the reportable value"})
    shown = fields.String(metadata={"description": 'the value as read, e.g. "< 15.6"'})
    unit = fields.String()
    run = fields.String(allow_none=True, metadata={"description": "the run that gave it"})
    runs = fields.List(
        fields.String(), metadata={"description": "runs in preview or rejected holding a result"}
    )
    on = fields.Date(
        allow_none=True,
        metadata={"description": "the day the participant left, or the window opens"},
    )
    not_drawn = fields.String(metadata={"description": "why the serum tube was not drawn"})
    note = fields.String()


class SpreadSchema(Schema):
    n = fields.Integer(metadata={"description": "participants with a percent change"})
    median = fields.Float()
    q1 = fields.Float(metadata={"description": "first quartile"})
    q3 = fields.Float(metadata={"description": "third quartile"})


def _categories(pairs) -> list[dict]:
    return [{"category": category, "count": count} for category, count in pairs]


class CategoryCountSchema(Schema):
    category = fields.String()
    count = fields.Integer()


class ArmOutcomeSchema(Schema):
    code = fields.String()
    name = fields.String()
    included = fields.Integer(metadata={"description": "participants included in the arm"})
    paired_vegf = fields.Integer(metadata={"description": "with serum VEGF at baseline and M2"})
    paired_m_spike = fields.Integer(metadata={"description": "with M-spike at baseline and M2"})
    vegf_change = fields.Nested(SpreadSchema, allow_none=True)
    m_spike_change = fields.Nested(SpreadSchema, allow_none=True)
    vegf_responses = fields.Function(
        lambda arm: _categories(arm.vegf_responses),
        metadata={"description": "serum VEGF response categories at M2, with their counts"},
    )
    haematological_responses = fields.Function(
        lambda arm: _categories(arm.haematological_responses),
        metadata={"description": "haematological response categories at M2, with their counts"},
    )


class ParticipantOutcomeSchema(Schema):
    code = fields.String(metadata={"description": "the pseudonymised study code"})
    site = fields.String()
    arm = fields.String()
    left_on = fields.Date(allow_none=True)
    vegf_change = fields.Float(allow_none=True, metadata={"description": "percent, at M2"})
    m_spike_change = fields.Float(allow_none=True, metadata={"description": "percent, at M2"})
    vegf = fields.Nested(ResponseSchema, allow_none=True)
    haematological = fields.Nested(ResponseSchema, allow_none=True)
    readiness = fields.List(fields.Nested(ReadinessSchema))


class OutcomeSummarySchema(Schema):
    criteria_version = fields.String()
    baseline = fields.String()
    visit = fields.String(metadata={"description": "the visit the percent changes are at"})
    visits = fields.List(fields.String(), metadata={"description": "the outcome visits"})
    quartile_method = fields.String(
        metadata={
            "description": f"{QUARTILE_METHOD}: linear interpolation between order "
            "statistics (Hyndman & Fan type 7, R's default, Excel's QUARTILE.INC)"
        }
    )
    arms = fields.List(fields.Nested(ArmOutcomeSchema))
    participants = fields.List(fields.Nested(ParticipantOutcomeSchema))
