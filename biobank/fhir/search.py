"""FHIR search parameters, read from a query string: which are supported, and what a
token (``system|value``) or a reference (``Patient/LIM-001``) says.

Pure: a query the server cannot answer exactly is refused (``SearchError``, a 400
OperationOutcome naming the parameter) rather than half-answered, since a hospital system
would take a partial answer for the whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Parameter:
    """A search parameter this server answers, as the CapabilityStatement declares it."""

    name: str
    type: str  # FHIR search parameter type: reference, token
    definition: str  # the SearchParameter of the FHIR specification it implements
    documentation: str


SPECIMEN_PARAMETERS = (
    Parameter(
        "subject",
        "reference",
        "http://hl7.org/fhir/SearchParameter/Specimen-subject",
        "The participant's pseudonymised study code: LIM-001 or Patient/LIM-001; with "
        ":identifier, [urn:biobank:participant|]LIM-001. Commas separate codes, any of "
        "which matches.",
    ),
    Parameter(
        "identifier",
        "token",
        "http://hl7.org/fhir/SearchParameter/Specimen-identifier",
        "A barcode of the bank or the legacy barcode of an imported tube: "
        "[urn:biobank:barcode|]7KQ3M9XW4 or urn:biobank:legacy-barcode|<code>.",
    ),
)
OBSERVATION_PARAMETERS = (
    Parameter(
        "specimen",
        "reference",
        "http://hl7.org/fhir/SearchParameter/Observation-specimen",
        "The aliquot measured, by barcode or legacy barcode: 7KQ3M9XW4 or "
        "Specimen/7KQ3M9XW4. Its accepted, reportable results are answered.",
    ),
)
# Modifiers accepted, besides the plain names.
SUBJECT_BY_IDENTIFIER = "subject:identifier"

# _format: the only other parameter accepted, and only for JSON, the one format answered.
JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})

# A comma separates values (any of them matches) unless escaped with a backslash.
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
# Each value is looked up on its own: a list is bounded, as a page of scans would be.
MAX_VALUES = 100
_ESCAPE = re.compile(r"\\([\\,$|])")


class SearchError(ValueError):
    """A query the server refuses; ``parameter`` names the parameter at fault."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class Token:
    """One value of a token parameter: ``value``, ``system|value`` or ``|value``.
    ``system`` is None when none was given (any system matches), "" for ``|value`` (no
    system at all)."""

    system: str | None
    value: str


@dataclass(frozen=True)
class Reference:
    """One value of a reference parameter: ``LIM-001``, ``Patient/LIM-001`` or the same
    at the end of an absolute address. ``type`` is None for a bare id."""

    type: str | None
    id: str

    def names(self, resource_type: str) -> bool:
        """Whether it can name a resource of this type (a bare id can name any)."""
        return self.type in (None, resource_type)


def parameters(args: Mapping[str, Iterable[str]], supported: Iterable[str]) -> dict[str, str]:
    """Each parameter's raw value, once checked: ``args`` maps a name to its values (a
    query string's MultiDict, as lists). A parameter the server does not support, one
    given twice, an empty one or a format other than JSON is refused."""
    allowed = set(supported)
    found = {}
    for name, values in args.items():
        values = list(values)
        if name == "_format":
            _check_format(values)
            continue
        if name not in allowed:
            listed = ", ".join(sorted(allowed))
            raise SearchError(
                name, f"The search parameter {name!r} is not supported here; use {listed}."
            )
        if len(values) > 1:
            raise SearchError(
                name, f"Give {name!r} once; separate values by commas to match any of them."
            )
        if not values[0].strip():
            raise SearchError(name, f"The search parameter {name!r} is empty.")
        if len(_UNESCAPED_COMMA.findall(values[0])) >= MAX_VALUES:
            raise SearchError(name, f"Give at most {MAX_VALUES} values of {name!r} at once.")
        found[name] = values[0]
    return found


def _check_format(values: list[str]) -> None:
    for value in values:
        # An unencoded "+" in a query string arrives as a space ("application/fhir json").
        kind = value.split(";")[0].strip().lower().replace(" ", "+")
        if kind not in JSON_FORMATS:
            raise SearchError("_format", f"Only JSON is served here, not {value!r}.")


def split_values(raw: str) -> list[str]:
    """The values of a parameter: split at commas, escapes (``\\,``, ``\\|``) undone."""
    return [_ESCAPE.sub(r"\1", part).strip() for part in _UNESCAPED_COMMA.split(raw)]


def tokens(raw: str) -> list[Token]:
    """Every ``[system|]value`` of a token parameter."""
    found = []
    for part in _UNESCAPED_COMMA.split(raw):
        system, value = _split_system(part)
        found.append(Token(system, _ESCAPE.sub(r"\1", value).strip()))
    return found


def _split_system(part: str) -> tuple[str | None, str]:
    bar = re.search(r"(?<!\\)\|", part)
    if bar is None:
        return None, part
    return _ESCAPE.sub(r"\1", part[: bar.start()]).strip(), part[bar.end() :]


def references(raw: str) -> list[Reference]:
    """Every value of a reference parameter."""
    found = []
    for value in split_values(raw):
        parts = value.rstrip("/").split("/")
        if len(parts) == 1:
            found.append(Reference(None, parts[0]))
        else:
            found.append(Reference(parts[-2], parts[-1]))
    return found
