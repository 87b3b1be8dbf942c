"""Printing labels: templates, rendering an aliquot's label, printers, and the custody
record of every print.

A label that went to paper (PDF for the browser's print dialog, ZPL downloaded or sent
to a printer) is a LABEL_PRINTED event on the aliquot, with template, format and count.
A PNG preview is not. A second print of the same aliquot is a reprint and must say why.
"""

from __future__ import annotations

import io
import socket
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

import labels
from biobank.custody import services as custody
from biobank.custody.services import EventKind
from biobank.errors import Conflict, Invalid, NotFound
from biobank.extensions import db
from biobank.printing.models import LabelTemplate, Printer
from biobank.samples import services as samples
from biobank.samples.models import Aliquot

FORMATS = ("pdf", "zpl", "png")
MIME_TYPES = {"pdf": "application/pdf", "zpl": "application/zpl", "png": "image/png"}
DEFAULT_DPI = {"pdf": 300, "png": 300, "zpl": 203}
MAX_LABELS_PER_JOB = 1000
PRINTER_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    kind: str  # "label" or "sheet"
    description: str
    width_mm: float
    height_mm: float
    dpis: tuple[int, ...]
    shipped: bool
    fields: tuple[str, ...]
    labels_per_page: int = 1

    @property
    def for_aliquots(self) -> bool:
        """Whether it is an aliquot's label: box labels are the ones printing a box's
        name or contents."""
        return not {"name", "contents"} & set(self.fields)


@dataclass(frozen=True)
class Rendered:
    content: bytes
    format: str
    filename: str
    labels: int

    @property
    def mimetype(self) -> str:
        return MIME_TYPES[self.format]


# --- templates ---------------------------------------------------------------------------


def _custom_templates() -> list[LabelTemplate]:
    return db.session.execute(db.select(LabelTemplate).order_by(LabelTemplate.name)).scalars().all()


def _info(layout, shipped: bool) -> TemplateInfo:
    if isinstance(layout, labels.Sheet):
        size = (layout.page_width_mm, layout.page_height_mm)
        return TemplateInfo(
            layout.name,
            "sheet",
            layout.description,
            *size,
            layout.dpis,
            shipped,
            layout.label.field_names,
            layout.labels_per_page,
        )
    size = (layout.width_mm, layout.height_mm)
    return TemplateInfo(
        layout.name, "label", layout.description, *size, layout.dpis, shipped, layout.field_names
    )


def list_templates() -> list[TemplateInfo]:
    """The shipped templates and sheets, then the administrator's own."""
    shipped = [_info(labels.load_template(name), True) for name in labels.template_names()]
    custom = [_info(labels.parse_template(t.source, t.name), False) for t in _custom_templates()]
    return shipped + custom


def get_template(name: str):
    """The label template or sheet called ``name``."""
    if name in labels.template_names():
        return labels.load_template(name)
    custom = db.session.execute(db.select(LabelTemplate).where(LabelTemplate.name == name)).scalar()
    if custom is None:
        known = ", ".join(t.name for t in list_templates())
        raise NotFound(
            _l("No label template %(name)s (known: %(known)s).", name=name, known=known),
            fields={"template": name},
        )
    return labels.parse_template(custom.source, custom.name)


def save_template(source: str, *, actor) -> TemplateInfo:
    """Validate an administrator's TOML template and keep it under its own name."""
    try:
        layout = labels.parse_template(source, "template")
    except ValueError as err:
        raise Invalid(str(err), code="label_template.invalid", fields={"source": ""}) from err
    if layout.name in labels.template_names():
        raise Conflict(
            _l("%(name)s is a shipped template; give yours another name.", name=layout.name),
            fields={"source": layout.name},
        )
    existing = db.session.execute(
        db.select(LabelTemplate).where(LabelTemplate.name == layout.name)
    ).scalar()
    if existing is None:
        db.session.add(
            LabelTemplate(name=layout.name, source=source, created_by_id=getattr(actor, "id", None))
        )
    else:
        existing.source = source
    db.session.flush()
    return _info(layout, shipped=False)


# --- rendering ---------------------------------------------------------------------------


