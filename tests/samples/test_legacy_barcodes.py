"""Tubes of an imported inventory keep the code of their old label: every lookup takes it
as it takes the tube's barcode (the scan page, the API, the aliquot page, label printing,
a plate's tube list), with the same centre rule, and the pages say to print the new label.

The import itself is not tested here: its tubes are made by registering a visit and
setting ``legacy_barcode`` on the rows, as the import leaves them."""

from __future__ import annotations

import html
from urllib.parse import quote

import pytest

from biobank.assays import services as assays
from biobank.custody import services as custody
from biobank.errors import Forbidden, Invalid, NotFound
from biobank.samples import barcodes
from biobank.samples import services as samples
from tests import factories
from tests.answers import error_of, ok

OLD = "LIM-2019-00042"
SPACED = "ab 12/7"
DIGITS = "12345678"
PARIS_OLD = "PAR-OLD-7"


def label_as_old(db, barcode: str, old_label: str) -> None:
    """What the inventory import leaves on an imported tube: the code of its old label."""
    samples.find_aliquot(barcode, actor=None).legacy_barcode = old_label
    db.session.commit()


def shaped_code(body: str) -> str:
    """A code with the shape of a barcode of this bank (nine characters, a right check
    character): the body given, changed in its last character until the check is no '*'."""
    for last in "23456789ABCDEFGH":
        candidate = body[:-1] + last
        check = barcodes.check_character(candidate)
        if check != "*":
            return candidate + check
    raise AssertionError("no check character")


@pytest.fixture
def imported(db, sites):
    """LIM-001's baseline tubes, three of them with an old label, and a Paris tube with
    one. Returns {name: barcode}."""
    factories.participant("LIM", code="LIM-001")
    lim = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
    factories.participant("PAR", code="PAR-001")
    paris = factories.visit("PAR-001", "BL").aliquots[0].barcode
    db.session.commit()
    for barcode, old_label in ((lim[0], OLD), (lim[1], SPACED), (lim[2], DIGITS)):
        label_as_old(db, barcode, old_label)
    label_as_old(db, paris, PARIS_OLD)
    return {"old": lim[0], "spaced": lim[1], "digits": lim[2], "plain": lim[3], "paris": paris}


@pytest.fixture
def limoges(make_user, db):
    user = make_user("technician", site="LIM")
    db.session.commit()
    return user


# --- the lookup ---------------------------------------------------------------------------


def test_an_old_label_names_its_tube_as_its_barcode_does(imported, limoges):
    for name, old_label in (("old", OLD), ("spaced", SPACED), ("digits", DIGITS)):
        barcode = imported[name]
        by_old = samples.scan_aliquot(old_label, actor=limoges)
        assert by_old == samples.scan_aliquot(barcode, actor=limoges)
        assert (by_old.barcode, by_old.legacy_barcode) == (barcode, old_label)
        assert samples.find_aliquot(old_label, actor=limoges).barcode == barcode
    found = samples.find_aliquots([OLD, imported["plain"], SPACED], actor=limoges)
    assert [a.barcode for a in found] == [imported["old"], imported["plain"], imported["spaced"]]


def test_one_tube_named_by_both_its_codes_in_a_list_is_found_once(imported, limoges):
    found = samples.find_aliquots([imported["old"], OLD.lower()], actor=limoges)
    assert [a.barcode for a in found] == [imported["old"]]


def test_a_scanners_whitespace_and_the_case_are_forgiven(imported, limoges):
    for scanned in (f"  {OLD}\r\n", OLD.lower(), f"\t{SPACED.upper()}\n", "ab 12/7\r"):
        assert samples.scan_aliquot(scanned, actor=limoges).legacy_barcode in (OLD, SPACED)
    # Inside the code, a space is part of it: "ab 12/7" is not "ab12/7".
    with pytest.raises(Invalid) as refused:
        samples.scan_aliquot("ab12/7", actor=limoges)
    assert refused.value.code == "barcode.length"


def test_an_old_label_written_in_two_cases_must_be_typed_exactly(db, imported, limoges):
    # The same code in two cases is two tubes, wherever they are (here one in Paris).
    label_as_old(db, imported["plain"], "Lab-9")
    label_as_old(db, imported["paris"], "LAB-9")
    assert samples.scan_aliquot("Lab-9", actor=limoges).barcode == imported["plain"]
    with pytest.raises(Invalid) as refused:
        samples.scan_aliquot("lab-9", actor=limoges)
    assert refused.value.code == "barcode.ambiguous"
    assert refused.value.fields == {"barcode": "lab-9"}
    assert "lab-9 is the old label of several tubes" in str(refused.value.message)


def test_an_old_label_of_the_longest_length_is_found_and_one_more_character_is_not(
    db, imported, limoges
):
    longest = "X" * (samples.LEGACY_BARCODE_LENGTH - 1) + "-"
    label_as_old(db, imported["plain"], longest)
    assert samples.scan_aliquot(longest, actor=limoges).barcode == imported["plain"]
    with pytest.raises(Invalid) as refused:
        samples.scan_aliquot(longest + "X", actor=limoges)
    assert refused.value.code == "barcode.length"


