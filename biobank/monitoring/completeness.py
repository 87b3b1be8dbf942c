"""Collection completeness: which primary tubes the study should hold by a given day,
which it holds, which are missing, per participant, visit and tube type.

Every participant in reach × every visit of their protocol × every tube type of it gets
exactly one status, decided in this order:

- ``collected``: a specimen of that tube type is registered at that visit, whatever
  the dates (a tube in the freezer is never "missing");
- ``not_collected``: the tube is recorded as not drawn at a registered visit;
- ``not_expected``: the participant's arm has no such visit, the visit plans no such
  tube, or the participant left the study or withdrew consent before its window opened;
- otherwise by the window [inclusion + nominal − before, inclusion + nominal + after]
  (its end clipped to the day the participant left or withdrew consent, when that falls
  inside it): ``upcoming`` before it, ``due`` inside it, ``missing`` after it.

Built for the weekly question "what is missing where" over a whole trial: a handful of
queries that select columns only (no ORM object per row, no query per participant), the
protocol's schedule read once per protocol version.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l

from biobank.db import utcnow
from biobank.errors import Invalid
from biobank.extensions import db
from biobank.samples import deviations as deviation_rules
from biobank.samples.deviations import Deviation
from biobank.samples.models import Specimen, UncollectedTube
from biobank.sites.models import Site, today_in
from biobank.sites.services import in_reach
from biobank.study.models import Participant, Protocol, Visit, VisitDefinition
from biobank.study.services import current_protocol

COLLECTED = "collected"
NOT_COLLECTED = "not_collected"
NOT_EXPECTED = "not_expected"
UPCOMING = "upcoming"
DUE = "due"
MISSING = "missing"
STATUSES = (COLLECTED, NOT_COLLECTED, NOT_EXPECTED, UPCOMING, DUE, MISSING)

# The statuses in words, for pages, spreadsheets and the chart.
STATUS_WORDS = {
    COLLECTED: _l("collected"),
    NOT_COLLECTED: _l("not collected"),
    NOT_EXPECTED: _l("not expected"),
    UPCOMING: _l("upcoming"),
    DUE: _l("due (window open)"),
    MISSING: _l("missing (window closed)"),
}
FALLBACK_TIMEZONE = "Europe/Paris"


class Item(NamedTuple):
    """One tube of one visit of one participant, and where it stands."""

    participant: str
    site: str
    arm: str
    visit: str
    tube_type: str
    status: str
    window_from: date | None = None
    window_to: date | None = None
    collected_on: date | None = None
    deviations: tuple[Deviation, ...] = ()
    reason: str | None = None  # not collected: one of NOT_COLLECTED_REASONS
    note: str = ""


@dataclass(frozen=True)
class ScheduledVisit:
    code: str
    name: str
    first_day: int  # study day the window opens: nominal − days allowed before
    last_day: int  # study day it closes: nominal + days allowed after
    arms: frozenset[str]
    tube_types: frozenset[str]  # the tubes its sample plan draws


@dataclass(frozen=True)
class Schedule:
    """A protocol version's visits (in schedule order) and tube types (in file order)."""

    visits: tuple[ScheduledVisit, ...]
    tube_types: tuple[str, ...]


@dataclass(frozen=True)
class Completeness:
    """The answer: the day it was counted on, one item per participant × visit × tube
    type (only those of ``status`` when asked), and the counts of every status whatever
    ``status`` asked for: ``summary`` {status: count} and ``by_centre_visit`` {centre:
    {visit: {status: count}}}. ``visits`` and ``tube_types`` are the columns a grid
    shows, in schedule and file order."""

    as_of: date
    items: list[Item]
    summary: dict[str, int]
    by_centre_visit: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    visits: tuple[tuple[str, str], ...] = ()  # (code, name)
    tube_types: tuple[str, ...] = ()


# --- the rule ------------------------------------------------------------------------------


class Window(NamedTuple):
    opens: date
    closes: date


