"""The four SDTM datasets of the export as metadata (variables, labels, types, origins,
keys), and the rules every value follows on its way into them.

What the transport format (SAS XPORT version 5) allows decides the rules: names of at
most 8 characters, labels of at most 40, text of at most 200 ASCII characters, numbers as
doubles. Text is folded to ASCII here, once, so that the XPT file and the CSV file of a
dataset hold the same values and the define document gives the lengths of both.

Pure: nothing here touches Flask or the database.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

MAX_NAME = 8
MAX_LABEL = 40
MAX_TEXT = 200
NUMERIC_LENGTH = 8  # every number is a double in a transport file

# Where a value comes from, in the words of Define-XML's origin types.
ASSIGNED, COLLECTED, DERIVED, PROTOCOL = "Assigned", "Collected", "Derived", "Protocol"


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    numeric: bool = False
    origin: str = DERIVED
    codelist: str = ""  # the code list of the define document its values come from
    comment: str = ""  # how it is derived, when the label does not say

    @property
    def kind(self) -> str:
        return "Num" if self.numeric else "Char"


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    observation_class: str
    structure: str
    keys: tuple[str, ...]
    variables: tuple[Variable, ...]

    @property
    def file_stem(self) -> str:
        return self.name.lower()

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]


# --- common variables ----------------------------------------------------------------------

_STUDYID = Variable(
    "STUDYID", "Study Identifier", origin=PROTOCOL, comment="The protocol's study code."
)
_USUBJID = Variable(
    "USUBJID",
    "Unique Subject Identifier",
    comment='STUDYID, "-", and the participant\'s pseudonymised study code.',
)
_VISITNUM = Variable(
    "VISITNUM",
    "Visit Number",
    numeric=True,
    origin=PROTOCOL,
    comment="The visit's position in the protocol's schedule, from 1.",
)
_VISIT = Variable(
    "VISIT", "Visit Name", origin=PROTOCOL, comment="The protocol's name of the visit."
)
_LOCAL_TIME = "ISO 8601, local time of the participant's centre, to the minute."
_STUDY_DAY = (
    "Days from the participant's inclusion date (day 1) to the date of {0}; "
    "negative before it, never 0."
)


def _domain(name: str) -> Variable:
    return Variable("DOMAIN", "Domain Abbreviation", origin=ASSIGNED, comment=f'"{name}".')


def _seq(prefix: str) -> Variable:
    return Variable(
        f"{prefix}SEQ",
        "Sequence Number",
        numeric=True,
        comment="Unique within USUBJID, in the order of the records.",
    )


LB = Dataset(
    "LB",
    "Laboratory Test Results",
    "Findings",
    "One record per reportable result per aliquot",
    ("STUDYID", "USUBJID", "LBTESTCD", "LBSPEC", "LBMETHOD", "VISITNUM"),
    (
        _STUDYID,
        _domain("LB"),
        _USUBJID,
        _seq("LB"),
        Variable("LBREFID", "Specimen ID", origin=ASSIGNED, comment="The aliquot's barcode."),
        Variable(
            "LBSPID",
            "Sponsor-Defined Identifier",
            origin=ASSIGNED,
            comment="The assay run the result comes from.",
        ),
        Variable(
            "LBTESTCD", "Lab Test or Examination Short Name", origin=ASSIGNED, codelist="LBTESTCD"
        ),
        Variable("LBTEST", "Lab Test or Examination Name", origin=ASSIGNED, codelist="LBTESTCD"),
        Variable("LBCAT", "Category for Lab Test", origin=ASSIGNED, codelist="LBTESTCD"),
        Variable(
            "LBORRES",
            "Result or Finding in Original Units",
            origin=COLLECTED,
            comment='The value to its analyte\'s significant digits; "<15.6" below the lower '
            'limit of quantitation, ">4000" above the upper one; a qualitative result with '
            "the laboratory's detail.",
        ),
        Variable("LBORRESU", "Original Units", origin=COLLECTED, codelist="UNIT"),
        Variable(
            "LBSTRESC",
            "Character Result/Finding in Std Format",
            comment="LBORRES converted into LBSTRESU; a qualitative result as its standard term.",
        ),
        Variable(
            "LBSTRESN",
            "Numeric Result/Finding in Standard Units",
            numeric=True,
            comment="LBSTRESC as a number; empty for a result outside the limits of "
            "quantitation, a qualitative result or a test not done.",
        ),
        Variable("LBSTRESU", "Standard Units", origin=ASSIGNED, codelist="UNIT"),
        Variable(
            "LBSTAT",
            "Completion Status",
            codelist="ND",
            comment='"NOT DONE" when the plate gave the sample no result.',
        ),
        Variable(
            "LBREASND",
            "Reason Test Not Done",
            origin=COLLECTED,
            comment="Why the plate gave no result.",
        ),
        Variable("LBSPEC", "Specimen Type", origin=ASSIGNED, codelist="SPECTYPE"),
        Variable("LBMETHOD", "Method of Test or Examination", origin=ASSIGNED, codelist="LBTESTCD"),
        _VISITNUM,
        _VISIT,
        Variable(
            "LBDTC",
            "Date/Time of Specimen Collection",
            origin=COLLECTED,
            comment="When the primary tube was drawn; " + _LOCAL_TIME,
        ),
        Variable(
            "LBDY",
            "Study Day of Specimen Collection",
            numeric=True,
            comment=_STUDY_DAY.format("LBDTC"),
        ),
    ),
)

BE = Dataset(
    "BE",
    "Biospecimen Events",
    "Events",
    "One record per event per specimen",
    ("STUDYID", "USUBJID", "BEREFID", "BESEQ"),
    (
        _STUDYID,
        _domain("BE"),
        _USUBJID,
        _seq("BE"),
        Variable(
            "BEREFID",
            "Specimen ID",
            origin=ASSIGNED,
            comment="The aliquot's barcode, or the primary tube's REFID (RELSPEC) for the "
            "steps of the primary tube.",
        ),
        Variable(
            "BETERM",
            "Reported Term for the Biospecimen Event",
            origin=ASSIGNED,
            codelist="BEDECOD",
        ),
        Variable("BEDECOD", "Dictionary-Derived Term", origin=ASSIGNED, codelist="BEDECOD"),
        Variable("BECAT", "Category for Biospecimen Event", origin=ASSIGNED, codelist="BEDECOD"),
        _VISITNUM,
        _VISIT,
        Variable(
            "BEDTC",
            "Date/Time of Event Collection",
            origin=COLLECTED,
            comment="When the event was recorded: the time of its custody log entry, or the "
            "registration of the primary tube for its steps; " + _LOCAL_TIME,
        ),
        Variable(
            "BESTDTC",
            "Start Date/Time of Biospecimen Event",
            origin=COLLECTED,
            comment="When the event happened: the custody log's time, or the primary tube's "
            "recorded time of the step; " + _LOCAL_TIME,
        ),
        Variable(
            "BESTDY",
            "Study Day of Start of Biospecimen Event",
            numeric=True,
            comment=_STUDY_DAY.format("BESTDTC"),
        ),
    ),
)

BS = Dataset(
    "BS",
    "Biospecimen Findings",
    "Findings",
    "One record per test per specimen",
    ("STUDYID", "USUBJID", "BSREFID", "BSTESTCD"),
    (
        _STUDYID,
        _domain("BS"),
        _USUBJID,
        _seq("BS"),
        Variable(
            "BSREFID",
            "Specimen ID",
            origin=ASSIGNED,
            comment="The aliquot's barcode, or the primary tube's REFID (RELSPEC) for its "
            "pre-analytical code.",
        ),
        Variable("BSTESTCD", "Biospecimen Test Short Name", origin=ASSIGNED, codelist="BSTESTCD"),
        Variable("BSTEST", "Biospecimen Test Name", origin=ASSIGNED, codelist="BSTESTCD"),
        Variable(
            "BSORRES",
            "Result or Finding in Original Units",
            origin=COLLECTED,
            comment="The volume at aliquoting, the freeze-thaw cycles counted at the export, "
            "the SPREC code of the primary tube's handling.",
        ),
        Variable("BSORRESU", "Original Units", origin=ASSIGNED, codelist="BSTESTCD"),
        Variable("BSSTRESC", "Character Result/Finding in Std Format", comment="BSORRES."),
        Variable(
            "BSSTRESN",
            "Numeric Result/Finding in Standard Units",
            numeric=True,
            comment="BSORRES as a number, when it is one.",
        ),
        Variable("BSSTRESU", "Standard Units", origin=ASSIGNED, codelist="BSTESTCD"),
        Variable("BSSPEC", "Specimen Type", origin=ASSIGNED, codelist="SPECTYPE"),
        _VISITNUM,
        _VISIT,
        Variable(
            "BSDTC",
            "Date/Time of Specimen Collection",
            origin=COLLECTED,
            comment="When the primary tube was drawn; " + _LOCAL_TIME,
        ),
        Variable(
            "BSDY",
            "Study Day of Specimen Collection",
            numeric=True,
            comment=_STUDY_DAY.format("BSDTC"),
        ),
    ),
)

RELSPEC = Dataset(
    "RELSPEC",
    "Related Specimens",
    "Relationship",
    "One record per specimen",
    ("STUDYID", "USUBJID", "REFID"),
    (
        _STUDYID,
        _USUBJID,
        Variable(
            "REFID",
            "Specimen ID",
            origin=ASSIGNED,
            comment="An aliquot's barcode; for a primary tube, which has no barcode of the "
            'bank, the participant code, the visit code and the tube type joined by "-".',
        ),
        Variable("SPEC", "Specimen Type", origin=ASSIGNED, codelist="SPECTYPE"),
        Variable(
            "PARENT",
            "Specimen Parent",
            comment="The REFID the specimen was taken from: the primary tube of an aliquot, "
            "the aliquot of an aliquot made from another; empty for a primary tube.",
        ),
        Variable(
            "LEVEL",
            "Specimen Level",
            numeric=True,
            comment="1 for a primary tube, its parent's level plus 1 otherwise.",
        ),
    ),
)

DATASETS = (LB, BE, BS, RELSPEC)


# --- values --------------------------------------------------------------------------------


# Characters with a plain ASCII spelling that Unicode's decompositions do not give:
# the micro sign as CDISC's units write it ("uL"), and the punctuation of typed text.
_ASCII_SPELLING = str.maketrans(
    {
        "\u00b5": "u",  # micro sign
        "\u03bc": "u",  # Greek mu
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2212": "-",  # minus sign
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00ab": '"',  # « »
        "\u00bb": '"',
        "\u2026": "...",
        "\u00b0": " deg ",
        "\u2264": "<=",
        "\u2265": ">=",
        "\u00d7": "x",
    }
)


def ascii_text(value: object) -> str:
    """Text as a transport file holds it: ASCII, on one line, at most 200 characters.
    Accents are dropped ("Négatif" → "Negatif"), the micro sign becomes "u" as in CDISC's
    units ("µL" → "uL"), dashes and quotes their ASCII forms, any other character "?"."""
    text = unicodedata.normalize("NFKD", str(value).translate(_ASCII_SPELLING))
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = " ".join(text.split())  # tabs and line breaks would split a CSV reader's line
    return text.encode("ascii", "replace").decode("ascii")[:MAX_TEXT]


def iso_local(moment: datetime | None, zone: str) -> str:
    """An ISO 8601 date and time to the minute in the centre's time zone, "" for none."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def local_date(moment: datetime, zone: str) -> date:
    return moment.astimezone(ZoneInfo(zone)).date()


