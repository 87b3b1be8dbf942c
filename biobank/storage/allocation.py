"""Proposing storage positions for the aliquots of one or many visits: a pure planner.

The service layer loads the free positions and the aliquots to store in a few set-based
queries, calls `plan_positions`, shows the plan and lets the technician confirm or edit
it. Nothing here touches the database, so the plan is only a proposal: the unique
constraints on stored positions stay what guarantees one aliquot per position.

How the planner decides, in the priority order of ISBER practice:

1. A slot is used at most once, and only slots given are used (duplicates are merged).
2. Freezers first. The aliquots of one specimen go to two freezers, ceil(n/2) and
   floor(n/2), whenever at least two freezers of its temperature class still have room,
   so that one freezer failure never takes a whole time point. Which of the two gets the
   larger half alternates from one odd-sized specimen to the next: one visit's SST 3 + 2
   and EDTA 2 + 3 leaves five aliquots of the visit in each freezer. All specimens of a
   participant go to the same two freezers (those holding its boxes first, then those
   with open boxes, then any, in the order of their first box) as long as both can take
   an even split, so the participant needs one box in each, not one in every freezer;
   when they cannot, an even split elsewhere wins over keeping the participant's freezers.
   With too little room anywhere for an even split, each freezer takes what it can, and
   the plan says so.
3. Then boxes, inside each freezer. A participant's aliquots for that freezer (all of its
   visits in the plan) form one block, laid down contiguously: first in the boxes already
   holding only this participant (`Slot.box_participant`), then in the open boxes (empty
   or mixed, `box_participant` None). Open boxes are shared: participants follow one
   another in fill order, because a box per participant per plan would open 2,000 boxes
   for the 1,000 visits of a batch and leave most of each empty. A block that does not fit
   in what is left of the current box starts the next box when it fits there whole, so a
   participant straddles two boxes only when its block is larger than a box. A box that
   holds another participant is kept for that participant's later visits and is used,
   like the ends of boxes left behind, only when the freezer has no open box left; the
   plan then says so in a note.
4. Within a box, positions are taken in fill order from the first free one, so the plan
   never leaves a free position before a used one (holes left by earlier withdrawals are
   filled first); boxes are opened in `box_order`.
5. Same input, same plan, whatever the order of `needs` and `slots`: everything is sorted
   on full keys (participant, visit order, specimen, aliquot; box order, box, position).

Temperature: `Need.temperature_class` says what an aliquot needs, and `Slot` has no class.
Either pass `freezer_classes` (freezer id → class) and the planner keeps each class to its
freezers, or leave it out and pass only slots of freezers of the needs' single class (then
needs of two classes are refused: the planner could not tell which slot suits which).

Cost: slots and needs are sorted once, grouped into boxes and freezers once, then each
aliquot is assigned in O(1) amortised with a cursor per list of boxes; choosing the two
freezers of a specimen looks at each freezer of the class, a handful in any biobank.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter


@dataclass(frozen=True)
class Slot:
    """A free position: the caller passes only positions nobody holds."""

    box_id: int
    freezer_id: int
    # The order boxes are filled in within the whole biobank (shelf, rack, box), from the
    # caller; unique per box.
    box_order: int
    # 0-based index in the box's fill order (row-major).
    position: int
    # The participant whose aliquots are the only ones already in this box; None for an
    # empty box or a box holding several participants.
    box_participant: str | None = None


@dataclass(frozen=True)
class Need:
    """An aliquot to store."""

    aliquot_id: int
    specimen_id: int  # the primary tube the aliquot was made from
    participant: str  # study code
    visit_order: int  # order of the visit in the schedule
    temperature_class: str  # e.g. "-80"


@dataclass(frozen=True)
class Placement:
    """The slot proposed for one aliquot."""

    aliquot_id: int
    box_id: int
    position: int


@dataclass(frozen=True)
class Plan:
    """A proposal for the technician to confirm or edit; nothing is stored yet."""

    # In the order the technician puts the tubes away: box order, then position.
    placements: tuple[Placement, ...]
    unplaced: tuple[int, ...]  # aliquot ids with no room, ascending
    notes: tuple[str, ...]  # what the technician should know before confirming


class _Box:
    __slots__ = ("box_id", "freezer_id", "order", "owner", "positions", "used")

    def __init__(self, box_id: int, freezer_id: int, order: int, owner: str | None) -> None:
        self.box_id = box_id
        self.freezer_id = freezer_id
        self.order = order
        self.owner = owner
        self.positions: list[int] = []
        self.used = 0

    def left(self) -> int:
        return len(self.positions) - self.used

    def take(self, count: int) -> list[int]:
        start = self.used
        self.used += count
        return self.positions[start : self.used]


class _Cursor:
    """Walks a list of boxes in fill order; a box it has passed never gets room back."""

    __slots__ = ("boxes", "index")

    def __init__(self, boxes: list[_Box]) -> None:
        self.boxes = boxes
        self.index = 0

    def current(self) -> _Box | None:
        while self.index < len(self.boxes) and self.boxes[self.index].left() == 0:
            self.index += 1
        return self.boxes[self.index] if self.index < len(self.boxes) else None

    def following(self) -> _Box | None:
        nxt = self.index + 1
        return self.boxes[nxt] if nxt < len(self.boxes) else None


class _Freezer:
    __slots__ = (
        "borrowed",
        "boxes",
        "ends",
        "freezer_id",
        "open",
        "open_left",
        "others",
        "own",
        "own_left",
    )

    def __init__(self, freezer_id: int, boxes: list[_Box]) -> None:
        self.freezer_id = freezer_id
        self.boxes = boxes  # in fill order; boxes[0] ranks the freezer
        self.own: dict[str, list[_Box]] = defaultdict(list)
        self.own_left: Counter[str] = Counter()
        open_boxes: list[_Box] = []
        reserved: list[_Box] = []
        for box in boxes:
            if box.owner is None:
                open_boxes.append(box)
            else:
                self.own[box.owner].append(box)
                self.own_left[box.owner] += len(box.positions)
                reserved.append(box)
        self.open = _Cursor(open_boxes)
        # Room still reachable through `open`: box ends skipped over are not.
        self.open_left = sum(len(box.positions) for box in open_boxes)
        # Separate cursors for the last resort, so that it too never walks a box twice.
        self.ends = _Cursor(open_boxes)
        self.others = _Cursor(reserved)
        self.borrowed = 0

    def room(self) -> int:
        return sum(len(box.positions) for box in self.boxes)

    def take(self, participant: str, count: int) -> list[tuple[_Box, int]]:
        """`count` positions for one participant's block, kept together as rule 3 says."""
        got: list[tuple[_Box, int]] = []
        for box in self.own.get(participant, ()):
            if len(got) == count:
                break
            got.extend((box, p) for p in box.take(min(box.left(), count - len(got))))
        self.own_left[participant] -= len(got)
        while len(got) < count and (box := self.open.current()) is not None:
            rest = count - len(got)
            after = self.open.following()
            if box.left() < rest and after is not None and after.left() >= rest:
                # Leaving this box's end free keeps the participant in one box; the end is
                # used when the freezer has no open box left.
                self.open_left -= box.left()
                self.open.index += 1
                continue
            taken = box.take(min(box.left(), rest))
            self.open_left -= len(taken)
            got.extend((box, p) for p in taken)
        if len(got) < count:
            # Ends of open boxes before other participants' boxes: a mixed box loses nothing
            # from one more participant, a participant's box would stop being theirs.
            before = len(got)
            for cursor in (self.ends, self.others):
                while len(got) < count and (box := cursor.current()) is not None:
                    taken = box.take(min(box.left(), count - len(got)))
                    if box.owner is not None:
                        self.own_left[box.owner] -= len(taken)
                    got.extend((box, p) for p in taken)
            self.borrowed += len(got) - before
        return got


