"""Label routes: the API scripts use, and the pages' print form."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image

from tests import factories
from tests.pages import refused


@pytest.fixture
def barcodes(db, sites):
    factories.participant("LIM", code="LIM-001")
    codes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
    db.session.commit()
    return codes


def custody_kinds(client, barcode):
    items = client.get(f"/api/v1/aliquots/{barcode}/custody").get_json()["items"]
    return [e["kind"] for e in items]


def test_label_templates_are_listed_by_name(api_as):
    items = api_as("researcher").get("/api/v1/label-templates").get_json()["items"]
    names = {t["name"]: t for t in items}
    assert {"cryo-38x13", "cryo-cap", "box-50x25", "sheet-a4", "sheet-letter"} <= set(names)
    assert names["sheet-a4"]["kind"] == "sheet" and names["sheet-a4"]["labels_per_page"] == 100
    assert names["cryo-38x13"]["width_mm"] == 38.0 and 203 in names["cryo-38x13"]["dpis"]


@pytest.mark.parametrize(
    ("fmt", "mime", "magic"),
    [("pdf", "application/pdf", b"%PDF"), ("zpl", "application/zpl", b"^XA")],
)
def test_a_post_prints_one_label_and_records_it(api_as, barcodes, fmt, mime, magic):
    client = api_as("technician")
    response = client.post(
        f"/api/v1/aliquots/{barcodes[0]}/label",
        json={"template": "cryo-38x13", "format": fmt, "dpi": 300},
    )
    assert response.status_code == 200
    assert response.mimetype == mime and response.data.startswith(magic)
    assert custody_kinds(client, barcodes[0]).count("LABEL_PRINTED") == 1


def test_a_post_asking_for_a_png_is_sent_to_the_get_preview(api_as, barcodes):
    client = api_as("technician")
    response = client.post(f"/api/v1/aliquots/{barcodes[0]}/label", json={"format": "png"})
    assert response.status_code == 400
    assert "GET this address for the PNG preview" in str(response.get_json()["error"]["fields"])
    assert "LABEL_PRINTED" not in custody_kinds(client, barcodes[0])


def test_a_reprint_through_the_api_needs_a_reason(api_as, barcodes):
    client = api_as("technician")
    url = f"/api/v1/aliquots/{barcodes[0]}/label"
    assert client.post(url, json={"format": "zpl"}).status_code == 200
    refused = client.post(url, json={"format": "zpl"})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "label.reprint_reason"
    assert client.post(url, json={"format": "zpl", "reason": "smudged"}).status_code == 200
    assert custody_kinds(client, barcodes[0]).count("LABEL_PRINTED") == 2


def test_a_label_read_with_get_is_a_preview_and_records_nothing(api_as, barcodes):
    client = api_as("technician")
    preview = client.get(f"/api/v1/aliquots/{barcodes[0]}/label?dpi=300")
    assert preview.status_code == 200 and preview.mimetype == "image/png"
    assert client.get(f"/api/v1/aliquots/{barcodes[0]}/label?format=pdf").status_code == 400
    assert "LABEL_PRINTED" not in custody_kinds(client, barcodes[0])


def test_a_batch_gives_one_pdf_sheet_or_one_zpl_stream(api_as, barcodes):
    client = api_as("technician")
    sheet = client.post(
        "/api/v1/labels", json={"barcodes": barcodes, "template": "sheet-a4", "format": "pdf"}
    )
    assert sheet.status_code == 200 and sheet.data.count(b"/MediaBox") == 1
    assert sheet.headers["X-Label-Count"] == "10"
    stream = client.post(
        "/api/v1/labels", json={"barcodes": barcodes[:4], "format": "zpl", "reason": "second run"}
    )
    assert stream.status_code == 200 and stream.data.count(b"^XA") == 4
    assert "attachment" in stream.headers["Content-Disposition"]


def test_a_batch_with_an_unknown_template_is_a_404_listing_the_known(api_as, barcodes):
    response = api_as("technician").post(
        "/api/v1/labels", json={"barcodes": barcodes[:1], "template": "cryo-99"}
    )
    assert response.status_code == 404
    assert "cryo-38x13" in response.get_json()["error"]["message"]


def test_the_print_form_returns_the_pdf_and_records_it(login_as, barcodes):
    client = login_as("technician")
    page = client.get("/participants/LIM-001/visits/BL/labels")
    assert page.status_code == 200 and page.get_data(as_text=True).count('name="barcodes"') == 10
    response = client.post(
        "/print",
        data={"barcodes": barcodes[:3], "template": "cryo-38x13", "output": "pdf", "next": "/scan"},
    )
    assert response.mimetype == "application/pdf"
    assert response.data.count(b"/MediaBox") == 3


def test_the_print_form_reports_a_refusal_and_goes_back(login_as, barcodes):
    client = login_as("technician")
    form = {
        "barcodes": barcodes[:1],
        "template": "cryo-38x13",
        "output": "zpl",
        "next": f"/aliquots/{barcodes[0]}/labels",
    }
    client.post("/print", data=form)
    again = client.post("/print", data=form, follow_redirects=True)
    assert again.request.path == f"/aliquots/{barcodes[0]}/labels"
    assert "say why you reprint" in again.get_data(as_text=True)


def test_printers_are_added_by_an_administrator(login_as):
    admin = login_as("admin")
    response = admin.post(
        "/printers", data={"name": "Zebra 1", "host": "10.0.0.5", "port": "9100", "dpi": "300"}
    )
    assert response.status_code == 303
    assert "Zebra 1" in admin.get("/printers").get_data(as_text=True)
    bad = admin.post(
        "/printers", data={"name": "Zebra 2", "host": "x", "port": "99999", "dpi": "300"}
    )
    page = refused(admin, bad)
    assert 'value="Zebra 2"' in page  # what was typed is shown again
    assert "Zebra 2</td>" not in page


def test_a_box_label_scans_back_to_the_box_barcode(api_as):
    client = api_as("technician")
    response = client.post(
        "/api/v1/labels/box",
        json={
            "code": "BX-0012",
            "name": "POEMS serum 12",
            "contents": "LIM BL-M6",
            "format": "png",
        },
    )
    assert response.status_code == 200 and response.mimetype == "image/png"
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(response.data)))
    assert [(r.text, r.format.name) for r in found] == [("BX-0012", "Code128")]
    copies = client.post(
        "/api/v1/labels/box", json={"code": "BX-0012", "format": "zpl", "copies": 2}
    )
    assert copies.data.count(b"^XA") == 2


def test_the_box_label_page_prints_a_pdf(login_as):
    client = login_as("technician")
    assert client.get("/box-labels").status_code == 200
    response = client.post(
        "/box-labels",
        data={"code": "BX-0001", "name": "Serum 1", "contents": "", "copies": "1", "output": "pdf"},
    )
    assert response.mimetype == "application/pdf" and response.data.count(b"/MediaBox") == 1
    empty = client.post("/box-labels", data={"code": "", "copies": "1", "output": "pdf"})
    assert "field-error" in refused(client, empty)


def test_the_print_page_offers_the_cryovial_label_first_and_no_box_label(login_as, barcodes):
    page = login_as("technician").get(f"/aliquots/{barcodes[0]}/labels").get_data(as_text=True)
    assert '<option selected value="cryo-38x13">' in page or 'value="cryo-38x13" selected' in page
    assert 'value="box-50x25"' not in page


def label_templates_printed(client, barcode) -> list[tuple[str, bool]]:
    items = client.get(f"/api/v1/aliquots/{barcode}/custody").get_json()["items"]
    return [
        (e["details"]["template"], e["details"]["reprint"])
        for e in items
        if e["kind"] == "LABEL_PRINTED"
    ]


def test_the_cap_label_after_the_wrap_around_label_needs_no_reason_through_the_api(
    api_as, barcodes
):
    client = api_as("technician")
    url = f"/api/v1/aliquots/{barcodes[0]}/label"
    assert client.post(url, json={"template": "cryo-38x13", "format": "zpl"}).status_code == 200

    cap = client.post(url, json={"template": "cryo-cap", "format": "zpl"})

    assert cap.status_code == 200, cap.get_json()
    again = client.post(url, json={"template": "cryo-cap", "format": "zpl"})
    assert again.status_code == 400
    error = again.get_json()["error"]
    assert error["code"] == "label.reprint_reason"
    assert error["message"] == (
        f"The cryo-cap label of {barcodes[0]} was printed before: say why you reprint it."
    )
    assert label_templates_printed(client, barcodes[0]) == [
        ("cryo-38x13", False),
        ("cryo-cap", False),
    ]


def test_a_batch_mixing_first_prints_and_reprints_is_refused_naming_the_reprints(api_as, barcodes):
    client = api_as("technician")
    first = client.post(
        "/api/v1/labels", json={"barcodes": barcodes[:2], "template": "cryo-cap", "format": "zpl"}
    )
    assert first.status_code == 200

    mixed = client.post(
        "/api/v1/labels", json={"barcodes": barcodes[:5], "template": "cryo-cap", "format": "zpl"}
    )

    assert mixed.status_code == 400
    error = mixed.get_json()["error"]
    assert error["code"] == "label.reprint_reason"
    assert error["fields"] == {"reason": "", "barcodes": ", ".join(barcodes[:2])}
    assert all(code in error["message"] for code in barcodes[:2])
    assert not any(code in error["message"] for code in barcodes[2:5])
    assert [len(label_templates_printed(client, code)) for code in barcodes[:5]] == [
        1,
        1,
        0,
        0,
        0,
    ]

    again = client.post(
        "/api/v1/labels",
        json={"barcodes": barcodes[:5], "template": "cryo-cap", "format": "zpl", "reason": "wet"},
    )
    assert again.status_code == 200 and again.data.count(b"^XA") == 5
    assert [label_templates_printed(client, code)[-1] for code in barcodes[:5]] == [
        ("cryo-cap", True)
    ] * 2 + [("cryo-cap", False)] * 3


def decoded(png: bytes) -> list[str]:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), try_downscale=False)
    return sorted(r.text for r in found)


def test_a_batch_preview_shows_every_label_and_records_nothing(api_as, barcodes):
    client = api_as("technician")
    response = client.post(
        "/api/v1/labels", json={"barcodes": barcodes, "template": "cryo-38x13", "format": "png"}
    )
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["X-Label-Count"] == "10"
    assert decoded(response.data) == sorted(barcodes)
    assert not any("LABEL_PRINTED" in custody_kinds(client, code) for code in barcodes)


def test_the_openapi_document_describes_the_preview_get_and_the_print_post(api_as):
    doc = api_as("technician").get("/api/v1/openapi.json").get_json()
    label = doc["paths"]["/api/v1/aliquots/{barcode}/label"]
    assert set(label) >= {"get", "post"}
    assert list(label["get"]["responses"]["200"]["content"]) == ["image/png"]
    assert "nothing is recorded" in label["get"]["summary"]
    assert set(label["post"]["responses"]["200"]["content"]) == {
        "application/pdf",
        "application/zpl",
    }
    assert "recorded" in label["post"]["summary"]
    assert "reason" in label["post"]["description"]
    body = label["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    post_fields = doc["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"]
    assert post_fields["format"]["enum"] == ["pdf", "zpl"]
    assert {p["name"] for p in label["get"]["parameters"]} == {"template", "format", "dpi"}
