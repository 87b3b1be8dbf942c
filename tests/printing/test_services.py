"""Printing labels: what is rendered, that it scans, and what the custody log records."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
import zxingcpp
from PIL import Image

import labels
from biobank.custody import services as custody
from biobank.errors import Conflict, Invalid, NotFound
from biobank.extensions import db as _db
from biobank.printing import services as printing
from biobank.samples import barcodes
from biobank.samples import services as samples
from labels import load_template
from tests import factories


@pytest.fixture
def visit(db, sites):
    factories.participant("LIM", code="LIM-001")
    registration = factories.visit("LIM-001", "BL")
    db.session.commit()
    return [a.barcode for a in registration.aliquots]


@pytest.fixture
def technician(make_user):
    return make_user("technician")


def pdf_pages(content: bytes) -> list[tuple[float, float]]:
    boxes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", content)
    return [(float(w), float(h)) for w, h in boxes]


def aliquot(barcode):
    return samples.find_aliquots([barcode], actor=None)[0]


def label_events(barcode: str):
    return [e for e in custody.history(aliquot(barcode).id) if e.kind == "LABEL_PRINTED"]


def test_a_visit_prints_as_one_pdf_page_per_cryovial_label(visit, technician):
    rendered = printing.print_labels(visit, "cryo-38x13", "pdf", actor=technician)
    pages = pdf_pages(rendered.content)
    assert rendered.mimetype == "application/pdf" and rendered.labels == 10
    assert len(pages) == 10
    assert pages[0] == pytest.approx((107.717, 36.85), abs=0.01)  # 38 × 13 mm


def test_a_visit_prints_on_one_a4_sheet(visit, technician):
    rendered = printing.print_labels(visit, "sheet-a4", "pdf", actor=technician)
    assert pdf_pages(rendered.content) == [pytest.approx((595.276, 841.89), abs=0.01)]


def test_every_print_is_a_custody_event_with_template_format_and_count(visit, technician):
    printing.print_labels(visit[:3], "cryo-38x13", "zpl", dpi=203, actor=technician)
    for barcode in visit[:3]:
        [event] = label_events(barcode)
        details = json.loads(event.details)
        assert event.actor_name == technician.username
        assert details == {
            "template": "cryo-38x13",
            "format": "zpl",
            "dpi": 203,
            "count": 1,
            "job_labels": 3,
            "reprint": False,
            "printer": None,
        }
    assert label_events(visit[3]) == []
    assert custody.verify().intact


def test_a_reprint_must_say_why_and_then_shows_who_and_why(visit, technician):
    printing.print_labels(visit[:1], "cryo-38x13", "pdf", actor=technician)
    with pytest.raises(Invalid, match="printed before") as refused:
        printing.print_labels(visit[:2], "cryo-38x13", "pdf", actor=technician)
    assert refused.value.fields == {"reason": "", "barcodes": visit[0]}
    assert visit[0] in str(refused.value.message) and visit[1] not in str(refused.value.message)
    assert len(label_events(visit[1])) == 0  # nothing of the refused job was recorded

    printing.print_labels(visit[:2], "cryo-38x13", "pdf", reason="label torn", actor=technician)
    _first, again = label_events(visit[0])
    assert again.reason == "label torn" and json.loads(again.details)["reprint"] is True
    [only] = label_events(visit[1])
    assert only.reason is None


def test_a_png_preview_records_nothing(visit, technician):
    rendered = printing.preview(visit[0], "cryo-38x13", actor=technician)
    assert rendered.mimetype == "image/png"
    assert label_events(visit[0]) == []


@pytest.mark.parametrize(
    ("template", "symbology"), [("cryo-38x13", "Code128"), ("cryo-cap", "DataMatrix")]
)
def test_the_application_labels_scan_back_to_the_aliquot_barcode(
    visit, technician, template, symbology
):
    for dpi in (203, 300, 600):
        png = printing.preview(visit[0], template, dpi=dpi, actor=technician).content
        image = Image.open(io.BytesIO(png))
        found = [(r.text, r.format.name) for r in zxingcpp.read_barcodes(image)]
        assert (visit[0], symbology) in found, (template, dpi, found)


def test_the_label_carries_the_participant_visit_series_and_date(visit):
    data = printing.label_data(aliquot(visit[6]))
    assert data.code == visit[6]
    assert data.fields == {
        "participant": "LIM-001",
        "visit": "BL",
        "sample_type": "PL1",
        "series": "2/5",
        "date": "2026-01-05",
    }


def test_zpl_is_the_same_bytes_every_time(visit, technician):
    first = printing.print_labels(visit[:2], "cryo-38x13", "zpl", actor=technician).content
    again = printing.print_labels(
        visit[:2], "cryo-38x13", "zpl", reason="test", actor=technician
    ).content
    assert first == again and first.count(b"^XA") == 2


@pytest.mark.parametrize(
    ("template", "fmt", "dpi", "field"),
    [
        ("nope", "pdf", None, "template"),
        ("sheet-a4", "zpl", None, "format"),
        ("cryo-38x13", "pdf", 150, "dpi"),
        ("cryo-38x13", "tiff", None, "format"),
    ],
)
def test_impossible_print_requests_name_the_field(visit, technician, template, fmt, dpi, field):
    with pytest.raises((Invalid, NotFound)) as refused:
        printing.print_labels(visit[:1], template, fmt, dpi=dpi, actor=technician)
    assert field in refused.value.fields


def test_an_unknown_barcode_fails_the_whole_job(visit, technician):
    unknown = "ZZZZZZZZ" + barcodes.check_character("ZZZZZZZZ")
    with pytest.raises(NotFound, match=unknown):
        printing.print_labels([visit[0], unknown], "cryo-38x13", "pdf", actor=technician)
    assert label_events(visit[0]) == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_printer_that_does_not_answer_is_an_error_and_nothing_is_recorded(visit, technician):
    printing.add_printer("Bench Zebra", "127.0.0.1", port=free_port(), actor=None)
    with pytest.raises(Conflict, match="does not answer"):
        printing.print_labels(
            visit[:2], "cryo-38x13", "zpl", printer="Bench Zebra", actor=technician
        )
    assert label_events(visit[0]) == []


def test_a_printer_receives_the_zpl_and_the_print_is_recorded(visit, technician):
    received = bytearray()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def listen():
        connection, _ = server.accept()
        with connection:
            while chunk := connection.recv(65536):
                received.extend(chunk)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    printing.add_printer("Bench Zebra", "127.0.0.1", port=port, dpi=300, actor=None)
    rendered = printing.print_labels(
        visit, "cryo-38x13", "pdf", printer="Bench Zebra", actor=technician
    )
    thread.join(timeout=5)
    server.close()
    assert rendered.format == "zpl"  # a printer takes ZPL whatever the form said
    assert bytes(received) == rendered.content and received.count(b"^XA") == 10
    details = json.loads(label_events(visit[0])[0].details)
    assert details["printer"] == "Bench Zebra" and details["dpi"] == 300


def test_an_administrators_template_is_validated_and_then_usable(visit, technician):
    shipped = Path(load_template("cryo-38x13").source).read_text()
    with pytest.raises(Conflict, match="shipped"):
        printing.save_template(shipped, actor=None)
    mine = shipped.replace('name = "cryo-38x13"', 'name = "cryo-lab"')
    printing.save_template(mine, actor=None)
    assert "cryo-lab" in [t.name for t in printing.list_templates()]
    assert printing.print_labels(visit[:1], "cryo-lab", "pdf", actor=technician).labels == 1
    with pytest.raises(Invalid) as refused:
        printing.save_template(mine.replace("width_mm = 38.0", "width_mm = -1"), actor=None)
    assert "width_mm" in str(refused.value.message)


def test_a_printer_prints_at_its_own_resolution(visit, technician):
    printing.add_printer("Bench Zebra", "127.0.0.1", port=free_port(), dpi=203, actor=None)
    with pytest.raises(Invalid, match="203 dpi") as refused:
        printing.print_labels(
            visit[:1], "cryo-38x13", "zpl", dpi=600, printer="Bench Zebra", actor=technician
        )
    assert refused.value.fields == {"dpi": "600"}


def test_box_templates_are_not_offered_for_aliquots(db):
    offered = {t.name for t in printing.list_templates() if t.for_aliquots}
    assert {"cryo-38x13", "cryo-cap", "sheet-a4", "sheet-letter"} <= offered
    assert "box-50x25" not in offered


# --- a tube's several labels: the wrap-around label, then the cap label ------------------


def label_details(barcode: str) -> list[dict]:
    return [json.loads(e.details) for e in label_events(barcode)]


def test_the_cap_label_after_the_wrap_around_label_is_a_first_print(visit, technician):
    printing.print_labels(visit, "cryo-38x13", "pdf", actor=technician)

    printing.print_labels(visit, "cryo-cap", "pdf", actor=technician)  # no reason asked

    for barcode in visit:
        events = label_events(barcode)
        assert [json.loads(e.details)["template"] for e in events] == ["cryo-38x13", "cryo-cap"]
        assert [json.loads(e.details)["reprint"] for e in events] == [False, False]
        assert [e.reason for e in events] == [None, None]
    assert custody.verify().intact


def test_the_cap_label_printed_again_is_a_reprint_that_needs_a_reason(visit, technician):
    printing.print_labels(visit[:1], "cryo-38x13", "zpl", actor=technician)
    printing.print_labels(visit[:1], "cryo-cap", "zpl", actor=technician)

    with pytest.raises(Invalid) as refused:
        printing.print_labels(visit[:1], "cryo-cap", "zpl", actor=technician)

    assert refused.value.code == "label.reprint_reason"
    assert str(refused.value.message) == (
        f"The cryo-cap label of {visit[0]} was printed before: say why you reprint it."
    )
    assert len(label_events(visit[0])) == 2
    printing.print_labels(visit[:1], "cryo-cap", "zpl", reason="cap fell off", actor=technician)
    last = label_events(visit[0])[-1]
    details = json.loads(last.details)
    assert last.reason == "cap fell off"
    assert (details["template"], details["reprint"]) == ("cryo-cap", True)


def test_a_batch_mixing_first_prints_and_reprints_names_the_reprints_and_writes_nothing(
    visit, technician
):
    printing.print_labels(visit[:3], "cryo-cap", "zpl", actor=technician)
    printing.print_labels(visit[3:6], "cryo-38x13", "zpl", actor=technician)

    with pytest.raises(Invalid) as refused:
        printing.print_labels(visit[:6], "cryo-cap", "zpl", actor=technician)

    message = str(refused.value.message)
    assert message == (
        f"The cryo-cap labels of 3 aliquots were printed before ({', '.join(visit[:3])}): "
        "say why you reprint them."
    )
    assert not any(code in message for code in visit[3:6])  # first prints of the cap label
    assert refused.value.fields == {"reason": "", "barcodes": ", ".join(visit[:3])}
    assert [len(label_events(code)) for code in visit[:6]] == [1] * 6  # nothing written

    printing.print_labels(visit[:6], "cryo-cap", "zpl", reason="smudged", actor=technician)
    caps = [[d for d in label_details(code) if d["template"] == "cryo-cap"] for code in visit[:6]]
    assert [[d["reprint"] for d in printed] for printed in caps] == [[False, True]] * 3 + [
        [False]
    ] * 3
    assert [label_events(code)[-1].reason for code in visit[:6]] == ["smudged"] * 3 + [None] * 3
    assert custody.verify().intact


def test_a_batch_of_many_reprints_lists_the_first_twenty_in_its_message(db, sites, technician):
    codes = []
    for participant in ("LIM-002", "LIM-003", "LIM-004"):
        factories.participant("LIM", code=participant)
        codes += [a.barcode for a in factories.visit(participant, "BL").aliquots]
    db.session.commit()
    printing.print_labels(codes, "cryo-cap", "zpl", actor=technician)

    with pytest.raises(Invalid) as refused:
        printing.print_labels(codes, "cryo-cap", "zpl", actor=technician)

    message = str(refused.value.message)
    assert f"of {len(codes)} aliquots" in message
    assert all(code in message for code in codes[:20]) and codes[20] not in message
    assert refused.value.fields["barcodes"] == ", ".join(codes)  # all of them, for scripts


@contextmanager
def custody_reads():
    """The SELECTs on custody_event run inside the block."""
    seen: list[str] = []

    def capture(_conn, _cursor, statement, *_rest):
        if statement.lstrip().upper().startswith("SELECT") and "custody_event" in statement:
            seen.append(statement)

    sa.event.listen(_db.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        sa.event.remove(_db.engine, "before_cursor_execute", capture)


def test_the_reprint_decision_is_one_query_for_a_whole_batch(visit, technician):
    printing.print_labels(visit[:4], "cryo-38x13", "zpl", actor=technician)
    with custody_reads() as one:
        printing.print_labels(visit[:1], "cryo-cap", "zpl", actor=technician)
    with custody_reads() as nine:
        printing.print_labels(visit[1:], "cryo-cap", "zpl", actor=technician)
    assert len(one) == len(nine) == 1


# --- previews -----------------------------------------------------------------------------


def decoded(png: bytes) -> list[str]:
    """The codes an independent reader (zxing-cpp) finds on the picture."""
    image = Image.open(io.BytesIO(png))
    return sorted(r.text for r in zxingcpp.read_barcodes(image, try_downscale=False))


@pytest.mark.parametrize("template", ["cryo-38x13", "cryo-cap", "sheet-a4"])
def test_a_preview_of_ten_labels_shows_all_ten_and_records_nothing(visit, technician, template):
    rendered = printing.preview_labels(visit, template, dpi=300, actor=technician)

    assert rendered.mimetype == "image/png" and rendered.labels == 10
    assert decoded(rendered.content) == sorted(visit)
    image = Image.open(io.BytesIO(rendered.content))
    layout = labels.load_template(template)
    assert image.size == labels.contact_sheet_size(layout, 10, 300)
    assert [round(v) for v in image.info["dpi"]] == [300, 300]
    assert all(label_events(code) == [] for code in visit)


def test_each_label_of_a_preview_is_at_its_true_size(visit, technician):
    png = printing.preview_labels(visit, "cryo-38x13", dpi=600, actor=technician).content
    image = Image.open(io.BytesIO(png))
    # 38 x 13 mm at 600 dpi is 897 x 307 dots; 5 to a row and a 1 mm (23 dots) gap.
    assert image.size == (5 * 897 + 6 * 23, 2 * 307 + 3 * 23)
    white_run = image.crop((23, 23 + 150, 23 + 897, 23 + 151)).convert("L").getextrema()
    assert white_run[1] == 255 and image.getpixel((22, 23 + 150)) < 255  # the grey gap


def test_printing_as_png_is_the_same_preview_and_records_nothing(visit, technician):
    rendered = printing.print_labels(visit, "cryo-38x13", "png", actor=technician)
    assert decoded(rendered.content) == sorted(visit)
    assert all(label_events(code) == [] for code in visit)


def test_a_preview_of_more_labels_than_the_cap_is_refused_naming_the_cap(visit, technician):
    too_many = visit * 11  # 110 labels
    with pytest.raises(Invalid) as refused:
        printing.preview_labels(too_many, "cryo-38x13", actor=technician)
    assert str(refused.value.message) == (
        "A preview shows at most 100 labels and 110 were chosen: preview fewer, "
        "or print them as a PDF."
    )
    assert refused.value.code == "label.preview_too_many"
    with pytest.raises(Invalid, match="at most 100 labels"):
        printing.print_labels(too_many, "cryo-38x13", "png", actor=technician)


def test_a_preview_too_large_to_hold_is_refused_before_drawing(visit, technician, monkeypatch):
    monkeypatch.setattr(printing, "MAX_PREVIEW_PIXELS", 1_000_000)
    with pytest.raises(Invalid) as refused:
        printing.preview_labels(visit, "sheet-a4", dpi=300, actor=technician)
    assert refused.value.code == "label.preview_too_large"
    assert "lower resolution" in str(refused.value.message)


def test_the_label_history_counts_the_prints_of_each_template(visit, technician):
    printing.print_labels(visit[:1], "cryo-38x13", "pdf", actor=technician)
    printing.print_labels(visit[:1], "cryo-cap", "pdf", actor=technician)
    printing.print_labels(visit[:1], "cryo-38x13", "pdf", reason="torn", actor=technician)

    history = printing.label_history(visit[0], actor=technician)

    assert history.templates == {"cryo-38x13": 2, "cryo-cap": 1}
    assert [e.reason for e in history.prints] == [None, None, "torn"]
