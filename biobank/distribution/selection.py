"""Which aliquots to hand out for a request: a pure function of the candidates.

The rules, in order:
- at most ``per_participant_visit`` aliquots of each participant × visit × sample type;
- never the last one the bank holds of that participant × visit × sample type, unless the
  manager overrides (the group is then reported as held back, so the manager sees what an
  override would add);
- among a group's candidates, fewer freeze–thaw cycles first (each thaw degrades VEGF and
  other proteins), then the copy kept in the less-filled freezer (taking from it keeps
  room where the bank is short of it, and the copies in the fuller freezer stay as the
  back-up), then the freezer walk order so that a pick stays short.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

Group = tuple[int, str, str]  # participant id, visit code, sample type


@dataclass(frozen=True)
class Candidate:
    aliquot_id: int
    barcode: str
    participant_id: int
    participant: str
    visit: str
    sample_type: str
    volume_ul: int
    freeze_thaw: int
    freezer_fill: float  # 0–1: how full the freezer holding it is
    walk: tuple  # the position in the freezer walk (freezer, shelf, rack, box, row, col)

    @property
    def group(self) -> Group:
        return (self.participant_id, self.visit, self.sample_type)


@dataclass(frozen=True)
class Selection:
    chosen: list[Candidate]
    # The aliquots of groups emptied by this request, taken only because the manager
    # overrode the rule: the override reason is recorded on each of them.
    last_ones: list[Candidate]
    # Groups that would get more with an override: group → how many were held back.
    held_back: dict[Group, int]

    @property
    def participants(self) -> int:
        return len({c.participant_id for c in self.chosen})


def preference(candidate: Candidate) -> tuple:
    return (candidate.freeze_thaw, candidate.freezer_fill, candidate.walk, candidate.barcode)


def select(
    candidates: list[Candidate],
    remaining: dict[Group, int],
    *,
    per_participant_visit: int,
    max_participants: int | None = None,
    allow_last: bool = False,
) -> Selection:
    """Choose aliquots from ``candidates`` (those matching the request's criteria).

    ``remaining`` counts, per group, every aliquot the bank still holds unreserved,
    matching or not: a group whose other aliquots are too small for this request still
    keeps one.
    """
    by_group: dict[Group, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_group[candidate.group].append(candidate)
    chosen: list[Candidate] = []
    last_ones: list[Candidate] = []
    held_back: dict[Group, int] = {}
    participants: set[int] = set()
    for group in sorted(by_group, key=lambda g: (by_group[g][0].participant, g[1], g[2])):
        full = max_participants is not None and len(participants) >= max_participants
        if full and group[0] not in participants:
            continue
        pool = sorted(by_group[group], key=preference)
        wanted = min(per_participant_visit, len(pool))
        keep_one = max(0, remaining.get(group, len(pool)) - 1)
        allowed = wanted if allow_last else min(wanted, keep_one)
        if allowed < wanted:
            held_back[group] = wanted - allowed
        if allowed == 0:
            continue
        taken = pool[:allowed]
        chosen.extend(taken)
        if allowed > keep_one:
            last_ones.extend(taken)
        participants.add(group[0])
    chosen.sort(key=lambda c: c.walk)
    return Selection(chosen, last_ones, held_back)
