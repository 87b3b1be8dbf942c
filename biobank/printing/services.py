"""Printing labels: templates, rendering an aliquot's label, printers, and the custody
record of every print.

A label that went to paper (PDF for the browser's print dialog, ZPL downloaded or sent
to a printer) is a LABEL_PRINTED event on the aliquot, with template, format and count.
A PNG preview is not. A tube carries several labels (the wrap-around label, the cap
label): printing a template again for an aliquot is a reprint and must say why; the first
print of another template is not a reprint.
"""

from __future__ import annotations

import json
import socket
from collections import Counter, defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

import labels
from biobank.custody import services as custody
from biobank.custody.models import CustodyEvent
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
# A preview is drawn whole in memory, one byte per printer dot: 100 labels is a visit, or
# one sheet, and a contact sheet of 100 cryovial labels at 600 dpi is 30 million dots.
MAX_PREVIEW_LABELS = 100
MAX_PREVIEW_PIXELS = 40_000_000
# A refusal naming every reprinted tube of a large batch would not fit in a message (nor
# in the session cookie that carries it to the next page); the API error lists them all.
MAX_CODES_IN_MESSAGE = 20
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
    if fmt == "png" and count > MAX_PREVIEW_LABELS:
        raise Invalid(
            _l(
                "A preview shows at most %(n)d labels and %(count)d were chosen: preview "
                "fewer, or print them as a PDF.",
                n=MAX_PREVIEW_LABELS,
                count=count,
            ),
            code="label.preview_too_many",
            fields={"barcodes": str(count)},
        )
    if not 1 <= count <= MAX_LABELS_PER_JOB:
        raise Invalid(
            _l("Print 1 to %(n)d labels at a time.", n=MAX_LABELS_PER_JOB),
            fields={"barcodes": str(count)},
        )
    if fmt == "png" and count > 1:
        width, height = labels.contact_sheet_size(layout, count, dpi)
        if width * height > MAX_PREVIEW_PIXELS:
            raise Invalid(
                _l(
                    "A preview of %(count)d labels of %(t)s at %(dpi)d dpi is too large to "
                    "show: choose fewer labels or a lower resolution, or print them as a PDF.",
                    count=count,
                    t=layout.name,
                    dpi=dpi,
                ),
                code="label.preview_too_large",
                fields={"dpi": str(dpi)},
            )
    return dpi


def _render(layout, data: list[labels.LabelData], fmt: str, dpi: int) -> bytes:
    try:
        if fmt == "zpl":
            return labels.render_zpl(layout, data, dpi)
        if fmt == "pdf":
            return labels.render_pdf(layout, data, dpi)
        if len(data) == 1 and isinstance(layout, labels.Template):
            return labels.render_png(layout, data[0], dpi)
        # Several labels, or a sheet: all of them on one picture, each at true size.
        return labels.render_contact_sheet(layout, data, dpi, max_pixels=MAX_PREVIEW_PIXELS)
    except labels.LabelError as err:
        raise Invalid(str(err), code="label.unprintable", fields={"template": layout.name}) from err


def _filename(aliquots: list[Aliquot], layout, fmt: str) -> str:
    first = aliquots[0].barcode
    stem = first if len(aliquots) == 1 else f"{first}-and-{len(aliquots) - 1}-more"
    return f"labels-{layout.name}-{stem}.{fmt}"


def preview(barcode: str, template: str, *, dpi: int | None = None, actor) -> Rendered:
    """A PNG of one aliquot's label, to look at: not a print, nothing recorded."""
    return preview_labels([barcode], template, dpi=dpi, actor=actor)


def preview_labels(
    barcodes: list[str], template: str, *, dpi: int | None = None, actor
) -> Rendered:
    """A PNG of the labels of ``barcodes``, to look at: not a print, nothing recorded.

    One label is the label itself; several lie on one picture, each at its true size for
    ``dpi`` (a grid of labels, or the pages of a sheet template). At most
    MAX_PREVIEW_LABELS labels, and a picture of at most MAX_PREVIEW_PIXELS dots.
    """
    return _preview(get_template(template), barcodes, dpi, actor)


def _preview(layout, barcodes: list[str], dpi: int | None, actor) -> Rendered:
    dpi = _check_request(layout, "png", dpi, len(barcodes))
    aliquots = samples.find_aliquots(barcodes, actor=actor)
    content = _render(layout, [label_data(a) for a in aliquots], "png", dpi)
    return Rendered(content, "png", _filename(aliquots, layout, "png"), len(aliquots))


def printed_templates(aliquot_ids: list[int]) -> dict[int, set[str | None]]:
    """The templates each of these aliquots' labels were printed with, read from their
    LABEL_PRINTED custody events in one query. ``None`` stands for a print whose template
    was not recorded."""
    printed: dict[int, set[str | None]] = defaultdict(set)
    if not aliquot_ids:
        return printed
    rows = db.session.execute(
        sa.select(CustodyEvent.aliquot_id, CustodyEvent.details).where(
            CustodyEvent.aliquot_id.in_(aliquot_ids),
            CustodyEvent.kind == EventKind.LABEL_PRINTED.value,
        )
    )
    for aliquot_id, details in rows:
        printed[aliquot_id].add(json.loads(details or "{}").get("template"))
    return printed


