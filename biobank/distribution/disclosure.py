"""The small-cell rule: what someone who may not see participant-level data is shown of
the catalogue's counts. One rule, ``shown``, turns every true count (participants,
aliquots, last aliquots held back) into the count shown, on the catalogue page, the
request form, and their API.

The rule, for a threshold *t* (``CATALOGUE_SMALL_CELL``) and a base *b*
(``CATALOGUE_ROUNDING_BASE``):

- a count below *t*, zero included, is shown as "< t";
- any other count is shown as the range of *b* values it falls in, the ranges starting at
  *t*: t to t+b−1, t+b to t+2b−1, and so on (with t = b = 5: "< 5", "5–9", "10–14"…);
- a catalogue combination (arm × visit × sample type) of fewer than *t* participants is
  not listed at all, and with it go its aliquots: a row shown as "< t" would tell that
  the combination is not empty, which is all a zero hidden under "< t" keeps secret;
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
the number of participants B counts and A does not (a combination not listed counting as
"< t"):

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
    aliquots: Shown
    volume_ul: int | None  # exact counts only


def catalogue(criteria: Criteria, *, actor) -> list[ShownRow]:
    """The catalogue as ``actor`` may see it: exact, or without the combinations of fewer
    than the threshold's participants and with the other counts as ranges."""
    exact = sees_exact(actor)
    rows = []
    for row in services.catalogue(criteria, actor=actor):
        participants = shown_count(row.participants, exact=exact)
        if participants.suppressed:
            continue
        rows.append(
            ShownRow(
                row.arm,
                row.visit,
                row.sample_type,
                participants,
                shown_count(row.aliquots, exact=exact),
                row.volume_ul if exact else None,
            )
        )
    return rows


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
