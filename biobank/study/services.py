"""Protocol loading, participants and visits.

A user bound to a site sees and changes only that site's participants: every query on
participants goes through ``_visible``, and a participant of another centre is "not
found" rather than "forbidden", so that its existence is not disclosed either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from biobank.db import Page, utcnow
from biobank.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from biobank.extensions import db
from biobank.sites.models import Site
from biobank.sites.services import get_site, in_reach
from biobank.study.models import (
    DISEASE_STATUSES,
    LEAVING_REASONS,
    Arm,
    Participant,
    Protocol,
    SamplePlan,
    TubeType,
    Visit,
    VisitDefinition,
)
from biobank.study.protocol import ProtocolSpec, SopLimits, parse_protocol

# Pseudonymised codes only: a centre prefix and a number (LIM-001). A pattern this strict
# also keeps names and dates out of the one free identifier the schema has.
PARTICIPANT_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,7}-[0-9]{1,6}$")
# Why a participant left, in a few words (forms and the API cap it at this length).
MAX_LEAVING_NOTE = 500


# --- protocol ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProtocolLoad:
    protocol: Protocol
    created: bool


def load_protocol(spec: ProtocolSpec, source: str, *, actor=None) -> ProtocolLoad:
    """Store a parsed protocol as a new version, unless this exact content is loaded.

    Earlier versions stay: visits point at the definition that applied when they were
    registered, and aliquots carry their own counts and volumes, so a changed plan never
    rewrites what is already in the freezer.
    """
    existing = db.session.execute(
        db.select(Protocol).where(Protocol.content_sha256 == spec.content_hash)
    ).scalar()
    if existing is not None:
        return ProtocolLoad(existing, created=False)
    protocol = Protocol(
        study_code=spec.study_code,
        version=spec.version,
        title=spec.title,
        sponsor=spec.sponsor,
        content_sha256=spec.content_hash,
        source=source,
    )
    db.session.add(protocol)
    arms = {
        a.code: Arm(protocol=protocol, code=a.code, name=a.name, description=a.description)
        for a in spec.arms
    }
    db.session.add_all(arms.values())
    for tube in spec.tube_types:
        protocol.tube_types.append(
            TubeType(
                code=tube.code,
                label=tube.label,
                container=tube.container,
                sample_type=tube.sample_type,
            )
        )
    for visit in spec.visits:
        definition = VisitDefinition(
            protocol=protocol,
            code=visit.code,
            name=visit.name,
            nominal_day=visit.nominal_day,
            window_before_days=visit.window_before_days,
            window_after_days=visit.window_after_days,
            order=visit.order,
            arms=[arms[code] for code in visit.arms],
        )
        definition.sample_plans = [
            SamplePlan(tube_type=s.tube_type, aliquots=s.aliquots, volume_ul=s.volume_ul)
            for s in visit.samples
        ]
        db.session.add(definition)
    db.session.flush()
    return ProtocolLoad(protocol, created=True)


def current_protocol(study_code: str | None = None) -> Protocol:
    """The most recently loaded version (of ``study_code``, if given)."""
    query = db.select(Protocol).order_by(Protocol.loaded_at.desc(), Protocol.id.desc())
    if study_code:
        query = query.where(Protocol.study_code == study_code)
    protocol = db.session.execute(query.limit(1)).scalar()
    if protocol is None:
        raise NotFound(
            _l("No trial protocol is loaded. Run: flask --app wsgi protocol load"),
            code="protocol.missing",
        )
    return protocol


def tube_type(protocol: Protocol, code: str) -> TubeType:
    for tube in protocol.tube_types:
        if tube.code == code:
            return tube
    known = ", ".join(t.code for t in protocol.tube_types)
    raise Invalid(
        _l("Unknown tube type %(code)s (known: %(known)s).", code=code, known=known),
        fields={"tube_type": code},
    )


# Content hash of a loaded protocol -> its SOP limits by tube type. A content never
# changes (a new content is a new row), so the text is parsed once per process.
_SOP_BY_CONTENT: dict[str, Mapping[str, SopLimits]] = {}


def sop_limits(protocol: Protocol, tube_type: str) -> SopLimits | None:
    """The SOP limits of ``tube_type`` in a loaded protocol version, or None when it sets
    none (an older protocol without ``[sop]`` tables, or a tube type it leaves out)."""
    limits = _SOP_BY_CONTENT.get(protocol.content_sha256)
    if limits is None:
        # The text was validated when it was loaded: it parses again.
        limits = parse_protocol(protocol.source).sop
        _SOP_BY_CONTENT[protocol.content_sha256] = limits
    return limits.get(tube_type)


def schedule(participant: Participant) -> list[VisitDefinition]:
    """The visits of the participant's arm, in the current protocol, in schedule order."""
    protocol = current_protocol(participant.study_code)
    return [d for d in protocol.visit_definitions if d.applies_to(participant.arm_code)]