def label_data(aliquot: Aliquot) -> labels.LabelData:
    """What an aliquot's label says: nothing that identifies the participant beyond the
    pseudonymised study code."""
    visit = aliquot.specimen.visit
    return labels.LabelData(
        aliquot.barcode,
        {
            "participant": visit.participant.code,
            "visit": visit.visit_code,
            "sample_type": aliquot.sample_type,
            "series": aliquot.series_label,
            "date": visit.collected_on.isoformat(),
        },
    )


def _check_request(layout, fmt: str, dpi: int | None, count: int) -> int:
    if fmt not in FORMATS:
        raise Invalid(_l("Unknown format %(f)s (pdf, zpl or png).", f=fmt), fields={"format": fmt})
    dpi = dpi or (DEFAULT_DPI[fmt] if DEFAULT_DPI[fmt] in layout.dpis else layout.dpis[0])
    if dpi not in layout.dpis:
        dpis = ", ".join(str(d) for d in layout.dpis)
        raise Invalid(
            _l("Template %(t)s is made for %(dpis)s dpi.", t=layout.name, dpis=dpis),
            fields={"dpi": str(dpi)},
        )
    if isinstance(layout, labels.Sheet) and fmt == "zpl":
        raise Invalid(
            _l(
                "Sheets are for laser printers: choose PDF, or a label template for "
                "a thermal printer."
            ),
            fields={"format": fmt},
        )
    if not 1 <= count <= MAX_LABELS_PER_JOB:
        raise Invalid(
            _l("Print 1 to %(n)d labels at a time.", n=MAX_LABELS_PER_JOB),
            fields={"barcodes": str(count)},
        )
    return dpi


def _render(layout, data: list[labels.LabelData], fmt: str, dpi: int) -> bytes:
    try:
        if fmt == "zpl":
            return labels.render_zpl(layout, data, dpi)
        if fmt == "pdf":
            return labels.render_pdf(layout, data, dpi)
        if isinstance(layout, labels.Sheet):  # a preview of the first sheet
            page = labels.render_pages(layout, data, dpi)[0]
            return _png(page, dpi)
        return labels.render_png(layout, data[0], dpi)
    except labels.LabelError as err:
        raise Invalid(str(err), code="label.unprintable", fields={"template": layout.name}) from err


