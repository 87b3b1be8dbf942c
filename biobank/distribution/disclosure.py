"""The small-cell rule: what someone who may not see participant-level data is shown of
the catalogue's counts. One rule, ``shown``, turns every true count (participants,
aliquots, last aliquots held back) into the count shown, on the catalogue page, the
request form, and their API.

The rule, for a threshold *t* (``CATALOGUE_SMALL_CELL``) and a base *b*
(``CATALOGUE_ROUNDING_BASE``):

- a count below *t*, zero included, is shown as "< t";
- any other count is shown as the range of *b* values it falls in, the ranges starting at
  *t*: t to t+b−1, t+b to t+2b−1, and so on (with t = b = 5: "< 5", "5–9", "10–14"…);
- the catalogue lists every combination the protocol plans (arm × visit × sample type,
  within the filters), empty or not, so that a row's presence tells nothing; one of fewer
  than *t* participants shows "< t" and no aliquot count (its aliquots would tell it is
  not empty, which is all a zero hidden under "< t" keeps secret);
- the total volume is shown only with exact counts: the difference of two volumes would
  count the aliquots of a small cell, in microlitres.

Those who may see participant-level data (``Permission.VIEW_SAMPLES``) see exact counts.

Why ranges and not exact counts above the threshold: with exact counts, "de novo or
relapsed: 4" and "de novo: 3" tell that one relapsed participant is there, whatever
"relapsed" alone shows. Why zero is hidden too: if "< 3" meant 1 or 2, then "de novo: < 3",
"relapsed: < 3" and "de novo or relapsed: < 3" could only be 1, 1 and 2.

What the rule guarantees, for t ≥ 3 and b ≥ t − 1 (the settings are checked at every
use; tests/security/test_small_cells.py tests the guarantee), for any two filters A and B
whose participants are nested (every participant A counts, B counts: B asks for more
disease statuses, arms, visits or sample types, or less volume or more thaws), d being
the number of participants B counts and A does not:

1. the two shown counts never prove that d is between 1 and t − 1: the values of d they
   leave possible always include 0 or a value of t or more;
2. when a third filter C counts at least those d participants (B∖A itself, "relapsed"
   above) and is shown "< t", the values of d, and those of C's count, that the three
   shown counts leave possible never come down to a single value from 1 to t − 1.

What it does not guarantee: combining many filters can narrow a count further, as with
any rule that shows each count on its own. With t = 3, three disjoint groups whose unions
by two are each "< 3" while the three together are shown are each exactly 1 (one cell's
three disease statuses do that); with t = b = 5 no three disjoint groups can be pinned
from the counts of all their unions (checked exhaustively), four can. Hence the default
of 5. A bank that must resist a determined user combining many filters should not give
such users free filtering.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from biobank.auth.roles import Permission
from biobank.distribution import services
from biobank.distribution.criteria import Criteria
from biobank.study import services as study

LOWEST_THRESHOLD = 3


@dataclass(frozen=True)
class Shown:
    """A count as shown: exact (``low == high``), a range ``low``–``high``, or
    suppressed: fewer than ``high + 1``, zero included (``low`` None)."""

    low: int | None
    high: int

    @property
    def suppressed(self) -> bool:
        return self.low is None

    @property
    def exact(self) -> bool:
        return self.low == self.high

    def __str__(self) -> str:
        if self.low is None:
            return f"< {self.high + 1}"
        if self.low == self.high:
            return str(self.low)
        return f"{self.low}–{self.high}"


def check_settings(threshold: int, base: int) -> None:
    """Refuse settings under which the guarantee does not hold: with a threshold of 2, a
    count shown "< 2" next to one shown "2–…" differing by one participant pins it; with a
    base below t − 1, a range narrower than the small cells lets a difference of two
    ranges skip over them (threshold 3, exact counts: "< 3" and "4" make the difference
    exactly 2)."""
    if threshold < LOWEST_THRESHOLD or base < threshold - 1:
        raise RuntimeError(
            f"CATALOGUE_SMALL_CELL must be at least {LOWEST_THRESHOLD} and "
            f"CATALOGUE_ROUNDING_BASE at least CATALOGUE_SMALL_CELL − 1, not {threshold} and "
            f"{base}: counts could then be worked out from the difference of two others."
        )


def shown(count: int, *, threshold: int, base: int, exact: bool = False) -> Shown:
    """The count shown for a true ``count``: the rule of this module's docstring."""
    if exact:
        return Shown(count, count)
    check_settings(threshold, base)
    if count < threshold:
        return Shown(None, threshold - 1)
    low = threshold + (count - threshold) // base * base
    return Shown(low, low + base - 1)