def visits_to_register(participant: Participant) -> list[VisitDefinition]:
    """The scheduled visits not registered yet."""
    done = {visit.visit_code for visit in participant.visits}
    return [d for d in schedule(participant) if d.code not in done]


def visit_definition(protocol: Protocol, arm_code: str, visit_code: str) -> VisitDefinition:
    for definition in protocol.visit_definitions:
        if definition.code == visit_code:
            if not definition.applies_to(arm_code):
                raise Invalid(
                    _l(
                        "Visit %(visit)s is not in the schedule of arm %(arm)s.",
                        visit=visit_code,
                        arm=arm_code,
                    ),
                    fields={"visit": visit_code},
                )
            return definition
    raise Invalid(_l("Unknown visit code %(code)s.", code=visit_code), fields={"visit": visit_code})


# --- participants ------------------------------------------------------------------------


def _visible(query, actor):
    return in_reach(query, Participant.site_id, actor)


def _check_site_binding(actor, site: Site) -> None:
    if actor is not None and actor.site_id is not None and actor.site_id != site.id:
        raise Forbidden(
            _l("You can register participants of your own centre only."), fields={"site": ""}
        )


def register_participant(
    code: str,
    site_code: str,
    arm_code: str,
    disease_status: str,
    included_on: date,
    consent_given_on: date,
    *,
    actor,
) -> Participant:
    """Enrol a participant under a pseudonymised code, with biobank consent given."""
    code = (code or "").strip().upper()
    if not PARTICIPANT_CODE.match(code):
        raise Invalid(
            _l(
                "The study code must look like LIM-001: centre letters, a dash, a number. "
                "Never a name or a date of birth."
            ),
            fields={"code": code},
        )
    site = get_site(site_code)
    _check_site_binding(actor, site)
    protocol = current_protocol()
    if arm_code not in {arm.code for arm in protocol.arms}:
        known = ", ".join(arm.code for arm in protocol.arms)
        raise Invalid(
            _l("Unknown arm %(arm)s (known: %(known)s).", arm=arm_code, known=known),
            fields={"arm": arm_code},
        )
    if disease_status not in DISEASE_STATUSES:
        raise Invalid(
            _l("Unknown disease status %(s)s.", s=disease_status),
            fields={"disease_status": disease_status},
        )
    if consent_given_on > included_on:
        raise Invalid(
            _l("Biobank consent must be given on or before inclusion."),
            fields={"consent_given_on": str(consent_given_on)},
        )
    if db.session.execute(db.select(Participant.id).where(Participant.code == code)).first():
        raise Conflict(
            _l("Participant %(code)s is already registered.", code=code), fields={"code": code}
        )
    participant = Participant(
        study_code=protocol.study_code,
        code=code,
        site_id=site.id,
        arm_code=arm_code,
        disease_status=disease_status,
        included_on=included_on,
        consent_status="given",
        consent_given_on=consent_given_on,
        created_by_id=getattr(actor, "id", None),
    )
    db.session.add(participant)
    try:
        db.session.flush()
    except sa.exc.IntegrityError as err:  # the same code registered at the same moment
        raise Conflict(
            _l("Participant %(code)s is already registered.", code=code), fields={"code": code}
        ) from err
    return participant


def list_participants(*, actor, site_code=None, arm_code=None, limit=100, offset=0) -> Page:
    query = _visible(db.select(Participant), actor)
    if site_code:
        query = query.join(Site).where(Site.code == site_code)
    if arm_code:
        query = query.where(Participant.arm_code == arm_code)
    total = db.session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
    items = (
        db.session.execute(query.order_by(Participant.code).limit(limit).offset(offset))
        .scalars()
        .all()
    )
    return Page(items, total)


