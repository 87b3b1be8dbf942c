"""What each role has to do, counted for the home page.

A technician starts from the visits due this week and those overdue, the tubes waiting
to be stored, the requests to pick and the shipments to receive; a manager from the
requests to review, the assay runs to accept, the freezers' temperature excursions, the
tubes still missing since a receipt and the notifications that failed; a researcher from
their own requests, by status.

Each count is one SQL statement whatever the size of the bank: nothing is loaded to be
counted in Python, nothing is asked per participant. Each applies the rule of the list it
links to (the same query-building function where the domain offers one), so that the
number on the home page is the number of rows the list shows.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import reduce
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import render_template
from flask_babel import get_timezone
from flask_login import current_user
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from biobank.assays import services as assays
from biobank.assays.models import AssayRun
from biobank.auth.roles import Permission
from biobank.custody.models import CustodyEvent
from biobank.db import utcnow
from biobank.distribution import services as requests
from biobank.distribution import shipping
from biobank.distribution.models import REQUEST_STATUSES, SampleRequest, Shipment, ShipmentItem
from biobank.extensions import db
from biobank.monitoring.completeness import ScheduledVisit, schedule_of
from biobank.notifications import services as notifications
from biobank.notifications.models import OutboxMessage
from biobank.samples.models import Aliquot
from biobank.samples.services import aliquots_in_reach
from biobank.sites.services import in_reach
from biobank.storage import services as storage
from biobank.study.models import Participant, Protocol, Visit

# "This week": today and the six days after it.
DAYS_AHEAD = 6
# The temperature excursions a manager is shown: those that ended in the last 30 days.
EXCURSION_DAYS = 30
TO_REVIEW = ("submitted", "under_review")
TO_RECEIVE = "dispatched"
# The dates a participant stops being expected at visits: leaving the study, withdrawing
# consent (as the completeness page counts them).
_STOPS = (Participant.left_on, Participant.consent_withdrawn_on)


# --- visits ---------------------------------------------------------------------------------


class _days_between(FunctionElement):
    """Whole days from one date column to another (negative when the second is earlier).

    The windows are constant intervals of the inclusion date, computed in Python. One
    question is not: did the participant stop (leave, withdraw consent) before a window
    opened, that is, is ``left_on`` before ``included_on`` + the window's first day. Two
    columns of one row, so the database counts the days between them; SQLite and
    PostgreSQL spell that differently, hence one spelling each (both tested)."""

    type = sa.Integer()
    inherit_cache = True


@compiles(_days_between)
def _days_between_by_subtraction(element, compiler, **kw):  # PostgreSQL: date - date
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({end} - {start})"


@compiles(_days_between, "sqlite")
def _days_between_in_sqlite(element, compiler, **kw):  # dates are ISO text in SQLite
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(julianday({end}) - julianday({start}))"


@dataclass(frozen=True)
class VisitCounts:
    """Visits (participant × visit) with nothing registered: ``due_this_week`` whose
    window is open on at least one day of today … today + 6; ``overdue`` whose window
    closed before today."""

    due_this_week: int
    overdue: int


def _current_protocols() -> list[Protocol]:
    """The current protocol of every study: its version loaded last (as
    ``study.services.current_protocol`` chooses it), in one statement."""
    newer = aliased(Protocol)
    replaced = sa.exists().where(
        newer.study_code == Protocol.study_code,
        sa.or_(
            newer.loaded_at > Protocol.loaded_at,
            sa.and_(newer.loaded_at == Protocol.loaded_at, newer.id > Protocol.id),
        ),
    )
    return list(db.session.execute(sa.select(Protocol).where(~replaced)).scalars())


def current_schedule() -> list[tuple[str, ScheduledVisit]]:
    """(study code, visit) of every visit of every study's current protocol. The visit
    definitions are read once per protocol version (``completeness.schedule_of``)."""
    return [
        (protocol.study_code, visit)
        for protocol in _current_protocols()
        for visit in schedule_of(protocol).visits
        if visit.tube_types  # a visit that draws nothing expects nothing
    ]


def _expected(study_code: str, visit: ScheduledVisit):
    """The participant's schedule has this visit and it is not registered (a visit whose
    every tube was recorded as not collected is registered)."""
    registered = sa.exists().where(
        Visit.participant_id == Participant.id, Visit.visit_code == visit.code
    )
    return sa.and_(
        Participant.study_code == study_code,
        Participant.arm_code.in_(sorted(visit.arms)),
        ~registered,
    )


def _in_study_when_window_opens(visit: ScheduledVisit):
    """Not stopped (left, consent withdrawn) before the window opened: stopping inside
    the window ends it that day, stopping before it means the visit is not expected."""
    return sa.and_(
        *(
            sa.or_(
                stop.is_(None),
                _days_between(Participant.included_on, stop) >= visit.first_day,
            )
            for stop in _STOPS
        )
    )


def _due_this_week(visit: ScheduledVisit, today: date):
    """The window [inclusion + first day, inclusion + last day], its end clipped to the
    day the participant stopped, is open on a day of [today, today + 6]."""
    return sa.and_(
        Participant.included_on.between(
            today - timedelta(days=visit.last_day),
            today + timedelta(days=DAYS_AHEAD - visit.first_day),
        ),
        *(sa.or_(stop.is_(None), stop >= today) for stop in _STOPS),
        _in_study_when_window_opens(visit),
    )


def _overdue(visit: ScheduledVisit, today: date):
    """The window, its end clipped to the day the participant stopped, closed before
    today."""
    return sa.and_(
        sa.or_(
            Participant.included_on < today - timedelta(days=visit.last_day),
            *(stop < today for stop in _STOPS),
        ),
        _in_study_when_window_opens(visit),
    )


def _how_many(conditions):
    """How many of the (row, condition) pairs hold, over the rows: a visit is a pair of a
    participant and one of their scheduled visits."""
    ones = [sa.case((condition, 1), else_=0) for condition in conditions]
    return sa.func.coalesce(sa.func.sum(reduce(operator.add, ones)), 0)


def visit_counts(*, actor, today: date, schedule=None) -> VisitCounts:
    """The visits due this week and the visits overdue of the participants in the actor's
    reach, on ``today`` (the completeness page's due and missing, counted per visit with
    nothing registered). One statement for both; ``schedule`` is ``current_schedule()``
    when the caller has it already."""
    schedule = current_schedule() if schedule is None else schedule
    if not schedule:
        return VisitCounts(0, 0)
    due, overdue = [], []
    for study_code, visit in schedule:
        # The window conditions first: the registered visit is looked up only when they hold.
        due.append(sa.and_(_due_this_week(visit, today), _expected(study_code, visit)))
        overdue.append(sa.and_(_overdue(visit, today), _expected(study_code, visit)))
    query = sa.select(_how_many(due), _how_many(overdue)).select_from(Participant)
    row = db.session.execute(in_reach(query, Participant.site_id, actor)).one()
    return VisitCounts(int(row[0]), int(row[1]))


# --- tubes, requests, shipments, runs, excursions, mail -----------------------------------


def _count(query) -> int:
    return db.session.execute(query).scalar_one()


def tubes_to_store(*, actor) -> int:
    """Aliquots registered and not stored yet (the store page lists them)."""
    query = sa.select(sa.func.count(Aliquot.id)).where(Aliquot.status == "registered")
    return _count(aliquots_in_reach(query, actor))


def requests_of_status(statuses, *, actor) -> int:
    """Requests of any of ``statuses`` among those the actor sees (the requests list)."""
    query = sa.select(sa.func.count(SampleRequest.id)).where(
        SampleRequest.status.in_(tuple(statuses))
    )
    return _count(requests.requests_in_reach(query, actor))


def shipments_to_receive(*, actor) -> int:
    """Shipments dispatched to the actor's centre, not received yet."""
    query = sa.select(sa.func.count(Shipment.id)).where(Shipment.status == TO_RECEIVE)
    return _count(shipping.incoming(query, actor))


