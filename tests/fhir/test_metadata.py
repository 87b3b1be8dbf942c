"""GET /fhir/r4/metadata, what the server declares and answers, and the codes file the
answers are written with."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from biobank.fhir import codes as fhir_codes
from tests.fhir import bundle, issue_code, resource
from tests.fhir.conftest import serum


def statement(client) -> CapabilityStatement:
    return resource(client.get("/fhir/r4/metadata"), CapabilityStatement)


def test_the_capability_statement_is_open_and_says_r4_json_and_bearer_tokens(client):
    found = statement(client)  # no token: clients read it before they authenticate

    assert found.fhirVersion == "4.0.1"
    assert found.format == ["json"]
    assert found.kind == "instance" and found.status == "active"
    assert found.implementation.url == "http://localhost/fhir/r4"
    (rest,) = found.rest
    assert rest.mode == "server"
    assert rest.security.service[0].text == "Bearer token"
    assert "Authorization: Bearer" in rest.security.description


def test_it_declares_the_resources_interactions_and_search_parameters(client):
    (rest,) = statement(client).rest
    declared = {
        r.type: (
            sorted(i.code for i in r.interaction),
            {p.name: p.type for p in r.searchParam},
        )
        for r in rest.resource
    }

    assert declared == {
        "Specimen": (["read", "search-type"], {"subject": "reference", "identifier": "token"}),
        "Observation": (["search-type"], {"specimen": "reference"}),
    }


def test_every_declared_search_parameter_is_answered(db, bank, api_as, client):
    """The statement and the searches come from one list: each parameter it names is
    accepted, and a parameter it does not name is refused."""
    technician = api_as("technician")
    barcode = serum(bank["LIM-001"])[0].barcode
    values = {"subject": "LIM-001", "identifier": barcode, "specimen": barcode}
    for declared in statement(client).rest[0].resource:
        for parameter in declared.searchParam:
            url = f"/fhir/r4/{declared.type}?{parameter.name}={values[parameter.name]}"
            bundle(technician.get(url))
        refused = technician.get(f"/fhir/r4/{declared.type}?_sort=date")
        assert issue_code(refused, 400) == "invalid"


def test_an_address_it_does_not_serve_is_a_404_operation_outcome(api_as):
    technician = api_as("technician")
    for url in ("/fhir/r4/Patient/LIM-001", "/fhir/r4/Specimen/X/_history/1", "/fhir/r4"):
        assert issue_code(technician.get(url), 404) == "not-found", url


def test_a_write_is_a_405_operation_outcome_naming_what_is_allowed(api_as):
    technician = api_as("technician")
    for method, url in (("POST", "/fhir/r4/Specimen"), ("DELETE", "/fhir/r4/Specimen/X")):
        response = technician.open(url, method=method, json={"resourceType": "Specimen"})
        assert issue_code(response, 405) == "not-supported", url
        assert "GET" in response.headers["Allow"]


def test_a_control_character_in_the_address_is_a_400_operation_outcome(api_as):
    response = api_as("technician").get("/fhir/r4/Specimen/AB%00CD")
    assert issue_code(response, 400) == "invalid"


# --- codes.toml ---------------------------------------------------------------------------------


def test_the_codes_file_is_complete():
    loaded = fhir_codes.load()
    assert loaded.ucum["pg/mL"] == "pg/mL" and loaded.ucum["g/L"] == "g/L"
    assert loaded.ucum["µL"] == "uL"
    assert loaded.system("barcode") == "urn:biobank:barcode"
    assert loaded.system("legacy_barcode") == "urn:biobank:legacy-barcode"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('missing = "unavailable"\n', ""), "lacks missing"),
        (('lost = "unavailable"', 'lost = "gone"'), "no FHIR Specimen status"),
        (('STORED = "Stored"', 'STOWED = "Stored"'), "names no event kind"),
        (('barcode = "urn:biobank:barcode"', ""), "lacks barcode"),
    ],
)
def test_a_codes_file_with_a_gap_is_refused_naming_it(tmp_path, change, message):
    text = fhir_codes.CODES_PATH.read_text(encoding="utf-8")
    old, new = change
    assert old in text
    broken = tmp_path / "codes.toml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")

    with pytest.raises(fhir_codes.CodesError, match=message):
        fhir_codes.load(broken)