def test_unknown_codes_keep_their_answers(imported, limoges):
    # An old label one digit off is no tube: said as any code of the wrong length is.
    with pytest.raises(Invalid) as refused:
        samples.scan_aliquot("LIM-2019-00043", actor=limoges)
    assert refused.value.code == "barcode.length"
    assert "LIM-2019-00043 has 14 characters; an aliquot barcode has 9." in str(
        refused.value.message
    )
    unknown = shaped_code("ZZZZZZZZ")
    with pytest.raises(NotFound) as missing:
        samples.scan_aliquot(unknown, actor=limoges)
    assert missing.value.code == "aliquot.not_found"
    barcode = imported["plain"]
    mistyped = barcode[:-1] + ("A" if barcode[-1] != "A" else "B")
    with pytest.raises(Invalid) as misread:
        samples.scan_aliquot(mistyped, actor=limoges)
    assert misread.value.code == "barcode.invalid"
    with pytest.raises(Invalid) as empty:
        samples.find_aliquots([OLD, " \r\n"], actor=limoges)
    assert empty.value.code == "barcode.invalid"


def test_another_centres_old_label_is_refused_as_its_barcode_is(imported, limoges, make_user):
    for scanned, quoted in ((imported["paris"], imported["paris"]), (PARIS_OLD, PARIS_OLD)):
        with pytest.raises(Forbidden) as refused:
            samples.scan_aliquot(scanned, actor=limoges)
        assert refused.value.code == "aliquot.other_centre"
        assert refused.value.fields == {"barcode": quoted}
        assert str(refused.value.message).startswith(f"{quoted} is registered at another centre")
    # The old label does not tell the Limoges user the Paris tube's barcode.
    with pytest.raises(Forbidden) as refused:
        samples.find_aliquot(f" {PARIS_OLD.lower()}\n", actor=limoges)
    assert imported["paris"] not in str(refused.value.message)
    with pytest.raises(Forbidden) as listed:
        samples.find_aliquots([OLD, PARIS_OLD], actor=limoges)
    assert listed.value.fields == {"barcodes": PARIS_OLD}
    paris, central = make_user("technician", site="PAR"), make_user("manager")
    assert samples.scan_aliquot(PARIS_OLD, actor=paris).barcode == imported["paris"]
    assert samples.scan_aliquot(PARIS_OLD, actor=central).barcode == imported["paris"]
    with pytest.raises(Forbidden):
        samples.scan_aliquot(OLD, actor=paris)


def test_an_old_label_shaped_like_a_barcode_names_its_tube(db, imported, limoges):
    # One code in 37 of nine letters and digits has a right check character: such an old
    # label is no barcode of this bank, and it is its tube that a scan finds.
    old_label = shaped_code("L1M00042")
    label_as_old(db, imported["plain"], old_label)
    assert samples.scan_aliquot(old_label, actor=limoges).barcode == imported["plain"]
    assert samples.scan_aliquot(old_label.lower(), actor=limoges).barcode == imported["plain"]
    assert samples.barcode_named(old_label) == imported["plain"]


def test_a_new_barcode_is_never_drawn_equal_to_an_old_label(db, imported, monkeypatch):
    """Whichever code matches names the tube: a barcode never equals an old label (and the
    import refuses an old label that is a barcode, ``codes_in_use``)."""
    taken = shaped_code("QQQQQQQQ")
    label_as_old(db, imported["plain"], taken.lower())
    draws = iter([taken] + [shaped_code(f"R{n:06d}2") for n in range(20)])
    monkeypatch.setattr(samples.barcodes, "new_aliquot_barcode", lambda: next(draws))
    registration = factories.visit("LIM-001", "M2", tube_types=("SST",))
    assert taken not in [a.barcode for a in registration.aliquots]
    assert len(registration.aliquots) == 5


def test_a_barcode_is_looked_for_before_an_old_label_equal_to_it(db, imported, limoges):
    """An old label equal to another tube's barcode is refused at import (``codes_in_use``
    names it); were one there, the scan would still find the tube whose barcode it is."""
    assert samples.codes_in_use([imported["digits"].lower()]) == {imported["digits"].lower()}
    label_as_old(db, imported["plain"], imported["digits"])
    assert samples.scan_aliquot(imported["digits"], actor=limoges).barcode == imported["digits"]


def test_codes_an_import_must_refuse_are_named(imported):
    barcode = imported["plain"]
    assert samples.codes_in_use([f" {barcode.lower()} ", OLD.lower(), SPACED, "NEW-0001", ""]) == {
        f" {barcode.lower()} ",
        OLD.lower(),
        SPACED,
    }


# --- the API --------------------------------------------------------------------------------