def expected_window(
    included_on: date,
    first_day: int,
    last_day: int,
    left_on: date | None,
    withdrawn_on: date | None,
) -> Window | None:
    """When a visit whose window runs from study day ``first_day`` to ``last_day`` is
    expected, or None when the participant stopped (left the study, withdrew consent)
    before the window opened. Stopping inside the window ends it that day: a visit on
    the day of leaving is still expected."""
    window = Window(
        included_on + timedelta(days=first_day),
        included_on + timedelta(days=last_day),
    )
    for stopped_on in (left_on, withdrawn_on):
        if stopped_on is None:
            continue
        if stopped_on < window.opens:
            return None
        if stopped_on < window.closes:
            window = Window(window.opens, stopped_on)
    return window


def by_window(window: Window, as_of: date) -> str:
    """upcoming before the window, due inside it (both ends included), missing after."""
    if as_of < window.opens:
        return UPCOMING
    if as_of <= window.closes:
        return DUE
    return MISSING


# --- the protocol --------------------------------------------------------------------------

# A protocol row never changes (a new content is a new row), so its schedule is kept by
# the hash of its content for the life of the process.
_SCHEDULES: dict[str, Schedule] = {}


def schedule_of(protocol: Protocol) -> Schedule:
    """The plain schedule of a loaded protocol version, read from the database once."""
    known = _SCHEDULES.get(protocol.content_sha256)
    if known is None:
        known = Schedule(
            visits=tuple(
                ScheduledVisit(
                    code=definition.code,
                    name=definition.name,
                    first_day=definition.nominal_day - definition.window_before_days,
                    last_day=definition.nominal_day + definition.window_after_days,
                    arms=frozenset(arm.code for arm in definition.arms),
                    tube_types=frozenset(plan.tube_type for plan in definition.sample_plans),
                )
                for definition in protocol.visit_definitions
            ),
            tube_types=tuple(tube.code for tube in protocol.tube_types),
        )
        _SCHEDULES[protocol.content_sha256] = known
    return known


# --- the database --------------------------------------------------------------------------


class _Centre(NamedTuple):
    code: str
    timezone: str


class _Scope(NamedTuple):
    """Which participants an answer covers: those in the actor's reach, of a centre, of
    an arm. Every query of the answer applies the same scope."""

    actor: object
    site_id: int | None
    arm_code: str | None

    def apply(self, query):
        query = in_reach(query, Participant.site_id, self.actor)
        if self.site_id is not None:
            query = query.where(Participant.site_id == self.site_id)
        if self.arm_code:
            query = query.where(Participant.arm_code == self.arm_code)
        return query


def _centres() -> dict[int, _Centre]:
    rows = db.session.execute(db.select(Site.id, Site.code, Site.timezone))
    return {row.id: _Centre(row.code, row.timezone) for row in rows}


def _participants(scope: _Scope) -> list:
    query = db.select(
        Participant.id,
        Participant.code,
        Participant.site_id,
        Participant.arm_code,
        Participant.study_code,
        Participant.included_on,
        Participant.left_on,
        Participant.consent_withdrawn_on,
    ).order_by(Participant.code)
    return db.session.execute(scope.apply(query)).all()


def _specimens(scope: _Scope) -> dict[tuple[int, str, str], tuple]:
    """(participant id, visit code, tube type) → the visit's date and the deviations of
    the registered specimen (the stored JSON is read only for those that deviate)."""
    query = (
        db.select(
            Visit.participant_id,
            Visit.visit_code,
            Visit.collected_on,
            Visit.study_day,
            Visit.out_of_window,
            VisitDefinition.nominal_day,
            VisitDefinition.window_before_days,
            VisitDefinition.window_after_days,
            Specimen.tube_type,
            Specimen.deviates,
            Specimen.deviations,
        )
        .join(Visit, Visit.id == Specimen.visit_id)
        .join(VisitDefinition, VisitDefinition.id == Visit.visit_definition_id)
        .join(Participant, Participant.id == Visit.participant_id)
    )
    found = {}
    rows = db.session.execute(scope.apply(query))
    # Unpacked by position: at 16,000 specimens, access by name is a cost of its own.
    for (
        participant_id,
        visit_code,
        collected_on,
        study_day,
        out_of_window,
        nominal_day,
        days_before,
        days_after,
        tube_type,
        deviates,
        stored,
    ) in rows:
        words = ()
        if deviates or out_of_window:
            window = (nominal_day - days_before, nominal_day + days_after)
            words = _deviations(
                stored if deviates else None,
                (study_day, *window) if out_of_window else None,
            )
        found[(participant_id, visit_code, tube_type)] = (collected_on, words)
    return found