def _reprints(aliquots: list[Aliquot], template: str) -> set[int]:
    """The aliquots whose label of ``template`` was printed before. A print whose
    template is unknown may have been this one: it counts as a reprint, which only asks
    for a reason."""
    printed = printed_templates([a.id for a in aliquots])
    return {a.id for a in aliquots if printed[a.id] & {template, None}}


def _reprint_refusal(layout, reprinted: list[Aliquot]) -> Invalid:
    codes = [a.barcode for a in reprinted]
    shown = ", ".join(codes[:MAX_CODES_IN_MESSAGE])
    if len(codes) > MAX_CODES_IN_MESSAGE:
        shown += ", …"
    if len(codes) == 1:
        message = _l(
            "The %(template)s label of %(codes)s was printed before: say why you reprint it.",
            template=layout.name,
            codes=shown,
        )
    else:
        message = _l(
            "The %(template)s labels of %(num)d aliquots were printed before (%(codes)s): "
            "say why you reprint them.",
            template=layout.name,
            num=len(codes),
            codes=shown,
        )
    return Invalid(
        message,
        code="label.reprint_reason",
        fields={"reason": "", "barcodes": ", ".join(codes)},
    )


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
    Conflict is raised and nothing is recorded. Aliquots whose label of this template was
    printed before need ``reason`` (a reprint says why); without it the whole job is
    refused, naming them, and nothing is recorded. The first print of another template
    (the cap label after the wrap-around label) is not a reprint. A PNG is a preview
    (see ``preview_labels``) and records nothing.
    """
    layout = get_template(template)
    if printer is not None:
        target = get_printer(printer)
        dpi, fmt = _printer_dpi(target, dpi), "zpl"
    if fmt == "png":
        return _preview(layout, barcodes, dpi, actor)
    dpi = _check_request(layout, fmt, dpi, len(barcodes))
    aliquots = samples.find_aliquots(barcodes, actor=actor)
    reprinted = _reprints(aliquots, layout.name)
    reason = (reason or "").strip() or None
    if reprinted and reason is None:
        raise _reprint_refusal(layout, [a for a in aliquots if a.id in reprinted])
    content = _render(layout, [label_data(a) for a in aliquots], fmt, dpi)
    if printer is not None:
        send_to_printer(target, content)
    custody.record_many(
        [
            (
                aliquot,
                {
                    "reason": reason if aliquot.id in reprinted else None,
                    "details": {
                        "template": layout.name,
                        "format": fmt,
                        "dpi": dpi,
                        "count": 1,
                        "job_labels": len(aliquots),
                        "reprint": aliquot.id in reprinted,
                        "printer": printer,
                    },
                },
            )
            for aliquot in aliquots
        ],
        EventKind.LABEL_PRINTED,
        actor,
    )
    return Rendered(content, fmt, _filename(aliquots, layout, fmt), len(aliquots))


@dataclass(frozen=True)
class LabelHistory:
    """An aliquot and the prints of its labels, for its label page."""

    aliquot: samples.AliquotSummary
    prints: list[CustodyEvent]  # its LABEL_PRINTED events, oldest first

    @property
    def templates(self) -> dict[str, int]:
        """How many times each template was printed, in the order first printed."""
        counts = Counter(json.loads(e.details or "{}").get("template") for e in self.prints)
        return {name or "?": n for name, n in counts.items()}


def label_history(barcode: str, *, actor) -> LabelHistory:
    """The aliquot a code names (within the actor's centre) and its label prints."""
    aliquot = samples.scan_aliquot(barcode, actor=actor)
    prints = db.session.execute(
        db.select(CustodyEvent)
        .where(
            CustodyEvent.aliquot_id == aliquot.id,
            CustodyEvent.kind == EventKind.LABEL_PRINTED.value,
        )
        .order_by(CustodyEvent.seq)
    )
    return LabelHistory(aliquot, list(prints.scalars()))


@dataclass(frozen=True)
class VisitLabels:
    """A visit's aliquots and the templates each was printed with, for its label page."""

    registration: samples.Registration
    printed: dict[int, set[str | None]]

    def printed_with(self, aliquot: Aliquot) -> list[str]:
        return sorted(name or "?" for name in self.printed.get(aliquot.id, ()))


def visit_labels(participant_code: str, visit_code: str, *, actor) -> VisitLabels:
    """A registered visit's aliquots (within the actor's centre) and, for each, the label
    templates already printed, so the page tells a first print from a reprint."""
    registration = samples.visit_aliquots(participant_code, visit_code, actor=actor)
    printed = printed_templates([a.id for a in registration.aliquots])
    return VisitLabels(registration, dict(printed))


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
