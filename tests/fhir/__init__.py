"""Tests of the FHIR R4 answers (/fhir/r4): every resource is parsed back with the
fhir.resources R4B models, which are R4's for the resources served."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

FHIR_JSON = "application/fhir+json"


def resource(response, model, status: int = 200):
    """The answer parsed as ``model`` (Specimen, Bundle…): it must have ``status``, the
    FHIR JSON media type, and be valid for the model."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON, response.content_type
    return model.model_validate_json(response.get_data())


def bundle(response) -> Bundle:
    """A searchset Bundle whose total counts its entries."""
    found = resource(response, Bundle)
    assert found.type == "searchset"
    assert found.total == len(found.entry or [])
    return found


def outcome(response, status: int) -> OperationOutcome:
    """An error answered as an OperationOutcome with ``status``; never an HTML page."""
    return resource(response, OperationOutcome, status)


def issue_code(response, status: int) -> str:
    found = outcome(response, status)
    assert len(found.issue) == 1 and found.issue[0].severity == "error"
    assert found.issue[0].diagnostics
    return found.issue[0].code


def entries(found: Bundle) -> list:
    return [entry.resource for entry in found.entry or []]


def extension(element, url: str):
    """The extension of ``element`` with this url (exactly one)."""
    (found,) = [e for e in element.extension or [] if e.url == url]
    return found