def _png(image, dpi: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


def _filename(aliquots: list[Aliquot], layout, fmt: str) -> str:
    first = aliquots[0].barcode
    stem = first if len(aliquots) == 1 else f"{first}-and-{len(aliquots) - 1}-more"
    return f"labels-{layout.name}-{stem}.{fmt}"


def preview(barcode: str, template: str, *, dpi: int | None = None, actor) -> Rendered:
    """A PNG of one aliquot's label, to look at: not a print, nothing recorded."""
    layout = get_template(template)
    aliquot = samples.find_aliquots([barcode], actor=actor)[0]
    dpi = _check_request(layout, "png", dpi, 1)
    content = _render(layout, [label_data(aliquot)], "png", dpi)
    return Rendered(content, "png", _filename([aliquot], layout, "png"), 1)


def print_labels(
    barcodes: list[str],
    template: str,
    fmt: str,
    *,
    dpi: int | None = None,
    printer: str | None = None,
    reason: str | None = None,
    actor,
) -> Rendered:
    """Render the labels of ``barcodes`` and record each as printed.

    With ``printer``, the ZPL goes to that printer first: when it does not answer,
    Conflict is raised and nothing is recorded. Aliquots whose label was printed before
    need ``reason`` (a reprint says why). A PNG is a preview and records nothing.
    """
    layout = get_template(template)
    if printer is not None:
        target = get_printer(printer)
        dpi, fmt = _printer_dpi(target, dpi), "zpl"
    dpi = _check_request(layout, fmt, dpi, len(barcodes))
    aliquots = samples.find_aliquots(barcodes, actor=actor)
    content = _render(layout, [label_data(a) for a in aliquots], fmt, dpi)
    rendered = Rendered(content, fmt, _filename(aliquots, layout, fmt), len(aliquots))
    if fmt == "png":
        return rendered
    reprinted = custody.aliquots_with_event([a.id for a in aliquots], EventKind.LABEL_PRINTED)
    if reprinted and not (reason and reason.strip()):
        codes = ", ".join(a.barcode for a in aliquots if a.id in reprinted)
        raise Invalid(
            _l("Labels of %(codes)s were printed before: say why you reprint them.", codes=codes),
            code="label.reprint_reason",
            fields={"reason": ""},
        )
    if printer is not None:
        send_to_printer(target, content)
    for aliquot in aliquots:
        custody.record(
            aliquot,
            EventKind.LABEL_PRINTED,
            actor,
            reason=reason.strip() if aliquot.id in reprinted else None,
            details={
                "template": layout.name,
                "format": fmt,
                "dpi": dpi,
                "count": 1,
                "job_labels": len(aliquots),
                "reprint": aliquot.id in reprinted,
                "printer": printer,
            },
        )
    return rendered


BOX_TEMPLATE = "box-50x25"


def box_label(
    code: str,
    name: str,
    contents: str,
    fmt: str,
    *,
    dpi: int | None = None,
    printer: str | None = None,
    copies: int = 1,
    actor,
) -> Rendered:
    """A storage box's label (code, name, a line of contents). Boxes are not aliquots:
    nothing goes into a custody chain; the box's own record keeps what is inside."""
    code = (code or "").strip()
    if not code:
        raise Invalid(_l("The box barcode is required."), fields={"code": ""})
    layout = get_template(BOX_TEMPLATE)
    if printer is not None:
        target = get_printer(printer)
        dpi, fmt = _printer_dpi(target, dpi), "zpl"
    dpi = _check_request(layout, fmt, dpi, copies)
    data = [labels.LabelData(code, {"name": name.strip(), "contents": contents.strip()})] * copies
    content = _render(layout, data, fmt, dpi)
    if printer is not None:
        send_to_printer(target, content)
    return Rendered(content, fmt, f"box-label-{code}.{fmt}", copies)


# --- printers ----------------------------------------------------------------------------


def list_printers() -> list[Printer]:
    return db.session.execute(db.select(Printer).order_by(Printer.name)).scalars().all()


def get_printer(name: str) -> Printer:
    printer = db.session.execute(db.select(Printer).where(Printer.name == name)).scalar()
    if printer is None:
        raise NotFound(_l("No printer named %(name)s.", name=name), fields={"printer": name})
    return printer


def add_printer(
    name: str, host: str, *, port: int = 9100, dpi: int = 203, location: str = "", actor
) -> Printer:
    """Declare a network label printer (raw ZPL on host:port)."""
    name, host = (name or "").strip(), (host or "").strip()
    if not name or len(name) > 64:
        raise Invalid(
            _l("A printer name of 1 to 64 characters is required."), fields={"name": name}
        )
    if not host:
        raise Invalid(_l("The printer's host name or address is required."), fields={"host": ""})
    if not 1 <= port <= 65535:
        raise Invalid(_l("Port must be 1 to 65535."), fields={"port": str(port)})
    if dpi not in (203, 300, 600):
        raise Invalid(_l("Resolution must be 203, 300 or 600 dpi."), fields={"dpi": str(dpi)})
    if db.session.execute(db.select(Printer.id).where(Printer.name == name)).first():
        raise Conflict(_l("Printer %(name)s already exists.", name=name), fields={"name": name})
    printer = Printer(name=name, host=host, port=port, dpi=dpi, location=(location or "").strip())
    db.session.add(printer)
    db.session.flush()
    return printer


def _printer_dpi(printer: Printer, asked: int | None) -> int:
    """A printer prints at its own resolution: ZPL made for another is the wrong size."""
    if asked and asked != printer.dpi:
        raise Invalid(
            _l("Printer %(name)s prints at %(dpi)d dpi.", name=printer.name, dpi=printer.dpi),
            fields={"dpi": str(asked)},
        )
    return printer.dpi


def send_to_printer(printer: Printer, zpl: bytes) -> None:
    """Send raw ZPL to the printer's port; Conflict when it does not answer."""
    try:
        with socket.create_connection(
            (printer.host, printer.port), timeout=PRINTER_TIMEOUT_S
        ) as connection:
            connection.sendall(zpl)
    except OSError as err:
        raise Conflict(
            _l(
                "Printer %(name)s (%(host)s:%(port)d) does not answer: %(error)s. Check that it "
                "is on and connected; nothing was recorded as printed.",
                name=printer.name,
                host=printer.host,
                port=printer.port,
                error=err.strerror or str(err),
            ),
            code="printer.unreachable",
            fields={"printer": printer.name},
        ) from err
