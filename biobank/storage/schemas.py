"""JSON shapes of containers, boxes and storage requests."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from biobank.schemas import PageArgs
from biobank.storage.models import CONTAINER_KINDS, TEMPERATURE_CLASSES


class ContainerArgs(PageArgs):
    kind = fields.String(load_default=None, validate=validate.OneOf(CONTAINER_KINDS))


class BoxSummarySchema(Schema):
    barcode = fields.String()
    name = fields.String()
    rows = fields.Integer()
    cols = fields.Integer()
    free = fields.Integer()


class ContainerPageSchema(Schema):
    items = fields.List(fields.Nested(BoxSummarySchema))
    total = fields.Integer()


class NewContainerSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(CONTAINER_KINDS))
    name = fields.String(required=True)
    parent = fields.String(load_default=None, metadata={"description": "parent's barcode"})
    type = fields.String(load_default=None, metadata={"description": "container type name"})
    barcode = fields.String(load_default=None)
    site = fields.String(load_default=None, metadata={"description": "for a room: its site"})
    temperature_class = fields.String(
        load_default=None, validate=validate.OneOf(TEMPERATURE_CLASSES)
    )
    set_point_c = fields.Float(load_default=None)


class ContainerSchema(Schema):
    barcode = fields.String()
    name = fields.String()
    kind = fields.String()
    type = fields.Function(lambda c: c.type.name if c.type else None)
    parent = fields.Function(lambda c: c.parent.barcode if c.parent else None)
    temperature_class = fields.String(allow_none=True)


class WellSchema(Schema):
    position = fields.String()
    barcode = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    participant = fields.String(allow_none=True)
    visit = fields.String(allow_none=True)
    sample_type = fields.String(allow_none=True)
    series_number = fields.Integer(allow_none=True)
    series_total = fields.Integer(allow_none=True)
    reserved_for = fields.String(
        allow_none=True, metadata={"description": "the request the tube is reserved for"}
    )
    state = fields.String(metadata={"description": "empty, available, checked-out or reserved"})


class BoxMapSchema(Schema):
    barcode = fields.Function(lambda m: m.box.barcode)
    name = fields.Function(lambda m: m.box.name)
    rows = fields.Function(lambda m: m.grid.rows)
    cols = fields.Function(lambda m: m.grid.cols)
    location = fields.String()
    free = fields.Integer()
    positions = fields.List(fields.Nested(WellSchema), attribute="wells")


class PositionRequestSchema(Schema):
    box = fields.String(required=True)
    position = fields.String(
        load_default=None, metadata={"description": "e.g. B4; none: next free"}
    )


class StoredSchema(Schema):
    barcode = fields.Function(lambda s: s.aliquot.barcode)
    box = fields.Function(lambda s: s.box.barcode)
    position = fields.String()
    location = fields.String()
    moved_from = fields.String(allow_none=True)
    unchanged = fields.Boolean(
        metadata={"description": "it was already exactly there: nothing was recorded"}
    )


class CheckOutSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1))
    destination = fields.String(load_default="")


class ReturnSchema(Schema):
    volume_ul = fields.Integer(required=True, validate=validate.Range(min=0))
    thawed = fields.Boolean(required=True)
    box = fields.String(load_default=None)
    position = fields.String(load_default=None)


class MoveContainerSchema(Schema):
    parent = fields.String(required=True, metadata={"description": "the new parent's barcode"})


class ContainerMoveSchema(Schema):
    barcode = fields.Function(lambda m: m.container.barcode)
    name = fields.Function(lambda m: m.container.name)
    kind = fields.Function(lambda m: m.container.kind)
    type = fields.Function(lambda m: m.container.type.name if m.container.type else None)
    parent = fields.Function(lambda m: m.parent.barcode)
    temperature_class = fields.Function(lambda m: m.container.temperature_class)
    aliquots = fields.Integer(metadata={"description": "aliquots inside, each with its MOVED"})
    unchanged = fields.Boolean(
        metadata={"description": "it was already in that parent: nothing was recorded"}
    )


class ContentSchema(Schema):
    barcode = fields.String()
    participant = fields.String()
    visit = fields.String()
    sample_type = fields.String()
    status = fields.String()
    location = fields.String()


class ExcursionSchema(Schema):
    started_at = fields.AwareDateTime(required=True)
    ended_at = fields.AwareDateTime(required=True)
    highest_c = fields.Float(required=True)
    note = fields.String(load_default="")


class ExcursionResultSchema(Schema):
    container = fields.String()
    aliquots = fields.Integer()


class ProposalSchema(Schema):
    barcode = fields.String()
    sample_type = fields.String()
    series = fields.String(metadata={"description": "the aliquot's number in its series, 2/5"})
    box = fields.String()
    position = fields.String()
    location = fields.String()


class AllocationPlanSchema(Schema):
    proposals = fields.List(fields.Nested(ProposalSchema))
    unplaced = fields.List(fields.String())
    notes = fields.List(fields.String())


class AllocationRequestSchema(Schema):
    participant = fields.String(required=True)
    visit = fields.String(required=True)


class PlacementSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # a proposal can be posted back as it came, location and all

    barcode = fields.String(required=True)
    box = fields.String(required=True)
    position = fields.String(required=True)


class AllocationApplySchema(Schema):
    placements = fields.List(
        fields.Nested(PlacementSchema), required=True, validate=validate.Length(min=1, max=10_000)
    )


class AllocationResultSchema(Schema):
    stored = fields.Integer()


class RackScanArgs(Schema):
    box = fields.String(load_default=None, metadata={"description": "when the file names none"})
    apply = fields.Boolean(load_default=False)


class RackScanSchema(Schema):
    """The comparison, as `flask storage rack-scan --json` prints it."""

    rack = fields.String(allow_none=True)
    matched = fields.List(fields.Dict())
    moved = fields.List(fields.Dict())
    missing = fields.List(fields.Dict())
    unexpected = fields.List(fields.Dict())
    unknown = fields.List(fields.Dict())
    no_read = fields.List(fields.Dict())
    errors = fields.List(fields.Dict())
    old_labels = fields.List(
        fields.Dict(),
        metadata={"description": "tubes read by their old label: barcode, legacy_barcode"},
    )