def settings() -> tuple[int, int]:
    """The threshold and the base, as configured."""
    config = current_app.config
    threshold, base = int(config["CATALOGUE_SMALL_CELL"]), int(config["CATALOGUE_ROUNDING_BASE"])
    check_settings(threshold, base)
    return threshold, base


def shown_count(count: int, *, exact: bool) -> Shown:
    """``shown`` with the configured threshold and base."""
    threshold, base = settings()
    return shown(count, threshold=threshold, base=base, exact=exact)


def sees_exact(actor) -> bool:
    """Whoever may see participant-level data gets exact counts."""
    may = getattr(actor, "may", None)
    return bool(may and may(Permission.VIEW_SAMPLES))


# --- the catalogue and the match count, as shown ----------------------------------------


@dataclass(frozen=True)
class ShownRow:
    arm: str
    visit: str
    sample_type: str
    participants: Shown
    aliquots: Shown | None  # None when the participants are suppressed
    volume_ul: int | None  # exact counts only


def catalogue(criteria: Criteria, *, actor) -> list[ShownRow]:
    """The catalogue as ``actor`` may see it: exact, or every planned combination with
    its counts as ranges and those of fewer than the threshold's participants as "< t"."""
    exact = sees_exact(actor)
    found = services.catalogue(criteria, actor=actor)
    if exact:
        return [
            ShownRow(
                r.arm, r.visit, r.sample_type, Shown(r.participants, r.participants),
                Shown(r.aliquots, r.aliquots), r.volume_ul,
            )
            for r in found
        ]  # fmt: skip
    counts = {(r.arm, r.visit, r.sample_type): r for r in found}
    rows = []
    for key in _planned(criteria) | counts.keys():
        row = counts.get(key)
        participants = shown_count(row.participants if row else 0, exact=False)
        aliquots = None if participants.suppressed else shown_count(row.aliquots, exact=False)
        rows.append(ShownRow(*key, participants, aliquots, None))
    order = {v.code: v.order for v in study.current_protocol().visit_definitions}
    return sorted(rows, key=lambda r: (r.arm, order.get(r.visit, len(order)), r.sample_type))


def _planned(criteria: Criteria) -> set[tuple[str, str, str]]:
    """The combinations the protocol plans, within the filters: arm × visit of that arm ×
    sample type of that visit's tubes."""
    protocol = study.current_protocol()
    tube_types = {t.code: t.sample_type for t in protocol.tube_types}
    planned = set()
    for visit in protocol.visit_definitions:
        if criteria.visits and visit.code not in criteria.visits:
            continue
        for arm in visit.arms:
            if criteria.arms and arm.code not in criteria.arms:
                continue
            for plan in visit.sample_plans:
                sample_type = tube_types.get(plan.tube_type)
                if sample_type and (
                    not criteria.sample_types or sample_type in criteria.sample_types
                ):
                    planned.add((arm.code, visit.code, sample_type))
    return planned


@dataclass(frozen=True)
class ShownMatch:
    participants: Shown
    # None when the participants are suppressed: fewer than the threshold, nothing more.
    aliquots: Shown | None
    held_back: Shown | None


def match_count(criteria: Criteria, *, actor) -> ShownMatch:
    """How many participants and aliquots a request with these criteria would get, as
    ``actor`` may see it."""
    exact = sees_exact(actor)
    count = services.match_count(criteria, actor=actor)
    participants = shown_count(count.participants, exact=exact)
    if participants.suppressed:
        return ShownMatch(participants, None, None)
    return ShownMatch(
        participants,
        shown_count(count.aliquots, exact=exact),
        shown_count(count.held_back, exact=exact),
    )
