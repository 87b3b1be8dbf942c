"""The position planner: written-out scenarios, then properties over random freezers."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biobank.storage.allocation import Need, Placement, Plan, Slot, plan_positions


def specimen(specimen_id, participant, aliquot_ids, visit_order=1, temperature="-80"):
    return [Need(a, specimen_id, participant, visit_order, temperature) for a in aliquot_ids]


def visit(participant, sst, edta, visit_order=1):
    """One visit of the protocol: an SST tube gives 5 serum aliquots, an EDTA tube 5 plasma;
    aliquot ids are the specimen id times ten plus 1 to 5."""
    return [
        *specimen(sst, participant, range(sst * 10 + 1, sst * 10 + 6), visit_order),
        *specimen(edta, participant, range(edta * 10 + 1, edta * 10 + 6), visit_order),
    ]


def box(box_id, freezer_id, order, positions=range(9), participant=None):
    return [Slot(box_id, freezer_id, order, p, participant) for p in positions]


def where(plan: Plan) -> dict[int, tuple[int, int]]:
    return {p.aliquot_id: (p.box_id, p.position) for p in plan.placements}


def test_one_visit_each_into_two_empty_freezers():
    needs = visit("P-001", sst=10, edta=11) + visit("P-002", sst=20, edta=21)
    slots = box(1, 1, 1) + box(2, 1, 2) + box(3, 2, 3) + box(4, 2, 4)

    plan = plan_positions(needs, slots)

    # Serum 3 + 2 and plasma 2 + 3: five aliquots of each visit in each freezer, in one box.
    # P-002's five do not fit the four positions left in box 1, so they start box 2.
    assert where(plan) == {
        101: (1, 0), 102: (1, 1), 103: (1, 2), 111: (1, 3), 112: (1, 4),
        104: (3, 0), 105: (3, 1), 113: (3, 2), 114: (3, 3), 115: (3, 4),
        201: (2, 0), 202: (2, 1), 203: (2, 2), 211: (2, 3), 212: (2, 4),
        204: (4, 0), 205: (4, 1), 213: (4, 2), 214: (4, 3), 215: (4, 4),
    }  # fmt: skip
    assert plan.unplaced == ()
    assert plan.notes == ()
    # In the order the tubes are put away.
    assert [(p.box_id, p.position) for p in plan.placements] == sorted(where(plan).values())


def test_only_one_freezer_with_room_keeps_everything_there_and_says_so():
    plan = plan_positions(visit("P-001", sst=10, edta=11), box(1, 1, 1, range(81)))

    assert where(plan) == {
        101: (1, 0), 102: (1, 1), 103: (1, 2), 104: (1, 3), 105: (1, 4),
        111: (1, 5), 112: (1, 6), 113: (1, 7), 114: (1, 8), 115: (1, 9),
    }  # fmt: skip
    assert plan.notes == (
        "only one freezer has room: specimen 10 kept in one freezer (5 aliquots in freezer 1)",
        "only one freezer has room: specimen 11 kept in one freezer (5 aliquots in freezer 1)",
    )


def test_a_box_already_holding_the_participant_is_preferred():
    needs = visit("P-001", sst=30, edta=31, visit_order=2) + visit("P-002", sst=40, edta=41)
    slots = (
        box(1, 1, 1, range(81))
        + box(2, 1, 2, range(4, 81), participant="P-001")  # P-001's baseline is in 0-3
        + box(3, 2, 3, range(81))
        + box(4, 2, 4, range(2, 81), participant="P-009")
    )

    plan = plan_positions(needs, slots)

    assert where(plan) == {
        # P-001 joins its own box in freezer 1, and opens box 3 in freezer 2.
        301: (2, 4), 302: (2, 5), 303: (2, 6), 311: (2, 7), 312: (2, 8),
        304: (3, 0), 305: (3, 1), 313: (3, 2), 314: (3, 3), 315: (3, 4),
        # P-002 takes the empty box, not P-001's; P-009's box is left for P-009.
        401: (1, 0), 402: (1, 1), 403: (1, 2), 411: (1, 3), 412: (1, 4),
        404: (3, 5), 405: (3, 6), 413: (3, 7), 414: (3, 8), 415: (3, 9),
    }  # fmt: skip
    assert plan.notes == ()


def test_the_participants_freezer_comes_first_even_when_ranked_later():
    slots = box(1, 1, 1, range(81)) + box(2, 2, 2, range(81)) + box(3, 3, 3, range(5, 81), "P-7")

    plan = plan_positions(visit("P-7", sst=10, edta=11), slots)

    assert {box_id for box_id, _ in where(plan).values()} == {1, 3}
    assert [where(plan)[a] for a in (101, 102, 103, 111, 112)] == [(3, p) for p in range(5, 10)]


def test_an_even_split_outranks_the_participants_nearly_full_box():
    slots = box(1, 1, 1, range(81)) + box(2, 2, 2, range(81)) + box(3, 3, 3, [80], "P-7")

    plan = plan_positions(visit("P-7", sst=10, edta=11), slots)

    assert where(plan) == {
        101: (1, 0), 102: (1, 1), 103: (1, 2), 111: (1, 3), 112: (1, 4),
        104: (2, 0), 105: (2, 1), 113: (2, 2), 114: (2, 3), 115: (2, 4),
    }  # fmt: skip


def test_a_block_larger_than_a_box_runs_on_from_the_current_box():
    needs = [*specimen(1, "P-A", [1]), *specimen(2, "P-B", range(2, 10))]

    plan = plan_positions(needs, box(1, 1, 1, range(6)) + box(2, 1, 2, range(6)))

    assert where(plan) == {
        1: (1, 0), 2: (1, 1), 3: (1, 2), 4: (1, 3), 5: (1, 4), 6: (1, 5),
        7: (2, 0), 8: (2, 1), 9: (2, 2),
    }  # fmt: skip


def test_boxes_and_positions_filled_in_order_holes_first():
    needs = [
        *specimen(1, "P-A", [1, 2]),
        *specimen(2, "P-B", [3, 4]),
        *specimen(3, "P-C", [5, 6]),
        *specimen(4, "P-D", [7, 8, 9, 10]),
        *specimen(5, "P-E", [11, 12]),
    ]
    # Box 11 holds other aliquots at 0, 1, 3 and 4; slots come in no particular order.
    slots = list(
        reversed(box(11, 1, 1, [2, 5, 6, 7, 8]) + box(12, 1, 2) + box(21, 2, 3) + box(22, 2, 4))
    )

    plan = plan_positions(needs, slots)

    assert where(plan) == {
        1: (11, 2), 3: (11, 5), 5: (11, 6), 7: (11, 7), 8: (11, 8), 11: (12, 0),
        2: (21, 0), 4: (21, 1), 6: (21, 2), 9: (21, 3), 10: (21, 4), 12: (21, 5),
    }  # fmt: skip
    assert plan.notes == ()


def test_box_ends_left_for_whole_blocks_are_used_when_no_open_box_is_left():
    needs = [
        *specimen(1, "P-A", [1, 2, 3, 4]),
        *specimen(2, "P-A", [5, 6, 7, 8]),
        *specimen(3, "P-B", [9, 10, 11, 12]),
        *specimen(4, "P-B", [13, 14, 15, 16]),
        *specimen(5, "P-C", [17, 18, 19, 20]),
        *specimen(6, "P-C", [21, 22, 23, 24]),
    ]
    six = range(6)
    slots = box(1, 1, 1, six) + box(2, 1, 2, six) + box(3, 2, 3, six) + box(4, 2, 4, six)

    plan = plan_positions(needs, slots)

    assert where(plan) == {
        1: (1, 0), 2: (1, 1), 5: (1, 2), 6: (1, 3),
        3: (3, 0), 4: (3, 1), 7: (3, 2), 8: (3, 3),
        9: (2, 0), 10: (2, 1), 13: (2, 2), 14: (2, 3),
        11: (4, 0), 12: (4, 1), 15: (4, 2), 16: (4, 3),
        # Every position is needed at the end: P-C finishes box 2 and takes box 1's end.
        17: (2, 4), 18: (2, 5), 21: (1, 4), 22: (1, 5),
        19: (4, 4), 20: (4, 5), 23: (3, 4), 24: (3, 5),
    }  # fmt: skip
    assert plan.notes == tuple(
        f"freezer {f}: no empty box left; 2 aliquot(s) placed at the end of partly filled "
        "boxes or in boxes of other participants"
        for f in (1, 2)
    )


def test_not_enough_room_leaves_the_rest_unplaced():
    plan = plan_positions(
        visit("P-001", sst=10, edta=11), box(1, 1, 1, range(3)) + box(2, 2, 2, range(3))
    )

    assert where(plan) == {
        101: (1, 0), 102: (1, 1), 103: (1, 2), 104: (2, 0), 105: (2, 1), 111: (2, 2),
    }  # fmt: skip
    assert plan.unplaced == (112, 113, 114, 115)
    assert plan.notes == ("no room for 4 aliquot(s) of temperature class -80",)


def test_nothing_to_place_or_nowhere_to_place():
    assert plan_positions([], box(1, 1, 1)) == Plan((), (), ())
    plan = plan_positions(specimen(1, "P", [1, 2]), [])
    assert plan.placements == ()
    assert plan.unplaced == (1, 2)


def test_a_slot_given_twice_is_used_once():
    plan = plan_positions(specimen(1, "P", [1, 2]), box(1, 1, 1, [0]) * 2)
    assert plan.placements == (Placement(1, 1, 0),)
    assert plan.unplaced == (2,)


def test_temperature_classes_keep_to_their_freezers():
    needs = [
        *specimen(10, "P-001", range(101, 106)),
        *specimen(12, "P-001", [121, 122], temperature="-150"),
    ]
    slots = box(1, 1, 1) + box(2, 2, 2) + box(3, 3, 3)

    plan = plan_positions(needs, slots, freezer_classes={1: "-80", 2: "-150", 3: "-80"})

    assert where(plan) == {
        101: (1, 0), 102: (1, 1), 103: (1, 2), 104: (3, 0), 105: (3, 1),
        121: (2, 0), 122: (2, 1),
    }  # fmt: skip
    assert plan.notes == (
        "only one freezer has room: specimen 12 kept in one freezer (2 aliquots in freezer 2)",
    )


@pytest.mark.parametrize(
    ("needs", "slots", "classes", "message"),
    [
        (
            [*specimen(1, "P", [1]), *specimen(2, "P", [2], temperature="-20")],
            box(1, 1, 1),
            None,
            "pass freezer_classes",
        ),
        (specimen(1, "P", [1]), box(1, 1, 1) + box(2, 2, 2), {1: "-80"}, "without a temperature"),
        (specimen(1, "P", [1, 1]), box(1, 1, 1), None, "given twice"),
        (specimen(1, "P", [1]), box(1, 1, 1, [0]) + box(1, 2, 1, [1]), None, "disagree"),
    ],
)
def test_inconsistent_input_is_refused(needs, slots, classes, message):
    with pytest.raises(ValueError, match=message):
        plan_positions(needs, slots, freezer_classes=classes)


# --- Properties ---------------------------------------------------------------------------

PARTICIPANTS = ["P-1", "P-2", "P-3", "P-4"]
CLASSES = ["-80", "-150"]


@st.composite
def scenarios(draw, classes=(CLASSES[0],), max_specimens=10):
    """Random needs and free slots; boxes of up to 12 positions, some owned, some holed."""
    freezer_count = draw(st.integers(1, 4))
    freezer_classes = {f: draw(st.sampled_from(classes)) for f in range(1, freezer_count + 1)}
    boxes = draw(
        st.lists(
            st.tuples(
                st.integers(1, freezer_count),
                st.lists(st.integers(0, 11), min_size=1, max_size=12, unique=True),
                st.sampled_from([None, None, *PARTICIPANTS]),
            ),
            max_size=10,
        )
    )
    orders = draw(st.permutations(range(len(boxes))))
    slots = [
        Slot(box_id, freezer, orders[box_id - 1], position, owner)
        for box_id, (freezer, positions, owner) in enumerate(boxes, start=1)
        for position in positions
    ]
    specimens = draw(
        st.lists(
            st.tuples(
                st.sampled_from(PARTICIPANTS),
                st.integers(1, 4),
                st.integers(1, 6),
                st.sampled_from(classes),
            ),
            max_size=max_specimens,
        )
    )
    needs, aliquot = [], 0
    for specimen_id, (participant, visit_order, count, temperature) in enumerate(specimens, 1):
        for _ in range(count):
            aliquot += 1
            needs.append(Need(aliquot, specimen_id, participant, visit_order, temperature))
    return needs, slots, freezer_classes


def free_positions(slots):
    """Per box, its free positions in fill order."""
    boxes = defaultdict(set)
    for slot in slots:
        boxes[slot.box_id].add(slot.position)
    return {box_id: sorted(positions) for box_id, positions in boxes.items()}


@given(scenarios(classes=CLASSES))
def test_each_aliquot_gets_one_given_slot_of_its_class_or_is_unplaced(scenario):
    needs, slots, freezer_classes = scenario
    plan = plan_positions(needs, slots, freezer_classes=freezer_classes)

    placed = [p.aliquot_id for p in plan.placements]
    used = [(p.box_id, p.position) for p in plan.placements]
    assert len(set(used)) == len(used)
    assert len(set(placed)) == len(placed)
    assert not set(placed) & set(plan.unplaced)
    assert sorted(placed + list(plan.unplaced)) == sorted(n.aliquot_id for n in needs)

    slot_at = {(s.box_id, s.position): s for s in slots}
    need_of = {n.aliquot_id: n for n in needs}
    for p in plan.placements:
        slot = slot_at[p.box_id, p.position]
        assert freezer_classes[slot.freezer_id] == need_of[p.aliquot_id].temperature_class
    # Nothing is left out while its class has a free slot.
    for temperature in CLASSES:
        wanted = sum(n.temperature_class == temperature for n in needs)
        room = sum(freezer_classes[s.freezer_id] == temperature for s in set(slot_at.values()))
        got = sum(need_of[a].temperature_class == temperature for a in placed)
        assert got == min(wanted, room)


@given(scenarios() | scenarios(max_specimens=3))
def test_specimens_are_split_over_two_freezers_when_two_have_room(scenario):
    needs, slots, _ = scenario
    plan = plan_positions(needs, slots)

    freezer_of = {(s.box_id, s.position): s.freezer_id for s in slots}
    per_freezer = defaultdict(lambda: defaultdict(int))
    for p in plan.placements:
        specimen_id = next(n.specimen_id for n in needs if n.aliquot_id == p.aliquot_id)
        per_freezer[specimen_id][freezer_of[p.box_id, p.position]] += 1
    room = defaultdict(int)
    for box_id, position in set(freezer_of):
        room[freezer_of[box_id, position]] += 1
    ample = sum(r >= len(needs) for r in room.values()) >= 2

    for specimen_id, counts in per_freezer.items():
        if sum(counts.values()) < 2:
            continue
        if ample:
            assert len(counts) == 2
            assert abs(max(counts.values()) - min(counts.values())) <= 1
        elif len(counts) == 1:
            assert any(f"specimen {specimen_id} kept in one freezer" in n for n in plan.notes)


@given(scenarios())
def test_boxes_are_filled_from_their_first_free_position_one_run_per_participant(scenario):
    needs, slots, _ = scenario
    plan = plan_positions(needs, slots)

    free = free_positions(slots)
    participant_of = {n.aliquot_id: n.participant for n in needs}
    runs = defaultdict(list)
    for p in plan.placements:
        runs[p.box_id].append((free[p.box_id].index(p.position), participant_of[p.aliquot_id]))
    for box_id, taken in runs.items():
        assert sorted(i for i, _ in taken) == list(range(len(taken)))  # no gap left
        by_participant = defaultdict(list)
        for index, participant in taken:
            by_participant[participant].append(index)
        for indices in by_participant.values():
            assert max(indices) - min(indices) == len(indices) - 1, box_id


@given(scenarios())
def test_a_participant_fills_its_own_boxes_before_any_other(scenario):
    needs, slots, _ = scenario
    plan = plan_positions(needs, slots)

    free = free_positions(slots)
    owner = {s.box_id: s.box_participant for s in slots}
    freezer = {s.box_id: s.freezer_id for s in slots}
    used = defaultdict(int)
    for p in plan.placements:
        used[p.box_id] += 1
    participant_of = {n.aliquot_id: n.participant for n in needs}
    for p in plan.placements:
        participant = participant_of[p.aliquot_id]
        if owner[p.box_id] == participant:
            continue
        for box_id, box_owner in owner.items():
            if box_owner == participant and freezer[box_id] == freezer[p.box_id]:
                assert used[box_id] == len(free[box_id])


@given(scenarios(classes=CLASSES), st.randoms(use_true_random=False))
def test_same_input_same_plan_whatever_the_order(scenario, random):
    needs, slots, freezer_classes = scenario
    plan = plan_positions(needs, slots, freezer_classes=freezer_classes)
    assert plan_positions(needs, slots, freezer_classes=freezer_classes) == plan

    needs, slots = list(needs), list(slots)
    random.shuffle(needs)
    random.shuffle(slots)
    assert plan_positions(needs, slots, freezer_classes=freezer_classes) == plan