def get_participant(code: str, *, actor) -> Participant:
    code = (code or "").strip().upper()
    query = _visible(db.select(Participant).where(Participant.code == code), actor)
    participant = db.session.execute(query).scalar()
    if participant is None:
        raise NotFound(_l("No participant %(code)s.", code=code), fields={"participant": code})
    return participant


def withdraw_consent(code: str, withdrawn_on: date, *, actor) -> Participant:
    """Record the withdrawal of biobank consent; distribution refuses the aliquots from now."""
    participant = get_participant(code, actor=actor)
    if participant.consent_status == "withdrawn":
        raise Conflict(_l("Consent of %(code)s is already withdrawn.", code=code))
    if withdrawn_on < participant.consent_given_on:
        raise Invalid(
            _l("Withdrawal cannot precede consent."), fields={"withdrawn_on": str(withdrawn_on)}
        )
    participant.consent_status = "withdrawn"
    participant.consent_withdrawn_on = withdrawn_on
    db.session.flush()
    return participant


def centre_today(participant: Participant) -> date:
    """Today's date at the participant's centre: a day ends at midnight there, not in UTC."""
    return participant.site.today(utcnow())


def refuse_a_future_day(participant: Participant, day: date, field: str, worded) -> None:
    """Refuse (Invalid, on ``field``) a day after today at the participant's centre;
    ``worded(on=, today=, site=)`` says it."""
    today = centre_today(participant)
    if day > today:
        raise Invalid(
            worded(on=day.isoformat(), today=today.isoformat(), site=participant.site.code),
            fields={field: day.isoformat()},
        )


def record_leaving(code: str, left_on: date, reason: str, note: str = "", *, actor) -> Participant:
    """Record the day the participant left the study and why, or correct that record.

    Leaving is not a withdrawal of consent: the banked samples stay usable and may be
    requested. Only the visits after ``left_on`` are no longer expected, and
    ``open_visit`` refuses them. A correction replaces the record, with who made it and
    when.
    """
    participant = get_participant(code, actor=actor)
    _lock(participant)
    note = (note or "").strip()
    if reason not in LEAVING_REASONS:
        raise Invalid(
            _l(
                "Unknown reason for leaving the study %(reason)s (known: %(known)s).",
                reason=reason,
                known=", ".join(LEAVING_REASONS),
            ),
            fields={"reason": reason},
        )
    if reason == "other" and not note:
        raise Invalid(
            _l("The reason is “other”: say in the note why the participant left the study."),
            fields={"note": ""},
        )
    if len(note) > MAX_LEAVING_NOTE:
        raise Invalid(
            _l("The note is limited to %(n)d characters.", n=MAX_LEAVING_NOTE),
            fields={"note": ""},
        )
    _check_leaving_date(participant, left_on)
    participant.left_on = left_on
    participant.left_reason = reason
    participant.left_note = note
    participant.left_recorded_at = utcnow()
    participant.left_recorded_by_id = getattr(actor, "id", None)
    db.session.flush()
    return participant


def _check_leaving_date(participant: Participant, left_on: date) -> None:
    if left_on < participant.included_on:
        raise Invalid(
            _l(
                "%(p)s was included on %(included)s: they cannot have left the study before, "
                "on %(on)s.",
                p=participant.code,
                included=participant.included_on.isoformat(),
                on=left_on.isoformat(),
            ),
            fields={"left_on": left_on.isoformat()},
        )
    refuse_a_future_day(
        participant,
        left_on,
        "left_on",
        lambda **said: _l(
            "The leaving date %(on)s is in the future: today is %(today)s at %(site)s.", **said
        ),
    )
    later = [visit for visit in participant.visits if visit.collected_on > left_on]
    if later:
        last = max(later, key=lambda visit: visit.collected_on)
        raise Conflict(
            _l(
                "Visit %(visit)s of %(p)s was collected on %(d)s, after %(on)s: the leaving "
                "date cannot be before a registered visit.",
                visit=last.visit_code,
                p=participant.code,
                d=last.collected_on.isoformat(),
                on=left_on.isoformat(),
            ),
            code="leaving.before_visit",
            fields={"left_on": left_on.isoformat()},
        )


# --- visits ------------------------------------------------------------------------------


