"""FHIR R4 resources built from the biobank's records, with the fhir.resources models.

fhir.resources 8 models FHIR R5 at its top level. Its R4B package is used here: the
Specimen, Observation, Bundle, CapabilityStatement and OperationOutcome of R4B are those
of R4 (4.0.1) element for element, while R5's differ (an R5 Specimen container, for
one, requires a device), so what is built and validated here is R4 JSON.

How the biobank is told in FHIR (README, "FHIR"):

* a Specimen is an aliquot, its id the barcode; the primary tube it was made from is a
  contained Specimen (``#primary``), since the primary tube has no barcode of the bank
  to be read by; an aliquot made from another aliquot also has that aliquot as parent
  (``Specimen/<barcode>``, readable here);
* the subject is the participant's pseudonymised study code, as an identifier-only
  reference: this server has no Patient resource, and only the centre can tell who the
  code is;
* times are written in the participant's centre's time zone.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntrySearch, BundleLink
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.specimen import (
    Specimen,
    SpecimenCollection,
    SpecimenContainer,
    SpecimenProcessing,
)

from biobank.assays import reportable
from biobank.custody.models import CustodyEvent
from biobank.fhir.codes import UCUM, Concept, codes
from biobank.fhir.services import ObservationRecord, SpecimenRecord
from biobank.samples import sprec
from biobank.samples.models import Aliquot
from biobank.samples.models import Specimen as PrimaryTube

PRIMARY_TUBE_ID = "primary"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# Observation ids: stable for a result (its run, aliquot and analyte), in FHIR's id syntax.
RESULT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:biobank:result")


# --- Specimen ------------------------------------------------------------------------------


def specimen(record: SpecimenRecord) -> Specimen:
    """The aliquot as a Specimen."""
    aliquot, zone = record.aliquot, record.zone
    return Specimen(
        id=aliquot.barcode,
        extension=_specimen_extensions(record),
        contained=[_primary_tube(record)],
        identifier=_identifiers(aliquot),
        status=codes().status[aliquot.status],
        type=_sample_type(aliquot.sample_type),
        subject=participant_reference(record.participant.code),
        parent=_parents(aliquot),
        collection=SpecimenCollection(
            collectedDateTime=_when(record.specimen.collected_at, zone),
            quantity=_microlitres(aliquot.initial_volume_ul),
        ),
        processing=_processing(record) or None,
        container=[_container(record)],
        note=[Annotation(text=f"Freeze-thaw cycles: {aliquot.freeze_thaw_count}")],
    )


def participant_reference(code: str) -> Reference:
    """The participant by their pseudonymised code: an identifier, no literal reference
    (there is no Patient resource to read here)."""
    return Reference(
        type="Patient",
        identifier=Identifier(system=codes().system("participant"), value=code),
        display=code,
    )


def specimen_reference(barcode: str) -> Reference:
    return Reference(reference=f"Specimen/{barcode}", display=barcode)


def _specimen_extensions(record: SpecimenRecord) -> list[Extension]:
    c = codes()
    return [
        Extension(url=c.system("sprec_code_extension"), valueString=record.specimen.sprec_code),
        Extension(url=c.system("status_extension"), valueCode=record.aliquot.status),
    ]


def _identifiers(aliquot: Aliquot) -> list[Identifier]:
    c = codes()
    found = [Identifier(use="official", system=c.system("barcode"), value=aliquot.barcode)]
    if aliquot.legacy_barcode:
        found.append(
            Identifier(
                use="secondary", system=c.system("legacy_barcode"), value=aliquot.legacy_barcode
            )
        )
    return found


def _sample_type(code: str) -> CodeableConcept:
    """The SPREC sample type (SER, PL1…) with its SPREC label, and SNOMED CT's specimen
    concept where codes.toml gives one."""
    row = sprec.load_tables()["sample_type"].row(code)
    concept = codes().sample_types.get(code)
    coding = [
        Coding(
            system=codes().system("sample_type"),
            code=code,
            display=row.label if row is not None else None,
        )
    ]
    if concept is not None and concept.code is not None:
        coding.append(_coding(concept))
    text = concept.text if concept is not None else (row.label if row is not None else code)
    return CodeableConcept(coding=coding, text=text)


def _parents(aliquot: Aliquot) -> list[Reference]:
    """The aliquot it was made from, if any (readable here), then its primary tube."""
    parents = []
    if aliquot.parent is not None:
        parents.append(specimen_reference(aliquot.parent.barcode))
    parents.append(Reference(reference=f"#{PRIMARY_TUBE_ID}", display="Primary tube"))
    return parents


def _primary_tube(record: SpecimenRecord) -> Specimen:
    """The primary tube drawn at the visit: what was collected, when, in which container."""
    tube, zone = record.specimen, record.zone
    identifiers = None
    if tube.tube_barcode:
        identifiers = [Identifier(system=codes().system("tube_barcode"), value=tube.tube_barcode)]
    return Specimen(
        id=PRIMARY_TUBE_ID,
        identifier=identifiers,
        type=_concept(codes().primary_tube),
        subject=participant_reference(record.participant.code),
        receivedTime=_when(tube.received_at, zone),
        collection=SpecimenCollection(collectedDateTime=_when(tube.collected_at, zone)),
        container=[SpecimenContainer(type=_primary_container(tube))],
    )


def _primary_container(tube: PrimaryTube) -> CodeableConcept:
    row = sprec.load_tables()["container"].row(tube.container)
    label = row.label if row is not None else tube.container
    coding = Coding(system=codes().system("primary_container"), code=tube.container, display=label)
    return CodeableConcept(coding=[coding], text=label)


def _container(record: SpecimenRecord) -> SpecimenContainer:
    """The aliquot's tube: how much it holds now, and where it stands (kept while it is
    checked out: its place waits for its return)."""
    place = record.place
    if place is None:
        return SpecimenContainer(specimenQuantity=_microlitres(record.aliquot.volume_ul))
    where = Extension(
        url=codes().system("storage_place_extension"),
        extension=[
            Extension(url="box", valueString=place.box),
            Extension(url="position", valueString=place.position),
        ],
    )
    return SpecimenContainer(
        extension=[where],
        description=place.described,
        specimenQuantity=_microlitres(record.aliquot.volume_ul),
    )


# --- processing ----------------------------------------------------------------------------


def _processing(record: SpecimenRecord) -> list[SpecimenProcessing]:
    """The pre-analytical record (centrifugations, freezing), then what custody recorded
    of the tube and its place, oldest first."""
    return _preanalytical(record.specimen, record.zone) + [
        step for event in record.events if (step := _custody_step(event, record.zone))
    ]


def _preanalytical(tube: PrimaryTube, zone: ZoneInfo) -> list[SpecimenProcessing]:
    spin = _spin_words(tube.spin_force_g, tube.spin_minutes, tube.spin_temperature_c)
    if not tube.spin_braking and tube.spin_force_g is not None:
        spin += ", brake off"
    steps = [_step("centrifugation", spin, _when(tube.spun_at, zone))]
    if tube.second_spin_force_g is not None:
        second = _spin_words(
            tube.second_spin_force_g, tube.second_spin_minutes, tube.second_spin_temperature_c
        )
        # The time of the second spin is not recorded: the step has none.
        steps.append(_step("second_centrifugation", second, None))
    frozen = f"stored at {tube.storage_temperature_c} °C"
    steps.append(_step("freezing", frozen, _when(tube.frozen_at, zone)))
    return steps


def _spin_words(force_g, minutes, temperature_c) -> str:
    if force_g is None:  # a tube imported from an inventory spreadsheet
        return "settings not recorded"
    words = [f"{force_g} g", f"{minutes} min"]
    if temperature_c is not None:
        words.append(f"{temperature_c:g} °C")
    return ", ".join(words)


def _custody_step(event: CustodyEvent, zone: ZoneInfo) -> SpecimenProcessing | None:
    label = codes().custody_steps.get(event.kind)
    if label is None:
        return None  # not a processing step (a label printed, a reservation)
    code = event.kind.lower().replace("_", "-")
    return _step(code, _event_words(event), _when(event.at, zone), label=label)


def _event_words(event: CustodyEvent) -> str | None:
    """What an event's details add to its label: a thaw, a volume taken."""
    details = json.loads(event.details or "{}")
    if details.get("thawed"):
        return "thawed"
    if "volume_ul_taken" in details:
        taken, left = details["volume_ul_taken"], details.get("volume_ul_left", "?")
        return f"{taken} µL taken, {left} µL left"
    return None


