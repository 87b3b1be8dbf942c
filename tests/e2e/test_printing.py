"""Printing labels in the browser: a visit's labels as PDF, a reprint, a network printer."""

from __future__ import annotations

import io
import re
import socket
import threading
from typing import NamedTuple

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from biobank.auth import services as auth
from biobank.printing import services as printing
from tests import factories
from tests.conftest import PASSWORD
from tests.e2e.conftest import TIMEOUT_MS
from tests.e2e.pages import path, wait_for_focus

pytestmark = pytest.mark.e2e
PARTICIPANT = "LIM-001"
TECHNICIAN = "tech.lim"
PRINTER = "Bench Zebra"
CRYO_PT = (107.72, 36.85)  # 38 x 13 mm
A4_PT = (595.28, 841.89)
MEDIA_BOX = re.compile(rb"/Type\s*/Page(?!s).*?/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", re.S)


class Visit(NamedTuple):
    codes: list[str]  # the barcodes of its 10 aliquots
    token: str  # a bearer token of TECHNICIAN, for the custody API


@pytest.fixture
def visit(seed) -> Visit:
    """LIM-001's registered baseline visit (10 aliquots), by TECHNICIAN of LIM."""
    with seed():
        factories.protocol()
        factories.sites()
        user = factories.user("technician", site="LIM", name=TECHNICIAN, password=PASSWORD)
        factories.participant("LIM", code=PARTICIPANT)
        registration = factories.visit(PARTICIPANT, "BL", actor=user)
        codes = [a.barcode for a in registration.aliquots]
        token = factories.token(user)
    assert len(codes) == 10
    return Visit(codes, token)


@pytest.fixture
def labels_page(page, log_in, visit):
    """The visit page, then its "Print all labels of this visit" link."""
    log_in(TECHNICIAN)
    page.goto(f"/participants/{PARTICIPANT}/visits/BL")
    with page.expect_navigation():
        page.get_by_role("link", name="Print all labels of this visit").click()
    assert path(page) == f"/participants/{PARTICIPANT}/visits/BL/labels"
    return page


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def add_printer(seed, port: int) -> None:
    with seed():
        printing.add_printer(PRINTER, "127.0.0.1", port=port, actor=None)


def choose(page, template: str, output: str) -> None:
    page.select_option("#template", template)
    page.select_option("#output", output)


def print_pdf(page) -> tuple[str, bytes]:
    """Click Print; return the answer's content type and bytes (a PDF, or a PNG preview).

    Headless Chromium opens an inline PDF in its viewer, and the Response then holds the
    viewer's HTML (an older Chromium downloads it instead): the bytes are taken on the way
    by a route that fetches the answer and hands it on to the browser unchanged."""
    answers = []

    def pass_on(route):
        answers.append(route.fetch(max_redirects=0))
        route.fulfill(response=answers[-1])

    page.route("**/print", pass_on)
    try:
        with page.expect_response(
            lambda r: r.url.endswith("/print") and r.request.method == "POST"
        ) as response:
            page.click("#print-button")
        content_type = response.value.headers["content-type"]
    finally:
        page.unroute("**/print", pass_on)
    (answer,) = answers
    assert answer.status == 200, answer.text()
    return content_type, answer.body()


def click_print(page) -> None:
    """Click Print where the answer is a page (an error, or sent to a printer)."""
    with page.expect_navigation():
        page.click("#print-button")


def page_sizes(pdf: bytes) -> list[tuple[float, float]]:
    """The MediaBox (width, height in points) of each page of a PDF."""
    assert pdf.startswith(b"%PDF-")
    return [(float(w), float(h)) for w, h in MEDIA_BOX.findall(pdf)]