def runs_to_accept(*, actor) -> int:
    """Assay runs in preview, awaiting a manager's decision. For a user bound to a centre
    the assays' rule reads the previews of the runs in preview to find those naming the
    centre's tubes: a statement or two more, as many whatever the size of the bank."""
    previews = sa.select(AssayRun.id).where(AssayRun.status == "preview")
    query = sa.select(sa.func.count(AssayRun.id)).where(AssayRun.status == "preview")
    return _count(assays.runs_in_reach(query, actor, among=previews))


def excursions_since(since: datetime, *, actor) -> int:
    """Temperature excursions that ended since ``since`` on the actor's aliquots, counted
    once per recorded excursion (a container, a start, an end, a temperature), however
    many tubes it concerned."""
    query = sa.select(sa.func.count(sa.distinct(CustodyEvent.details)))
    return _count(storage.excursion_events(query, since, actor))


@dataclass(frozen=True)
class MissingTubes:
    tubes: int
    shipments: int


def tubes_missing(*, actor) -> MissingTubes:
    """The open discrepancies: tubes not found at the receipt of their shipment and not
    found since, and how many shipments they were in; both in one statement."""
    query = (
        sa.select(
            sa.func.count(sa.distinct(Aliquot.id)),
            sa.func.count(sa.distinct(ShipmentItem.shipment_id)),
        )
        .select_from(ShipmentItem)
        .join(Aliquot, Aliquot.id == ShipmentItem.aliquot_id)
        .join(Shipment, Shipment.id == ShipmentItem.shipment_id)
    )
    query = shipping.shipments_in_reach(shipping.still_missing(query), actor)
    tubes, shipments = db.session.execute(aliquots_in_reach(query, actor)).one()
    return MissingTubes(tubes, shipments)


