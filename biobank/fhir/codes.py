"""The FHIR vocabulary of the biobank, read from codes.toml: identifier and code systems,
aliquot statuses as Specimen statuses, sample types, analytes, units and processing steps.

The file is checked when it is read: a status, a system or a step missing is an error at
start-up, never a FHIR answer without its code.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from biobank.custody.services import EventKind
from biobank.samples.models import ALIQUOT_STATUSES

CODES_PATH = Path(__file__).with_name("codes.toml")

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

FHIR_SPECIMEN_STATUSES = ("available", "unavailable", "unsatisfactory", "entered-in-error")
SYSTEMS = (
    "barcode",
    "legacy_barcode",
    "tube_barcode",
    "participant",
    "result",
    "sample_type",
    "primary_container",
    "processing",
    "analyte",
    "sprec_code_extension",
    "storage_place_extension",
    "status_extension",
)
PROCESSING_STEPS = ("centrifugation", "second_centrifugation", "freezing")


class CodesError(ValueError):
    """codes.toml is incomplete or holds a value FHIR does not allow."""


@dataclass(frozen=True)
class Concept:
    """A plain word with, where one was checked, a code of an external system."""

    text: str
    system: str | None = None
    code: str | None = None
    display: str | None = None


@dataclass(frozen=True)
class Codes:
    systems: MappingProxyType  # name → URN
    status: MappingProxyType  # aliquot status → Specimen.status
    sample_types: MappingProxyType  # SPREC sample type → Concept
    primary_tube: Concept
    loinc: MappingProxyType  # analyte code → Concept (LOINC)
    qualitative: MappingProxyType  # normalised answer → Concept (SNOMED CT)
    ucum: MappingProxyType  # canonical unit → UCUM code
    steps: MappingProxyType  # processing step → description
    custody_steps: MappingProxyType  # custody event kind → description

    def system(self, name: str) -> str:
        return self.systems[name]


def load(path: str | Path = CODES_PATH) -> Codes:
    """Read and check a codes file (``CodesError`` names what is wrong)."""
    with open(path, "rb") as stream:
        data = tomllib.load(stream)
    return Codes(
        systems=_frozen(_table(data, "systems", required=SYSTEMS)),
        status=_frozen(_statuses(data)),
        sample_types=_frozen(_concepts(_table(data, "sample_types"), "sample_types")),
        primary_tube=_snomed_concept(_table(data, "primary_tube"), "primary_tube"),
        loinc=_frozen(_loinc(_table(data, "analytes"))),
        qualitative=_frozen(_answers(_table(data, "qualitative"))),
        ucum=_frozen(_table(data, "ucum")),
        steps=_frozen(_table(_table(data, "processing"), "steps", required=PROCESSING_STEPS)),
        custody_steps=_frozen(_custody_steps(_table(data, "processing"))),
    )


@functools.cache
def codes() -> Codes:
    """The application's codes (codes.toml beside this module), read once."""
    return load()


def _frozen(mapping: dict) -> MappingProxyType:
    return MappingProxyType(dict(mapping))


def _table(data: dict, key: str, *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    table = data.get(key)
    if not isinstance(table, dict):
        raise CodesError(f"codes.toml: [{key}] is missing")
    missing = [name for name in required if name not in table]
    if missing:
        raise CodesError(f"codes.toml: [{key}] lacks {', '.join(missing)}")
    return table


def _statuses(data: dict) -> dict[str, str]:
    table = _table(data, "status", required=ALIQUOT_STATUSES)
    wrong = {k: v for k, v in table.items() if v not in FHIR_SPECIMEN_STATUSES}
    if wrong:
        raise CodesError(f"codes.toml: [status] gives no FHIR Specimen status for {wrong}")
    unknown = set(table) - set(ALIQUOT_STATUSES)
    if unknown:
        raise CodesError(f"codes.toml: [status] names no aliquot status: {sorted(unknown)}")
    return table


def _snomed_concept(entry: dict, where: str) -> Concept:
    if "text" not in entry:
        raise CodesError(f"codes.toml: [{where}] needs a text")
    if ("snomed" in entry) != ("snomed_display" in entry):
        raise CodesError(f"codes.toml: [{where}] needs both snomed and snomed_display")
    if "snomed" not in entry:
        return Concept(entry["text"])
    return Concept(entry["text"], SNOMED, entry["snomed"], entry["snomed_display"])


def _concepts(table: dict, where: str) -> dict[str, Concept]:
    return {key: _snomed_concept(entry, f"{where}.{key}") for key, entry in table.items()}


def _answers(table: dict) -> dict[str, Concept]:
    """Qualitative answers: the answer itself is the text."""
    return _concepts(
        {answer: {"text": answer, **entry} for answer, entry in table.items()}, "qualitative"
    )


def _loinc(analytes: dict) -> dict[str, Concept]:
    found = {}
    for code, entry in analytes.items():
        if "loinc" not in entry:
            continue
        if "loinc_display" not in entry:
            raise CodesError(f"codes.toml: [analytes.{code}] needs loinc_display with loinc")
        found[code] = Concept(entry["loinc_display"], LOINC, entry["loinc"], entry["loinc_display"])
    return found


def _custody_steps(processing: dict) -> dict[str, str]:
    table = _table(processing, "custody")
    unknown = set(table) - {kind.value for kind in EventKind}
    if unknown:
        raise CodesError(f"codes.toml: [processing.custody] names no event kind: {sorted(unknown)}")
    return table