def _step(code: str, words: str | None, when: str | None, *, label: str | None = None):
    label = label or codes().steps[code]
    procedure = CodeableConcept(
        coding=[Coding(system=codes().system("processing"), code=code, display=label)],
        text=label,
    )
    description = f"{label}: {words}" if words else label
    return SpecimenProcessing(description=description, procedure=procedure, timeDateTime=when)


# --- Observation ---------------------------------------------------------------------------


def observation(record: ObservationRecord) -> Observation:
    """A reportable result as a final laboratory Observation of its aliquot."""
    row, specimen_record = record.result, record.specimen
    identifier = result_identifier(row.run, row.barcode, row.analyte)
    return Observation(
        id=str(uuid.uuid5(RESULT_NAMESPACE, identifier)),
        identifier=[Identifier(system=codes().system("result"), value=identifier)],
        status="final",
        category=[
            CodeableConcept(
                coding=[
                    Coding(system=OBSERVATION_CATEGORY, code="laboratory", display="Laboratory")
                ]
            )
        ],
        code=_analyte(row.analyte, record.analyte_name),
        subject=participant_reference(row.participant),
        effectiveDateTime=_when(specimen_record.specimen.collected_at, specimen_record.zone),
        issued=_when(record.accepted_at, specimen_record.zone),
        specimen=specimen_reference(row.barcode),
        method=CodeableConcept(text=row.method) if row.method else None,
        note=[Annotation(text=row.detail)] if row.detail else None,
        **_value(row),
    )


