"""Pages: print a visit's labels, reprint one, printers, label templates."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.errors import DomainError, Invalid
from biobank.printing import services
from biobank.printing.forms import BoxLabelForm, PrinterForm, PrintForm, TemplateForm
from biobank.printing.responses import label_file
from biobank.web import local_path, refill, refuse, refuse_form

bp = Blueprint("printing", __name__, template_folder="templates")
PRINTER_PREFIX = "printer:"
DEFAULT_TEMPLATE = "cryo-38x13"


def _outputs() -> list[SelectChoice]:
    return [
        SelectChoice("pdf", _("PDF, for the browser's print dialog")),
        SelectChoice("zpl", _("ZPL file, for a Zebra printer")),
        SelectChoice("png", _("PNG preview (not recorded as printed)")),
    ] + [
        SelectChoice(PRINTER_PREFIX + p.name, _("Send to printer %(name)s", name=p.name))
        for p in services.list_printers()
    ]


def _printer_of(output: str) -> str | None:
    return output.removeprefix(PRINTER_PREFIX) if output.startswith(PRINTER_PREFIX) else None


def _print_form(barcodes: list[str], next_url: str) -> PrintForm:
    form = PrintForm(next=next_url)
    form.barcodes.choices = [SelectChoice(code, code) for code in barcodes]
    if not form.is_submitted():
        form.barcodes.data = barcodes
    form.template.choices = [
        SelectChoice(t.name, f"{t.name} — {t.description}")
        for t in services.list_templates()
        if t.for_aliquots
    ]
    if not form.is_submitted():
        form.template.data = DEFAULT_TEMPLATE
    form.output.choices = _outputs()
    return form


@bp.route("/participants/<code>/visits/<visit_code>/labels")
@requires(Permission.REGISTER)
def visit_labels(code, visit_code):
    labels = services.visit_labels(code, visit_code, actor=current_user)
    barcodes = [a.barcode for a in labels.registration.aliquots]
    form = refill(_print_form(barcodes, request.path))
    return render_template("printing/visit_labels.html", labels=labels, form=form)


@bp.route("/aliquots/<barcode>/labels")
@requires(Permission.REGISTER)
def aliquot_labels(barcode):
    history = services.label_history(barcode, actor=current_user)
    form = refill(_print_form([history.aliquot.barcode], request.path))
    return render_template(
        "printing/aliquot_labels.html", aliquot=history.aliquot, history=history, form=form
    )


@bp.route("/aliquots/<barcode>/label.png")
@requires(Permission.REGISTER)
def preview(barcode):
    """The label as a picture, for the page: not a print."""
    template = request.args.get("template", "cryo-38x13")
    rendered = services.preview(barcode, template, actor=current_user)
    return Response(rendered.content, mimetype=rendered.mimetype)


@bp.route("/print", methods=["POST"])
@requires(Permission.REGISTER)
def print_labels():
    form = _print_form([], request.form.get("next", ""))
    back = local_path(form.next.data, url_for("samples.scan"))
    if not form.validate_on_submit() or not form.barcodes.data:
        err = Invalid(_("Choose at least one aliquot, a label and an output."))
        return refuse(err, back)
    output = form.output.data
    printer = _printer_of(output)
    try:
        rendered = services.print_labels(
            form.barcodes.data,
            form.template.data,
            "zpl" if printer else output,
            dpi=int(form.dpi.data) if form.dpi.data else None,
            printer=printer,
            reason=form.reason.data,
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, back)
    if printer:
        flash(
            ngettext(
                "%(num)d label sent to printer %(name)s.",
                "%(num)d labels sent to printer %(name)s.",
                rendered.labels,
                name=printer,
            ),
            "success",
        )
        return redirect(back, 303)
    return label_file(rendered)


@bp.route("/box-labels", methods=["GET", "POST"])
@requires(Permission.REGISTER)
def box_labels():
    form = BoxLabelForm()
    form.output.choices = _outputs()
    here = url_for("printing.box_labels")
    if request.method == "GET":
        return render_template("printing/box_labels.html", form=refill(form))
    if not form.validate_on_submit():
        return refuse_form(form, here)
    printer = _printer_of(form.output.data)
    try:
        rendered = services.box_label(
            form.code.data,
            form.name.data or "",
            form.contents.data or "",
            form.output.data if printer is None else "zpl",
            printer=printer,
            copies=form.copies.data,
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, here)
    if printer is None:
        return label_file(rendered)
    flash(_("Box label sent to printer %(name)s.", name=printer), "success")
    return redirect(here, 303)


@bp.route("/printers")
@requires(Permission.ADMINISTER)
def printers():
    return render_template(
        "printing/printers.html", printers=services.list_printers(), form=refill(PrinterForm())
    )


@bp.route("/printers", methods=["POST"])
@requires(Permission.ADMINISTER)
def add_printer():
    form = PrinterForm()
    here = url_for("printing.printers")
    if not form.validate_on_submit():
        return refuse_form(form, here)
    try:
        printer = services.add_printer(
            form.name.data,
            form.host.data,
            port=form.port.data,
            dpi=int(form.dpi.data),
            location=form.location.data,
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, here)
    flash(_("Printer %(name)s added.", name=printer.name), "success")
    return redirect(here, 303)


@bp.route("/label-templates")
@requires(Permission.CONFIGURE)
def label_templates():
    return render_template(
        "printing/templates.html", templates=services.list_templates(), form=refill(TemplateForm())
    )


@bp.route("/label-templates", methods=["POST"])
@requires(Permission.CONFIGURE)
def save_label_template():
    form = TemplateForm()
    here = url_for("printing.label_templates")
    if not form.validate_on_submit():
        return refuse_form(form, here)
    try:
        saved = services.save_template(form.source.data, actor=current_user)
    except DomainError as err:
        return refuse(err, here)
    flash(_("Label template %(name)s saved.", name=saved.name), "success")
    return redirect(here, 303)
