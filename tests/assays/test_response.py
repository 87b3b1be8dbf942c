"""Response categories from constructed patients: every threshold at, just inside and just
outside its boundary, the "< LLOQ" rules, nadirs, and the criteria file.

Each patient is a row: the series given, then (visit, category, value used, percent
change) expected for each post-baseline visit in day order, and words the rule must say.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import sys
from pathlib import Path

import pytest

from biobank.assays import response as response_module
from biobank.assays.response import (
    COMPLETE,
    NOT_EVALUABLE,
    NOT_EVALUABLE_BY_M_SPIKE,
    PARTIAL,
    PROGRESSION,
    STABLE,
    VERY_GOOD_PARTIAL,
    Criteria,
    CriteriaError,
    Measurement,
    haematological_responses,
    load_criteria,
    percent_change,
    vegf_responses,
)


def m(visit: str, day: int, value: float | None, flag: str | None = None, limit=None):
    return Measurement(visit, day, value, flag, limit)


def lloq(visit: str, day: int, limit: float) -> Measurement:
    return Measurement(visit, day, None, "<LLOQ", limit)


def uloq(visit: str, day: int, limit: float) -> Measurement:
    return Measurement(visit, day, None, ">ULOQ", limit)


@pytest.fixture(scope="module")
def criteria() -> Criteria:
    return load_criteria()


def outcome(responses):
    return [(r.visit, r.category, r.value_used, r.percent_change) for r in responses]


# --- VEGF (pg/mL; default ULN 1000, partial ≥ 50 % fall, progression ≥ 50 % rise) -------

VEGF_PATIENTS = [
    pytest.param(
        "limit",
        [m("BL", 0, 2400.0), m("C2", 56, 1200.0)],
        [("C2", PARTIAL, 1200.0, -50.0)],
        "≥ 50 % decrease from baseline 2400 pg/mL: -50 %",
        id="exactly-50pct-decrease-is-partial",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 2500.0), m("C2", 56, 1251.0)],
        [("C2", STABLE, 1251.0, -50.0)],
        "-49.96 % from baseline 2500 pg/mL",
        id="49.96pct-decrease-is-stable-though-rounded-to-50.0",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 0.7), m("C2", 56, 0.35)],
        [("C2", PARTIAL, 0.35, -50.0)],
        "≥ 50 % decrease",
        id="exact-decimals-0.35-of-0.7-is-exactly-50pct",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 2400.0), m("C2", 56, 1000.0)],
        [("C2", PARTIAL, 1000.0, -58.3)],
        "≥ 50 % decrease",
        id="exactly-at-uln-is-not-normalised",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 2400.0), m("C2", 56, 999.9)],
        [("C2", COMPLETE, 999.9, -58.3)],
        "normalised: 999.9 pg/mL is below the ULN 1000 pg/mL",
        id="just-below-uln-is-complete",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 1000.0), m("C2", 56, 900.0)],
        [("C2", COMPLETE, 900.0, -10.0)],
        "normalised",
        id="baseline-exactly-at-uln-is-abnormal-so-complete-applies",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 2000.0), m("C2", 56, 3000.0)],
        [("C2", PROGRESSION, 3000.0, 50.0)],
        "≥ 50 % increase from the lowest previous value 2000 pg/mL (baseline): +50 %",
        id="exactly-50pct-rise-from-baseline-is-progression",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 2000.0), m("C2", 56, 2999.0)],
        [("C2", STABLE, 2999.0, 50.0)],
        "+49.95 % from the lowest previous value",
        id="49.95pct-rise-is-stable",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 4000.0), m("M2", 60, 1200.0), m("M4", 120, 1800.0), m("M6", 180, 1790.0)],
        [
            ("M2", PARTIAL, 1200.0, -70.0),
            ("M4", PROGRESSION, 1800.0, -55.0),
            ("M6", PARTIAL, 1790.0, -55.3),
        ],
        None,
        id="rise-from-nadir-after-fall-is-progression-even-while-below-baseline",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 800.0), m("M2", 60, 400.0), m("M4", 120, 600.0), m("M6", 180, 500.0)],
        [
            ("M2", PARTIAL, 400.0, -50.0),
            ("M4", PROGRESSION, 600.0, -25.0),
            ("M6", STABLE, 500.0, -37.5),
        ],
        "complete response not applicable",
        id="baseline-below-uln-uses-percentages-only",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 4000.0), m("M2", 60, 300.0), m("M4", 120, 600.0)],
        [("M2", COMPLETE, 300.0, -92.5), ("M4", COMPLETE, 600.0, -85.0)],
        "caution: +100 % from the lowest previous value 300 pg/mL (visit M2), a ≥ 50 % rise",
        id="normal-value-after-abnormal-baseline-stays-complete-despite-rise-from-nadir",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 3000.0), m("M2", 60, 300.0), m("M4", 120, 900.0)],
        [("M2", COMPLETE, 300.0, -90.0), ("M4", COMPLETE, 900.0, -70.0)],
        "normalised: 900 pg/mL is below the ULN 1000 pg/mL (baseline 3000 pg/mL); caution: "
        "+200 % from the lowest previous value 300 pg/mL (visit M2), a ≥ 50 % rise that is "
        "progression when the value is not below the ULN",
        id="complete-reports-a-200pct-rise-from-nadir-within-the-normal-range",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 3000.0), m("M2", 60, 400.0), m("M4", 120, 600.0)],
        [("M2", COMPLETE, 400.0, -86.7), ("M4", COMPLETE, 600.0, -80.0)],
        "caution: +50 % from the lowest previous value 400 pg/mL (visit M2)",
        id="complete-reports-exactly-50pct-rise-from-nadir",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 3000.0), m("M2", 60, 400.0), m("M4", 120, 599.0)],
        [("M2", COMPLETE, 400.0, -86.7), ("M4", COMPLETE, 599.0, -80.0)],
        "normalised: 599 pg/mL",
        id="complete-with-49.75pct-rise-from-nadir-has-no-caution",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 800.0), lloq("M2", 60, 15.6), m("M4", 120, 400.0)],
        [("M2", PARTIAL, 15.6, -98.1), ("M4", PROGRESSION, 400.0, -50.0)],
        "caution: the lowest previous value is below the LLOQ and a substitute was used, so "
        "the rise shown is uncertain",
        id="progression-from-a-below-lloq-nadir-is-cautioned",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 10.0), lloq("M2", 60, 15.6)],
        [("M2", PROGRESSION, 15.6, 56.0)],
        "caution: the value is below the LLOQ and a substitute was used, so the rise shown "
        "is uncertain",
        id="progression-to-a-below-lloq-value-is-cautioned",
    ),
    pytest.param(
        "limit",
        [m("M2", 60, 500.0), m("M4", 120, 700.0)],
        [("M2", NOT_EVALUABLE, 500.0, None), ("M4", NOT_EVALUABLE, 700.0, None)],
        "no baseline",
        id="missing-baseline",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, None), m("M2", 60, 500.0)],
        [("M2", NOT_EVALUABLE, 500.0, None)],
        "no baseline",
        id="baseline-visit-without-result-is-no-baseline",
    ),
    pytest.param(
        "limit",
        [lloq("BL", 0, 15.6), m("M2", 60, 31.2)],
        [("M2", PROGRESSION, 31.2, 100.0)],
        "baseline < LLOQ: limit 15.6 pg/mL used (rule: limit)",
        id="baseline-below-lloq-rule-limit",
    ),
    pytest.param(
        "half_limit",
        [lloq("BL", 0, 15.6), m("M2", 60, 11.7)],
        [("M2", PROGRESSION, 11.7, 50.0)],
        "baseline < LLOQ 15.6 pg/mL: half the limit, 7.8 pg/mL, used (rule: half_limit)",
        id="baseline-below-lloq-rule-half-limit",
    ),
    pytest.param(
        "exclude",
        [lloq("BL", 0, 15.6), m("M2", 60, 31.2), m("M4", 120, 900.0)],
        [("M2", NOT_EVALUABLE, 31.2, None), ("M4", NOT_EVALUABLE, 900.0, None)],
        "baseline < LLOQ 15.6 pg/mL: excluded (rule: exclude)",
        id="baseline-below-lloq-rule-exclude-makes-everything-not-evaluable",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 2400.0), lloq("M2", 60, 15.6)],
        [("M2", COMPLETE, 15.6, -99.4)],
        "value < LLOQ: limit 15.6 pg/mL used (rule: limit)",
        id="visit-below-lloq-rule-limit",
    ),
    pytest.param(
        "half_limit",
        [m("BL", 0, 2400.0), lloq("M2", 60, 15.6)],
        [("M2", COMPLETE, 7.8, -99.7)],
        "(rule: half_limit)",
        id="visit-below-lloq-rule-half-limit",
    ),
    pytest.param(
        "exclude",
        [m("BL", 0, 2400.0), lloq("M2", 60, 15.6), m("M4", 120, 1300.0)],
        [("M2", NOT_EVALUABLE, None, None), ("M4", STABLE, 1300.0, -45.8)],
        "below the lowest previous value 2400 pg/mL (baseline)",
        id="visit-below-lloq-rule-exclude-is-not-evaluable-and-not-a-nadir",
    ),
    pytest.param(
        "limit",
        [uloq("BL", 0, 3000.0), m("M2", 60, 1400.0)],
        [("M2", PARTIAL, 1400.0, -53.3)],
        "baseline > ULOQ: limit 3000 pg/mL used (a lower bound; the true value is higher)",
        id="baseline-above-uloq-used-at-limit-as-lower-bound",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 8000.0), uloq("M2", 60, 3000.0)],
        [("M2", PARTIAL, 3000.0, -62.5)],
        "caution: the value is a lower bound, so the fall may be smaller than shown",
        id="visit-above-uloq-warns-the-fall-may-be-overstated",
    ),
    pytest.param(
        "limit",
        [uloq("BL", 0, 3000.0), m("M2", 60, 4500.0)],
        [("M2", PROGRESSION, 4500.0, 50.0)],
        "caution: the lowest previous value is a lower bound",
        id="rise-from-uloq-baseline-warns-the-rise-may-be-overstated",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 2400.0), m("M2", 60, None), m("M4", 120, 1100.0)],
        [("M2", NOT_EVALUABLE, None, None), ("M4", PARTIAL, 1100.0, -54.2)],
        "no value result at this visit",
        id="visit-without-result-is-not-evaluable",
    ),
    pytest.param(
        "limit",
        [m("M6", 180, 500.0), m("BL", 0, 2400.0), m("M2", 60, 1500.0), m("M4", 120, 1100.0)],
        [
            ("M2", STABLE, 1500.0, -37.5),
            ("M4", PARTIAL, 1100.0, -54.2),
            ("M6", COMPLETE, 500.0, -79.2),
        ],
        None,
        id="visits-given-out-of-order-come-back-in-day-order",
    ),
]


@pytest.mark.parametrize(("lloq_rule", "series", "expected", "rule_says"), VEGF_PATIENTS)
def test_vegf_response_of_constructed_patient(lloq_rule, series, expected, rule_says):
    criteria = load_criteria(below_lloq_rule=lloq_rule)

    responses = vegf_responses(series, criteria)

    assert outcome(responses) == expected
    if rule_says is not None:
        assert any(rule_says in r.rule for r in responses), [r.rule for r in responses]
    assert all(r.rule for r in responses)


# --- Haematological (g/L; evaluable from 5, VGPR ≥ 90 %, PR ≥ 50 %, PD ≥ 25 % and ≥ 5) ---

M_SPIKE_PATIENTS = [
    pytest.param(
        "limit",
        [m("BL", 0, 5.0), m("C2", 56, 2.5)],
        {"C2": "positive"},
        [("C2", PARTIAL, 2.5, -50.0)],
        "≥ 50 % fall from baseline 5 g/L: -50 %",
        id="baseline-exactly-5-is-evaluable-and-exactly-50pct-is-partial",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 4.9), m("C2", 56, 1.0)],
        {"C2": "positive"},
        [("C2", NOT_EVALUABLE_BY_M_SPIKE, 1.0, -79.6)],
        "baseline M-spike 4.9 g/L is below 5 g/L",
        id="baseline-below-5-is-not-evaluable-by-m-spike-never-stable",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 4.9), m("C2", 56, 4.9)],
        {},
        [("C2", NOT_EVALUABLE_BY_M_SPIKE, 4.9, 0.0)],
        "no immunofixation at this visit",
        id="unchanged-small-m-spike-without-immunofixation-is-not-evaluable-by-m-spike",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 3.0), m("C2", 56, 0.0)],
        {"BL": "positive", "C2": "negative"},
        [("C2", COMPLETE, 0.0, -100.0)],
        "serum immunofixation negative at this visit",
        id="small-m-spike-with-negative-immunofixation-is-complete",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), m("C2", 56, None)],
        {"BL": "positive", "C2": "negative"},
        [("C2", COMPLETE, None, None)],
        "serum immunofixation negative at this visit (M-spike: no M-spike result",
        id="negative-immunofixation-without-m-spike-is-complete",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), m("C2", 56, None)],
        {"C2": "positive"},
        [("C2", NOT_EVALUABLE, None, None)],
        "no M-spike result at this visit",
        id="evaluable-baseline-but-no-m-spike-at-visit-is-not-evaluable",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 20.0), m("C2", 56, 2.0), m("C4", 112, 2.1)],
        {"C2": "positive", "C4": "positive"},
        [("C2", VERY_GOOD_PARTIAL, 2.0, -90.0), ("C4", PARTIAL, 2.1, -89.5)],
        "≥ 90 % fall from baseline 20 g/L: -90 %",
        id="exactly-90pct-is-very-good-partial-89.5-is-partial",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 20.0), m("M2", 60, 10.1)],
        {"M2": "positive"},
        [("M2", STABLE, 10.1, -49.5)],
        "partial needs a ≥ 50 % fall",
        id="49.5pct-fall-is-stable",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 20.0), m("M2", 60, 25.0)],
        {"M2": "positive"},
        [("M2", PROGRESSION, 25.0, 25.0)],
        "≥ 25 % and ≥ 5 g/L rise from the lowest previous value 20 g/L (baseline): +25 %, +5 g/L",
        id="exactly-25pct-and-exactly-5-g-l-rise-is-progression",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 10.0), m("M2", 60, 8.0), m("M4", 120, 10.0)],
        {"M2": "positive", "M4": "positive"},
        [("M2", STABLE, 8.0, -20.0), ("M4", STABLE, 10.0, 0.0)],
        "+25 %, +2 g/L from the lowest previous value 8 g/L (visit M2) (progression needs",
        id="25pct-rise-under-5-g-l-is-not-progression",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 30.0), m("M2", 60, 35.0)],
        {"M2": "positive"},
        [("M2", STABLE, 35.0, 16.7)],
        "+16.67 %, +5 g/L",
        id="5-g-l-rise-under-25pct-is-not-progression",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 20.0), m("M2", 60, 8.0), m("M4", 120, 13.0), m("M6", 180, 12.9)],
        {"M2": "positive", "M4": "positive", "M6": "positive"},
        [
            ("M2", PARTIAL, 8.0, -60.0),
            ("M4", PROGRESSION, 13.0, -35.0),
            ("M6", STABLE, 12.9, -35.5),
        ],
        "from the lowest previous value 8 g/L (visit M2)",
        id="rise-from-nadir-after-fall-is-progression",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), m("M2", 60, 0.0), m("M4", 120, 4.9), m("M6", 180, 5.0)],
        {"BL": "positive", "M2": "negative", "M4": "positive", "M6": "positive"},
        [
            ("M2", COMPLETE, 0.0, -100.0),
            ("M4", PARTIAL, 4.9, -59.2),
            ("M6", PROGRESSION, 5.0, -58.3),
        ],
        "rise from the lowest previous value 0 g/L (visit M2): an infinite % increase (from 0), "
        "+5 g/L",
        id="reappearing-m-spike-after-complete-needs-the-5-g-l-absolute-rise",
    ),
    pytest.param(
        "limit",
        [m("M2", 60, 8.0)],
        {"M2": "negative"},
        [("M2", NOT_EVALUABLE, 8.0, None)],
        "no baseline",
        id="missing-baseline",
    ),
    pytest.param(
        "limit",
        [lloq("BL", 0, 1.0), m("M2", 60, 1.5), m("M4", 120, 0.0)],
        {"BL": "positive", "M2": "positive", "M4": "negative"},
        [("M2", NOT_EVALUABLE_BY_M_SPIKE, 1.5, 50.0), ("M4", COMPLETE, 0.0, -100.0)],
        "baseline M-spike < LLOQ: limit 1 g/L used (rule: limit)",
        id="baseline-below-lloq-rule-limit",
    ),
    pytest.param(
        "half_limit",
        [lloq("BL", 0, 1.0), m("M2", 60, 1.5)],
        {"M2": "positive"},
        [("M2", NOT_EVALUABLE_BY_M_SPIKE, 1.5, 200.0)],
        "half the limit, 0.5 g/L, used (rule: half_limit)",
        id="baseline-below-lloq-rule-half-limit",
    ),
    pytest.param(
        "exclude",
        [lloq("BL", 0, 1.0), m("M2", 60, 1.5), m("M4", 120, 0.0)],
        {"M2": "positive", "M4": "negative"},
        [("M2", NOT_EVALUABLE, 1.5, None), ("M4", NOT_EVALUABLE, 0.0, None)],
        "baseline M-spike < LLOQ 1 g/L: excluded (rule: exclude)",
        id="baseline-below-lloq-rule-exclude-makes-everything-not-evaluable",
    ),
    pytest.param(
        "exclude",
        [m("BL", 0, 12.0), lloq("M2", 60, 1.0), m("M4", 120, 5.0)],
        {"M2": "positive", "M4": "positive"},
        [("M2", NOT_EVALUABLE, None, None), ("M4", PARTIAL, 5.0, -58.3)],
        "M-spike < LLOQ 1 g/L: excluded (rule: exclude)",
        id="visit-below-lloq-rule-exclude-is-not-evaluable",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), lloq("M2", 60, 1.0)],
        {"M2": "positive"},
        [("M2", VERY_GOOD_PARTIAL, 1.0, -91.7)],
        "M-spike < LLOQ: limit 1 g/L used (rule: limit)",
        id="visit-below-lloq-rule-limit",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 0.0), m("M2", 60, 0.0)],
        {"M2": "positive"},
        [("M2", NOT_EVALUABLE_BY_M_SPIKE, 0.0, None)],
        "baseline M-spike 0 g/L is below 5 g/L",
        id="unmeasurable-baseline-m-spike-0-has-no-percent-change",
    ),
    # (a) a negative immunofixation beside a quantified M-spike is discordant
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), m("C2", 56, 3.0)],
        {"BL": "positive", "C2": "negative"},
        [("C2", PARTIAL, 3.0, -75.0)],
        "caution: serum immunofixation negative but an M-spike of 3 g/L measured at this "
        "visit; the two disagree, so complete response is not given",
        id="negative-immunofixation-with-measurable-m-spike-is-its-m-spike-category",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), m("C2", 56, 0.1)],
        {"BL": "positive", "C2": "negative"},
        [("C2", VERY_GOOD_PARTIAL, 0.1, -99.2)],
        "an M-spike of 0.1 g/L measured at this visit",
        id="negative-immunofixation-with-smallest-m-spike-is-not-complete",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 3.0), m("C2", 56, 1.0)],
        {"BL": "positive", "C2": "negative"},
        [("C2", NOT_EVALUABLE_BY_M_SPIKE, 1.0, -66.7)],
        "(immunofixation negative at this visit); caution: serum immunofixation negative but "
        "an M-spike of 1 g/L",
        id="negative-immunofixation-with-m-spike-after-small-baseline-is-not-evaluable",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), lloq("C2", 56, 1.0)],
        {"BL": "positive", "C2": "negative"},
        [("C2", COMPLETE, 1.0, -91.7)],
        "serum immunofixation negative at this visit; M-spike < LLOQ: limit 1 g/L used",
        id="negative-immunofixation-with-m-spike-below-lloq-is-complete",
    ),
    # (b) complete needs a positive immunofixation at baseline
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), m("C2", 56, 0.0)],
        {"C2": "negative"},
        [("C2", VERY_GOOD_PARTIAL, 0.0, -100.0)],
        "complete response needs a positive serum immunofixation at baseline; none was done",
        id="no-baseline-immunofixation-gives-the-m-spike-category-not-complete",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), m("C2", 56, 0.0)],
        {"BL": None, "C2": "negative"},
        [("C2", VERY_GOOD_PARTIAL, 0.0, -100.0)],
        "none was done",
        id="baseline-immunofixation-not-done-is-not-complete",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 3.0), m("C2", 56, 0.0)],
        {"BL": "negative", "C2": "negative"},
        [("C2", NOT_EVALUABLE_BY_M_SPIKE, 0.0, -100.0)],
        "complete response needs a positive serum immunofixation at baseline; the baseline "
        "immunofixation was negative",
        id="negative-baseline-immunofixation-is-never-complete",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), m("C2", 56, None)],
        {"C2": "negative"},
        [("C2", NOT_EVALUABLE, None, None)],
        "no M-spike result at this visit; complete response needs a positive serum "
        "immunofixation at baseline",
        id="no-baseline-immunofixation-and-no-m-spike-is-not-evaluable",
    ),
    # (c) IMWG's absolute progression rule holds below the evaluability threshold
    pytest.param(
        "limit",
        [m("BL", 0, 3.0), m("M2", 60, 8.0)],
        {"BL": "positive", "M2": "positive"},
        [("M2", PROGRESSION, 8.0, 166.7)],
        "≥ 25 % and ≥ 5 g/L rise from the lowest previous value 3 g/L (baseline): +166.67 %, "
        "+5 g/L; baseline M-spike 3 g/L is below 5 g/L: the response categories do not "
        "apply, progression does",
        id="small-baseline-exactly-5-g-l-rise-is-progression",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 3.0), m("M2", 60, 7.9)],
        {"BL": "positive", "M2": "positive"},
        [("M2", NOT_EVALUABLE_BY_M_SPIKE, 7.9, 163.3)],
        "baseline M-spike 3 g/L is below 5 g/L",
        id="small-baseline-4.9-g-l-rise-is-not-evaluable",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 4.0), m("M2", 60, 1.0), m("M4", 120, 6.0)],
        {"BL": "positive", "M2": "positive", "M4": "positive"},
        [("M2", NOT_EVALUABLE_BY_M_SPIKE, 1.0, -75.0), ("M4", PROGRESSION, 6.0, 50.0)],
        "rise from the lowest previous value 1 g/L (visit M2): +500 %, +5 g/L",
        id="small-baseline-rise-from-nadir-is-progression",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 0.0), m("M2", 60, 5.0)],
        {"BL": "positive", "M2": "positive"},
        [("M2", PROGRESSION, 5.0, None)],
        "an infinite % increase (from 0), +5 g/L",
        id="m-spike-appearing-from-0-at-baseline-is-progression",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 3.0), m("M2", 60, 8.0)],
        {"BL": "positive", "M2": "negative"},
        [("M2", PROGRESSION, 8.0, 166.7)],
        "caution: serum immunofixation negative but an M-spike of 8 g/L",
        id="small-baseline-discordant-negative-immunofixation-with-rise-is-progression",
    ),
    # (d) a progression computed from a substituted "< LLOQ" value is uncertain
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), lloq("M2", 60, 1.0), m("M4", 120, 6.0)],
        {"BL": "positive", "M2": "positive", "M4": "positive"},
        [("M2", VERY_GOOD_PARTIAL, 1.0, -91.7), ("M4", PROGRESSION, 6.0, -50.0)],
        "caution: the lowest previous value is below the LLOQ and a substitute was used",
        id="m-spike-progression-from-a-below-lloq-nadir-is-cautioned",
    ),
    pytest.param(
        "half_limit",
        [lloq("BL", 0, 1.0), m("M2", 60, 5.5)],
        {"BL": "positive", "M2": "positive"},
        [("M2", PROGRESSION, 5.5, 1000.0)],
        "caution: the lowest previous value is below the LLOQ",
        id="m-spike-progression-from-a-half-limit-baseline-is-cautioned",
    ),
    pytest.param(
        "limit",
        [m("BL", 0, 12.0), m("M2", 60, 1.0), lloq("M4", 120, 6.0)],
        {"BL": "positive", "M2": "positive", "M4": "positive"},
        [("M2", VERY_GOOD_PARTIAL, 1.0, -91.7), ("M4", PROGRESSION, 6.0, -50.0)],
        "caution: the value is below the LLOQ and a substitute was used",
        id="m-spike-progression-to-a-below-lloq-value-is-cautioned",
    ),
]


@pytest.mark.parametrize(
    ("lloq_rule", "series", "immunofixation", "expected", "rule_says"), M_SPIKE_PATIENTS
)
def test_haematological_response_of_constructed_patient(
    lloq_rule, series, immunofixation, expected, rule_says
):
    criteria = load_criteria(below_lloq_rule=lloq_rule)

    responses = haematological_responses(series, immunofixation, criteria)

    assert outcome(responses) == expected
    assert any(rule_says in r.rule for r in responses), [r.rule for r in responses]
    assert all(r.rule for r in responses)


def test_complete_vegf_reports_a_progression_sized_rise_and_only_that(criteria):
    rising = [m("BL", 0, 3000.0), m("M2", 60, 300.0), m("M4", 120, 900.0)]
    steady = [m("BL", 0, 3000.0), m("M2", 60, 400.0), m("M4", 120, 599.0)]

    m2, m4 = vegf_responses(rising, criteria)
    _, m4_steady = vegf_responses(steady, criteria)

    assert (m2.category, m4.category) == (COMPLETE, COMPLETE)
    assert "caution" not in m2.rule
    assert "caution: +200 % from the lowest previous value 300 pg/mL (visit M2)" in m4.rule
    assert m4_steady.category == COMPLETE and "caution" not in m4_steady.rule


@pytest.mark.parametrize(
    "visit",
    [
        pytest.param(m("C2", 56, 0.1), id="0.1-g-l"),
        pytest.param(m("C2", 56, 3.0), id="3-g-l"),
        pytest.param(m("C2", 56, 14.0), id="risen"),
        pytest.param(uloq("C2", 56, 20.0), id="above-uloq"),
    ],
)
def test_negative_immunofixation_beside_a_quantified_m_spike_is_never_complete(criteria, visit):
    series = [m("BL", 0, 12.0), visit]

    (c2,) = haematological_responses(series, {"BL": "positive", "C2": "negative"}, criteria)

    assert c2.category != COMPLETE
    assert "caution: serum immunofixation negative but an M-spike of" in c2.rule


@pytest.mark.parametrize("lloq_rule", ["limit", "half_limit"])
def test_negative_immunofixation_beside_a_below_lloq_m_spike_is_complete(lloq_rule):
    series = [m("BL", 0, 12.0), lloq("C2", 56, 1.0)]

    (c2,) = haematological_responses(
        series, {"BL": "positive", "C2": "negative"}, load_criteria(below_lloq_rule=lloq_rule)
    )

    assert c2.category == COMPLETE and "caution" not in c2.rule


@pytest.mark.parametrize(
    ("baseline_fixation", "complete"),
    [
        pytest.param({"BL": "positive"}, True, id="positive"),
        pytest.param({"BL": "negative"}, False, id="negative"),
        pytest.param({"BL": None}, False, id="not-done"),
        pytest.param({}, False, id="absent"),
    ],
)
def test_complete_needs_a_positive_immunofixation_at_baseline(
    criteria, baseline_fixation, complete
):
    for baseline in (12.0, 3.0, 0.0):
        series = [m("BL", 0, baseline), m("M2", 60, 0.0), m("M4", 120, None)]
        fixations = {**baseline_fixation, "M2": "negative", "M4": "negative"}

        responses = haematological_responses(series, fixations, criteria)

        assert [r.category == COMPLETE for r in responses] == [complete, complete], baseline
        if not complete:
            assert all("needs a positive serum immunofixation at baseline" in r.rule
                       for r in responses)  # fmt: skip


def test_progression_from_quantified_values_carries_no_lloq_caution(criteria):
    vegf = vegf_responses([m("BL", 0, 2000.0), m("C2", 56, 3000.0)], criteria)
    haem = haematological_responses(
        [m("BL", 0, 3.0), m("C2", 56, 8.0)], {"BL": "positive", "C2": "positive"}, criteria
    )

    assert [r.category for r in vegf + haem] == [PROGRESSION, PROGRESSION]
    assert not any("LLOQ" in r.rule for r in vegf + haem)


def test_small_baseline_is_never_stable_even_when_the_m_spike_rises(criteria):
    # lowest value 2 g/L from V0 on: 6.9 is +4.9 g/L, 7 is +5 g/L
    values = [2.0, 4.9, 6.9, 7.0, 20.0]
    series = [m("BL", 0, 3.0)] + [m(f"V{i}", 10 * (i + 1), v) for i, v in enumerate(values)]

    responses = haematological_responses(series, {"BL": "positive"}, criteria)

    assert [r.category for r in responses] == [NOT_EVALUABLE_BY_M_SPIKE] * 3 + [PROGRESSION] * 2


def test_every_response_carries_the_criteria_version():
    criteria = load_criteria(version="TEST-CRITERIA/v9")
    responses = []
    for param in VEGF_PATIENTS:
        responses += vegf_responses(param.values[1], criteria)
    for param in M_SPIKE_PATIENTS:
        responses += haematological_responses(param.values[1], param.values[2], criteria)

    assert len(responses) > 40
    assert {r.criteria_version for r in responses} == {"TEST-CRITERIA/v9"}


# --- percent_change ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "value", "expected"),
    [
        pytest.param(2400, 1200, -50.0, id="exact-half"),
        pytest.param(2500, 1251, -50.0, id="-49.96-rounds-to--50.0"),
        pytest.param(80, 89.8, 12.3, id="+12.25-rounds-half-up-not-to-even"),
        pytest.param(80, 70.2, -12.3, id="-12.25-rounds-half-away-from-zero"),
        pytest.param(3, 1, -66.7, id="two-thirds-fall"),
        pytest.param(3, 2, -33.3, id="one-third-fall"),
        pytest.param(0.3, 0.1, -66.7, id="binary-float-decimals"),
        pytest.param(100, 100, 0.0, id="no-change"),
        pytest.param(10000, 9999.99, 0.0, id="tiny-fall-is-zero-not-minus-zero"),
    ],
)
def test_percent_change_is_rounded_half_away_from_zero_to_one_decimal(baseline, value, expected):
    result = percent_change(baseline, value)

    assert result == expected
    assert str(result) == str(expected)  # also rules out -0.0


@pytest.mark.parametrize("baseline", [0, 0.0, -5.0])
def test_percent_change_refuses_a_baseline_that_is_not_positive(baseline):
    with pytest.raises(ValueError, match="baseline must be greater than 0"):
        percent_change(baseline, 10.0)


# --- the criteria file -------------------------------------------------------------------


def test_default_criteria_are_the_documented_thresholds(criteria):
    assert criteria.version == "POEMS-2012-IMWG-2016/v2"
    assert (
        criteria.vegf_uln_pg_ml,
        criteria.vegf_partial_decrease_pct,
        criteria.vegf_progression_increase_pct,
        criteria.m_vgpr_decrease_pct,
        criteria.m_partial_decrease_pct,
        criteria.m_evaluable_baseline_g_l,
        criteria.m_progression_increase_pct,
        criteria.m_progression_absolute_g_l,
        criteria.below_lloq_rule,
    ) == (1000.0, 50.0, 50.0, 90.0, 50.0, 5.0, 25.0, 5.0, "limit")


def test_every_default_threshold_has_a_source(criteria):
    thresholds = {f.name for f in dataclasses.fields(Criteria)} - {"version", "sources"}

    assert set(criteria.sources) == thresholds
    assert "Gentile" in criteria.sources["vegf_uln_pg_ml"]
    assert "Rajkumar" in criteria.sources["m_progression_absolute_g_l"]


def test_every_source_states_its_boundary_and_the_criteria_are_cited(criteria):
    for name, citation in criteria.sources.items():
        if name == "below_lloq_rule":
            continue
        boundary = citation.split(".")[0]
        assert boundary.startswith("Boundary: "), name
        assert "≥" in boundary or "<" in boundary, name
    joined = " ".join(criteria.sources.values())
    assert "D'Souza A et al. Blood 2012;120:56" in joined
    assert "Kumar S et al. Lancet Oncol 2016;17:e328" in joined
    assert "Durie BGM et al. Leukemia 2006;20:1467" in joined
    assert "Gentile F et al. Neurol Sci 2024" in criteria.sources["vegf_uln_pg_ml"]
    assert "< ULN (strict)" in criteria.sources["vegf_uln_pg_ml"]
    for unchecked in (
        "vegf_partial_decrease_pct",
        "vegf_progression_increase_pct",
        "m_evaluable_baseline_g_l",
    ):
        assert "not confirmed" in criteria.sources[unchecked], unchecked


def test_override_that_changes_a_threshold_is_recorded_in_the_version():
    criteria = load_criteria(vegf_uln_pg_ml=1040, below_lloq_rule="exclude")

    assert criteria.vegf_uln_pg_ml == 1040.0
    assert criteria.version == (
        "POEMS-2012-IMWG-2016/v2+below_lloq_rule=exclude,vegf_uln_pg_ml=1040"
    )


def test_override_equal_to_the_file_leaves_the_version_alone():
    assert load_criteria(vegf_uln_pg_ml=1000).version == "POEMS-2012-IMWG-2016/v2"


def test_explicit_version_override_wins_over_the_recorded_overrides():
    criteria = load_criteria(vegf_uln_pg_ml=1040, version="SITE-LAB/v2")

    assert criteria.version == "SITE-LAB/v2"


def test_sources_override_is_merged_into_the_file_sources():
    criteria = load_criteria(sources={"vegf_uln_pg_ml": "Local laboratory, 2026"})

    assert criteria.sources["vegf_uln_pg_ml"] == "Local laboratory, 2026"
    assert "Rajkumar" in criteria.sources["m_vgpr_decrease_pct"]


def test_override_changes_the_computed_category():
    series = [m("BL", 0, 2400.0), m("C2", 56, 1020.0)]

    default = vegf_responses(series, load_criteria())
    local = vegf_responses(series, load_criteria(vegf_uln_pg_ml=1040))

    assert (default[0].category, local[0].category) == (PARTIAL, COMPLETE)
    assert local[0].criteria_version.endswith("+vegf_uln_pg_ml=1040")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"vegf_uln_pg_ml": "1000"}, "override: 'vegf_uln_pg_ml' must be", id="text"),
        pytest.param({"vegf_uln_pg_ml": 0}, "'vegf_uln_pg_ml' must be a concentration", id="zero"),
        pytest.param({"m_partial_decrease_pct": 120}, "at most 100", id="above-100-pct"),
        pytest.param({"m_vgpr_decrease_pct": True}, "'m_vgpr_decrease_pct' must be", id="bool"),
        pytest.param(
            {"m_progression_increase_pct": float("nan")},
            "'m_progression_increase_pct' must be",
            id="nan",
        ),
        pytest.param({"m_progression_absolute_g_l": -1}, "of 0 or more", id="negative"),
        pytest.param(
            {"m_partial_decrease_pct": 90.0}, "smaller than 'm_vgpr_decrease_pct'", id="pr-vs-vgpr"
        ),
        pytest.param({"below_lloq_rule": "zero"}, "'below_lloq_rule' must be one of", id="rule"),
        pytest.param({"version": " "}, "'version' must be a non-empty string", id="version"),
        pytest.param({"vegf_uln": 1000}, "unknown override 'vegf_uln'", id="unknown-override"),
        pytest.param(
            {"sources": {"vegf_uln": "x"}}, "'sources.vegf_uln' names no threshold", id="source"
        ),
    ],
)
def test_invalid_override_is_refused_naming_the_key(overrides, message):
    with pytest.raises(CriteriaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_criteria(**overrides)


DEFAULT_TEXT = response_module.DEFAULT_CRITERIA_PATH.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            lambda t: t.replace("m_vgpr_decrease_pct = 90.0\n", ""),
            "missing key 'm_vgpr_decrease_pct'",
            id="missing-key",
        ),
        pytest.param(
            lambda t: t.replace("vegf_uln_pg_ml = 1000.0", "vegf_uln_pg_ml = 1000.0\nvegf_lln = 1"),
            "unknown key 'vegf_lln'",
            id="unknown-key",
        ),
        pytest.param(
            lambda t: t.replace("m_evaluable_baseline_g_l = 5.0", 'm_evaluable_baseline_g_l = "5"'),
            "'m_evaluable_baseline_g_l' must be a concentration in g/L",
            id="wrong-type",
        ),
        pytest.param(
            lambda t: t.replace('\nm_progression_absolute_g_l = "Bound', '\nx = "Bound'),
            "'sources.x' names no threshold",
            id="source-for-unknown-threshold",
        ),
        pytest.param(
            lambda t: "\n".join(
                line for line in t.splitlines() if not line.startswith('m_vgpr_decrease_pct = "')
            ),
            "'sources' has no citation for m_vgpr_decrease_pct",
            id="threshold-without-source",
        ),
        pytest.param(
            lambda t: t.replace("version = ", "version == "), "not valid TOML", id="bad-toml"
        ),
    ],
)
def test_invalid_criteria_file_is_refused_naming_file_and_key(tmp_path, edit, message):
    path = tmp_path / "criteria.toml"
    path.write_text(edit(DEFAULT_TEXT), encoding="utf-8")

    with pytest.raises(CriteriaError, match=message) as raised:
        load_criteria(path)

    assert str(path) in str(raised.value)


def test_missing_criteria_file_is_refused_naming_it(tmp_path):
    with pytest.raises(CriteriaError, match="cannot read the criteria file"):
        load_criteria(tmp_path / "absent.toml")


def test_criteria_built_directly_are_validated_too(criteria):
    values = {f.name: getattr(criteria, f.name) for f in dataclasses.fields(Criteria)}

    with pytest.raises(CriteriaError, match="'vegf_partial_decrease_pct' must be") as raised:
        Criteria(**{**values, "vegf_partial_decrease_pct": -50.0})

    assert raised.value.key == "vegf_partial_decrease_pct"


# --- series that cannot be categorised ----------------------------------------------------


@pytest.mark.parametrize(
    ("series", "message"),
    [
        pytest.param(
            [m("BL", 0, 2400.0), m("M2", 60, 800.0), m("M2", 61, 700.0)],
            "visit 'M2' appears twice",
            id="duplicate-visit",
        ),
        pytest.param(
            [m("BL", 0, 2400.0), Measurement("M2", 60, None, "<LLOQ")],
            "needs its limit",
            id="flag-without-limit",
        ),
        pytest.param(
            [m("BL", 0, 2400.0), Measurement("M2", 60, 5.0, "<LOD", 5.0)],
            "flag must be None, '<LLOQ' or '>ULOQ'",
            id="unknown-flag",
        ),
        pytest.param(
            [m("BL", 0, 2400.0), m("M2", 60, -5.0)], "must not be negative", id="negative-value"
        ),
        pytest.param(
            [m("BL", 0, 2400.0), m("M2", None, 800.0)],
            "visit 'M2' needs its study day",
            id="visit-without-day",
        ),
        pytest.param(
            [m("BL", 10, 2400.0), m("SCR", 2, 2600.0)],
            "visit 'SCR' \\(day 2\\) is before the baseline",
            id="visit-before-baseline",
        ),
    ],
)
def test_ambiguous_series_is_refused_naming_the_visit(criteria, series, message):
    with pytest.raises(ValueError, match=message):
        vegf_responses(series, criteria)


@pytest.mark.parametrize(
    ("immunofixation", "message"),
    [
        pytest.param({"M2": "négatif"}, "must be 'negative', 'positive' or None", id="value"),
        pytest.param({"M4": "negative"}, "visit 'M4' has no M-spike entry", id="unplaced"),
    ],
)
def test_unusable_immunofixation_is_refused_naming_the_visit(criteria, immunofixation, message):
    series = [m("BL", 0, 12.0), m("M2", 60, 3.0)]

    with pytest.raises(ValueError, match=message):
        haematological_responses(series, immunofixation, criteria)


def test_no_post_baseline_visit_gives_no_response(criteria):
    assert vegf_responses([m("BL", 0, 2400.0)], criteria) == []
    assert haematological_responses([m("BL", 0, 12.0)], {"BL": "positive"}, criteria) == []


def test_module_imports_only_the_standard_library_and_gettext():
    tree = ast.parse(Path(response_module.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}

    outside = {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names}
    assert outside - {"__future__.annotations"} == {"flask_babel.gettext"}, imported


# --- the rule in the reader's language -----------------------------------------------------

PLACEHOLDER = re.compile(r"(%\([a-z_]+\)s|%%)")


def shouted(message: str) -> str:
    """A stand-in catalogue that writes every message in capitals, placeholders kept."""
    return "".join(
        part if PLACEHOLDER.fullmatch(part) else part.upper() for part in PLACEHOLDER.split(message)
    )


# Branches the tables above do not reach: a zero VEGF baseline, a value equal to the
# lowest previous one, a "> ULOQ" baseline under a stable value, M-spike visits without
# immunofixation.
MORE_VEGF = [
    [m("BL", 0, 0.0), m("M2", 60, 10.0)],
    [m("BL", 0, 2000.0), m("M2", 60, 2000.0)],
    [uloq("BL", 0, 3000.0), m("M2", 60, 2500.0)],
]
MORE_M_SPIKE = [([m("BL", 0, 20.0), m("M2", 60, 10.1), m("M4", 120, None)], {"M4": None})]


def every_rule(criteria_of):
    rules = []
    for lloq_rule in response_module.LLOQ_RULES:
        criteria = criteria_of(lloq_rule)
        for series in [p.values[1] for p in VEGF_PATIENTS] + MORE_VEGF:
            rules += [r.rule for r in vegf_responses(series, criteria)]
        for series, fixations in [p.values[1:3] for p in M_SPIKE_PATIENTS] + MORE_M_SPIKE:
            rules += [r.rule for r in haematological_responses(series, fixations, criteria)]
    return rules


def test_every_word_of_every_rule_goes_through_the_catalogue(monkeypatch):
    """Whatever a rule says, in any of its branches, notes and cautions, is a message of the
    catalogue: with a catalogue that capitalises, no lower-case word is left but the units."""
    monkeypatch.setattr(response_module, "gettext", shouted)

    rules = every_rule(lambda rule: load_criteria(below_lloq_rule=rule))

    assert len(rules) > 100
    left_in_english = [r for r in rules if re.search(r"[a-z]", re.sub(r"pg/mL|g/L", "", r))]
    assert not left_in_english
    assert any("≥ 50 % DECREASE FROM BASELINE 2400 pg/mL: -50 %" in r for r in rules)
    assert any("AN INFINITE % INCREASE (FROM 0)" in r for r in rules)
    assert any("AT THIS VISIT; NO IMMUNOFIXATION AT THIS VISIT" in r for r in rules)
    assert any("BASELINE IS 0" in r for r in rules)
    assert any("EQUAL TO THE LOWEST PREVIOUS VALUE 2000 pg/mL (BASELINE)" in r for r in rules)
    assert any("CAUTION: THE BASELINE IS A LOWER BOUND" in r for r in rules)


def test_outside_a_request_the_rule_is_english():
    (m2,) = vegf_responses([m("BL", 0, 2400.0), m("M2", 56, 900.0)], load_criteria())

    assert m2.rule == "normalised: 900 pg/mL is below the ULN 1000 pg/mL (baseline 2400 pg/mL)"


def test_interpolated_values_are_written_to_four_significant_digits():
    series = [
        response_module.Measurement("BL", 0, 3100.0259),
        response_module.Measurement("M2", 56, 820.1243),
    ]
    (m2,) = response_module.vegf_responses(series, response_module.load_criteria())
    assert "3100 pg/mL" in m2.rule and "820.1 pg/mL" in m2.rule
