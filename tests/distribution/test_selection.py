"""The choice of aliquots, as a pure function: quantities, the last aliquot kept, and
which copy is preferred."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from biobank.distribution.selection import Candidate, select


def tube(n, participant=1, visit="BL", thaws=0, fill=0.5, walk=None):
    return Candidate(
        n,
        f"T{n:03d}",
        participant,
        f"LIM-{participant:03d}",
        visit,
        "SER",
        500,
        thaws,
        fill,
        walk or (1, n),
    )


def test_fewer_thaws_first_then_the_less_filled_freezer():
    pool = [tube(1, thaws=1, fill=0.1), tube(2, fill=0.9), tube(3, fill=0.2), tube(4, fill=0.5)]
    chosen = select(pool, {(1, "BL", "SER"): 5}, per_participant_visit=2).chosen
    assert [c.barcode for c in chosen] == ["T003", "T004"]


def test_the_last_aliquot_is_held_back_unless_allowed():
    pool = [tube(1), tube(2)]
    kept = select(pool, {(1, "BL", "SER"): 2}, per_participant_visit=2)
    assert len(kept.chosen) == 1 and kept.held_back == {(1, "BL", "SER"): 1}
    allowed = select(pool, {(1, "BL", "SER"): 2}, per_participant_visit=2, allow_last=True)
    assert len(allowed.chosen) == 2 and allowed.last_ones == allowed.chosen


def test_a_group_whose_other_tubes_do_not_match_still_keeps_one():
    # One matching tube, but the bank holds three of that kind: handing it out is fine.
    assert len(select([tube(1)], {(1, "BL", "SER"): 3}, per_participant_visit=1).chosen) == 1
    assert select([tube(1)], {(1, "BL", "SER"): 1}, per_participant_visit=1).chosen == []


def test_max_participants_caps_whole_participants():
    pool = [
        tube(n, participant=p, visit=v)
        for n, (p, v) in enumerate([(1, "BL"), (1, "M2"), (2, "BL"), (2, "M2"), (3, "BL")])
    ]
    remaining = {(c.participant_id, c.visit, "SER"): 5 for c in pool}
    chosen = select(pool, remaining, per_participant_visit=1, max_participants=2)
    assert {c.participant for c in chosen.chosen} == {"LIM-001", "LIM-002"}
    assert len(chosen.chosen) == 4


@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.sampled_from(["BL", "M2"]), st.integers(0, 3)), max_size=30
    ),
    st.integers(1, 4),
    st.booleans(),
)
def test_never_more_than_asked_and_never_the_last_without_leave(specs, per, allow_last):
    pool = [tube(n, participant=p, visit=v, thaws=t) for n, (p, v, t) in enumerate(specs)]
    remaining: dict = {}
    for c in pool:
        remaining[c.group] = remaining.get(c.group, 0) + 1
    chosen = select(pool, remaining, per_participant_visit=per, allow_last=allow_last)
    taken: dict = {}
    for c in chosen.chosen:
        taken[c.group] = taken.get(c.group, 0) + 1
    for group, n in taken.items():
        assert n <= per
        assert allow_last or n < remaining[group]
    assert [c.walk for c in chosen.chosen] == sorted(c.walk for c in chosen.chosen)