def _deviations(
    stored: str | None, outside_window: tuple[int, int, int] | None
) -> tuple[Deviation, ...]:
    """The specimen's ``stored`` deviations in words, and the visit's own when it was
    collected outside its window (``outside_window``: the study day it was collected on,
    and the first and last days of the window of the protocol version it was registered
    with)."""
    found = list(deviation_rules.listed(stored)) if stored else []
    if outside_window is not None:
        found.append(deviation_rules.visit_outside_window(*outside_window))
    return tuple(found)


def _uncollected(scope: _Scope) -> dict[tuple[int, str, str], tuple[str, str]]:
    """(participant id, visit code, tube type) → (reason, note) of a tube not drawn."""
    query = (
        db.select(
            Visit.participant_id,
            Visit.visit_code,
            UncollectedTube.tube_type,
            UncollectedTube.reason,
            UncollectedTube.note,
        )
        .join(Visit, Visit.id == UncollectedTube.visit_id)
        .join(Participant, Participant.id == Visit.participant_id)
    )
    return {
        (row.participant_id, row.visit_code, row.tube_type): (row.reason, row.note or "")
        for row in db.session.execute(scope.apply(query))
    }


# --- the answer ----------------------------------------------------------------------------


def completeness(
    *,
    actor,
    site_code: str | None = None,
    arm_code: str | None = None,
    as_of: date | None = None,
    status: str | None = None,
    due_by: date | None = None,
) -> Completeness:
    """Where every expected primary tube of the participants in the actor's reach stands
    on ``as_of`` (by default today, in each participant's centre's time zone).

    ``due_by`` keeps the tubes to draw by that day: due, or upcoming with a window that
    opens on it or before (the home page's "visits due this week").

    ``site_code`` of a centre out of reach answers as an unknown one does: nothing, so
    that its participants' existence is not disclosed. An unknown arm or status is
    refused, naming the field."""
    protocol = current_protocol()
    _check_filters(protocol, arm_code, status)
    centres = _centres()
    site_id = _site_id(centres, site_code)
    answered_on = as_of or today_in(_answer_zone(centres, actor, site_id), utcnow())
    if site_code and site_id is None:
        return _answer(answered_on, [], schedule_of(protocol), status, due_by)

    scope = _Scope(actor, site_id, arm_code)
    participants = _participants(scope)
    specimens = _specimens(scope)
    uncollected = _uncollected(scope)
    schedules = _schedules(protocol, {p.study_code for p in participants})
    todays = {} if as_of else _todays(centres)

    participants.sort(key=lambda p: centres[p.site_id].code)  # stable: codes stay ordered
    items: list[Item] = []
    for participant in participants:
        items.extend(
            _participant_items(
                participant,
                centres[participant.site_id].code,
                schedules[participant.study_code],
                as_of or todays[participant.site_id],
                specimens,
                uncollected,
            )
        )
    return _answer(answered_on, items, schedules.get(protocol.study_code), status, due_by)


