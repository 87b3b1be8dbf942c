"""Small cells of the catalogue cannot be recovered by subtracting one shown count from
another.

The attacker is a researcher (no participant-level access) who asks the catalogue, or
the request form's match count, for two nested filters A ⊂ B ("de novo" and "de novo or
relapsed") and for B∖A ("relapsed"), and reasons on what is shown: the true values of
B∖A consistent with the three shown counts. The rule holds when that set never comes
down to one value between 1 and the threshold − 1 ("one relapsed participant").
"""

from __future__ import annotations

import itertools
import re
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biobank.distribution import disclosure
from biobank.distribution.criteria import parse
from biobank.storage import services as storage
from biobank.study import services as study
from biobank.study.models import DISEASE_STATUSES
from tests import factories
from tests.conftest import PASSWORD

CRITERIA = {"visits": ["BL"], "sample_types": ["SER"]}
CELL = ("G2", "BL", "SER")


# --- what the attacker reads and deduces -------------------------------------------------


def possible(text: str | None, threshold: int) -> range:
    """The true values a shown count leaves possible. None: the catalogue does not list
    the combination, which it does only for fewer participants than the threshold."""
    if text is None:
        return range(0, threshold)
    text = text.strip()
    if text.startswith("<"):
        return range(0, int(text[1:]))
    bounds = re.fullmatch(r"(\d+)\s*[–-]\s*(\d+)", text)
    if bounds:
        return range(int(bounds[1]), int(bounds[2]) + 1)
    return range(int(text), int(text) + 1)


def deduced(a: range, b: range, difference: range | None = None) -> set[int]:
    """The counts of B∖A consistent with what is shown of A, of B (= A + B∖A) and, when
    it is a filter of its own, of B∖A."""
    candidates = difference if difference is not None else range(0, b.stop)
    return {d for d in candidates if any(x + d in b for x in a)}


def pins_a_small_count(values: set[int], threshold: int) -> bool:
    return len(values) == 1 and 1 <= next(iter(values)) <= threshold - 1


# --- a cohort ----------------------------------------------------------------------------