def failed_notifications(*, actor) -> int:
    """Messages of the outbox whose delivery failed, among those the actor may read."""
    query = sa.select(sa.func.count(OutboxMessage.id)).where(notifications.FAILED)
    return _count(notifications.outbox_in_reach(query, actor))


def requests_by_status(*, actor) -> dict[str, int]:
    """How many of the requests the actor sees stand at each status (a researcher sees
    their own), in the order requests go through them; statuses with none left out."""
    query = requests.requests_in_reach(
        sa.select(SampleRequest.status, sa.func.count(SampleRequest.id)), actor
    ).group_by(SampleRequest.status)
    counts = dict(db.session.execute(query).all())
    return {status: counts[status] for status in REQUEST_STATUSES if counts.get(status)}


# --- per role -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    """A technician's work. ``None``: not this user's to do (the permission is missing)."""

    visits: VisitCounts | None
    tubes_to_store: int | None
    requests_to_pick: int | None
    shipments_to_receive: int | None


@dataclass(frozen=True)
class Decisions:
    """A manager's decisions. ``None``: not this user's to take."""

    requests_to_review: int | None
    runs_to_accept: int | None
    excursions: int | None
    tubes_missing: MissingTubes | None
    failed_notifications: int | None


@dataclass(frozen=True)
class Worklists:
    bench: Bench | None
    decisions: Decisions | None
    my_requests: dict[str, int] | None  # status → count, for a researcher


def _may(actor, permission: Permission) -> bool:
    return bool(actor.may(permission))


def _bench(actor, today: date) -> Bench | None:
    registers, handles = _may(actor, Permission.REGISTER), _may(actor, Permission.HANDLE)
    if not (registers or handles):
        return None
    return Bench(
        visits=visit_counts(actor=actor, today=today) if registers else None,
        tubes_to_store=tubes_to_store(actor=actor) if handles else None,
        requests_to_pick=requests_of_status(shipping.PICKABLE_REQUESTS, actor=actor)
        if handles
        else None,
        shipments_to_receive=shipments_to_receive(actor=actor) if handles else None,
    )


def _decisions(actor, now: datetime) -> Decisions | None:
    approves = _may(actor, Permission.APPROVE)
    accepts = _may(actor, Permission.ACCEPT_RUNS)
    if not (approves or accepts):
        return None
    # Each count only for those who may open the list it links to.
    since = now - timedelta(days=EXCURSION_DAYS)
    sees_samples = _may(actor, Permission.VIEW_SAMPLES)
    return Decisions(
        requests_to_review=requests_of_status(TO_REVIEW, actor=actor) if approves else None,
        runs_to_accept=runs_to_accept(actor=actor)
        if accepts and _may(actor, Permission.IMPORT_ASSAYS)
        else None,
        excursions=excursions_since(since, actor=actor) if approves and sees_samples else None,
        tubes_missing=tubes_missing(actor=actor)
        if approves and _may(actor, Permission.HANDLE)
        else None,
        failed_notifications=failed_notifications(actor=actor)
        if approves and _may(actor, Permission.CONFIGURE)
        else None,
    )


def _researcher(actor) -> dict[str, int] | None:
    if not _may(actor, Permission.CATALOGUE) or _may(actor, Permission.VIEW_SAMPLES):
        return None
    return requests_by_status(actor=actor)


def worklists(*, actor, today: date, now: datetime | None = None) -> Worklists:
    """What the actor has to do, by role: on ``today`` (the day in the actor's centre) for
    the visits, in the 30 days before ``now`` (by default now) for the excursions."""
    return Worklists(
        bench=_bench(actor, today),
        decisions=_decisions(actor, now or utcnow()),
        my_requests=_researcher(actor),
    )


# --- the home page's section ----------------------------------------------------------------


def home_panel(**_context) -> str:
    """The worklists at the top of the home page (registered with
    ``web.add_panel("home", ...)``): today is the day in the user's centre."""
    if not current_user.is_authenticated:
        return ""
    today = utcnow().astimezone(ZoneInfo(str(get_timezone()))).date()
    return render_template(
        "monitoring/_worklists.html",
        lists=worklists(actor=current_user, today=today),
        today=today,
        week_end=today + timedelta(days=DAYS_AHEAD),
        excursion_days=EXCURSION_DAYS,
    )