def _need_key(need: Need) -> tuple:
    return (need.participant, need.visit_order, need.specimen_id, need.aliquot_id)


def _freezers(slots: Sequence[Slot]) -> list[_Freezer]:
    """Boxes and freezers, in fill order; freezers ranked by their first box."""
    boxes: dict[int, _Box] = {}
    seen: set[tuple[int, int]] = set()
    for slot in sorted(slots, key=attrgetter("box_order", "box_id", "position")):
        box = boxes.get(slot.box_id)
        if box is None:
            box = boxes[slot.box_id] = _Box(
                slot.box_id, slot.freezer_id, slot.box_order, slot.box_participant
            )
        elif (box.freezer_id, box.order, box.owner) != (
            slot.freezer_id,
            slot.box_order,
            slot.box_participant,
        ):
            raise ValueError(f"box {slot.box_id}: slots disagree on freezer, order or owner")
        if (slot.box_id, slot.position) not in seen:
            seen.add((slot.box_id, slot.position))
            box.positions.append(slot.position)
    by_freezer: dict[int, list[_Box]] = defaultdict(list)
    for box in boxes.values():  # insertion order is fill order
        by_freezer[box.freezer_id].append(box)
    freezers = [_Freezer(fid, fboxes) for fid, fboxes in by_freezer.items()]
    freezers.sort(key=lambda f: (f.boxes[0].order, f.freezer_id))
    return freezers