def cohort(db, statuses, visits=("BL",)) -> None:
    """Participants of arm G2 with these disease statuses, each visit's serum and plasma
    aliquots (5 of each) stored, all available."""
    barcodes = []
    for number, status in enumerate(statuses, start=1):
        code = f"LIM-{number:03d}"
        study.register_participant(
            code, "LIM", "G2", status, date(2026, 1, 5), date(2026, 1, 3), actor=None
        )
        for visit in visits:
            barcodes += [a.barcode for a in factories.visit(code, visit).aliquots]
    boxes = [f"BX-{n:04d}" for n in range(1, len(barcodes) // 81 + 2)]
    for box in boxes:
        storage.create_container(
            "box",
            box,
            parent="SH-0001",
            barcode=box,
            type_name="81-place 2-inch cryobox",
            actor=None,
        )
    storage.store_many(
        [(code, boxes[i // 81], None) for i, code in enumerate(barcodes)], actor=None
    )
    db.session.flush()


@pytest.fixture
def freezer(db, sites):
    factories.freezer({})
    db.session.commit()


@pytest.fixture
def probe(app, db, freezer, api_as):
    """Three de novo participants and one relapsed in one cell, the smallest threshold
    the rule accepts, and a researcher asking the API."""
    app.config["CATALOGUE_SMALL_CELL"] = 3
    app.config["CATALOGUE_ROUNDING_BASE"] = 5
    cohort(db, ["de_novo", "de_novo", "de_novo", "relapsed"])
    db.session.commit()
    return api_as("researcher")


def catalogue_cell(client, statuses) -> str | None:
    query = "&".join(f"{k}={','.join(v)}" for k, v in CRITERIA.items())
    response = client.get(f"/api/v1/catalogue?{query}&disease_statuses={','.join(statuses)}")
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = [r for r in response.get_json() if (r["arm"], r["visit"], r["sample_type"]) == CELL]
    if not rows:
        return None
    row = rows[0]
    if "participants_shown" in row:
        return row["participants_shown"]
    return row["shown_as"] if row.get("suppressed") else str(row["participants"])


def matched(client, statuses) -> str | None:
    response = client.post(
        "/api/v1/catalogue/match", json={**CRITERIA, "disease_statuses": list(statuses)}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    found = response.get_json()
    if "participants_shown" in found:
        return found["participants_shown"]
    return found["shown_as"] if found["suppressed"] else str(found["participants"])


@pytest.mark.parametrize("ask", [catalogue_cell, matched], ids=["catalogue", "match"])
def test_no_pair_of_queries_counts_the_one_relapsed_participant(probe, ask):
    both = possible(ask(probe, ["de_novo", "relapsed"]), 3)
    de_novo = possible(ask(probe, ["de_novo"]), 3)
    relapsed = possible(ask(probe, ["relapsed"]), 3)
    assert not pins_a_small_count(deduced(de_novo, both), 3)
    assert not pins_a_small_count(deduced(de_novo, both, relapsed), 3)
    # Nor does the relapsed count alone tell that there is anyone.
    assert 0 in relapsed


def test_those_with_participant_level_access_still_see_exact_counts(probe, api_as):
    manager = api_as("manager")
    assert catalogue_cell(manager, ["relapsed"]) == "1"
    assert matched(manager, ["de_novo", "relapsed"]) == "4"


# --- the rule on its own: nested pairs of true counts -------------------------------------


def interval(shown: disclosure.Shown) -> range:
    return range(0 if shown.low is None else shown.low, shown.high + 1)


@settings(max_examples=3000)
@given(
    threshold=st.integers(3, 9),
    extra=st.integers(0, 8),
    a=st.integers(0, 80),
    d=st.integers(0, 12),
    spill=st.integers(0, 12),
)
def test_no_two_shown_counts_pin_a_small_difference(threshold, extra, a, d, spill):
    """A ⊂ B, d = |B∖A|; C a filter counting at least those d (B∖A itself when spill is
    0, a wider filter otherwise)."""
    base = threshold - 1 + extra

    def show(count):
        return interval(disclosure.shown(count, threshold=threshold, base=base))

    shown_a, shown_b, shown_c = show(a), show(a + d), show(d + spill)
    # From A and B alone, the difference may always be 0 or a count of the threshold or
    # more: two counts never prove that a small group exists.
    from_pair = deduced(shown_a, shown_b)
    assert 0 in from_pair or max(from_pair) >= threshold
    if d + spill >= threshold:
        return  # C is shown: nothing is suppressed to recover
    # With C's shown count too ("< threshold"): neither C's count nor the difference is
    # ever a single value.
    differences = {x for x in from_pair if any(c >= x for c in shown_c)}
    counts_of_c = {c for c in shown_c if any(c >= x for x in from_pair)}
    assert not pins_a_small_count(differences, threshold)
    assert not pins_a_small_count(counts_of_c, threshold)
    exact_c = deduced(shown_a, shown_b, shown_c)  # C = B∖A exactly
    assert not pins_a_small_count(exact_c, threshold)
    assert d in differences and (spill or d in exact_c)  # the truth stays possible


@pytest.mark.parametrize(("threshold", "pinned"), [(3, True), (5, False)])
def test_three_groups_and_all_their_unions(threshold, pinned):
    """The limit the docstring states: with a threshold of 3, three disjoint groups (the
    three disease statuses of one cell) can be worked out from the counts of their
    unions; with 5 (the default) none can, whatever their sizes."""
    base = 5
    top = threshold + 3 * base  # every group's range lies below: the search is complete

    def band(count):
        shown = disclosure.shown(count, threshold=threshold, base=base)
        return shown.low

    unions = [s for r in (1, 2, 3) for s in itertools.combinations(range(3), r)]
    seen: dict[tuple, list[tuple[int, ...]]] = {}
    for sizes in itertools.product(range(top - base), repeat=3):
        seen.setdefault(tuple(band(sum(sizes[i] for i in u)) for u in unions), []).append(sizes)
    found = any(
        len({sizes[i] for sizes in group}) == 1 and 1 <= group[0][i] < threshold
        for group in seen.values()
        for i in range(3)
    )
    assert found is pinned


def test_the_rule_refuses_settings_it_cannot_keep():
    with pytest.raises(RuntimeError):
        disclosure.shown(4, threshold=2, base=5)
    with pytest.raises(RuntimeError):
        disclosure.shown(4, threshold=5, base=3)
    assert str(disclosure.shown(0, threshold=5, base=5)) == "< 5"
    assert str(disclosure.shown(12, threshold=5, base=5)) == "10–14"
    assert str(disclosure.shown(12, threshold=5, base=5, exact=True)) == "12"


# --- end to end: random cohorts through the services -------------------------------------


@settings(
    max_examples=8,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    statuses=st.lists(st.sampled_from(DISEASE_STATUSES), min_size=1, max_size=7),
    visits=st.sampled_from([("BL",), ("BL", "M2")]),
    order=st.permutations(DISEASE_STATUSES),
    cut=st.integers(1, 2),
    width=st.integers(1, 2),
    threshold=st.sampled_from([3, 5]),
)
def test_random_cohorts_never_give_away_a_small_cell(
    app, db, freezer, statuses, visits, order, cut, width, threshold
):
    """A cohort of random disease statuses and visits; A asks for some statuses, B for
    more, C for those B adds."""
    smaller, extra = set(order[:cut]), set(order[cut : cut + width])
    bigger = smaller | extra
    app.config["CATALOGUE_SMALL_CELL"] = threshold
    app.config["CATALOGUE_ROUNDING_BASE"] = 5
    researcher = factories.user("researcher", password=PASSWORD)
    try:
        cohort(db, statuses, visits)

        def rows(kinds):
            asked = parse({"disease_statuses": sorted(kinds)})
            return {
                (r.arm, r.visit, r.sample_type): interval(r.participants)
                for r in disclosure.catalogue(asked, actor=researcher)
            }

        def match(kinds):
            asked = parse(
                {"visits": list(visits), "sample_types": ["SER"], "disease_statuses": sorted(kinds)}
            )
            return interval(disclosure.match_count(asked, actor=researcher).participants)

        small = range(0, threshold)  # a combination not listed
        a, b, c = rows(smaller), rows(bigger), rows(extra)
        for cell in set(a) | set(b) | set(c):
            values = deduced(a.get(cell, small), b.get(cell, small), c.get(cell, small))
            assert not pins_a_small_count(values, threshold), cell
        values = deduced(match(smaller), match(bigger), match(extra))
        assert not pins_a_small_count(values, threshold)
        truth = sum(1 for s in statuses if s in extra)
        assert truth in values
    finally:
        db.session.rollback()
