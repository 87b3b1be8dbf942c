"""JSON shapes of label templates, printers and print requests."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from biobank.printing.services import FORMATS, MAX_LABELS_PER_JOB

PRINT_FORMATS = ("pdf", "zpl")


class TemplateSchema(Schema):
    name = fields.String()
    kind = fields.String(metadata={"description": "label or sheet"})
    description = fields.String()
    width_mm = fields.Float()
    height_mm = fields.Float()
    dpis = fields.List(fields.Integer())
    labels_per_page = fields.Integer()
    shipped = fields.Boolean()


class TemplateListSchema(Schema):
    items = fields.List(fields.Nested(TemplateSchema))


class PreviewArgs(Schema):
    template = fields.String(load_default="cryo-38x13")
    format = fields.String(
        load_default="png",
        validate=validate.Equal(
            "png", error="A GET gives the PNG preview only; print a PDF or ZPL with POST."
        ),
    )
    dpi = fields.Integer(load_default=None, validate=validate.OneOf([203, 300, 600]))


class LabelArgs(Schema):
    template = fields.String(load_default="cryo-38x13")
    format = fields.String(
        load_default="pdf",
        validate=validate.OneOf(
            PRINT_FORMATS,
            error="A POST prints (pdf or zpl) and is recorded; GET this address for the PNG "
            "preview.",
        ),
    )
    dpi = fields.Integer(load_default=None, validate=validate.OneOf([203, 300, 600]))
    reason = fields.String(
        load_default=None,
        metadata={"description": "why, when this template was printed before for the aliquot"},
    )


class PrintRequestSchema(Schema):
    barcodes = fields.List(
        fields.String(), required=True, validate=validate.Length(min=1, max=MAX_LABELS_PER_JOB)
    )
    template = fields.String(load_default="cryo-38x13")
    format = fields.String(
        load_default="pdf",
        validate=validate.OneOf(FORMATS),
        metadata={"description": "pdf or zpl print and are recorded; png is a preview"},
    )
    dpi = fields.Integer(load_default=None, validate=validate.OneOf([203, 300, 600]))
    printer = fields.String(
        load_default=None, metadata={"description": "send the ZPL to this printer"}
    )
    reason = fields.String(
        load_default=None,
        metadata={"description": "why, for aliquots with this template printed before"},
    )


class PrinterSchema(Schema):
    name = fields.String()
    host = fields.String()
    port = fields.Integer()
    dpi = fields.Integer()
    location = fields.String()


class BoxLabelSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    name = fields.String(load_default="", validate=validate.Length(max=100))
    contents = fields.String(load_default="", validate=validate.Length(max=200))
    format = fields.String(load_default="pdf", validate=validate.OneOf(FORMATS))
    dpi = fields.Integer(load_default=None, validate=validate.OneOf([203, 300, 600]))
    printer = fields.String(load_default=None)
    copies = fields.Integer(load_default=1, validate=validate.Range(min=1, max=20))