def _split(
    count: int, candidates: list[int], room: dict[int, int], larger_first: bool
) -> dict[int, int]:
    """How many aliquots of one specimen each freezer takes (rule 2), within its room."""
    larger, smaller = (count + 1) // 2, count // 2
    # An even split outranks keeping the participant's freezers (rule 2 before rule 3):
    # freezers that can hold the larger half come first, in the participant's order.
    able = [fid for fid in candidates if room[fid] >= larger]
    order = able + [fid for fid in candidates if room[fid] < larger]
    if len(order) == 1:
        return {order[0]: min(count, room[order[0]])}
    first, second = order[0], order[1]
    if not larger_first:
        larger, smaller = smaller, larger
    shares = {first: min(larger, room[first]), second: min(smaller, room[second])}
    rest = count - shares[first] - shares[second]
    for freezer in order:
        if rest == 0:
            break
        extra = min(rest, room[freezer] - shares.get(freezer, 0))
        if extra > 0:
            shares[freezer] = shares.get(freezer, 0) + extra
            rest -= extra
    return {freezer: share for freezer, share in shares.items() if share > 0}


def _plan_class(
    label: str, needs: list[Need], freezers: list[_Freezer], notes: list[str]
) -> tuple[list[tuple[int, int, int, int]], list[int]]:
    by_id = {f.freezer_id: f for f in freezers}
    rank = {f.freezer_id: i for i, f in enumerate(freezers)}
    # Exact: it bounds every share, so each share is sure to find its positions.
    room = {f.freezer_id: f.room() for f in freezers}
    placed: list[tuple[int, int, int, int]] = []
    unplaced: list[int] = []
    larger_first = True
    for participant, group in groupby(needs, key=attrgetter("participant")):
        specimens: dict[int, list[Need]] = defaultdict(list)
        for need in group:
            specimens[need.specimen_id].append(need)
        # Estimates, only to order the candidate freezers: those the participant already
        # goes to in this plan, those holding its boxes, those whose open boxes can take
        # half of its aliquots, then any freezer with room.
        half = (sum(len(aliquots) for aliquots in specimens.values()) + 1) // 2
        own = {fid: by_id[fid].own_left[participant] for fid in rank}
        open_left = {fid: by_id[fid].open_left for fid in rank}
        blocks: dict[int, list[Need]] = defaultdict(list)
        for specimen_id, aliquots in specimens.items():
            aliquots.sort(key=attrgetter("aliquot_id"))
            # Freezers already chosen keep the order they were chosen in, so that the larger
            # half alternates between the same two freezers.
            chosen = {fid: i for i, fid in enumerate(blocks)}
            candidates = sorted(
                (fid for fid in rank if room[fid] > 0),
                key=lambda fid: (
                    (0, chosen[fid])
                    if fid in chosen
                    else (1 if own[fid] > 0 else 2 if open_left[fid] >= half else 3, rank[fid])
                ),
            )
            split = _split(len(aliquots), candidates, room, larger_first) if candidates else {}
            if len(aliquots) % 2 and len(candidates) > 1:
                larger_first = not larger_first
            start = 0
            for fid, share in split.items():
                blocks[fid].extend(aliquots[start : start + share])
                start += share
                room[fid] -= share
                mine = min(share, own[fid])
                own[fid] -= mine
                open_left[fid] -= share - mine
            unplaced.extend(need.aliquot_id for need in aliquots[start:])
            _note_split(specimen_id, split, notes)
        for fid in sorted(blocks, key=rank.__getitem__):
            block = sorted(blocks[fid], key=_need_key)
            positions = by_id[fid].take(participant, len(block))
            placed.extend(
                (box.order, box.box_id, pos, need.aliquot_id)
                for need, (box, pos) in zip(block, positions, strict=True)
            )
    for freezer in freezers:
        if freezer.borrowed:
            notes.append(
                f"freezer {freezer.freezer_id}: no empty box left; {freezer.borrowed} "
                "aliquot(s) placed at the end of partly filled boxes or in boxes of other "
                "participants"
            )
    if unplaced:
        notes.append(f"no room for {len(unplaced)} aliquot(s) of temperature class {label}")
    return placed, unplaced


