"""Response to treatment from serial serum VEGF and serum M-spike results.

The trial's primary outcome is biological: the fall of serum VEGF and of the monoclonal
protein after 2 cycles (Group 1) and at months 2, 4 and 6 (Group 2). This module turns a
participant's series of results into one categorised response per post-baseline visit,
each carrying the rule applied, in words, and the version of the criteria.

Pure: the standard library and flask_babel's ``gettext`` only; nothing here touches the
database or the rest of ``biobank``, so it is tested alone and can be rerun on exported
data. The rule is written in the reader's language when it is computed (responses are
computed per request); outside a request, as in the tests of this module, it is English.
Numbers keep the decimal point in every language, as the percent change beside the rule.

Criteria (thresholds in ``response_criteria.toml``, each with its source):

VEGF (D'Souza, Blood 2012;120:56; Dispenzieri, Am J Hematol 2012;87:804 and its updates;
Gentile, Neurol Sci 2024 for the serum ULN)
    complete: normalisation, i.e. a value strictly below the upper limit of normal (ULN),
    when the baseline was not normal (≥ ULN); partial: ≥ 50 % decrease from baseline;
    progression: ≥ 50 % increase from the lowest previous value (baseline included);
    otherwise stable. When the baseline is already below the ULN, complete is not
    applicable and the categories come from the percentages only.

Haematological (IMWG: Durie, Leukemia 2006;20:1467; Rajkumar, Blood 2011;117:4691;
Kumar, Lancet Oncol 2016;17:e328; adapted to POEMS)
    complete: negative serum immunofixation at that visit, after a positive one at
    baseline, and no quantified M-spike at that visit; very good partial: ≥ 90 % fall of
    the M-spike; partial: ≥ 50 % fall; progression: ≥ 25 % rise from the lowest previous
    value with an absolute rise ≥ 5 g/L. The fall categories need a baseline M-spike
    ≥ 5 g/L; below that a participant is "not evaluable by M-spike" (never "stable")
    unless the immunofixation is negative or the M-spike rose enough for progression.

Where this deliberately simplifies the literature (said again in the report that
introduced it):

* IMWG complete response also needs negative urine immunofixation, < 5 % bone-marrow
  plasma cells and no plasmacytoma; VGPR and PR also have urine M-protein conditions.
  Only serum results reach this module, so "complete" here means serum-immunofixation
  negative and the categories are serum-only.
* IMWG progression must be confirmed by two consecutive assessments; each visit here is
  categorised on its own, so "progression" is an unconfirmed progression at that visit.

Decisions the literature leaves open, made here and tested:

* Thresholds compare exact decimal values (as written in the results and the criteria
  file), not binary floats, so 0.35 against 0.7 is exactly a 50 % fall. The category is
  decided on the exact change, not on the rounded ``percent_change``: a 49.96 % fall is
  shown as -50.0 % but is not a partial response; the rule says 49.96 %.
* Precedence: VEGF complete > progression > partial > stable; a VEGF value below the ULN
  after an abnormal baseline is complete even if it rose from a lower nadir, but a rise
  that reaches the progression percentage is reported as a caution in the rule (a
  rise within the normal range is the first sign of relapse).
  Haematological complete > progression > very good partial > partial > stable.
* A negative serum immunofixation beside a quantified M-spike (above 0, not "< LLOQ") at
  the same visit is discordant: the visit gets its M-spike category and a caution, never
  "complete". Without a positive immunofixation at baseline (negative, or not done) there
  was no monoclonal protein shown to disappear: the visit gets its M-spike category and
  the rule says why complete was not given.
* M-spike progression is IMWG's absolute rule (≥ 25 % and ≥ 5 g/L from the lowest value):
  it applies when the baseline M-spike is below the evaluability threshold too.
* "> ULOQ" results enter at their limit, a lower bound of the true value; when that makes
  the category unsafe the rule says so and asks for a diluted re-assay. A "< LLOQ"
  result entered as a substitute (limit or half of it) at the visit or at the lowest
  previous value makes a progression uncertain: the rule says so too.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from flask_babel import gettext

__all__ = [
    "ABOVE_ULOQ",
    "BASELINE_VISIT",
    "BELOW_LLOQ",
    "COMPLETE",
    "DEFAULT_CRITERIA_PATH",
    "LLOQ_RULES",
    "NOT_EVALUABLE",
    "NOT_EVALUABLE_BY_M_SPIKE",
    "PARTIAL",
    "PROGRESSION",
    "STABLE",
    "VERY_GOOD_PARTIAL",
    "Criteria",
    "CriteriaError",
    "Measurement",
    "Response",
    "haematological_responses",
    "load_criteria",
    "percent_change",
    "vegf_responses",
]

DEFAULT_CRITERIA_PATH = Path(__file__).with_name("response_criteria.toml")

BASELINE_VISIT = "BL"
BELOW_LLOQ = "<LLOQ"
ABOVE_ULOQ = ">ULOQ"
LLOQ_RULES = ("limit", "half_limit", "exclude")

COMPLETE = "complete"
VERY_GOOD_PARTIAL = "very good partial"
PARTIAL = "partial"
STABLE = "stable"
PROGRESSION = "progression"
NOT_EVALUABLE = "not evaluable"
NOT_EVALUABLE_BY_M_SPIKE = "not evaluable by M-spike"

IMMUNOFIXATION_RESULTS = ("negative", "positive")

VEGF_UNIT = "pg/mL"
M_SPIKE_UNIT = "g/L"


class CriteriaError(ValueError):
    """The response criteria are invalid; the message names the key at fault."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