def _participant_items(
    participant, centre: str, schedule: Schedule, today: date, specimens: dict, uncollected: dict
):
    """The participant's items, visit by visit in schedule order, tube by tube in the
    protocol's order, each with the first status that applies (see the module's doc)."""
    for visit in schedule.visits:
        in_arm = participant.arm_code in visit.arms
        window = (
            expected_window(
                participant.included_on,
                visit.first_day,
                visit.last_day,
                participant.left_on,
                participant.consent_withdrawn_on,
            )
            if in_arm
            else None
        )
        for tube_type in schedule.tube_types:
            key = (participant.id, visit.code, tube_type)
            common = (participant.code, centre, participant.arm_code, visit.code, tube_type)
            opens, closes = window if window is not None else (None, None)
            specimen = specimens.get(key)
            if specimen is not None:
                yield Item(*common, COLLECTED, opens, closes, specimen[0], specimen[1])
            elif key in uncollected:
                reason, note = uncollected[key]
                yield Item(*common, NOT_COLLECTED, opens, closes, reason=reason, note=note)
            elif window is None or tube_type not in visit.tube_types:
                yield Item(*common, NOT_EXPECTED)
            else:
                yield Item(*common, by_window(window, today), opens, closes)


def _answer(answered_on, items, schedule, status, due_by=None) -> Completeness:
    summary = dict.fromkeys(STATUSES, 0)
    summary.update(Counter(item.status for item in items))
    by_centre_visit: dict[str, dict[str, dict[str, int]]] = {}
    for item in items:
        counts = by_centre_visit.setdefault(item.site, {}).setdefault(item.visit, {})
        counts[item.status] = counts.get(item.status, 0) + 1
    if status:
        items = [item for item in items if item.status == status]
    if due_by is not None:
        items = [item for item in items if _to_draw_by(item, due_by)]
    return Completeness(
        as_of=answered_on,
        items=items,
        summary=summary,
        by_centre_visit=by_centre_visit,
        visits=tuple((v.code, v.name) for v in schedule.visits) if schedule else (),
        tube_types=schedule.tube_types if schedule else (),
    )


def _to_draw_by(item: Item, day: date) -> bool:
    return item.status == DUE or (item.status == UPCOMING and item.window_from <= day)


def _check_filters(protocol: Protocol, arm_code: str | None, status: str | None) -> None:
    arms = [arm.code for arm in protocol.arms]
    if arm_code and arm_code not in arms:
        raise Invalid(
            _l("Unknown arm %(arm)s (known: %(known)s).", arm=arm_code, known=", ".join(arms)),
            fields={"arm": arm_code},
        )
    if status and status not in STATUSES:
        raise Invalid(
            _l(
                "Unknown status %(status)s (known: %(known)s).",
                status=status,
                known=", ".join(STATUSES),
            ),
            fields={"status": status},
        )


def _site_id(centres: dict[int, _Centre], site_code: str | None) -> int | None:
    if not site_code:
        return None
    return next((id_ for id_, centre in centres.items() if centre.code == site_code), None)


def _schedules(current: Protocol, study_codes: set[str]) -> dict[str, Schedule]:
    """The schedule of each study's current protocol (one study, in practice)."""
    schedules = {current.study_code: schedule_of(current)}
    for study_code in study_codes - schedules.keys():
        schedules[study_code] = schedule_of(current_protocol(study_code))
    return schedules


# --- today, in a centre's time zone -------------------------------------------------------


def _todays(centres: dict[int, _Centre]) -> dict[int, date]:
    """Each centre's date now (Site.today's rule)."""
    now = utcnow()
    return {id_: today_in(c.timezone, now) for id_, c in centres.items()}


def _answer_zone(centres: dict[int, _Centre], actor, site_id: int | None) -> str:
    """The zone the answer's day is counted in: the actor's centre's, else the filtered
    centre's, else the application's."""
    for centre_id in (getattr(actor, "site_id", None), site_id):
        if centre_id is not None and centre_id in centres:
            return centres[centre_id].timezone
    if has_app_context():
        return current_app.config.get("BABEL_DEFAULT_TIMEZONE", FALLBACK_TIMEZONE)
    return FALLBACK_TIMEZONE