def result_identifier(run: str, barcode: str, analyte: str) -> str:
    """A result's identifier: one per run, aliquot and analyte ("A00042/7KQ3M9XW4/VEGF")."""
    return f"{run}/{barcode}/{analyte}"


def _analyte(code: str, name: str) -> CodeableConcept:
    coding = [Coding(system=codes().system("analyte"), code=code, display=name)]
    loinc = codes().loinc.get(code)
    if loinc is not None:
        coding.insert(0, _coding(loinc))
    return CodeableConcept(coding=coding, text=name)


def _value(row) -> dict:
    """The result as value[x]: a quantity (with "<" or ">" when beyond the calibrated range
    or reported so), a coded answer, or why there is none."""
    if row.flag is not None and row.limit is not None:
        comparator = "<" if row.flag == "<LLOQ" else ">"
        return {"valueQuantity": _result_quantity(row.limit, row, comparator)}
    if row.text is not None:
        return {"valueCodeableConcept": _answer(row.text)}
    if row.value is not None:
        return {"valueQuantity": _result_quantity(row.value, row, row.comparator)}
    reason = Coding(system=DATA_ABSENT_REASON, code="error", display="Error")
    return {"dataAbsentReason": CodeableConcept(coding=[reason], text=row.detail or "No result")}


def _result_quantity(value: float, row, comparator: str | None) -> Quantity:
    ucum = codes().ucum.get(row.unit)
    return Quantity(
        value=Decimal(reportable.written(value, row.digits)),
        comparator=comparator,
        unit=row.unit or None,
        system=UCUM if ucum is not None else None,
        code=ucum,
    )


def _answer(text: str) -> CodeableConcept:
    concept = codes().qualitative.get(text)
    if concept is None or concept.code is None:
        return CodeableConcept(text=text)
    return CodeableConcept(coding=[_coding(concept)], text=text)


# --- bundles and outcomes ------------------------------------------------------------------


def searchset(resources: list, *, self_url: str, full_url) -> Bundle:
    """A search's answer: every match, its total, and the search that found them.
    ``full_url(resource)`` gives each entry's fullUrl."""
    return Bundle(
        type="searchset",
        total=len(resources),
        link=[BundleLink(relation="self", url=self_url)],
        entry=[
            BundleEntry(
                fullUrl=full_url(resource),
                resource=resource,
                search=BundleEntrySearch(mode="match"),
            )
            for resource in resources
        ]
        or None,
    )


def operation_outcome(code: str, diagnostics: str, *, expression: str | None = None):
    """An error as FHIR tells one: ``code`` from the issue-type value set (not-found,
    login, forbidden, invalid, not-supported, exception)."""
    issue = OperationOutcomeIssue(
        severity="error",
        code=code,
        diagnostics=diagnostics,
        expression=[expression] if expression else None,
    )
    return OperationOutcome(issue=[issue])


# --- small pieces --------------------------------------------------------------------------


def _when(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    return moment.astimezone(zone) if moment is not None else None


def _microlitres(volume_ul: int) -> Quantity:
    return Quantity(value=volume_ul, unit="µL", system=UCUM, code=codes().ucum["µL"])


def _coding(concept: Concept) -> Coding:
    return Coding(system=concept.system, code=concept.code, display=concept.display)


def _concept(concept: Concept) -> CodeableConcept:
    coding = [_coding(concept)] if concept.code is not None else None
    return CodeableConcept(coding=coding, text=concept.text)
