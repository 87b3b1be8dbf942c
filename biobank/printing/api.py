"""/api/v1/label-templates, /api/v1/aliquots/<barcode>/label, /api/v1/labels."""

from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.printing import schemas, services
from biobank.printing.responses import label_file

blp = Blueprint("printing_api", __name__, description="Label templates and label printing.")

LABEL_RESPONSES = {
    200: {
        "description": "The label(s): application/pdf, application/zpl or image/png",
        "content": {mime: {} for mime in services.MIME_TYPES.values()},
    },
}
PRINT_RESPONSES = {
    200: {
        "description": "The printed label: application/pdf (opens in the browser) or "
        "application/zpl (a download). Recorded as LABEL_PRINTED in the aliquot's custody.",
        "content": {"application/pdf": {}, "application/zpl": {}},
    },
    400: {
        "description": "Refused, nothing recorded: a reprint of this template without "
        "``reason`` (code label.reprint_reason), a resolution or format the template is "
        "not made for, or an invalid field."
    },
    404: {"description": "No such aliquot (within your centre) or template."},
}
PREVIEW_RESPONSES = {
    200: {
        "description": "The label as a PNG picture, at true size for ``dpi``. Nothing is recorded.",
        "content": {"image/png": {}},
    },
    400: {"description": "A resolution the template is not made for, or a format other than png."},
    404: {"description": "No such aliquot (within your centre) or template."},
}


@blp.route("/label-templates")
@requires(Permission.SIGNED_IN)
@blp.response(200, schemas.TemplateListSchema)
def list_templates():
    """The label templates and sheet layouts, shipped and added by an administrator."""
    return {"items": services.list_templates()}


@blp.route("/aliquots/<barcode>/label")
@requires(Permission.REGISTER)
@blp.arguments(schemas.PreviewArgs, location="query")
@blp.doc(responses=PREVIEW_RESPONSES)
def aliquot_label_preview(args, barcode):
    """Preview one aliquot's label (PNG); nothing is recorded.

    A GET never writes: printing, which is recorded in custody, is a POST to this address.
    """
    rendered = services.preview(barcode, args["template"], dpi=args["dpi"], actor=current_user)
    return label_file(rendered)


@blp.route("/aliquots/<barcode>/label", methods=["POST"])
@requires(Permission.REGISTER)
@blp.arguments(schemas.LabelArgs)
@blp.doc(responses=PRINT_RESPONSES)
def aliquot_label(args, barcode):
    """Print one aliquot's label (PDF or ZPL), recorded as LABEL_PRINTED.

    Printing a template already printed for this aliquot is a reprint and needs
    ``reason``; the first print of another template (the cap label after the wrap-around
    label) does not. A preview is a GET to this address.
    """
    rendered = services.print_labels(
        [barcode],
        args["template"],
        args["format"],
        dpi=args["dpi"],
        reason=args["reason"],
        actor=current_user,
    )
    return label_file(rendered)


@blp.route("/labels", methods=["POST"])
@requires(Permission.REGISTER)
@blp.arguments(schemas.PrintRequestSchema)
@blp.doc(
    responses={
        **LABEL_RESPONSES,
        400: {
            "description": "Refused, nothing recorded: some of the aliquots had this "
            "template printed before and no ``reason`` was given (code "
            "label.reprint_reason; ``fields.barcodes`` lists them), or a preview of more "
            f"than {services.MAX_PREVIEW_LABELS} labels."
        },
        404: {"description": "An unknown aliquot (named), template or printer."},
        409: {"description": "The printer does not answer; nothing recorded."},
    }
)
def print_batch(data):
    """Print many labels at once: one PDF or one ZPL stream, or a PNG preview.

    PDF is a sheet layout or a page per label; with ``printer``, the ZPL goes to that
    printer and the answer is its ZPL. Every label printed is recorded; those of a
    template already printed for their aliquot are reprints and need ``reason`` (the
    whole batch is refused otherwise). ``format: png`` is a preview of all the labels on
    one picture (at most 100 of them) and records nothing.
    """
    rendered = services.print_labels(
        data["barcodes"],
        data["template"],
        data["format"],
        dpi=data["dpi"],
        printer=data["printer"],
        reason=data["reason"],
        actor=current_user,
    )
    return label_file(rendered)


@blp.route("/printers")
@requires(Permission.REGISTER)
@blp.response(200, schemas.PrinterSchema(many=True))
def list_printers():
    return services.list_printers()


@blp.route("/labels/box", methods=["POST"])
@requires(Permission.REGISTER)
@blp.arguments(schemas.BoxLabelSchema)
@blp.doc(responses=LABEL_RESPONSES)
def box_label(data):
    """A storage box's label (box-50x25): its barcode, name and a line of contents."""
    return label_file(
        services.box_label(
            data["code"],
            data["name"],
            data["contents"],
            data["format"],
            dpi=data["dpi"],
            printer=data["printer"],
            copies=data["copies"],
            actor=current_user,
        )
    )