def open_visit(
    participant: Participant,
    visit_code: str,
    collected_on: date,
    *,
    actor,
    date_field: str = "collected_at",
) -> Visit:
    """The participant's visit ``visit_code``, created on first registration.

    The collection date must respect the protocol's window, counted in study days from
    the inclusion date: before its earliest day the visit is refused (a date typed in
    the wrong month or year, or a visit that cannot have happened yet); after its last
    day it is accepted and flagged, because the sample exists and must be banked and the
    deviation is for the statisticians to weigh. A participant who left the study may
    still have a visit on the leaving day, none after it. ``date_field`` names the field
    that holds the date in a refusal.
    """
    try:
        (visit,) = open_visits([WantedVisit(participant, visit_code, collected_on)], actor=actor)
    except VisitsRefused as refused:
        (refusal,) = refused.refusals.values()
        if "collected_at" in refusal.fields:  # said of the field that holds the date
            refusal.fields = {date_field: refusal.fields["collected_at"]}
        raise refusal from None
    return visit


@dataclass(frozen=True)
class WantedVisit:
    participant: Participant
    visit_code: str
    collected_on: date


class VisitsRefused(Conflict):
    """Some of the visits asked for cannot be opened: ``refusals`` maps the position of
    each in the list asked for to why (a DomainError). Nothing was written."""

    def __init__(self, refusals: dict[int, DomainError]) -> None:
        first = next(iter(refusals.values()))
        super().__init__(first.message, code=first.code, fields=first.fields)
        self.refusals = refusals


def open_visits(wanted: list[WantedVisit], *, actor) -> list[Visit]:
    """Each visit asked for, in order: the one registered already (on the same day), else
    a new one, dated by ``dated_visit``'s rules and inserted set-wise. Any refusal
    refuses them all (VisitsRefused, with every refusal) before anything is written.

    The participants' rows are locked first (see ``_lock``), so that leaving the study
    and registering at a visit serialise."""
    people = {item.participant.id: item.participant for item in wanted}
    _lock(*people.values())
    existing = _visits_of(list(people))
    refusals: dict[int, DomainError] = {}
    rows: list[dict] = []
    protocols: dict[str, Protocol] = {}
    for index, item in enumerate(wanted):
        known = existing.get((item.participant.id, item.visit_code))
        study_code = item.participant.study_code
        try:
            if known is not None:
                refuse_another_day(known, item.participant.code, item.collected_on)
                continue
            if study_code not in protocols:
                protocols[study_code] = current_protocol(study_code)
            definition = visit_definition(
                protocols[study_code], item.participant.arm_code, item.visit_code
            )
            dated = dated_visit(item.participant, definition, item.collected_on)
        except DomainError as err:
            refusals[index] = err
            continue
        rows.append(
            {
                "participant_id": item.participant.id,
                "visit_code": item.visit_code,
                "visit_definition_id": definition.id,
                "collected_on": item.collected_on,
                "study_day": dated.study_day,
                "out_of_window": dated.out_of_window,
                "created_by_id": getattr(actor, "id", None),
            }
        )
    if refusals:
        raise VisitsRefused(refusals)
    existing.update(_insert_visits(rows, [item.participant.code for item in wanted]))
    return [existing[(item.participant.id, item.visit_code)] for item in wanted]


def _visits_of(participant_ids: list[int]) -> dict[tuple[int, str], Visit]:
    found = {}
    for chunk in _chunks(participant_ids):
        query = db.select(Visit).where(Visit.participant_id.in_(chunk))
        for visit in db.session.execute(query).scalars():
            found[(visit.participant_id, visit.visit_code)] = visit
    return found


def _insert_visits(rows: list[dict], codes: list[str]) -> dict[tuple[int, str], Visit]:
    """The new visits (the ORM's bulk INSERT … RETURNING, whose rows come in no set order:
    each is found again by its participant and code, unique together)."""
    if not rows:
        return {}
    try:
        inserted = db.session.scalars(sa.insert(Visit).returning(Visit), rows).all()
    except sa.exc.IntegrityError as err:  # the same visit registered at the same moment
        raise Conflict(
            _l(
                "Visit %(visit)s of %(p)s was registered by someone else at the same moment. "
                "Nothing was written: open the participant's page to see it.",
                visit=rows[0]["visit_code"] if len(rows) == 1 else "",
                p=codes[0] if len(rows) == 1 else "",
            ),
            code="visit.concurrent",
        ) from err
    return {(visit.participant_id, visit.visit_code): visit for visit in inserted}


