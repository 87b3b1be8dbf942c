"""Label rendering: plain data + a template in, PNG / PDF / ZPL bytes out.

This package knows millimetres, dots per inch, points and symbologies, nothing
about the biobank: the application maps an aliquot or a box to ``LabelData``.

Templates are TOML files in ``labels/templates`` (see the comments there):
``cryo-38x13`` (wrap-around, Code 128), ``cryo-cap`` (round cap, DataMatrix),
``box-50x25`` (box, Code 128) and the sheets ``sheet-a4`` / ``sheet-letter``
(5 x 20 cryo labels per page).

Example::

    import labels

    template = labels.load_template("cryo-38x13")
    data = labels.LabelData("7KQ2M9XWPR3A", {
        "participant": "P-000123", "visit": "V02", "sample_type": "Plasma EDTA",
        "series": "3/5", "date": "2025-11-29",
    })
    png = labels.render_png(template, data, dpi=300)
    zpl = labels.render_zpl(template, [data], dpi=203)
    pdf = labels.render_pdf(labels.load_template("sheet-a4"), [data] * 96, dpi=300)

Public API:

* ``Template``, ``Sheet``: validated, immutable layouts (millimetres, points).
* ``template_names()``, ``load_template(name)``: the shipped templates and sheets.
* ``load_template_file(path)``, ``parse_template(text, source)``: an admin's own
  TOML; errors are ValueError naming the file and the key.
* ``LabelData(code, fields)``: the code to encode and named text fields. Aliquot
  templates print ``code``, ``participant``, ``visit``, ``sample_type``,
  ``series`` ("3/5") and ``date``; ``box-50x25`` prints ``code``, ``name`` and
  ``contents``. Missing fields are blank; long text is cut with "…".
* ``render_png(template, data, dpi)``: one label, 1-bit PNG with dpi metadata.
* ``render_pdf(template_or_sheet, labels, dpi, skip=0)``: sheet pages, or one
  label-sized page per label; exact physical page size.
* ``render_zpl(template, labels, dpi)``: ZPL II for Zebra printers, deterministic.
* ``render_pages(template_or_sheet, labels, dpi, skip=0)``: the page bitmaps
  behind the PDF (Pillow images), e.g. for previews.
* ``render_contact_sheet(template_or_sheet, labels, dpi)``: a preview of many
  labels on one PNG, each at true size: a grid with a thin gap for a label
  template, the pages one below the other for a sheet. ``contact_sheet_size``
  gives its size in dots before drawing; a picture larger than ``max_pixels``
  dots (default 40 million, an A4 page at 600 dpi) is refused (ValueError).
* ``LabelError``: the code cannot be printed at a scannable size (the message
  names the template, the code length and what would fit) or has characters
  outside printable ASCII without space, ^, ~ and >.

Resolutions are 203, 300 and 600 dpi. Barcode modules are whole printer dots, at
least 0.125 mm for Code 128 and 0.25 mm for DataMatrix (rounded up to whole
dots: 1/2/3 and 2/3/6 dots at 203/300/600 dpi), with quiet zones of 10 and 1
modules inside the symbol's box. See ``labels.sizing``.
"""

from labels.contact import contact_sheet_size, render_contact_sheet
from labels.errors import LabelError
from labels.loading import load_template, load_template_file, parse_template, template_names
from labels.model import LabelData, Sheet, Template
from labels.pdf import render_pdf
from labels.raster import render_png
from labels.sheet import render_pages
from labels.zpl import render_zpl

__all__ = [
    "LabelData",
    "LabelError",
    "Sheet",
    "Template",
    "contact_sheet_size",
    "load_template",
    "load_template_file",
    "parse_template",
    "render_contact_sheet",
    "render_pages",
    "render_pdf",
    "render_png",
    "render_zpl",
    "template_names",
]