def _note_split(specimen_id: int, split: dict[int, int], notes: list[str]) -> None:
    placed = sum(split.values())
    if placed < 2:
        return
    if len(split) == 1:
        (freezer,) = split
        notes.append(
            f"only one freezer has room: specimen {specimen_id} kept in one freezer "
            f"({placed} aliquots in freezer {freezer})"
        )
    elif max(split.values()) - min(split.values()) > 1 or len(split) > 2:
        parts = " + ".join(f"{share} in freezer {fid}" for fid, share in split.items())
        notes.append(f"specimen {specimen_id} split unevenly for lack of room: {parts}")


def plan_positions(
    needs: Sequence[Need],
    slots: Sequence[Slot],
    *,
    freezer_classes: Mapping[int, str] | None = None,
) -> Plan:
    """Propose a free slot for each aliquot in `needs`, following the module's rules.

    `freezer_classes` maps each freezer id of `slots` to its temperature class; without it
    every slot is taken to suit the needs, which must then share one class. Aliquots left
    without room are in `Plan.unplaced`; anything the technician should know (a specimen
    kept in one freezer, a freezer out of empty boxes, aliquots without room) is in
    `Plan.notes`. Raises ValueError on inconsistent input (an aliquot id twice, slots of
    one box naming different freezers, orders or owners, a freezer without a class).
    """
    ids = Counter(need.aliquot_id for need in needs)
    twice = sorted(aliquot for aliquot, n in ids.items() if n > 1)
    if twice:
        raise ValueError(f"aliquots given twice: {twice}")
    classes = sorted({need.temperature_class for need in needs})
    if freezer_classes is None:
        if len(classes) > 1:
            raise ValueError(
                f"needs of several temperature classes {classes}: pass freezer_classes"
            )
        slots_by_class = {cls: list(slots) for cls in classes}
    else:
        missing = sorted({s.freezer_id for s in slots} - freezer_classes.keys())
        if missing:
            raise ValueError(f"freezers without a temperature class: {missing}")
        slots_by_class = defaultdict(list)
        for slot in slots:
            slots_by_class[freezer_classes[slot.freezer_id]].append(slot)

    needs_by_class: dict[str, list[Need]] = defaultdict(list)
    for need in sorted(needs, key=_need_key):
        needs_by_class[need.temperature_class].append(need)

    placed: list[tuple[int, int, int, int]] = []
    unplaced: list[int] = []
    notes: list[str] = []
    for cls in classes:
        freezers = _freezers(slots_by_class.get(cls, []))
        class_placed, class_unplaced = _plan_class(cls, needs_by_class[cls], freezers, notes)
        placed.extend(class_placed)
        unplaced.extend(class_unplaced)
    placed.sort()
    return Plan(
        placements=tuple(Placement(aliquot, box, pos) for _, box, pos, aliquot in placed),
        unplaced=tuple(sorted(unplaced)),
        notes=tuple(notes),
    )