def test_the_api_answers_the_same_aliquot_for_both_codes(imported, api_as):
    technician = api_as("technician", site="LIM")
    by_barcode = ok(technician.get(f"/api/v1/aliquots/{imported['spaced']}"))
    by_old = ok(technician.get(f"/api/v1/aliquots/{quote(SPACED, safe='')}"))
    assert by_old == by_barcode
    assert by_old["barcode"] == imported["spaced"] and by_old["legacy_barcode"] == SPACED
    scanned = ok(technician.get(f"/api/v1/aliquots/{OLD.lower()}%0D%0A"))
    assert (scanned["barcode"], scanned["legacy_barcode"]) == (imported["old"], OLD)
    assert ok(technician.get(f"/api/v1/aliquots/{imported['plain']}"))["legacy_barcode"] is None
    history = ok(technician.get(f"/api/v1/aliquots/{OLD}/custody"))
    assert (history["barcode"], history["legacy_barcode"]) == (imported["old"], OLD)
    assert [e["kind"] for e in history["items"]] == ["REGISTERED"]


def test_the_api_refuses_another_centres_old_label_as_its_barcode(imported, api_as):
    technician = api_as("technician", site="LIM")
    assert error_of(technician.get(f"/api/v1/aliquots/{PARIS_OLD}"), 403) == {
        "code": "aliquot.other_centre",
        "message": f"{PARIS_OLD} is registered at another centre: only that centre and the "
        "central biobank can see it.",
        "fields": {"barcode": PARIS_OLD},
    }
    assert error_of(technician.get("/api/v1/aliquots/LIM-2019-00043"), 400)["code"] == (
        "barcode.length"
    )
    spec = technician.get("/api/v1/openapi.json").get_json()
    schema = spec["components"]["schemas"]["Aliquot"]["properties"]
    assert "legacy_barcode" in schema


# --- the pages ------------------------------------------------------------------------------


def page_text(client, url, status=200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return html.unescape(response.get_data(as_text=True))


NOTICE = f"This tube still carries its old label {OLD}: print its new label."


def test_the_scan_page_shows_both_codes_and_asks_for_the_new_label(imported, login_as):
    technician = login_as("technician", site="LIM")
    text = page_text(technician, f"/scan?code=%20{OLD.lower()}%0D%0A")
    assert 'data-state="found"' in text and imported["old"] in text
    assert "Old label" in text and NOTICE in text
    assert f'href="/aliquots/{imported["old"]}/labels"' in text
    assert f"Print the label of {imported['old']}" in text
    # Scanned by its new label: the old one is shown, nothing asked.
    text = page_text(technician, f"/scan?code={imported['old']}")
    assert "Old label" in text and OLD in text and NOTICE not in text
    assert "Old label" not in page_text(technician, f"/scan?code={imported['plain']}")


def test_the_scan_page_answers_another_centres_old_label_as_its_barcode(imported, login_as):
    technician = login_as("technician", site="LIM")
    text = page_text(technician, f"/scan?code={PARIS_OLD}", 403)
    assert 'data-state="aliquot.other_centre"' in text and "Another centre's tube" in text
    assert imported["paris"] not in text
    text = page_text(technician, "/scan?code=LIM-2019-00043", 400)
    assert 'data-state="barcode.length"' in text


def test_the_aliquot_page_by_either_code(imported, login_as):
    technician = login_as("technician", site="LIM")
    text = page_text(technician, f"/aliquots/{OLD}")
    assert f'<h1 class="mono">{imported["old"]}</h1>' in text and NOTICE in text
    text = page_text(technician, f"/aliquots/{imported['old']}")
    assert "Old label" in text and OLD in text and NOTICE not in text
    assert technician.get(f"/aliquots/{PARIS_OLD}").status_code == 403


def test_labels_are_printed_by_the_old_label(imported, login_as, api_as):
    technician = login_as("technician", site="LIM")
    text = page_text(technician, f"/aliquots/{OLD}/labels")
    assert f"Label of {imported['old']}" in text
    api = api_as("technician", site="LIM")
    printed = api.post("/api/v1/labels", json={"barcodes": [SPACED], "format": "pdf"})
    assert printed.status_code == 200, printed.get_data(as_text=True)
    aliquot = samples.find_aliquot(imported["spaced"], actor=None)
    assert [e.kind for e in custody.history(aliquot.id)][-1] == "LABEL_PRINTED"


# --- a plate's tube list ------------------------------------------------------------------


def test_a_plates_tube_list_takes_old_labels_with_or_without_a_dilution(imported, limoges):
    text = f"ab 12/7 1:2\n{OLD.lower()}\n{DIGITS}, 4\n{imported['plain']}\n"
    assert assays.parse_entries(text, actor=limoges) == [
        (imported["spaced"], 2.0),
        (imported["old"], 1.0),
        (imported["digits"], 4.0),
        (imported["plain"], 1.0),
    ]
    # Another centre's old label stays what was scanned: taking its volume refuses it as
    # another centre's tube.
    assert assays.parse_entries(PARIS_OLD, actor=limoges) == [(PARIS_OLD, 1.0)]
    with pytest.raises(Invalid) as refused:
        assays.parse_entries("LIM-2019-00043 2", actor=limoges)
    assert "LIM-2019-00043 is neither a tube nor a box" in str(refused.value.message)
