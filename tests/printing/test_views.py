"""The print pages: a visit's labels one template after another, reprints that must say
why (Post/Redirect/Get on refusal, nothing written), previews, and the label history."""

from __future__ import annotations

import html
import io
import json
import re

import pytest
import zxingcpp
from PIL import Image

from biobank.custody.models import CustodyEvent
from biobank.extensions import db as _db
from biobank.i18n import VALUE_LABELS
from biobank.printing import services as printing
from tests import factories
from tests.pages import refused

VISIT_PAGE = "/participants/LIM-001/visits/BL/labels"


@pytest.fixture
def barcodes(db, sites):
    factories.participant("LIM", code="LIM-001")
    codes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
    db.session.commit()
    return codes


def prints(barcode: str) -> list[tuple[str, bool, str | None]]:
    """(template, reprint, reason) of the aliquot's LABEL_PRINTED events, as committed."""
    _db.session.rollback()
    events = _db.session.execute(
        _db.select(CustodyEvent)
        .join(CustodyEvent.aliquot)
        .where(CustodyEvent.kind == "LABEL_PRINTED")
        .where(CustodyEvent.aliquot.property.mapper.class_.barcode == barcode)
        .order_by(CustodyEvent.seq)
    ).scalars()
    return [
        (json.loads(e.details)["template"], json.loads(e.details)["reprint"], e.reason)
        for e in events
    ]


def print_form(codes, template, output="pdf", reason="", next_url=VISIT_PAGE) -> dict:
    return {
        "barcodes": codes,
        "template": template,
        "output": output,
        "dpi": "",
        "reason": reason,
        "next": next_url,
    }


def test_a_visits_wrap_around_then_cap_labels_print_without_a_reason(login_as, barcodes):
    client = login_as("technician")

    wrap = client.post("/print", data=print_form(barcodes, "cryo-38x13"))
    cap = client.post("/print", data=print_form(barcodes, "cryo-cap"))

    assert wrap.status_code == cap.status_code == 200
    assert wrap.mimetype == cap.mimetype == "application/pdf"
    assert cap.data.count(b"/MediaBox") == 10
    for code in barcodes:
        assert prints(code) == [("cryo-38x13", False, None), ("cryo-cap", False, None)]
    page = html.unescape(client.get(VISIT_PAGE).get_data(as_text=True))
    printed = re.findall(r'class="mono printed-labels">([^<]*)<', page)
    assert printed == ["cryo-38x13, cryo-cap"] * 10


def test_a_refused_cap_reprint_comes_back_with_the_reason_field_and_writes_nothing(
    login_as, barcodes
):
    client = login_as("technician")
    client.post("/print", data=print_form(barcodes[:3], "cryo-cap"))

    response = client.post("/print", data=print_form(barcodes[:5], "cryo-cap", output="zpl"))

    page = refused(client, response)
    assert response.location.endswith(VISIT_PAGE)
    message = (
        f"The cryo-cap labels of 3 aliquots were printed before ({', '.join(barcodes[:3])}): "
        "say why you reprint them."
    )
    assert f'<div class="flash flash-error" role="alert">{message}</div>' in page
    reason_field = re.search(
        r'<div class="field\s+has-error">\s*<label for="reason".*?</div>', page, re.S
    )
    assert reason_field and message in reason_field.group(0)  # the message sits on the field
    assert re.search(r'<option selected value="cryo-cap">|value="cryo-cap" selected', page)
    assert re.search(r'<option selected value="zpl">|value="zpl" selected', page)
    ticked = re.findall(r'name="barcodes" value="([^"]+)" checked', page)
    assert ticked == barcodes[:5]  # the tubes chosen are still chosen
    assert [len(prints(code)) for code in barcodes[:5]] == [1, 1, 1, 0, 0]

    reload = html.unescape(client.get(VISIT_PAGE).get_data(as_text=True))
    assert message not in reload and "has-error" not in reload
    assert [len(prints(code)) for code in barcodes[:5]] == [1, 1, 1, 0, 0]

    with_reason = print_form(barcodes[:5], "cryo-cap", output="zpl", reason="caps fell off")
    done = client.post("/print", data=with_reason)
    assert done.status_code == 200 and done.data.count(b"^XA") == 5
    assert prints(barcodes[0])[-1] == ("cryo-cap", True, "caps fell off")
    assert prints(barcodes[4]) == [("cryo-cap", False, None)]


def test_the_print_form_previews_all_the_chosen_labels_and_records_nothing(login_as, barcodes):
    client = login_as("technician")

    response = client.post("/print", data=print_form(barcodes, "cryo-38x13", output="png"))

    assert response.status_code == 200 and response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    found = sorted(r.text for r in zxingcpp.read_barcodes(image, try_downscale=False))
    assert found == sorted(barcodes)
    assert all(prints(code) == [] for code in barcodes)


def test_the_label_page_lists_the_prints_of_each_template(login_as, barcodes):
    client = login_as("technician")
    client.post("/print", data=print_form(barcodes[:1], "cryo-38x13"))
    client.post("/print", data=print_form(barcodes[:1], "cryo-cap"))

    page = html.unescape(client.get(f"/aliquots/{barcodes[0]}/labels").get_data(as_text=True))

    listed = re.findall(r'<li><span class="mono">([^<]+)</span>: ([^<]+)</li>', page)
    assert listed == [("cryo-38x13", "printed 1 time"), ("cryo-cap", "printed 1 time")]
    assert page.count("<tr><td>") == 2


def test_every_detail_a_print_records_has_a_readable_label():
    recorded = {"template", "format", "dpi", "count", "job_labels", "reprint", "printer"}
    assert recorded | {"reason"} <= set(VALUE_LABELS["detail"])


def test_the_details_of_prints_on_the_label_page_are_readable_words(login_as, barcodes):
    client = login_as("technician")
    client.post("/print", data=print_form(barcodes[:1], "cryo-38x13", output="zpl"))

    page = html.unescape(client.get(f"/aliquots/{barcodes[0]}/labels").get_data(as_text=True))

    [details] = re.findall(r'<table class="data compact" id="label-prints">.*?</table>', page, re.S)
    for words in ("label template: cryo-38x13", "format: zpl", "reprint: no", "copies: 1"):
        assert words in details
    assert (
        "job_labels" not in details
        and "False" not in details
        and "template:" not in (details.replace("label template:", ""))
    )


def test_a_preview_through_the_page_is_a_get_that_writes_nothing(login_as, barcodes):
    client = login_as("technician")
    response = client.get(f"/aliquots/{barcodes[0]}/label.png?template=cryo-cap")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert prints(barcodes[0]) == []
    assert printing.MAX_PREVIEW_LABELS == 100