# Threshold name -> (lowest allowed, lowest inclusive, highest allowed or None, description).
_THRESHOLDS: dict[str, tuple[float, bool, float | None, str]] = {
    "vegf_uln_pg_ml": (0.0, False, None, "a concentration in pg/mL greater than 0"),
    "vegf_partial_decrease_pct": (0.0, False, 100.0, "a percentage greater than 0, at most 100"),
    "vegf_progression_increase_pct": (0.0, False, None, "a percentage greater than 0"),
    "m_vgpr_decrease_pct": (0.0, False, 100.0, "a percentage greater than 0, at most 100"),
    "m_partial_decrease_pct": (0.0, False, 100.0, "a percentage greater than 0, at most 100"),
    "m_evaluable_baseline_g_l": (0.0, False, None, "a concentration in g/L greater than 0"),
    "m_progression_increase_pct": (0.0, False, None, "a percentage greater than 0"),
    "m_progression_absolute_g_l": (0.0, True, None, "a concentration in g/L of 0 or more"),
}

# Every reference value must say where it comes from (DESIGN.md, "Assays").
_SOURCED = (*_THRESHOLDS, "below_lloq_rule")


@dataclass(frozen=True)
class Criteria:
    """The thresholds of the response criteria, validated on construction."""

    version: str
    vegf_uln_pg_ml: float
    vegf_partial_decrease_pct: float
    vegf_progression_increase_pct: float
    m_vgpr_decrease_pct: float
    m_partial_decrease_pct: float
    m_evaluable_baseline_g_l: float
    m_progression_increase_pct: float
    m_progression_absolute_g_l: float
    below_lloq_rule: str
    sources: dict[str, str]

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not self.version.strip():
            raise CriteriaError(
                f"'version' must be a non-empty string naming the criteria, got {self.version!r}",
                "version",
            )
        object.__setattr__(self, "version", self.version.strip())
        for name, (low, low_inclusive, high, description) in _THRESHOLDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CriteriaError(f"'{name}' must be {description}, got {value!r}", name)
            value = float(value)
            in_range = (
                math.isfinite(value)
                and (value >= low if low_inclusive else value > low)
                and (high is None or value <= high)
            )
            if not in_range:
                raise CriteriaError(f"'{name}' must be {description}, got {value!r}", name)
            object.__setattr__(self, name, value)
        if self.m_partial_decrease_pct >= self.m_vgpr_decrease_pct:
            raise CriteriaError(
                "'m_partial_decrease_pct' must be smaller than 'm_vgpr_decrease_pct' "
                f"({self.m_partial_decrease_pct:g} ≥ {self.m_vgpr_decrease_pct:g})",
                "m_partial_decrease_pct",
            )
        if self.below_lloq_rule not in LLOQ_RULES:
            raise CriteriaError(
                f"'below_lloq_rule' must be one of {', '.join(LLOQ_RULES)}, "
                f"got {self.below_lloq_rule!r}",
                "below_lloq_rule",
            )
        if not isinstance(self.sources, Mapping):
            raise CriteriaError("'sources' must be a table of threshold name = citation", "sources")
        sources = dict(self.sources)
        for name, citation in sources.items():
            if name not in _SOURCED:
                raise CriteriaError(
                    f"'sources.{name}' names no threshold; known: {', '.join(_SOURCED)}",
                    "sources",
                )
            if not isinstance(citation, str) or not citation.strip():
                raise CriteriaError(f"'sources.{name}' must be a non-empty citation", "sources")
        missing = [name for name in _SOURCED if name not in sources]
        if missing:
            raise CriteriaError(
                f"'sources' has no citation for {', '.join(missing)}; "
                "every threshold must say where it comes from",
                "sources",
            )
        object.__setattr__(self, "sources", sources)


