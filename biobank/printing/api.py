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


@blp.route("/label-templates")
@requires(Permission.SIGNED_IN)
@blp.response(200, schemas.TemplateListSchema)
def list_templates():
    """The label templates and sheet layouts, shipped and added by an administrator."""
    return {"items": services.list_templates()}


@blp.route("/aliquots/<barcode>/label")
@requires(Permission.REGISTER)
@blp.arguments(schemas.PreviewArgs, location="query")
@blp.doc(
    responses={200: {"description": "The label as a PNG picture", "content": {"image/png": {}}}}
)
def aliquot_label_preview(args, barcode):
    """One aliquot's label as a PNG preview: not a print, nothing is recorded. A print
    (PDF, ZPL) is a POST, since it is recorded in custody."""
    rendered = services.preview(barcode, args["template"], dpi=args["dpi"], actor=current_user)
    return label_file(rendered)


@blp.route("/aliquots/<barcode>/label", methods=["POST"])
@requires(Permission.REGISTER)
@blp.arguments(schemas.LabelArgs)
@blp.doc(responses=LABEL_RESPONSES)
def aliquot_label(args, barcode):
    """One aliquot's label, printed: PDF and ZPL are recorded as LABEL_PRINTED (a reprint
    needs ``reason``); PNG is a preview and records nothing."""
    if args["format"] == "png":
        rendered = services.preview(barcode, args["template"], dpi=args["dpi"], actor=current_user)
    else:
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
@blp.doc(responses=LABEL_RESPONSES)
def print_batch(data):
    """Many labels at once: one PDF (a sheet layout, or a page per label) or one ZPL stream;
    with ``printer``, the ZPL goes to that printer and the answer is its ZPL."""
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
