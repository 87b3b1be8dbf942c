"""GET /fhir/r4/Observation?specimen=<barcode>: an aliquot's accepted, reportable results
as final laboratory Observations, values with their UCUM units, limits with their
comparator, and no value said as such."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa
from fhir.resources.R4B.observation import Observation

from biobank.assays import pipeline
from biobank.assays import services as assays
from biobank.assays.example import make_plate
from biobank.assays.models import AssayRun
from tests import factories
from tests.assays.conftest import sheet
from tests.fhir import bundle, entries, issue_code
from tests.fhir.conftest import serum

UCUM = "http://unitsofmeasure.org"
OPTIONS = pipeline.Options(read=450, reference=540)


def _without_reading(reader: bytes, well: str) -> bytes:
    """The example reader file with one 450 nm well left empty (no reading)."""
    book = openpyxl.load_workbook(io.BytesIO(reader))
    row, col = "ABCDEFGH".index(well[0]), int(well[1:])
    book.active.cell(row=10 + row, column=col + 2).value = None
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _accept_plate(values: dict[str, float], *, unread: str | None = None, reassay=""):
    plate = make_plate(values)
    reader = plate.reader
    if unread is not None:
        first_well = min(w for w, content in plate.layout.items() if content == unread)
        reader = _without_reading(reader, first_well)
    run = assays.preview_plate(
        reader, "vegf.xlsx", plate.plate_map, "VEGF", OPTIONS, reassay_reason=reassay, actor=None
    ).run
    return assays.accept_run(run.code, confirm=True, actor=None)


@pytest.fixture
def measured(db, bank):
    """Baseline serum of LIM-011 (VEGF 900 pg/mL, M-spike 12.5 g/L, immunofixation
    positive), LIM-012 (VEGF below the lowest standard, M-spike "< 0.5" g/L) and LIM-013
    (VEGF with a well unread: no result). Returns participant → its first serum aliquot."""
    tubes = {}
    for code in ("LIM-011", "LIM-012", "LIM-013"):
        factories.participant("LIM", code=code)
        tubes[code] = serum(factories.visit(code, "BL"))[0]
    codes = {code: tube.barcode for code, tube in tubes.items()}
    _accept_plate(
        {codes["LIM-011"]: 900.0, codes["LIM-012"]: 2.0, codes["LIM-013"]: 300.0},
        unread=codes["LIM-013"],
    )
    rows = [
        [codes["LIM-011"], "M-spike", "12.5", "g/L", "SPE", "02/03/2026", ""],
        [codes["LIM-012"], "M-spike", "< 0.5", "g/L", "SPE", "02/03/2026", ""],
        [codes["LIM-011"], "Immunofixation", "Positive IgA lambda", "", "IFE", "02/03/2026", ""],
    ]
    preview = assays.preview_results(sheet(rows), "mprotein.xlsx", actor=None)
    assays.accept_run(preview.run.code, actor=None)
    db.session.commit()
    return tubes


def observations(client, specimen: str) -> dict[str, Observation]:
    """The Observations of a specimen search, by analyte code."""
    found = bundle(client.get("/fhir/r4/Observation", query_string={"specimen": specimen}))
    return {o.code.coding[-1].code: o for o in entries(found)}


def test_a_measured_result_is_a_final_observation_in_its_ucum_unit(db, measured, api_as):
    tube = measured["LIM-011"]
    found = observations(api_as("technician"), tube.barcode)

    assert set(found) == {"VEGF", "M_SPIKE", "IFE"}
    vegf = found["VEGF"]
    assert vegf.status == "final"
    assert vegf.category[0].coding[0].code == "laboratory"
    assert vegf.code.text == "VEGF-A"
    assert (vegf.code.coding[-1].system, vegf.code.coding[-1].code) == (
        "urn:biobank:analyte",
        "VEGF",
    )
    quantity = vegf.valueQuantity
    assert (quantity.unit, quantity.system, quantity.code) == ("pg/mL", UCUM, "pg/mL")
    assert quantity.comparator is None
    assert quantity.value == pytest.approx(Decimal(900), rel=Decimal("0.02"))
    spike = found["M_SPIKE"].valueQuantity
    assert (spike.value, spike.unit, spike.code, spike.comparator) == (
        Decimal("12.5"),
        "g/L",
        "g/L",
        None,
    )


def test_it_names_its_specimen_subject_collection_and_acceptance(db, measured, api_as):
    tube = measured["LIM-011"]
    vegf = observations(api_as("technician"), tube.barcode)["VEGF"]

    assert vegf.specimen.reference == f"Specimen/{tube.barcode}"
    assert vegf.subject.identifier.value == "LIM-011" and vegf.subject.reference is None
    assert vegf.effectiveDateTime == tube.specimen.collected_at
    run = db.session.execute(
        sa.select(AssayRun).where(AssayRun.status == "accepted", AssayRun.kind == "plate")
    ).scalar_one()
    assert vegf.issued == run.decided_at.replace(microsecond=vegf.issued.microsecond)
    assert vegf.identifier[0].value == f"{run.code}/{tube.barcode}/VEGF"


def test_a_value_below_the_lowest_standard_is_a_quantity_with_less_than(measured, api_as):
    found = observations(api_as("technician"), measured["LIM-012"].barcode)

    vegf = found["VEGF"].valueQuantity
    assert vegf.comparator == "<"
    # The lowest standard, 15.625, to the analyte's 4 digits as the pages write it.
    assert vegf.value == Decimal("15.62")
    assert vegf.code == "pg/mL"
    spike = found["M_SPIKE"].valueQuantity  # reported "< 0.5" by the laboratory
    assert (spike.comparator, spike.value, spike.code) == ("<", Decimal("0.5"), "g/L")


def test_a_sample_without_a_result_has_a_data_absent_reason_and_no_value(measured, api_as):
    vegf = observations(api_as("technician"), measured["LIM-013"].barcode)["VEGF"]

    assert vegf.valueQuantity is None and vegf.valueCodeableConcept is None
    assert vegf.dataAbsentReason.coding[0].code == "error"
    assert "no reading" in vegf.dataAbsentReason.text


def test_a_qualitative_result_is_a_coded_answer_with_its_detail(measured, api_as):
    ife = observations(api_as("technician"), measured["LIM-011"].barcode)["IFE"]

    assert ife.valueCodeableConcept.text == "positive"
    coding = ife.valueCodeableConcept.coding[0]
    assert (coding.system, coding.code) == ("http://snomed.info/sct", "10828004")
    assert "IgA lambda" in ife.note[0].text


def test_a_superseded_result_is_not_answered(db, measured, api_as):
    first = measured["LIM-011"]
    again = next(a for a in first.specimen.aliquots if a.id != first.id)
    _accept_plate({again.barcode: 450.0}, reassay="control failed")
    db.session.commit()
    client = api_as("technician")

    assert "VEGF" not in observations(client, first.barcode)
    assert set(observations(client, again.barcode)) == {"VEGF"}


def test_a_result_not_accepted_yet_is_not_answered(db, bank, api_as):
    tube = serum(bank["LIM-001"])[0]
    rows = [[tube.barcode, "M-spike", "3.1", "g/L", "SPE", "02/03/2026", ""]]
    assays.preview_results(sheet(rows), "waiting.xlsx", actor=None)
    db.session.commit()

    assert observations(api_as("technician"), tube.barcode) == {}


def test_a_legacy_barcode_or_a_reference_names_the_specimen(db, measured, api_as):
    tube = measured["LIM-011"]
    tube.legacy_barcode = "OLD-0011"
    db.session.commit()
    client = api_as("technician")

    for specimen in ("OLD-0011", f"Specimen/{tube.barcode}", tube.barcode.lower()):
        assert set(observations(client, specimen)) == {"VEGF", "M_SPIKE", "IFE"}, specimen
    assert observations(client, f"Patient/{tube.barcode}") == {}


@pytest.mark.parametrize("specimen", ["NOSUCHTUBE", "22222222X", "BX-0001"])
def test_an_unknown_specimen_is_an_empty_bundle(measured, api_as, specimen):
    found = bundle(api_as("technician").get(f"/fhir/r4/Observation?specimen={specimen}"))
    assert found.total == 0


def test_every_entry_is_identified_by_a_stable_urn(measured, api_as):
    client = api_as("technician")
    url = f"/fhir/r4/Observation?specimen={measured['LIM-011'].barcode}"
    first, again = bundle(client.get(url)), bundle(client.get(url))

    assert [e.fullUrl for e in first.entry] == [e.fullUrl for e in again.entry]
    for entry in first.entry:
        assert entry.fullUrl == f"urn:uuid:{entry.resource.id}"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("", "specimen"), ("specimen=X&subject=LIM-011", "subject"), ("specimen=", "specimen")],
)
def test_a_search_it_cannot_answer_is_a_400(measured, api_as, query, parameter):
    response = api_as("technician").get(f"/fhir/r4/Observation?{query}")
    assert issue_code(response, 400) == "invalid"
    assert parameter in response.get_json()["issue"][0]["expression"]


def test_who_may_read_results(measured, api_as, client):
    url = f"/fhir/r4/Observation?specimen={measured['LIM-011'].barcode}"

    assert issue_code(client.get(url), 401) == "login"
    assert issue_code(api_as("researcher").get(url), 403) == "forbidden"
    assert bundle(api_as("technician", "PAR").get(url)).total == 0  # another centre's tube
    assert bundle(api_as("manager", "LIM").get(url)).total == 3


def test_collection_time_is_written_in_the_centre_zone(measured, api_as):
    vegf = observations(api_as("technician"), measured["LIM-011"].barcode)["VEGF"]

    assert vegf.effectiveDateTime == datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    assert vegf.model_dump(mode="json")["effectiveDateTime"] == "2026-01-05T09:30:00+01:00"
