"""Custody events' details as pages show them: words and units in the page's language,
times in the user's time zone; and the pre-analytical code spelled out in that language."""

from __future__ import annotations

import html
import json
import re

import pytest

from biobank.custody import services as custody
from biobank.samples import services as samples
from tests import factories
from tests.test_i18n import compiled  # noqa: F401  (the catalogues, compiled for the pages)


def shown(app, details: dict, language: str = "en") -> str:
    """The `details` filter as a page in ``language`` renders it."""
    # A fresh application context: the language is chosen once per context.
    with app.app_context(), app.test_request_context(headers={"Accept-Language": language}):
        return app.jinja_env.filters["details"](json.dumps(details))


def test_keys_are_words_and_volumes_carry_their_unit(app):
    assert shown(app, {"volume_ul_before": 500, "used_ul": 120, "shipment": "S-0004"}) == (
        "volume before: 500 µL · volume used: 120 µL · shipment: S-0004"
    )


@pytest.mark.usefixtures("compiled")
def test_true_and_false_are_yes_and_no_in_the_pages_language(app):
    assert shown(app, {"reprint": True, "thawed": False}) == "reprint: yes · thawed: no"
    french = shown(app, {"reprint": True, "thawed": False}, "fr")
    assert french == "réimpression: oui · décongelée: non"


def test_times_are_shown_in_the_users_time_zone(app):
    # Stored in UTC; the default zone of a user without a centre is Europe/Paris (UTC+1).
    english = shown(app, {"started_at": "2026-01-05T07:30:00+00:00", "highest_c": -62.5})
    assert english == "started: Jan 5, 2026, 8:30:00\u202fAM · highest temperature: -62.5 °C"
    french = shown(app, {"started_at": "2026-01-05T07:30:00+00:00"}, "fr")
    assert french.endswith(": 5 janv. 2026, 08:30:00")


def test_an_unknown_key_is_shown_as_words_and_empty_values_are_left_out(app):
    assert shown(app, {"new_thing": "x", "carrier": None}) == "new thing: x"


def test_numbers_follow_the_pages_language(app):
    assert shown(app, {"highest_c": -62.5}, "fr").endswith(": -62,5 °C")


@pytest.fixture
def aliquot(db, sites, login_as):
    factories.participant("LIM", code="LIM-001")
    tube = factories.visit("LIM-001", "BL").aliquots[0]
    samples.correct_volume(tube.barcode, 480, "weighed", actor=None)
    custody.record(
        tube, custody.EventKind.LABEL_PRINTED, None, details={"template": "cryo", "reprint": True}
    )
    db.session.commit()
    return tube.barcode


def events_shown(page) -> list[str]:
    text = html.unescape(page.get_data(as_text=True))
    return re.findall(r'<td class="details">(.*?)</td>', text)


def test_the_aliquot_page_shows_each_events_details_readably(aliquot, login_as):
    client = login_as("technician")
    registered, corrected, printed = events_shown(client.get(f"/aliquots/{aliquot}"))
    assert "volume: 500 µL" in registered and "pre-analytical code: SER-SST-" in registered
    assert corrected == "volume before: 500 µL · volume after: 480 µL"
    assert printed == "reprint: yes · label template: cryo"  # in the key order of the log


@pytest.mark.usefixtures("compiled")
def test_the_aliquot_page_in_french_spells_out_the_pre_analytical_code_in_french(aliquot, login_as):
    client = login_as("technician")
    client.post("/language", data={"lang": "fr", "next": "/"})
    page = html.unescape(client.get(f"/aliquots/{aliquot}").get_data(as_text=True))
    rows = re.findall(r'<td class="mono">([A-Z0-9]+)</td><td>(.*?)</td>', page)
    assert rows == [
        ("SER", "Sérum"),
        ("SST", "Tube séparateur de sérum avec activateur de coagulation"),
        ("A", "TA, < 2 h"),
        ("B", "TA, 10-15 min, < 3000 g, avec frein"),
        ("N", "Pas de seconde centrifugation"),
        ("B", "TA, < 1 h"),
        ("D", "Cryotube 1-2 mL, -85 °C à -60 °C"),
    ]
    assert "oui" in events_shown(client.get(f"/aliquots/{aliquot}"))[2]