def label_prints(api, token: str, barcode: str) -> list[dict]:
    """The LABEL_PRINTED events of an aliquot's chain of custody, from the API."""
    response = api.get(
        f"/api/v1/aliquots/{barcode}/custody", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.ok, response.text()
    return [e for e in response.json()["items"] if e["kind"] == "LABEL_PRINTED"]


def test_a_visit_prints_as_one_38x13_mm_pdf_page_per_aliquot_recorded_in_custody(
    labels_page, api, visit
):
    expect(labels_page.locator("input[name=barcodes]:checked")).to_have_count(10)
    choose(labels_page, "cryo-38x13", "pdf")

    content_type, pdf = print_pdf(labels_page)

    assert content_type == "application/pdf"
    sizes = page_sizes(pdf)
    assert len(sizes) == 10
    assert sizes == [pytest.approx(CRYO_PT, abs=0.01)] * 10
    (event,) = label_prints(api, visit.token, visit.codes[3])
    assert event["actor"] == TECHNICIAN
    assert event["details"]["template"] == "cryo-38x13"
    assert event["details"]["format"] == "pdf"


def test_a_visit_on_an_a4_sheet_is_one_page(labels_page):
    choose(labels_page, "sheet-a4", "pdf")

    content_type, pdf = print_pdf(labels_page)

    assert content_type == "application/pdf"
    assert page_sizes(pdf) == [pytest.approx(A4_PT, abs=0.01)]


def test_only_the_ticked_aliquots_are_printed(labels_page):
    labels_page.get_by_role("checkbox", name="All").uncheck()  # clears every aliquot
    expect(labels_page.locator("input[name=barcodes]:checked")).to_have_count(0)
    for box in labels_page.locator("input[name=barcodes]").all()[:3]:
        box.check()
    choose(labels_page, "cryo-38x13", "pdf")

    _, pdf = print_pdf(labels_page)

    assert page_sizes(pdf) == [pytest.approx(CRYO_PT, abs=0.01)] * 3


def test_a_reprint_needs_a_reason_which_the_custody_table_shows(page, log_in, seed, api, visit):
    barcode = visit.codes[0]
    with seed():
        printing.print_labels([barcode], "cryo-38x13", "pdf", actor=auth.get_user(TECHNICIAN))
    log_in(TECHNICIAN)
    page.goto(f"/aliquots/{barcode}")
    with page.expect_navigation():
        page.get_by_role("link", name="Print or reprint its label").click()
    choose(page, "cryo-38x13", "pdf")

    click_print(page)  # no reason

    message = f"The cryo-38x13 label of {barcode} was printed before: say why you reprint it."
    expect(page.locator(".flash-error")).to_have_text(message)
    expect(page.locator(".field.has-error #reason")).to_have_count(1)
    expect(page.locator(".field.has-error .field-error")).to_have_text(
        f"Reason for a reprint: {message}"
    )
    assert len(label_prints(api, visit.token, barcode)) == 1

    choose(page, "cryo-38x13", "pdf")
    page.fill("#reason", "label torn")
    content_type, _ = print_pdf(page)

    assert content_type == "application/pdf"
    page.goto(f"/aliquots/{barcode}")
    reprint = page.locator("table.events tbody tr").filter(has_text="label torn")
    expect(reprint).to_have_count(1)
    expect(reprint.locator("td:nth-child(3)")).to_have_text("label printed")
    expect(reprint.locator("td:nth-child(4)")).to_have_text(TECHNICIAN)


def test_a_printer_that_does_not_answer_is_an_error_and_nothing_is_recorded(
    labels_page, seed, api, visit
):
    port = free_port()
    add_printer(seed, port)
    labels_page.reload()
    choose(labels_page, "cryo-38x13", f"printer:{PRINTER}")

    click_print(labels_page)

    expect(labels_page.locator(".flash-error")).to_contain_text(
        f"Printer {PRINTER} (127.0.0.1:{port}) does not answer"
    )
    assert not any(label_prints(api, visit.token, code) for code in visit.codes)


@pytest.fixture
def zebra():
    """A network label printer on 127.0.0.1: a thread keeping what one connection sends.
    Yields its port and a function returning the bytes, once the sender has closed."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(TIMEOUT_MS / 1000)
    received = bytearray()

    def serve():
        try:
            connection, _ = server.accept()
        except OSError:  # timed out, or closed at the end of the test
            return
        with connection:
            connection.settimeout(TIMEOUT_MS / 1000)
            while chunk := connection.recv(65536):
                received.extend(chunk)

    thread = threading.Thread(target=serve, name="e2e-zebra", daemon=True)
    thread.start()

    def data() -> bytes:
        thread.join(timeout=TIMEOUT_MS / 1000)
        assert not thread.is_alive(), "the printer connection was never closed"
        return bytes(received)

    try:
        yield server.getsockname()[1], data
    finally:
        server.close()
        thread.join(timeout=TIMEOUT_MS / 1000)


def test_a_printer_that_answers_gets_the_zpl_of_every_label(labels_page, seed, zebra):
    port, received = zebra
    add_printer(seed, port)
    labels_page.reload()
    choose(labels_page, "cryo-38x13", f"printer:{PRINTER}")

    click_print(labels_page)

    expect(labels_page.locator(".flash-success")).to_have_text(
        f"10 labels sent to printer {PRINTER}."
    )
    zpl = received()
    assert zpl.startswith(b"^XA")
    assert zpl.count(b"^XA") == zpl.count(b"^XZ") == 10


def printed_templates(api, token: str, barcode: str) -> list[str]:
    return [e["details"]["template"] for e in label_prints(api, token, barcode)]


def test_a_visits_wrap_around_then_cap_labels_print_without_being_asked_for_a_reason(
    labels_page, api, visit
):
    choose(labels_page, "cryo-38x13", "pdf")
    content_type, _ = print_pdf(labels_page)
    assert content_type == "application/pdf"
    labels_page.goto(f"/participants/{PARTICIPANT}/visits/BL/labels")
    expect(labels_page.locator(".printed-labels").first).to_have_text("cryo-38x13")
    choose(labels_page, "cryo-cap", "pdf")

    content_type, pdf = print_pdf(labels_page)  # no reason typed, none asked

    assert content_type == "application/pdf" and len(page_sizes(pdf)) == 10
    for code in visit.codes:
        assert printed_templates(api, visit.token, code) == ["cryo-38x13", "cryo-cap"]
    labels_page.goto(f"/participants/{PARTICIPANT}/visits/BL/labels")
    expect(labels_page.locator(".printed-labels")).to_have_text(["cryo-38x13, cryo-cap"] * 10)


def test_the_cap_label_printed_again_asks_why_and_a_reload_writes_nothing(
    labels_page, seed, api, visit
):
    with seed():
        printing.print_labels(visit.codes, "cryo-cap", "pdf", actor=auth.get_user(TECHNICIAN))
    labels_page.reload()
    choose(labels_page, "cryo-cap", "zpl")

    click_print(labels_page)

    assert path(labels_page) == f"/participants/{PARTICIPANT}/visits/BL/labels"
    expect(labels_page.locator(".flash-error")).to_contain_text(
        "The cryo-cap labels of 10 aliquots were printed before"
    )
    expect(labels_page.locator(".field.has-error #reason")).to_have_count(1)
    wait_for_focus(labels_page, "reason")  # the user types the reason straight away
    expect(labels_page.locator("#template")).to_have_value("cryo-cap")
    expect(labels_page.locator("#output")).to_have_value("zpl")
    labels_page.reload()  # the refusal was answered with a redirect: nothing is sent again
    expect(labels_page.locator(".flash-error")).to_have_count(0)
    assert all(printed_templates(api, visit.token, code) == ["cryo-cap"] for code in visit.codes)

    choose(labels_page, "cryo-cap", "pdf")
    labels_page.fill("#reason", "caps came off in the bath")
    content_type, _ = print_pdf(labels_page)
    assert content_type == "application/pdf"
    (_first, again) = label_prints(api, visit.token, visit.codes[0])
    assert again["reason"] == "caps came off in the bath" and again["details"]["reprint"]


def test_the_png_preview_of_a_visit_shows_all_its_labels_and_records_nothing(
    labels_page, api, visit
):
    choose(labels_page, "cryo-38x13", "png")

    content_type, png = print_pdf(labels_page)

    assert content_type == "image/png"
    assert labels_page.evaluate("document.contentType") == "image/png"  # shown, not a file
    image = Image.open(io.BytesIO(png))
    found = zxingcpp.read_barcodes(image, try_downscale=False)
    assert sorted(r.text for r in found) == sorted(visit.codes)
    assert not any(label_prints(api, visit.token, code) for code in visit.codes)