_FIELDS = tuple(f.name for f in fields(Criteria))


def load_criteria(path: Path | str | None = None, **overrides: Any) -> Criteria:
    """Read the response criteria from a TOML file, apply overrides, and validate them.

    ``path`` defaults to ``response_criteria.toml`` next to this module. Each override
    replaces the key of the same name (``sources`` entries are merged into the file's).
    An override that changes a value is recorded in the version
    ("POEMS-2012-IMWG-2016/v2+vegf_uln_pg_ml=1040") unless ``version`` itself is
    overridden, so responses computed under changed thresholds never carry the file's
    version alone.

    Raises :class:`CriteriaError` naming the file or the override and the key at fault.
    """
    path = DEFAULT_CRITERIA_PATH if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CriteriaError(f"{path}: cannot read the criteria file ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CriteriaError(f"{path}: not valid TOML: {exc}") from exc

    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise CriteriaError(
            f"{path}: unknown key '{unknown[0]}'; known keys: {', '.join(_FIELDS)}", unknown[0]
        )
    missing = [name for name in _FIELDS if name not in data]
    if missing:
        raise CriteriaError(f"{path}: missing key '{missing[0]}'", missing[0])
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise CriteriaError(
            f"unknown override '{unknown[0]}'; known keys: {', '.join(_FIELDS)}", unknown[0]
        )

    values = dict(data)
    changed = []
    for name, value in overrides.items():
        if name == "sources":
            if not isinstance(value, Mapping):
                raise CriteriaError(
                    "override 'sources' must be a mapping of threshold name to citation",
                    "sources",
                )
            base_sources = values["sources"] if isinstance(values["sources"], Mapping) else {}
            values["sources"] = {**base_sources, **value}
            continue
        if name != "version" and value != data[name]:
            changed.append(name)
        values[name] = value
    if changed and "version" not in overrides and isinstance(values["version"], str):
        suffix = ",".join(f"{name}={_format_setting(values[name])}" for name in sorted(changed))
        values["version"] = f"{values['version'].strip()}+{suffix}"

    try:
        return Criteria(**values)
    except CriteriaError as exc:
        where = "override" if exc.key in overrides else str(path)
        raise CriteriaError(f"{where}: {exc}", exc.key) from exc


@dataclass(frozen=True)
class Measurement:
    """One result of one analyte at one visit, in the analyte's canonical unit.

    A flagged result ("<LLOQ", ">ULOQ") is represented by its ``limit``; its ``value``, if
    any, is not used.
    """

    visit: str
    day: int
    value: float | None
    flag: str | None = None
    limit: float | None = None


@dataclass(frozen=True)
class Response:
    """The response category at one post-baseline visit, with the rule that gave it."""

    visit: str
    value_used: float | None
    percent_change: float | None
    category: str
    rule: str
    criteria_version: str


def percent_change(baseline: float, value: float) -> float:
    """Change from ``baseline`` to ``value`` in percent of the baseline, to 1 decimal.

    Computed on the exact decimal values and rounded half away from zero, so that
    80 → 89.8 is +12.3 % (binary floats and ``round`` would give 12.2).
    """
    base, current = _exact(baseline, "baseline"), _exact(value, "value")
    if base <= 0:
        raise ValueError(
            f"baseline must be greater than 0 to compute a percent change, got {baseline!r}"
        )
    return _percent_1dp(base, current)


def vegf_responses(series: Sequence[Measurement], criteria: Criteria) -> list[Response]:
    """Categorise serum VEGF (pg/mL) at each post-baseline visit, in day order.

    ``series`` holds the baseline (visit "BL") and the later visits of one participant.
    """
    baseline, visits = _split(series, "VEGF")
    version = criteria.version
    uln = _exact(criteria.vegf_uln_pg_ml, "ULN")
    partial_pct = _exact(criteria.vegf_partial_decrease_pct, "threshold")
    progression_pct = _exact(criteria.vegf_progression_increase_pct, "threshold")
    unit = VEGF_UNIT

    base = _use(baseline, criteria, unit, _("baseline")) if baseline is not None else None
    blocked = _baseline_problem(base)
    if blocked is not None:
        return [
            Response(
                m.visit,
                _use(m, criteria, unit, _("value")).used,
                None,
                NOT_EVALUABLE,
                blocked,
                version,
            )
            for m in visits
        ]
    assert base is not None and base.value is not None
    b = base.value
    abnormal_baseline = b >= uln  # normal means strictly below the ULN

    responses = []
    nadir, nadir_where = b, _("baseline")
    nadir_lower_bound, nadir_below_lloq = base.lower_bound, base.below_lloq
    for m in visits:
        cur = _use(m, criteria, unit, _("value"))
        if cur.value is None:
            responses.append(
                Response(m.visit, None, None, NOT_EVALUABLE, cur.reason or "", version)
            )
            continue
        v = cur.value
        decrease = (b - v) * 100 / b
        rise = _rise_pct(nadir, v)
        nadir_text = f"{_num(nadir)} {unit} ({nadir_where})"
        rising_again = None
        if abnormal_baseline and v < uln:
            category = COMPLETE
            main = _(
                "normalised: %(value)s %(unit)s is below the ULN %(uln)s %(unit)s "
                "(baseline %(baseline)s %(unit)s)",
                value=_num(v),
                unit=unit,
                uln=_num(uln),
                baseline=_num(b),
            )
            # Normalisation outranks the rise, but a rise that would be progression
            # anywhere else is the first sign of relapse: it must show on the response.
            if rise is None or rise >= progression_pct:
                rising_again = _(
                    "caution: %(change)s from the lowest previous value %(nadir)s, a "
                    "≥ %(threshold)s %% rise that is progression when the value is not below "
                    "the ULN; VEGF is rising again within the normal range",
                    change=_signed_pct(rise),
                    nadir=nadir_text,
                    threshold=_num(progression_pct),
                )
        elif rise is None or rise >= progression_pct:
            category = PROGRESSION
            main = _(
                "≥ %(threshold)s %% increase from the lowest previous value %(nadir)s: %(change)s",
                threshold=_num(progression_pct),
                nadir=nadir_text,
                change=_signed_pct(rise),
            )
        elif decrease >= partial_pct:
            category = PARTIAL
            main = _(
                "≥ %(threshold)s %% decrease from baseline %(baseline)s %(unit)s: %(change)s",
                threshold=_num(partial_pct),
                baseline=_num(b),
                unit=unit,
                change=_signed_pct(-decrease),
            )
        else:
            category = STABLE
            main = _(
                "%(change)s from baseline %(baseline)s %(unit)s (partial needs a "
                "≥ %(partial)s %% decrease); %(against_lowest)s (progression needs a "
                "≥ %(progression)s %% increase)",
                change=_signed_pct(-decrease),
                baseline=_num(b),
                unit=unit,
                partial=_num(partial_pct),
                against_lowest=_versus_nadir(v, nadir, nadir_text, unit),
                progression=_num(progression_pct),
            )
        if not abnormal_baseline:
            main = _join(
                main,
                [
                    _(
                        "baseline %(baseline)s %(unit)s already below the ULN %(uln)s "
                        "%(unit)s: complete response not applicable, category from the "
                        "percentages only",
                        baseline=_num(b),
                        unit=unit,
                        uln=_num(uln),
                    )
                ],
            )
        notes = [
            base.note,
            cur.note,
            rising_again,
            *_bound_cautions(category, base, cur, nadir_lower_bound, nadir_below_lloq),
        ]
        responses.append(
            Response(m.visit, cur.used, _percent_1dp(b, v), category, _join(main, notes), version)
        )
        if v < nadir:
            nadir, nadir_where = v, _visit(m.visit)
            nadir_lower_bound, nadir_below_lloq = cur.lower_bound, cur.below_lloq
    return responses


def haematological_responses(
    m_spike: Sequence[Measurement],
    immunofixation: Mapping[str, str | None],
    criteria: Criteria,
) -> list[Response]:
    """Categorise the haematological response at each post-baseline visit, in day order.

    ``m_spike`` holds the serum M-spike (g/L) of one participant, baseline visit "BL";
    ``immunofixation`` maps a visit to its serum immunofixation, "negative", "positive" or
    None (not done). A visit with an immunofixation but no M-spike result is given as a
    Measurement whose value is None, so that it has a day.
    """
    baseline, visits = _split(m_spike, "M-spike")
    _check_immunofixation(immunofixation, [m.visit for m in m_spike])
    version = criteria.version
    evaluable_from = _exact(criteria.m_evaluable_baseline_g_l, "threshold")
    vgpr_pct = _exact(criteria.m_vgpr_decrease_pct, "threshold")
    partial_pct = _exact(criteria.m_partial_decrease_pct, "threshold")
    progression_pct = _exact(criteria.m_progression_increase_pct, "threshold")
    progression_abs = _exact(criteria.m_progression_absolute_g_l, "threshold")
    unit = M_SPIKE_UNIT

    base = _use(baseline, criteria, unit, _("baseline M-spike")) if baseline is not None else None
    blocked = _baseline_problem(base, allow_zero=True)
    if blocked is not None:
        return [
            Response(
                m.visit,
                _use(m, criteria, unit, _("M-spike")).used,
                None,
                NOT_EVALUABLE,
                blocked,
                version,
            )
            for m in visits
        ]
    assert base is not None and base.value is not None
    b = base.value
    evaluable = b >= evaluable_from
    # Complete response is the disappearance of a monoclonal protein that was there: a
    # negative immunofixation means nothing without a positive one at baseline.
    baseline_fixation = immunofixation.get(BASELINE_VISIT)
    no_complete = None
    if baseline_fixation == "negative":
        no_complete = _(
            "complete response needs a positive serum immunofixation at baseline; "
            "the baseline immunofixation was negative"
        )
    elif baseline_fixation is None:
        no_complete = _(
            "complete response needs a positive serum immunofixation at baseline; none was done"
        )

    responses = []
    nadir, nadir_where = b, _("baseline")
    nadir_lower_bound, nadir_below_lloq = base.lower_bound, base.below_lloq
    for m in visits:
        cur = _use(m, criteria, unit, _("M-spike"))
        v = cur.value
        ife = immunofixation.get(m.visit)
        change = _percent_1dp(b, v) if v is not None and b > 0 else None
        notes: list[str | None] = [base.note, cur.note]
        # A quantified M-spike (not a "< LLOQ" substitute) contradicts a negative
        # immunofixation, the more sensitive test: neither result can give "complete".
        measurable = v is not None and v > 0 and not cur.below_lloq
        if ife == "negative" and no_complete is None and not measurable:
            category = COMPLETE
            main = (
                _("serum immunofixation negative at this visit")
                if v is not None
                else _(
                    "serum immunofixation negative at this visit (M-spike: %(reason)s)",
                    reason=cur.reason or "",
                )
            )
            responses.append(
                Response(m.visit, cur.used, change, category, _join(main, notes), version)
            )
            if v is not None and v < nadir:
                nadir, nadir_where = v, _visit(m.visit)
                nadir_lower_bound, nadir_below_lloq = cur.lower_bound, cur.below_lloq
            continue
        if ife == "negative":
            if measurable:
                assert v is not None
                notes.append(
                    _(
                        "caution: serum immunofixation negative but an M-spike of %(value)s "
                        "%(unit)s measured at this visit; the two disagree, so complete "
                        "response is not given: check both assays",
                        value=_num(v),
                        unit=unit,
                    )
                )
            else:
                notes.append(no_complete)
        rise = _rise_pct(nadir, v) if v is not None else None
        rise_abs = v - nadir if v is not None else None
        nadir_text = f"{_num(nadir)} {unit} ({nadir_where})"
        # IMWG progression is an absolute rule from the lowest value: it holds whether or
        # not the baseline M-spike was large enough for the response categories.
        if (
            v is not None
            and rise_abs is not None
            and (rise is None or rise >= progression_pct)
            and rise_abs >= progression_abs
        ):
            category = PROGRESSION
            main = _(
                "≥ %(threshold)s %% and ≥ %(absolute)s %(unit)s rise from the lowest "
                "previous value %(nadir)s: %(change)s, +%(rise)s %(unit)s",
                threshold=_num(progression_pct),
                absolute=_num(progression_abs),
                unit=unit,
                nadir=nadir_text,
                change=_signed_pct(rise),
                rise=_num(rise_abs),
            )
            if not evaluable:
                notes.append(
                    _(
                        "baseline M-spike %(baseline)s %(unit)s is below %(threshold)s "
                        "%(unit)s: the response categories do not apply, progression does",
                        baseline=_num(b),
                        unit=unit,
                        threshold=_num(evaluable_from),
                    )
                )
        elif not evaluable:
            category = NOT_EVALUABLE_BY_M_SPIKE
            main = _(
                "baseline M-spike %(baseline)s %(unit)s is below %(threshold)s %(unit)s: "
                "not measurable enough for M-spike categories; complete response needs a "
                "negative serum immunofixation",
                baseline=_num(b),
                unit=unit,
                threshold=_num(evaluable_from),
            )
            if ife == "positive":
                at_visit = _("immunofixation positive at this visit")
            elif ife == "negative":
                at_visit = _("immunofixation negative at this visit")
            else:
                at_visit = _("no immunofixation at this visit")
            main = f"{main} ({at_visit})"
        elif v is None:
            category = NOT_EVALUABLE
            main = cur.reason or ""
            if ife is None:
                main = _join(main, [_("no immunofixation at this visit")])
        else:
            decrease = (b - v) * 100 / b
            if decrease >= vgpr_pct:
                category = VERY_GOOD_PARTIAL
                main = _fall(vgpr_pct, b, unit, decrease)
            elif decrease >= partial_pct:
                category = PARTIAL
                main = _fall(partial_pct, b, unit, decrease)
            else:
                category = STABLE
                main = _(
                    "%(change)s from baseline %(baseline)s %(unit)s (partial needs a "
                    "≥ %(partial)s %% fall); %(against_lowest)s (progression needs "
                    "≥ %(progression)s %% and ≥ %(absolute)s %(unit)s)",
                    change=_signed_pct(-decrease),
                    baseline=_num(b),
                    unit=unit,
                    partial=_num(partial_pct),
                    against_lowest=_versus_nadir(v, nadir, nadir_text, unit, absolute=True),
                    progression=_num(progression_pct),
                    absolute=_num(progression_abs),
                )
        if category in (PROGRESSION, VERY_GOOD_PARTIAL, PARTIAL, STABLE):
            if ife is None:
                notes.append(_("no immunofixation at this visit"))
            notes.extend(_bound_cautions(category, base, cur, nadir_lower_bound, nadir_below_lloq))
        responses.append(Response(m.visit, cur.used, change, category, _join(main, notes), version))
        if v is not None and v < nadir:
            nadir, nadir_where = v, _visit(m.visit)
            nadir_lower_bound, nadir_below_lloq = cur.lower_bound, cur.below_lloq
    return responses


# --- helpers -------------------------------------------------------------------------


def _(message: str, **values: str) -> str:
    """``message`` in the reader's language (English outside a request), filled in.

    Always %-formatted, with or without values, so that "%%" is a per cent sign in every
    message alike (flask_babel formats only when it is given values).
    """
    return gettext(message) % values


def _visit(visit: str) -> str:
    return _("visit %(visit)s", visit=visit)


@dataclass(frozen=True)
class _Used:
    """A result after the LLOQ/ULOQ rules: the exact value entering the computations."""

    value: Fraction | None  # None: nothing usable (missing, or excluded by the LLOQ rule)
    used: float | None  # the same, as reported in Response.value_used
    note: str | None = None  # how a flagged result was turned into the value
    reason: str | None = None  # why there is no value
    lower_bound: bool = False  # a "> ULOQ" result: the true value is higher
    below_lloq: bool = False  # a "< LLOQ" result entered as a substitute (limit or half)
    excluded: bool = False  # a "< LLOQ" result dropped by the "exclude" rule


def _exact(value: float, what: str) -> Fraction:
    """The decimal value a float was written as, exactly (0.1 is 1/10, not 0.1000…0555)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction | Decimal):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number, got {value!r}")
        return Fraction(repr(value))
    return Fraction(value)


def _use(m: Measurement, criteria: Criteria, unit: str, role: str) -> _Used:
    """Apply the "< LLOQ" rule or the "> ULOQ" convention to one result.

    ``role`` names the result in the reader's language ("baseline", "M-spike")."""
    where = f"visit {m.visit!r}"
    if m.flag is None:
        if m.value is None:
            return _Used(None, None, reason=_("no %(role)s result at this visit", role=role))
        value = _exact(m.value, f"{where}: value")
        if value < 0:
            raise ValueError(f"{where}: value must not be negative, got {m.value!r}")
        return _Used(value, float(value))
    if m.flag not in (BELOW_LLOQ, ABOVE_ULOQ):
        raise ValueError(
            f"{where}: flag must be None, {BELOW_LLOQ!r} or {ABOVE_ULOQ!r}, got {m.flag!r}"
        )
    if m.limit is None:
        raise ValueError(f"{where}: a {m.flag} result needs its limit; give Measurement.limit")
    limit = _exact(m.limit, f"{where}: limit")
    if limit <= 0:
        raise ValueError(f"{where}: limit must be greater than 0, got {m.limit!r}")
    if m.flag == ABOVE_ULOQ:
        note = _(
            "%(role)s > ULOQ: limit %(limit)s %(unit)s used "
            "(a lower bound; the true value is higher)",
            role=role,
            limit=_num(limit),
            unit=unit,
        )
        return _Used(limit, float(limit), note=note, lower_bound=True)
    rule = criteria.below_lloq_rule
    if rule == "exclude":
        reason = _(
            "%(role)s < LLOQ %(limit)s %(unit)s: excluded (rule: exclude)",
            role=role,
            limit=_num(limit),
            unit=unit,
        )
        return _Used(None, None, reason=reason, excluded=True)
    if rule == "half_limit":
        half = limit / 2
        note = _(
            "%(role)s < LLOQ %(limit)s %(unit)s: half the limit, %(half)s %(unit)s, "
            "used (rule: half_limit)",
            role=role,
            limit=_num(limit),
            half=_num(half),
            unit=unit,
        )
        return _Used(half, float(half), note=note, below_lloq=True)
    note = _(
        "%(role)s < LLOQ: limit %(limit)s %(unit)s used (rule: limit)",
        role=role,
        limit=_num(limit),
        unit=unit,
    )
    return _Used(limit, float(limit), note=note, below_lloq=True)


def _split(
    series: Sequence[Measurement], analyte: str
) -> tuple[Measurement | None, list[Measurement]]:
    """The baseline and the post-baseline visits in day order; rejects ambiguous series."""
    seen: set[str] = set()
    for m in series:
        if not isinstance(m, Measurement):
            raise ValueError(f"{analyte}: expected Measurement objects, got {m!r}")
        if isinstance(m.day, bool) or not isinstance(m.day, int):
            raise ValueError(
                f"{analyte}: visit {m.visit!r} needs its study day as a whole number, got {m.day!r}"
            )
        if m.visit in seen:
            raise ValueError(
                f"{analyte}: visit {m.visit!r} appears twice; keep one result per visit"
            )
        seen.add(m.visit)
    baseline = next((m for m in series if m.visit == BASELINE_VISIT), None)
    visits = sorted((m for m in series if m.visit != BASELINE_VISIT), key=lambda m: m.day)
    if baseline is not None:
        for m in visits:
            if m.day < baseline.day:
                raise ValueError(
                    f"{analyte}: visit {m.visit!r} (day {m.day}) is before the baseline "
                    f"(day {baseline.day}); only post-baseline visits are categorised"
                )
    return baseline, visits


def _baseline_problem(base: _Used | None, allow_zero: bool = False) -> str | None:
    """Why no visit can be categorised against this baseline, or None."""
    if base is None or (base.value is None and not base.excluded):
        return _("no baseline")
    if base.value is None:
        return _("%(reason)s: no visit can be compared with it", reason=base.reason or "")
    if base.value == 0 and not allow_zero:
        return _("baseline is 0: a percent change from it is undefined")
    return None


def _check_immunofixation(immunofixation: Mapping[str, str | None], visits: list[str]) -> None:
    for visit, result in immunofixation.items():
        if result is not None and result not in IMMUNOFIXATION_RESULTS:
            raise ValueError(
                f"immunofixation at visit {visit!r} must be 'negative', 'positive' or None, "
                f"got {result!r}"
            )
        if visit not in visits:
            raise ValueError(
                f"immunofixation at visit {visit!r} has no M-spike entry to place it in time; "
                "add a Measurement for that visit (value None if no M-spike was measured)"
            )


def _percent_1dp(baseline: Fraction, value: Fraction) -> float:
    """Exact percent change, rounded half away from zero to 1 decimal."""
    change = (value - baseline) * 100 / baseline
    rounded = (Decimal(change.numerator) / Decimal(change.denominator)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    return float(rounded) + 0.0  # + 0.0 turns -0.0 into 0.0


def _rise_pct(reference: Fraction, value: Fraction) -> Fraction | None:
    """Percent rise from ``reference``; None stands for an infinite rise from 0."""
    if reference == 0:
        return None if value > 0 else Fraction(0)
    return (value - reference) * 100 / reference


def _fall(threshold: Fraction, baseline: Fraction, unit: str, decrease: Fraction) -> str:
    return _(
        "≥ %(threshold)s %% fall from baseline %(baseline)s %(unit)s: %(change)s",
        threshold=_num(threshold),
        baseline=_num(baseline),
        unit=unit,
        change=_signed_pct(-decrease),
    )


def _versus_nadir(
    value: Fraction, nadir: Fraction, nadir_text: str, unit: str, absolute: bool = False
) -> str:
    """How a value stands against the lowest previous value, in words."""
    if value < nadir:
        return _("below the lowest previous value %(nadir)s", nadir=nadir_text)
    if value == nadir:
        return _("equal to the lowest previous value %(nadir)s", nadir=nadir_text)
    rise = _signed_pct(_rise_pct(nadir, value))
    if absolute:
        rise += f", +{_num(value - nadir)} {unit}"
    return _("%(change)s from the lowest previous value %(nadir)s", change=rise, nadir=nadir_text)


def _bound_cautions(
    category: str, base: _Used, cur: _Used, nadir_lower_bound: bool, nadir_below_lloq: bool
) -> list[str]:
    """Warn where a "> ULOQ" lower bound or a substituted "< LLOQ" value makes the
    category unsafe."""
    cautions = []
    if cur.lower_bound and category != PROGRESSION:
        cautions.append(
            _(
                "caution: the value is a lower bound, so the fall may be smaller than shown; "
                "re-assay the sample diluted"
            )
        )
    if nadir_lower_bound and category == PROGRESSION:
        cautions.append(
            _(
                "caution: the lowest previous value is a lower bound, so the rise may be "
                "smaller than shown; re-assay that sample diluted"
            )
        )
    # A "< LLOQ" result is only known to lie below the limit; whichever substitute
    # entered (the limit, half of it), the true rise may be smaller or larger.
    if cur.below_lloq and category == PROGRESSION:
        cautions.append(
            _(
                "caution: the value is below the LLOQ and a substitute was used, so the rise "
                "shown is uncertain"
            )
        )
    if nadir_below_lloq and category == PROGRESSION:
        cautions.append(
            _(
                "caution: the lowest previous value is below the LLOQ and a substitute was "
                "used, so the rise shown is uncertain"
            )
        )
    if base.lower_bound and category == STABLE and not cur.lower_bound:
        cautions.append(
            _(
                "caution: the baseline is a lower bound, so the fall may be larger than "
                "shown; re-assay the baseline sample diluted"
            )
        )
    return cautions


def _join(main: str, notes: Sequence[str | None]) -> str:
    """The rule followed by its notes, each after a semicolon (spaced as the language
    wants it)."""
    text = main
    for note in notes:
        if note:
            text = _("%(rule)s; %(note)s", rule=text, note=note)
    return text


def _num(value: Fraction | float) -> str:
    """A number as a reader writes it: 2400, 15.6, 0.35 — four significant digits (an
    interpolated 3100.0259 pg/mL reads 3100), at most 4 decimals, never fewer digits
    than its integer part."""
    exact = value if isinstance(value, Fraction) else _exact(value, "number")
    d = Decimal(exact.numerator) / Decimal(exact.denominator)
    whole = len(str(abs(int(d)))) if abs(d) >= 1 else 0
    step = Decimal(1).scaleb(min(0, whole - 4)) if whole else Decimal("0.0001")
    d = d.quantize(step, rounding=ROUND_HALF_UP)
    text = format(d.normalize(), "f")
    return "0" if text == "-0" else _in_language(text)


def _in_language(text: str) -> str:
    """A number written with a point, with the reader's decimal sign ("-58,33" in French).
    The sign is a message of its own, "." (French catalogue: ","), so that this module
    needs nothing but gettext."""
    # Translators: the decimal sign of numbers in the rules, "," in French.
    return text.replace(".", gettext("."))


def _signed_pct(change: Fraction | None) -> str:
    """A signed percentage to 2 decimals, so that 49.96 % is not shown as 50 %."""
    if change is None:
        return _("an infinite %% increase (from 0)")
    d = (Decimal(change.numerator) / Decimal(change.denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    text = format(d.normalize(), "f")
    if text in ("0", "-0"):
        return "0 %"
    return f"{'+' if d > 0 else ''}{_in_language(text)} %"


def _format_setting(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return _num(value)
        except ValueError:
            return repr(value)
    return str(value)
