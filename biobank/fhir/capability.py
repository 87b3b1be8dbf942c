"""The CapabilityStatement of /fhir/r4/metadata: what this server answers, and how to
authenticate. It names the search parameters of search.py, so the statement and the
searches cannot drift apart."""

from __future__ import annotations

from fhir.resources.R4B.capabilitystatement import (
    CapabilityStatement,
    CapabilityStatementImplementation,
    CapabilityStatementRest,
    CapabilityStatementRestResource,
    CapabilityStatementRestResourceInteraction,
    CapabilityStatementRestResourceSearchParam,
    CapabilityStatementRestSecurity,
    CapabilityStatementSoftware,
)
from fhir.resources.R4B.codeableconcept import CodeableConcept

from biobank.fhir.search import OBSERVATION_PARAMETERS, SPECIMEN_PARAMETERS, Parameter

FHIR_VERSION = "4.0.1"
# The day this statement last changed: it changes with the code, not with each request.
STATEMENT_DATE = "2026-12-07"

SECURITY = (
    "Every request but this one sends an API token of the biobank, issued by its "
    "administrator, as 'Authorization: Bearer <token>'. The token's account must be "
    "allowed to view samples; an account bound to a centre sees that centre's "
    "participants only (another centre's specimen is not found)."
)


def statement(base_url: str) -> CapabilityStatement:
    """What this server is and answers; ``base_url`` is its address (…/fhir/r4)."""
    return CapabilityStatement(
        status="active",
        date=STATEMENT_DATE,
        publisher="Biobank",
        kind="instance",
        software=CapabilityStatementSoftware(name="Biobank"),
        implementation=CapabilityStatementImplementation(
            description="Biobank: specimens of the trial's participants and their results",
            url=base_url,
        ),
        fhirVersion=FHIR_VERSION,
        format=["json"],
        rest=[
            CapabilityStatementRest(
                mode="server",
                documentation="Read-only: specimens (aliquots) and their laboratory results.",
                security=CapabilityStatementRestSecurity(
                    cors=False,
                    service=[CodeableConcept(text="Bearer token")],
                    description=SECURITY,
                ),
                resource=[
                    _resource("Specimen", ("read", "search-type"), SPECIMEN_PARAMETERS),
                    _resource("Observation", ("search-type",), OBSERVATION_PARAMETERS),
                ],
            )
        ],
    )


def _resource(
    kind: str, interactions: tuple[str, ...], parameters: tuple[Parameter, ...]
) -> CapabilityStatementRestResource:
    return CapabilityStatementRestResource(
        type=kind,
        interaction=[CapabilityStatementRestResourceInteraction(code=c) for c in interactions],
        searchParam=[
            CapabilityStatementRestResourceSearchParam(
                name=p.name, definition=p.definition, type=p.type, documentation=p.documentation
            )
            for p in parameters
        ],
    )
