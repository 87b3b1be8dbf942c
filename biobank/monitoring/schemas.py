"""JSON shapes of collection completeness."""

from __future__ import annotations

from marshmallow import Schema, fields

from biobank.monitoring.completeness import STATUSES


class CompletenessArgs(Schema):
    site = fields.String(metadata={"description": "a centre's code", "example": "LIM"})
    arm = fields.String(metadata={"example": "G2"})
    as_of = fields.Date(
        metadata={"description": "the day to count on; today in each centre by default"}
    )
    # Checked by the service, like the arm, so that the page and the API say the same.
    status = fields.String(metadata={"description": " | ".join(STATUSES)})
    due_by = fields.Date(
        metadata={
            "description": "only the tubes to draw by that day: due, or upcoming "
            "with a window opening on it or before"
        }
    )


class DeviationSchema(Schema):
    code = fields.String()
    message = fields.String()


class CompletenessItemSchema(Schema):
    participant = fields.String()
    site = fields.String()
    arm = fields.String()
    visit = fields.String()
    tube_type = fields.String()
    status = fields.String(metadata={"description": " | ".join(STATUSES)})
    window_from = fields.Date(allow_none=True)
    window_to = fields.Date(allow_none=True)
    collected_on = fields.Date(allow_none=True)
    deviations = fields.List(fields.Nested(DeviationSchema))
    reason = fields.String(allow_none=True, metadata={"description": "why it was not drawn"})
    note = fields.String()


class CompletenessSchema(Schema):
    as_of = fields.Date()
    items = fields.List(fields.Nested(CompletenessItemSchema))
    summary = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "items per status, whatever the status asked for"},
    )
