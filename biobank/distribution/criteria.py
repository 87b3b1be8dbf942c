"""What a request asks for, and what the catalogue is filtered by: one value type, read
from plain data (a form, a JSON body) with errors naming the field, and kept as
canonical JSON on the request so that what was asked is what is matched later."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from flask_babel import lazy_gettext as _l

from biobank.errors import Invalid
from biobank.study.models import DISEASE_STATUSES

MAX_PER_PARTICIPANT_VISIT = 20
MAX_VOLUME_UL = 10_000
MAX_FREEZE_THAW = 50


@dataclass(frozen=True)
class Criteria:
    """Empty tuples mean "any". Codes are upper case (arms, visits, sample types)."""

    visits: tuple[str, ...] = ()
    sample_types: tuple[str, ...] = ()
    arms: tuple[str, ...] = ()
    disease_statuses: tuple[str, ...] = ()
    per_participant_visit: int = 1
    min_volume_ul: int = 0
    max_freeze_thaw: int | None = None
    # Leave out the samples whose handling broke the protocol's SOP limits or whose visit
    # was collected outside its window (Specimen.deviates, Visit.out_of_window).
    within_sop: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Criteria:
        return parse(json.loads(text))


def _codes(data: dict, name: str) -> tuple[str, ...]:
    value = data.get(name) or ()
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list | tuple):
        raise Invalid(_l("Give a list of codes."), fields={name: str(value)})
    codes = []
    for item in value:
        code = str(item).strip().upper()
        if not code or len(code) > 16 or not code.replace("_", "").replace("-", "").isalnum():
            raise Invalid(_l("%(code)s is not a valid code.", code=item), fields={name: str(item)})
        if code not in codes:
            codes.append(code)
    return tuple(sorted(codes))


def _integer(data: dict, name: str, default, low: int, high: int) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
        if isinstance(value, float) and number != value:
            raise ValueError
    except (TypeError, ValueError):
        raise Invalid(_l("Enter a whole number."), fields={name: str(value)}) from None
    if not low <= number <= high:
        raise Invalid(
            _l("Enter a number from %(low)d to %(high)d.", low=low, high=high),
            fields={name: str(value)},
        )
    return number


_TRUE = ("true", "1", "yes", "y", "on")
_FALSE = ("false", "0", "no", "n", "off", "")


def _boolean(data: dict, name: str) -> bool:
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise Invalid(_l("Answer yes or no."), fields={name: str(value)})


def parse(data: dict) -> Criteria:
    """Criteria from plain data; Invalid names the first wrong field."""
    statuses = tuple(s.lower() for s in _codes(data, "disease_statuses"))
    for status in statuses:
        if status not in DISEASE_STATUSES:
            raise Invalid(
                _l("%(value)s is not a disease status.", value=status),
                fields={"disease_statuses": status},
            )
    return Criteria(
        visits=_codes(data, "visits"),
        sample_types=_codes(data, "sample_types"),
        arms=_codes(data, "arms"),
        disease_statuses=statuses,
        per_participant_visit=_integer(
            data, "per_participant_visit", 1, 1, MAX_PER_PARTICIPANT_VISIT
        ),
        min_volume_ul=_integer(data, "min_volume_ul", 0, 0, MAX_VOLUME_UL),
        max_freeze_thaw=_integer(data, "max_freeze_thaw", None, 0, MAX_FREEZE_THAW),
        within_sop=_boolean(data, "within_sop"),
    )