def study_day(day: date, reference: date) -> int:
    """SDTM's study day: the reference date is day 1, the day before it day -1; there is
    no day 0."""
    offset = (day - reference).days
    return offset + 1 if offset >= 0 else offset


@dataclass(frozen=True)
class Table:
    """A dataset and its records, every value as the transport file holds it: text
    folded to ASCII ("" for none), numbers as int or float (None for missing)."""

    dataset: Dataset
    rows: tuple[tuple, ...]

    @classmethod
    def of(cls, dataset: Dataset, records: Sequence[Sequence]) -> Table:
        rows = []
        for record in records:
            if len(record) != len(dataset.variables):
                raise ValueError(f"{dataset.name}: a record of {len(record)} values")
            rows.append(
                tuple(
                    _number(value) if variable.numeric else _text(value)
                    for variable, value in zip(dataset.variables, record, strict=True)
                )
            )
        return cls(dataset, tuple(rows))

    def length(self, variable: Variable) -> int:
        """The length of a variable in the transport file: 8 for a number, the longest
        value (at least 1) for text."""
        if variable.numeric:
            return NUMERIC_LENGTH
        index = self.dataset.variables.index(variable)
        return max((len(row[index]) for row in self.rows), default=0) or 1

    def column(self, name: str) -> list:
        index = self.dataset.names.index(name)
        return [row[index] for row in self.rows]


def _text(value: object) -> str:
    return "" if value is None else ascii_text(value)


def _number(value: object) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a number was expected, not {value!r}")
    return value
