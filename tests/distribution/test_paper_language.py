"""The paper a shipment travels with, dated in its reader's language: the manifest PDF as
the page gives it, its text read back."""

from __future__ import annotations

import re

import pytest

from biobank.distribution import services as requests
from biobank.distribution import shipping
from biobank.distribution.shipping import Dispatch
from tests.distribution.conftest import serum_request
from tests.distribution.test_documents import pdf_pages_text
from tests.test_i18n import compiled  # noqa: F401  (the .mo files the pages read)

FRENCH_MOMENT = re.compile(
    r"\b\d{1,2} (janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|oct\.|nov\.|déc\.) "
    r"\d{4}, \d{2}:\d{2}\b"
)
ENGLISH_MOMENT = re.compile(
    r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, \d{4}, \d{2}:\d{2}\b"
)
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


@pytest.fixture
def manifest_url(bank, db, make_user):
    manager, researcher = make_user("manager"), make_user("researcher")
    technician = make_user("technician")
    request = serum_request(researcher)
    chosen = [c.barcode for c in requests.propose(request.id, actor=manager).selection.chosen]
    requests.approve(request.id, chosen, actor=manager)
    shipment = shipping.create_shipment(request_id=request.id, actor=technician)
    for code in chosen:
        shipping.add_to_shipment(shipment.code, code, actor=technician)
    shipping.dispatch(shipment.code, Dispatch("World Courier", "WC1", True, 5.0, ""), actor=manager)
    db.session.commit()
    return f"/shipments/{shipment.code}/manifest.pdf"


def manifest_text(client, url: str, language: str) -> str:
    answer = client.get(url, headers={"Accept-Language": language})
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    return "\n".join(pdf_pages_text(answer.data))


def test_the_manifest_is_dated_in_the_readers_language(compiled, manifest_url, login_as):  # noqa: F811
    manager = login_as("manager")

    french = manifest_text(manager, manifest_url, "fr")
    english = manifest_text(manager, manifest_url, "en")

    # The dispatch among the header facts, and the printing time in the footer.
    assert re.search(rf"Envoi\n{FRENCH_MOMENT.pattern}", french), french
    assert len(FRENCH_MOMENT.findall(french)) >= 2, french
    assert re.search(rf"Dispatched\n{ENGLISH_MOMENT.pattern}", english), english
    assert len(ENGLISH_MOMENT.findall(english)) >= 2, english
    assert not ENGLISH_MOMENT.search(french) and not FRENCH_MOMENT.search(english)
    assert not ISO_DATE.search(french) and not ISO_DATE.search(english)