def refuse_another_day(visit: Visit, participant_code: str, collected_on: date) -> None:
    """A tube joins a registered visit only on the day it was collected."""
    if visit.collected_on == collected_on:
        return
    raise Conflict(
        _l(
            "Visit %(visit)s of %(p)s was collected on %(d)s; a tube of another day "
            "cannot join it.",
            visit=visit.visit_code,
            p=participant_code,
            d=visit.collected_on.isoformat(),
        ),
        fields={"collected_at": collected_on.isoformat()},
    )


@dataclass(frozen=True)
class DatedVisit:
    study_day: int
    out_of_window: bool
    window: VisitWindow


def dated_visit(participant, definition: VisitDefinition, collected_on: date) -> DatedVisit:
    """A new visit's date against the protocol: its study day, and whether it falls after
    its window (accepted, flagged). Refused after the participant left the study
    (Conflict) or before the window opens (Invalid). ``participant`` needs ``code``,
    ``included_on`` and ``left_on``: one of the bank, or one a file is about to enrol."""
    _refuse_after_leaving(participant, definition.code, collected_on, "collected_at")
    window = visit_window(participant, definition)
    study_day = (collected_on - participant.included_on).days
    if study_day < window.earliest_day:
        raise Invalid(
            _l(
                "Visit %(visit)s (%(name)s) cannot be collected on %(on)s, study day %(day)d: "
                "its window runs from study day %(first)d to study day %(last)d, so its "
                "earliest date is %(earliest)s. Check the date the blood was drawn.",
                visit=definition.code,
                name=definition.name,
                on=collected_on.isoformat(),
                day=study_day,
                first=window.earliest_day,
                last=window.latest_day,
                earliest=window.earliest.isoformat(),
            ),
            code="visit.too_early",
            fields={"collected_at": collected_on.isoformat()},
        )
    return DatedVisit(study_day, study_day > window.latest_day, window)


def _lock(*participants: Participant) -> None:
    """Leaving the study and registering at a visit each check what the other writes (a
    visit after the leaving date; a leaving date before a visit; a tube registered and
    recorded as not drawn): the participant's row lock makes the second wait for the
    first and then read what it wrote (PostgreSQL; SQLite lets one writer at a time
    anyway). Re-read, not taken from the session; locked in the order of their ids, so
    that two registrations of the same participants cannot wait for each other."""
    ids = sorted(participant.id for participant in participants)
    for chunk in _chunks(ids):
        # Read: the rows refresh the session's participants only when fetched.
        db.session.execute(
            db.select(Participant)
            .where(Participant.id.in_(chunk))
            .order_by(Participant.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()


def _chunks(items: list, size: int = 500) -> list[list]:
    """``items`` a few hundred at a time: an IN list within every database's limits."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def _refuse_after_leaving(
    participant, visit_code: str, collected_on: date, date_field: str
) -> None:
    if participant.left_on is None or collected_on <= participant.left_on:
        return
    raise Conflict(
        _l(
            "%(p)s left the study on %(left)s: visit %(visit)s, collected on %(on)s, cannot "
            "be registered. Check the date the blood was drawn.",
            p=participant.code,
            left=participant.left_on.isoformat(),
            visit=visit_code,
            on=collected_on.isoformat(),
        ),
        code="visit.after_leaving",
        fields={date_field: collected_on.isoformat()},
    )


@dataclass(frozen=True)
class VisitWindow:
    """When a participant's visit may be collected: study days and the dates they fall on."""

    earliest_day: int
    latest_day: int
    earliest: date
    latest: date


def visit_window(participant: Participant, definition: VisitDefinition) -> VisitWindow:
    """The protocol window of ``definition`` for ``participant``: from its nominal day minus
    the days allowed before it to its nominal day plus the days allowed after, day 0 being
    the inclusion date."""
    first = definition.nominal_day - definition.window_before_days
    last = definition.nominal_day + definition.window_after_days
    return VisitWindow(
        first,
        last,
        participant.included_on + timedelta(days=first),
        participant.included_on + timedelta(days=last),
    )
