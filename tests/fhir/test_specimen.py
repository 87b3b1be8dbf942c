"""GET /fhir/r4/Specimen/<barcode> and the Specimen searches: an aliquot as an R4
Specimen, found by barcode, legacy barcode, participant or identifier, within the reader's
centre."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from fhir.resources.R4B.specimen import Specimen

from biobank.custody import services as custody
from biobank.fhir.codes import codes
from biobank.samples.models import ALIQUOT_STATUSES
from biobank.storage import services as storage
from tests import factories
from tests.fhir import bundle, entries, extension, issue_code, outcome, resource
from tests.fhir.conftest import serum

BARCODE = "urn:biobank:barcode"
LEGACY = "urn:biobank:legacy-barcode"
PARTICIPANT = "urn:biobank:participant"
STORAGE_PLACE = "urn:biobank:fhir:StructureDefinition:storage-place"
BIOBANK_STATUS = "urn:biobank:fhir:StructureDefinition:biobank-status"
SPREC_CODE = "urn:biobank:fhir:StructureDefinition:sprec-code"


def read(client, code: str) -> Specimen:
    return resource(client.get(f"/fhir/r4/Specimen/{code}"), Specimen)


def processing(specimen: Specimen) -> dict[str, list]:
    """The processing steps by their code."""
    steps: dict[str, list] = {}
    for step in specimen.processing or []:
        steps.setdefault(step.procedure.coding[0].code, []).append(step)
    return steps


# --- one specimen ----------------------------------------------------------------------------


def test_a_specimen_is_its_aliquot_with_barcode_type_subject_and_collection(bank, api_as):
    aliquot = serum(bank["LIM-001"])[0]
    specimen = read(api_as("technician"), aliquot.barcode)

    assert specimen.id == aliquot.barcode
    assert [(i.system, i.value) for i in specimen.identifier] == [(BARCODE, aliquot.barcode)]
    assert specimen.type.text == "Serum"
    assert ("urn:biobank:sprec:sample-type", "SER") in {
        (c.system, c.code) for c in specimen.type.coding
    }
    # The pseudonymised code, as an identifier: there is no Patient resource to read here.
    assert specimen.subject.type == "Patient" and specimen.subject.reference is None
    assert (specimen.subject.identifier.system, specimen.subject.identifier.value) == (
        PARTICIPANT,
        "LIM-001",
    )
    assert specimen.subject.display == "LIM-001"
    # Drawn 08:30 UTC on 5 January: 09:30 in Limoges, written with its offset.
    assert specimen.collection.collectedDateTime == datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    assert specimen.model_dump(mode="json")["collection"]["collectedDateTime"] == (
        "2026-01-05T09:30:00+01:00"
    )
    assert extension(specimen, SPREC_CODE).valueString == aliquot.specimen.sprec_code


def test_its_volume_is_in_microlitres_as_made_and_as_left(db, bank, api_as):
    aliquot = serum(bank["LIM-001"])[0]
    storage.store(aliquot.barcode, "BX-0001", "A1", actor=None)
    storage.take_volume(aliquot.barcode, aliquot.volume_ul - 1, "assay", actor=None)
    db.session.commit()

    specimen = read(api_as("technician"), aliquot.barcode)

    made = specimen.collection.quantity
    assert (made.value, made.system, made.code) == (
        aliquot.initial_volume_ul,
        "http://unitsofmeasure.org",
        "uL",
    )
    left = specimen.container[0].specimenQuantity
    assert (left.value, left.code) == (1, "uL")  # one microlitre left: still available
    assert specimen.status == "available"


def test_the_primary_tube_is_a_contained_parent(bank, api_as):
    aliquot = serum(bank["LIM-001"])[0]
    specimen = read(api_as("technician"), aliquot.barcode)

    assert [p.reference for p in specimen.parent] == ["#primary"]
    (primary,) = specimen.contained
    assert primary.id == "primary"
    assert primary.type.text == "Venous blood"
    assert primary.container[0].type.coding[0].code == "SST"
    assert primary.collection.collectedDateTime == specimen.collection.collectedDateTime
    assert primary.subject.identifier.value == "LIM-001"


def test_an_aliquot_made_from_another_names_it_before_the_primary_tube(db, bank, api_as):
    first, second = serum(bank["LIM-001"])[:2]
    second.parent_id = first.id  # no service re-aliquots yet: the lineage is set here
    db.session.commit()

    specimen = read(api_as("technician"), second.barcode)

    assert [p.reference for p in specimen.parent] == [f"Specimen/{first.barcode}", "#primary"]
    assert read(api_as("technician"), first.barcode).id == first.barcode  # and it is readable


def test_a_legacy_barcode_reads_the_same_specimen_with_both_identifiers(db, bank, api_as):
    aliquot = serum(bank["LIM-001"])[0]
    aliquot.legacy_barcode = "OLD-0042"
    db.session.commit()
    client = api_as("technician")

    by_legacy = read(client, "OLD-0042")

    assert by_legacy.id == aliquot.barcode
    assert [(i.system, i.value, i.use) for i in by_legacy.identifier] == [
        (BARCODE, aliquot.barcode, "official"),
        (LEGACY, "OLD-0042", "secondary"),
    ]
    assert read(client, aliquot.barcode).identifier == by_legacy.identifier


def test_a_stored_specimen_says_its_box_and_position(bank, api_as, db):
    aliquot = serum(bank["LIM-001"])[0]
    storage.store(aliquot.barcode, "BX-0001", "B4", actor=None)
    db.session.commit()

    (container,) = read(api_as("technician"), aliquot.barcode).container

    place = extension(container, STORAGE_PLACE)
    assert {e.url: e.valueString for e in place.extension} == {"box": "BX-0001", "position": "B4"}
    assert container.description.startswith("Freezer −80 n°1")
    assert container.description.endswith("Box 1 (BX-0001) › B4")


def test_processing_gives_the_centrifugation_and_freezing_times_then_custody(bank, api_as, db):
    aliquot = serum(bank["LIM-001"])[0]
    storage.store(aliquot.barcode, "BX-0001", "B4", actor=None)
    db.session.commit()

    specimen = read(api_as("technician"), aliquot.barcode)
    steps = processing(specimen)

    (spin,) = steps["centrifugation"]
    assert spin.timeDateTime == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)  # an hour after the draw
    assert spin.description == "Centrifugation: 2000 g, 10 min, 20 °C"
    (frozen,) = steps["freezing"]
    assert frozen.timeDateTime == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert "−80 °C" in frozen.description or "-80 °C" in frozen.description
    assert "second_centrifugation" not in steps  # none was done
    codes_in_order = [s.procedure.coding[0].code for s in specimen.processing]
    assert codes_in_order == ["centrifugation", "freezing", "registered", "stored"]
    assert steps["stored"][0].timeDateTime is not None


def test_a_centrifugation_not_recorded_says_so_and_no_settings(bank, api_as, db):
    aliquot = serum(bank["LIM-001"])[0]
    tube = aliquot.specimen  # as an inventory spreadsheet leaves it
    tube.spin_force_g = tube.spin_minutes = tube.spin_temperature_c = None
    tube.spin_braking = False
    db.session.commit()

    (spin,) = processing(read(api_as("technician"), aliquot.barcode))["centrifugation"]

    assert spin.description == "Centrifugation: settings not recorded"
    assert spin.timeDateTime == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)  # its time was


def test_label_printing_and_reservations_are_not_processing(bank, api_as, db):
    aliquot = serum(bank["LIM-001"])[0]
    custody.record(aliquot, custody.EventKind.LABEL_PRINTED, None)
    db.session.commit()

    steps = processing(read(api_as("technician"), aliquot.barcode))

    assert "label-printed" not in steps and "registered" in steps


@pytest.mark.parametrize(
    ("drawn", "written"),
    [
        # Summer time starts in Paris on 29 March 2026 at 01:00 UTC.
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "2026-03-29T01:59:00+01:00"),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "2026-03-29T03:00:00+02:00"),
    ],
)
def test_times_are_written_in_the_centre_zone_across_the_change_of_hour(
    db, sites, protocol, api_as, drawn, written
):
    factories.participant("LIM", code="LIM-009", included_on=date(2026, 3, 29))
    registration = factories.visit("LIM-009", "BL", on=drawn)
    db.session.commit()

    specimen = read(api_as("technician"), registration.aliquots[0].barcode)

    dumped = specimen.model_dump(mode="json")
    assert dumped["collection"]["collectedDateTime"] == written
    assert specimen.collection.collectedDateTime == drawn


# --- status -------------------------------------------------------------------------------------


def test_every_aliquot_status_has_a_specimen_status():
    assert set(codes().status) == set(ALIQUOT_STATUSES)
    available = {s for s, fhir in codes().status.items() if fhir == "available"}
    assert available == {"registered", "in_storage", "checked_out", "received"}


def test_a_tube_in_the_bank_is_available_and_one_gone_is_not(bank, api_as, db):
    stored, out, destroyed, used = serum(bank["LIM-001"])[:4]
    for aliquot in (stored, out, used):
        storage.store(aliquot.barcode, "BX-0001", None, actor=None)
    storage.check_out(out.barcode, "assay", actor=None)
    storage.destroy(destroyed.barcode, "tube cracked", actor=None)
    storage.take_volume(used.barcode, used.volume_ul, "assay", actor=None)
    db.session.commit()
    client = api_as("technician")

    seen = {
        a.barcode: (
            (s := read(client, a.barcode)).status,
            extension(s, BIOBANK_STATUS).valueCode,
            s.container[0].description is not None,
        )
        for a in (stored, out, destroyed, used)
    }

    assert seen == {
        stored.barcode: ("available", "in_storage", True),
        # Checked out: still in the bank's hands, its place kept for its return.
        out.barcode: ("available", "checked_out", True),
        destroyed.barcode: ("unavailable", "destroyed", False),
        used.barcode: ("unavailable", "consumed", False),
    }


# --- searches -----------------------------------------------------------------------------------


def test_a_search_by_subject_answers_every_aliquot_of_the_participant(bank, api_as):
    client = api_as("technician")
    expected = sorted(a.barcode for a in bank["LIM-001"].aliquots)

    for subject in ("LIM-001", "Patient/LIM-001", "lim-001", f"{PARTICIPANT}|LIM-001"):
        name = "subject:identifier" if "|" in subject else "subject"
        found = bundle(client.get("/fhir/r4/Specimen", query_string={name: subject}))
        assert found.total == len(expected), subject
        assert sorted(s.id for s in entries(found)) == expected
        for entry in found.entry:
            assert entry.fullUrl == f"http://localhost/fhir/r4/Specimen/{entry.resource.id}"
            assert entry.search.mode == "match"


def test_a_search_by_identifier_finds_by_barcode_or_legacy_barcode(db, bank, api_as):
    first, second = serum(bank["LIM-001"])[:2]
    second.legacy_barcode = "OLD-0042"
    db.session.commit()
    client = api_as("technician")

    def ids(identifier: str) -> list[str]:
        answer = client.get("/fhir/r4/Specimen", query_string={"identifier": identifier})
        return sorted(s.id for s in entries(bundle(answer)))

    assert ids(first.barcode) == [first.barcode]
    assert ids(first.barcode.lower()) == [first.barcode]
    assert ids(f"{BARCODE}|{first.barcode}") == [first.barcode]
    assert ids("OLD-0042") == [second.barcode]
    assert ids(f"{LEGACY}|OLD-0042") == [second.barcode]
    assert ids(f"{first.barcode},OLD-0042") == sorted([first.barcode, second.barcode])
    # A code in the wrong system, or in a system of no one here, names nothing.
    assert ids(f"{LEGACY}|{first.barcode}") == []
    assert ids(f"{BARCODE}|OLD-0042") == []
    assert ids(f"urn:other|{first.barcode}") == []


def test_subject_and_identifier_together_must_both_match(bank, api_as):
    client = api_as("technician")
    lim, par = serum(bank["LIM-001"])[0], serum(bank["PAR-001"])[0]

    both = client.get(f"/fhir/r4/Specimen?subject=LIM-001&identifier={lim.barcode}")
    other = client.get(f"/fhir/r4/Specimen?subject=LIM-001&identifier={par.barcode}")

    assert [s.id for s in entries(bundle(both))] == [lim.barcode]
    assert bundle(other).total == 0


@pytest.mark.parametrize(
    "query",
    ["subject=LIM-404", "identifier=NOSUCHTUBE", "identifier=B4", "subject=Group/LIM-001"],
)
def test_a_search_that_finds_nothing_is_an_empty_bundle_not_a_404(bank, api_as, query):
    found = bundle(api_as("technician").get(f"/fhir/r4/Specimen?{query}"))

    assert found.total == 0 and found.entry is None
    assert found.link[0].relation == "self" and query in found.link[0].url


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("", "subject"),
        ("subject=LIM-001&_count=10", "_count"),
        ("patient=LIM-001", "patient"),
        ("identifier:exact=X", "identifier:exact"),
        ("subject=LIM-001&subject=PAR-001", "subject"),
        ("subject=", "subject"),
        ("subject=LIM-001&_format=xml", "_format"),
        ("subject=LIM-001&subject:identifier=LIM-001", "subject:identifier"),
    ],
)
def test_a_search_it_cannot_answer_exactly_is_a_400_naming_the_parameter(
    bank, api_as, query, parameter
):
    response = api_as("technician").get(f"/fhir/r4/Specimen?{query}")

    assert issue_code(response, 400) == "invalid"
    assert outcome(response, 400).issue[0].expression == [parameter]


def test_json_may_be_asked_for_by_format(bank, api_as):
    client = api_as("technician")
    for fmt in ("json", "application/fhir%2Bjson", "application/fhir+json", "application/json"):
        assert bundle(client.get(f"/fhir/r4/Specimen?subject=LIM-001&_format={fmt}")).total > 0


# --- who may read -------------------------------------------------------------------------------


def test_without_a_valid_token_it_is_a_401_operation_outcome(bank, client):
    barcode = serum(bank["LIM-001"])[0].barcode
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        for url in (f"/fhir/r4/Specimen/{barcode}", "/fhir/r4/Specimen?subject=LIM-001"):
            response = client.get(url, headers=headers)
            assert issue_code(response, 401) == "login", (url, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_account_that_may_not_view_samples_gets_a_403(bank, api_as):
    researcher = api_as("researcher")
    barcode = serum(bank["LIM-001"])[0].barcode
    for url in (f"/fhir/r4/Specimen/{barcode}", "/fhir/r4/Specimen?subject=LIM-001"):
        assert issue_code(researcher.get(url), 403) == "forbidden"


@pytest.mark.parametrize("code", ["NOSUCHTUBE", "22222222X", "BX-0001", "B4"])
def test_a_code_that_names_no_aliquot_is_a_404(bank, api_as, code):
    assert issue_code(api_as("technician").get(f"/fhir/r4/Specimen/{code}"), 404) == "not-found"


def test_a_centre_reads_only_its_own_participants_specimens(bank, api_as):
    lim, par = serum(bank["LIM-001"])[0], serum(bank["PAR-001"])[0]
    paris, limoges, central = (api_as("technician", site) for site in ("PAR", "LIM", None))

    refused = paris.get(f"/fhir/r4/Specimen/{lim.barcode}")
    # Told as a tube that does not exist: nothing says it is at another centre.
    assert issue_code(refused, 404) == "not-found"
    assert "LIM" not in refused.get_data(as_text=True)
    assert bundle(paris.get("/fhir/r4/Specimen?subject=LIM-001")).total == 0
    assert bundle(paris.get(f"/fhir/r4/Specimen?identifier={lim.barcode}")).total == 0
    mixed = bundle(paris.get(f"/fhir/r4/Specimen?identifier={lim.barcode},{par.barcode}"))
    assert [s.id for s in entries(mixed)] == [par.barcode]

    assert read(limoges, lim.barcode).id == lim.barcode
    assert issue_code(limoges.get(f"/fhir/r4/Specimen/{par.barcode}"), 404) == "not-found"
    assert read(central, lim.barcode).id == lim.barcode
    assert read(central, par.barcode).id == par.barcode


def test_a_search_takes_at_most_a_hundred_values_of_a_parameter(bank, api_as):
    client = api_as("technician")
    barcode = serum(bank["LIM-001"])[0].barcode
    hundred = ",".join([barcode] + [f"OLD-{n}" for n in range(99)])

    found = bundle(client.get(f"/fhir/r4/Specimen?identifier={hundred}"))
    assert [s.id for s in entries(found)] == [barcode]
    one_more = client.get(f"/fhir/r4/Specimen?identifier={hundred},OLD-99")
    assert issue_code(one_more, 400) == "invalid"


def test_an_escaped_comma_is_part_of_a_legacy_barcode(db, bank, api_as):
    aliquot = serum(bank["LIM-001"])[0]
    aliquot.legacy_barcode = "LIM,2019,42"
    db.session.commit()

    answer = api_as("technician").get(
        "/fhir/r4/Specimen", query_string={"identifier": f"{LEGACY}|LIM\\,2019\\,42"}
    )

    assert [s.id for s in entries(bundle(answer))] == [aliquot.barcode]
