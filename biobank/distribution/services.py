"""Researchers' requests: the catalogue, submission, review, approval with reservation of
the exact aliquots, rejection and cancellation. Picking and shipping are in shipping.py.

An aliquot is *available* when it is in storage, its participant's biobank consent
stands, and no open reservation holds it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from biobank.auth import services as auth
from biobank.custody import services as custody
from biobank.custody.services import EventKind
from biobank.db import utcnow
from biobank.distribution.criteria import Criteria
from biobank.distribution.models import RequestEvent, Reservation, SampleRequest
from biobank.distribution.selection import Candidate, Group, Selection, select
from biobank.errors import Conflict, Invalid, NotFound
from biobank.extensions import db
from biobank.i18n import label
from biobank.notifications import services as notifications
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.storage import places
from biobank.storage.models import StoredPosition
from biobank.study.models import Participant, Visit, VisitDefinition
from biobank.study.services import Page

# Aliquots still in the bank: what "the last remaining aliquot" is counted among.
IN_BANK = ("registered", "in_storage", "checked_out", "received")
# Where a request may go from each status.
TRANSITIONS = {
    "submitted": {"under_review", "approved", "rejected", "cancelled"},
    "under_review": {"approved", "rejected", "cancelled"},
    "approved": {"being_prepared", "shipped", "cancelled"},
    "being_prepared": {"shipped", "cancelled"},
    "shipped": {"received"},
}
OPEN_FOR_RESERVATION = {"submitted", "under_review"}
MAX_BARCODES = 20_000


def open_reservation(aliquot_id) -> sa.Exists:
    return sa.exists().where(Reservation.aliquot_id == aliquot_id, Reservation.closed_at.is_(None))


def _filtered_groups(query, criteria: Criteria):
    """The criteria that define the groups: visit, arm, disease status."""
    if criteria.visits:
        query = query.where(Visit.visit_code.in_(criteria.visits))
    if criteria.arms:
        query = query.where(Participant.arm_code.in_(criteria.arms))
    if criteria.disease_statuses:
        query = query.where(Participant.disease_status.in_(criteria.disease_statuses))
    return query


def _within_sop(query, criteria: Criteria):
    """Without the samples handled outside the SOP limits or collected outside their
    visit's window, when the criteria ask for it (``query`` joins Specimen and Visit)."""
    if criteria.within_sop:
        query = query.where(Specimen.deviates.is_(False), Visit.out_of_window.is_(False))
    return query


def _filtered(query, criteria: Criteria, *, matching: bool = True):
    """The criteria as WHERE clauses; with ``matching=False`` only those that define the
    groups (visit, type, arm, disease), not the per-aliquot ones (volume, thaws)."""
    query = _filtered_groups(query, criteria)
    if criteria.sample_types:
        query = query.where(Aliquot.sample_type.in_(criteria.sample_types))
    if matching:
        if criteria.min_volume_ul:
            query = query.where(Aliquot.volume_ul >= criteria.min_volume_ul)
        if criteria.max_freeze_thaw is not None:
            query = query.where(Aliquot.freeze_thaw_count <= criteria.max_freeze_thaw)
        query = _within_sop(query, criteria)
    return query


def _joined(query, actor):
    """``query`` on aliquots, joined up to their participant, within the actor's centre."""
    return samples.aliquots_in_reach(query.select_from(Aliquot), actor)


def _available(query):
    return query.where(
        Aliquot.status == "in_storage",
        Aliquot.volume_ul > 0,
        Participant.consent_status == "given",
        ~open_reservation(Aliquot.id),
    )


# --- catalogue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueRow:
    arm: str
    visit: str
    sample_type: str
    participants: int
    aliquots: int
    volume_ul: int


def catalogue(criteria: Criteria, *, actor=None) -> list[CatalogueRow]:
    """Available aliquots and volume by arm × visit × sample type, in one aggregate query;
    a user bound to a centre counts that centre's only.

    These are the true counts: what those who may not see participant-level data are
    shown of them is decided by disclosure.py alone.
    """
    # Two levels: the aliquots are first summed per specimen (on the partial index of
    # stored aliquots), and only those sums are joined up to visit and participant; one
    # join per aliquot would cost four index lookups each.
    per_specimen = (
        sa.select(
            Aliquot.specimen_id,
            Aliquot.sample_type,
            sa.func.count().label("n"),
            sa.func.sum(Aliquot.volume_ul).label("volume"),
        )
        .where(
            Aliquot.status == "in_storage",
            Aliquot.volume_ul > 0,
            Aliquot.id.not_in(
                sa.select(Reservation.aliquot_id).where(Reservation.closed_at.is_(None))
            ),
        )
        .group_by(Aliquot.specimen_id, Aliquot.sample_type)
    )
    if criteria.sample_types:
        per_specimen = per_specimen.where(Aliquot.sample_type.in_(criteria.sample_types))
    if criteria.min_volume_ul:
        per_specimen = per_specimen.where(Aliquot.volume_ul >= criteria.min_volume_ul)
    if criteria.max_freeze_thaw is not None:
        per_specimen = per_specimen.where(Aliquot.freeze_thaw_count <= criteria.max_freeze_thaw)
    sums = per_specimen.subquery()
    query = _filtered_groups(
        samples.aliquots_in_reach(
            sa.select(
                Participant.arm_code,
                Visit.visit_code,
                sums.c.sample_type,
                sa.func.count(sa.distinct(Participant.id)),
                sa.func.sum(sums.c.n),
                sa.func.sum(sums.c.volume),
                sa.func.min(VisitDefinition.order),
            )
            .select_from(sums)
            .join(Specimen, Specimen.id == sums.c.specimen_id)
            .join(Visit, Visit.id == Specimen.visit_id)
            .join(VisitDefinition, VisitDefinition.id == Visit.visit_definition_id)
            .where(Participant.consent_status == "given")
            .group_by(Participant.arm_code, Visit.visit_code, sums.c.sample_type),
            actor,
        ),
        criteria,
    )
    query = _within_sop(query, criteria)
    rows = db.session.execute(query).all()
    rows.sort(key=lambda r: (r[0], r[6], r[1], r[2]))
    return [
        CatalogueRow(arm, visit, kind, people, int(n), int(volume or 0))
        for arm, visit, kind, people, n, volume, _ in rows
    ]


# --- matching ----------------------------------------------------------------------------


def candidates(criteria: Criteria, *, with_places: bool = True, actor=None) -> list[Candidate]:
    """Every available aliquot matching the criteria (of the actor's centre, for a user
    bound to one), with where it stands."""
    query = _available(
        _filtered(
            _joined(
                sa.select(
                    Aliquot.id,
                    Aliquot.barcode,
                    Participant.id,
                    Participant.code,
                    Visit.visit_code,
                    Aliquot.sample_type,
                    Aliquot.volume_ul,
                    Aliquot.freeze_thaw_count,
                    StoredPosition.box_id,
                    StoredPosition.row,
                    StoredPosition.col,
                ),
                actor,
            ).join(StoredPosition, StoredPosition.aliquot_id == Aliquot.id),
            criteria,
        )
    )
    rows = db.session.execute(query).all()
    where = places.box_places({row[8] for row in rows}) if with_places else {}
    found = []
    for id_, code, pid, pcode, visit, kind, volume, thaws, box, row, col in rows:
        place = where.get(box)
        fill, walk = (place.fill, (*place.walk, row, col)) if place else (0.0, (box, row, col))
        found.append(Candidate(id_, code, pid, pcode, visit, kind, volume, thaws, fill, walk))
    return found


def remaining(criteria: Criteria, *, actor=None) -> dict[Group, int]:
    """Per participant × visit × sample type, how many aliquots the bank still holds that
    no request has reserved, whatever their volume or thaws (the actor's centre's
    participants, for a user bound to one)."""
    query = (
        _filtered(
            _joined(
                sa.select(
                    Participant.id, Visit.visit_code, Aliquot.sample_type, sa.func.count(Aliquot.id)
                ),
                actor,
            ),
            criteria,
            matching=False,
        )
        .where(Aliquot.status.in_(IN_BANK), ~open_reservation(Aliquot.id))
        .group_by(Participant.id, Visit.visit_code, Aliquot.sample_type)
    )
    return {(pid, visit, kind): n for pid, visit, kind, n in db.session.execute(query)}


@dataclass(frozen=True)
class MatchCount:
    participants: int
    aliquots: int
    # The last aliquots held back by the rule, which only a manager may override.
    held_back: int


def match_count(criteria: Criteria, *, actor=None) -> MatchCount:
    """How many participants and aliquots a request with these criteria would get (of the
    actor's centre, for a user bound to one)."""
    chosen = select(
        candidates(criteria, with_places=False, actor=actor),
        remaining(criteria, actor=actor),
        per_participant_visit=criteria.per_participant_visit,
    )
    return MatchCount(chosen.participants, len(chosen.chosen), sum(chosen.held_back.values()))


# --- requests ----------------------------------------------------------------------------


def required_text(value: str | None, name: str, limit: int, *, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise Invalid(_l("This field is required."), fields={name: ""})
    if len(text) > limit:
        raise Invalid(_l("At most %(n)d characters.", n=limit), fields={name: text[:40] + "…"})
    return text


def _email(value: str | None) -> str:
    text = required_text(value, "contact_email", 200)
    local, _, domain = text.partition("@")
    if not local or "." not in domain or " " in text:
        raise Invalid(_l("Enter an e-mail address."), fields={"contact_email": text})
    return text


def move_request(request: SampleRequest, status: str, actor, note: str = "") -> None:
    if status not in TRANSITIONS.get(request.status, set()):
        raise Conflict(
            _l(
                "Request %(code)s is %(status)s: it cannot become %(new)s.",
                code=request.code,
                status=label(request.status, "request_status"),
                new=label(status, "request_status"),
            ),
            code="request.status",
        )
    now = utcnow()
    request.status = status
    request.updated_at = now
    db.session.add(
        RequestEvent(
            request=request,
            status=status,
            at=now,
            actor_name=getattr(actor, "username", None) or custody.SYSTEM_ACTOR,
            note=note,
        )
    )


def told_of(request: SampleRequest) -> list[notifications.Recipient]:
    """Who hears of a decision on a request: its researcher at their account's address,
    and the laboratory's contact, in the language of the researcher who named them, only
    once a manager has confirmed that address: the researcher typed it, and the bank's
    mail must not go wherever anyone types (contacts.py)."""
    researcher = request.researcher
    told = notifications.recipients(researcher)
    if request.contact_confirmed:
        told.append(
            notifications.Recipient(request.contact_email, getattr(researcher, "locale", None))
        )
    return told


def managers() -> list[notifications.Recipient]:
    """The managers and administrators, each in their own language."""
    return notifications.recipients(*auth.users_with_role("manager", "admin"))


def submit_request(
    *,
    title: str,
    aim: str,
    receiving_lab: str,
    contact_name: str,
    contact_email: str,
    criteria: Criteria,
    actor,
) -> SampleRequest:
    """A researcher's request, submitted for review; the managers are told."""
    if not criteria.visits or not criteria.sample_types:
        raise Invalid(
            _l("Choose at least one visit and one sample type."),
            fields={"visits" if not criteria.visits else "sample_types": ""},
        )
    request = SampleRequest(
        title=required_text(title, "title", 200),
        aim=required_text(aim, "aim", 5000),
        receiving_lab=required_text(receiving_lab, "receiving_lab", 200),
        contact_name=required_text(contact_name, "contact_name", 200),
        contact_email=_email(contact_email),
        criteria=criteria.to_json(),
        researcher_id=actor.id,
        status="submitted",
    )
    db.session.add(request)
    db.session.add(RequestEvent(request=request, status="submitted", actor_name=actor.username))
    db.session.flush()
    notifications.notify_each(
        "request.submitted",
        managers(),
        _l("Request %(code)s submitted: %(title)s", code=request.code, title=request.title),
        _l(
            "%(user)s submitted request %(code)s (%(title)s) for %(lab)s. It awaits review.",
            user=actor.username,
            code=request.code,
            title=request.title,
            lab=request.receiving_lab,
        ),
    )
    return request


def _sees_all(actor) -> bool:
    """Reviewers, and the technicians who prepare the tubes, see every request."""
    may = getattr(actor, "may", None)
    return bool(may and (may("approve") or may("handle")))


def requests_in_reach(query, actor):
    """``query`` on requests limited to those the actor sees: a researcher's own, every
    one for those who review them or prepare their tubes."""
    if not _sees_all(actor):
        query = query.where(SampleRequest.researcher_id == actor.id)
    return query


def list_requests(*, actor, status: str | Sequence[str] | None = None, limit=100, offset=0) -> Page:
    """Requests newest first: a researcher's own, or every one for those who review them;
    of one ``status``, or of any of several (those awaiting review: submitted or under
    review)."""
    query = requests_in_reach(sa.select(SampleRequest), actor)
    if status:
        statuses = (status,) if isinstance(status, str) else tuple(status)
        query = query.where(SampleRequest.status.in_(statuses))
    total = db.session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
    items = db.session.execute(
        query.order_by(SampleRequest.id.desc()).limit(limit).offset(offset)
    ).scalars()
    return Page(list(items), total)


def get_request(request_id: int, *, actor) -> SampleRequest:
    """A request its researcher, or a reviewer, may see; anyone else is told it does not
    exist (a researcher does not learn of others' projects)."""
    request = db.session.get(SampleRequest, request_id)
    if request is None or not (_sees_all(actor) or request.researcher_id == actor.id):
        raise NotFound(
            _l("No request %(code)s.", code=f"R{request_id:05d}"), fields={"request": request_id}
        )
    return request


def criteria_of(request: SampleRequest) -> Criteria:
    return Criteria.from_json(request.criteria)


def request_to_change(request_id: int, *, actor) -> SampleRequest:
    """``get_request`` with the request's row locked to the end of the transaction: two
    decisions on one request at the same instant (two managers approving it) are taken one
    after the other, and the second sees what the first did. SQLite, whose writers queue
    for the whole database, needs no lock."""
    request = get_request(request_id, actor=actor)
    db.session.refresh(request, with_for_update=True)
    return request


def start_review(request_id: int, *, actor) -> SampleRequest:
    request = request_to_change(request_id, actor=actor)
    move_request(request, "under_review", actor)
    db.session.flush()
    return request


@dataclass(frozen=True)
class Proposal:
    request: SampleRequest
    selection: Selection
    per_participant_visit: int
    max_participants: int | None
    allow_last: bool


def propose(
    request_id: int,
    *,
    per_participant_visit: int | None = None,
    max_participants: int | None = None,
    allow_last: bool = False,
    actor,
) -> Proposal:
    """The aliquots an approval would reserve, optionally fewer than asked: a manager bound
    to a centre is proposed that centre's aliquots only."""
    request = get_request(request_id, actor=actor)
    criteria = criteria_of(request)
    per = criteria.per_participant_visit
    if per_participant_visit is not None:
        if not 1 <= per_participant_visit <= per:
            raise Invalid(
                _l("Between 1 and the %(n)d asked for.", n=per),
                fields={"per_participant_visit": str(per_participant_visit)},
            )
        per = per_participant_visit
    if max_participants is not None and max_participants < 1:
        raise Invalid(
            _l("At least one participant."), fields={"max_participants": str(max_participants)}
        )
    chosen = select(
        candidates(criteria, actor=actor),
        remaining(criteria, actor=actor),
        per_participant_visit=per,
        max_participants=max_participants,
        allow_last=allow_last,
    )
    return Proposal(request, chosen, per, max_participants, allow_last)


@dataclass(frozen=True)
class Approval:
    request: SampleRequest
    reserved: int
    participants: int
    last_ones: list[str]  # barcodes handed out under the override


def _load(barcodes: list[str], actor) -> list[tuple]:
    """The aliquots to reserve, locked, with their participant and visit. A barcode of
    another centre's aliquot is refused as unknown, whatever the route: a manager bound to
    a centre never reserves another centre's tubes, nor learns that they exist."""
    codes = sorted({b.strip().upper() for b in barcodes if b and b.strip()})
    if not codes:
        raise Invalid(_l("No aliquot to reserve."), fields={"aliquots": ""})
    if len(codes) > MAX_BARCODES:
        raise Invalid(_l("Too many aliquots at once."), fields={"aliquots": str(len(codes))})
    rows = db.session.execute(
        _joined(
            sa.select(
                Aliquot,
                Participant.id,
                Participant.code,
                Participant.arm_code,
                Participant.disease_status,
                Participant.consent_status,
                Visit.visit_code,
            ),
            actor,
        )
        .where(Aliquot.barcode.in_(codes))
        .order_by(Aliquot.id)
        # The rows locked in one order before anything is checked: a racing approval or
        # check-out of the same tubes waits here and then sees what the winner did.
        .with_for_update(of=Aliquot)
        .execution_options(populate_existing=True)
    ).all()
    unknown = sorted(set(codes) - {row[0].barcode for row in rows})
    if unknown:
        raise Invalid(
            _l("Unknown aliquots: %(codes)s.", codes=", ".join(unknown[:20])),
            code="aliquot.not_found",
            fields={"aliquots": " ".join(unknown)},
        )
    return rows


def _holders(aliquot_ids: list[int]) -> dict[int, str]:
    """Which request holds each of these aliquots, read afresh."""
    rows = db.session.execute(
        sa.select(Reservation.aliquot_id, Reservation.request_id).where(
            Reservation.aliquot_id.in_(aliquot_ids), Reservation.closed_at.is_(None)
        )
    )
    return {aliquot: f"R{request:05d}" for aliquot, request in rows}


def _unavailable(lost: dict[str, str]) -> Conflict:
    """``lost``: barcode → why it is no longer available."""
    described = [f"{code} ({why})" for code, why in lost.items()]
    return Conflict(
        _l(
            "%(n)d of these aliquots are no longer available: %(codes)s. Nothing was reserved; "
            "review the request again.",
            n=len(lost),
            codes=", ".join(described[:30]) + (" …" if len(described) > 30 else ""),
        ),
        code="reservation.unavailable",
        fields={"aliquots": " ".join(lost)},
    )


def _outside_sop(aliquot_ids: list[int]) -> set[int]:
    """Which of these aliquots were handled outside the SOP limits or collected outside
    their visit's window: one query for the whole proposal."""
    query = _within_sop(
        sa.select(Aliquot.id)
        .join(Specimen, Specimen.id == Aliquot.specimen_id)
        .join(Visit, Visit.id == Specimen.visit_id)
        .where(Aliquot.id.in_(aliquot_ids)),
        Criteria(within_sop=True),
    )
    return set(aliquot_ids) - set(db.session.execute(query).scalars())


def _check_matches(rows, criteria: Criteria) -> None:
    wrong = []
    for aliquot, _, _, arm, disease, _, visit in rows:
        if (
            (criteria.visits and visit not in criteria.visits)
            or (criteria.sample_types and aliquot.sample_type not in criteria.sample_types)
            or (criteria.arms and arm not in criteria.arms)
            or (criteria.disease_statuses and disease not in criteria.disease_statuses)
            or aliquot.volume_ul < criteria.min_volume_ul
            or (
                criteria.max_freeze_thaw is not None
                and aliquot.freeze_thaw_count > criteria.max_freeze_thaw
            )
        ):
            wrong.append(aliquot.barcode)
    if criteria.within_sop:
        outside = _outside_sop([row[0].id for row in rows])
        wrong += [row[0].barcode for row in rows if row[0].id in outside]
    if wrong:
        raise Invalid(
            _l("These aliquots do not match the request: %(codes)s.", codes=", ".join(wrong[:30])),
            code="reservation.not_matching",
            fields={"aliquots": " ".join(wrong)},
        )


def _check_available(rows) -> None:
    holders = _holders([row[0].id for row in rows])
    lost = {}
    for aliquot, *_, consent, _visit in rows:
        if aliquot.id in holders:
            lost[aliquot.barcode] = str(_l("reserved for %(code)s", code=holders[aliquot.id]))
        elif consent != "given":
            lost[aliquot.barcode] = str(_l("consent withdrawn"))
        elif aliquot.status != "in_storage":
            lost[aliquot.barcode] = str(
                _l("now %(status)s", status=label(aliquot.status, "status"))
            )
    if lost:
        raise _unavailable(lost)


def _check_quantities(rows, per: int, override_reason: str, actor) -> list[str]:
    """Per group: no more than asked, and never the last one without an override.
    Returns the barcodes of the groups this request empties (handed out under the
    override)."""
    groups: dict[Group, list[Aliquot]] = defaultdict(list)
    for aliquot, pid, *_, visit in rows:
        groups[(pid, visit, aliquot.sample_type)].append(aliquot)
    too_many = [a[0].barcode for a in groups.values() if len(a) > per]
    if too_many:
        raise Invalid(
            _l(
                "More than %(n)d aliquots per participant and visit: %(codes)s.",
                n=per,
                codes=", ".join(too_many[:20]),
            ),
            fields={"aliquots": " ".join(too_many)},
        )
    left = _remaining_of(list(groups), actor)
    last_ones = [
        aliquot.barcode
        for group, taken in groups.items()
        if left.get(group, 0) - len(taken) < 1
        for aliquot in taken
    ]
    if last_ones and not override_reason:
        raise Conflict(
            _l(
                "%(codes)s would leave the bank without any aliquot of that participant, visit "
                "and sample type. Give a reason to override, or leave them out.",
                codes=", ".join(last_ones[:20]),
            ),
            code="reservation.last_aliquot",
            fields={"override_reason": "", "aliquots": " ".join(last_ones)},
        )
    return last_ones


def _remaining_of(groups: list[Group], actor) -> dict[Group, int]:
    participants = {g[0] for g in groups}
    query = (
        _joined(
            sa.select(
                Participant.id, Visit.visit_code, Aliquot.sample_type, sa.func.count(Aliquot.id)
            ),
            actor,
        )
        .where(
            Participant.id.in_(participants),
            Aliquot.status.in_(IN_BANK),
            ~open_reservation(Aliquot.id),
        )
        .group_by(Participant.id, Visit.visit_code, Aliquot.sample_type)
    )
    return {(p, v, t): n for p, v, t, n in db.session.execute(query)}


def approve(
    request_id: int,
    barcodes: list[str],
    *,
    per_participant_visit: int | None = None,
    override_reason: str = "",
    note: str = "",
    actor,
) -> Approval:
    """Approve a request and reserve exactly ``barcodes`` (the proposal the manager
    reviewed), all or nothing.

    Refused, naming the aliquots: one that no longer matches, one reserved meanwhile by
    another request or taken out, one whose participant withdrew consent, more than asked
    per participant and visit, or the last of its kind without an override reason.
    Two approvals racing for the same aliquot: the open-reservation index lets one win;
    the other is told which aliquots it lost.
    """
    request = request_to_change(request_id, actor=actor)
    _refuse_decided(request)
    criteria = criteria_of(request)
    per = min(
        per_participant_visit or criteria.per_participant_visit, criteria.per_participant_visit
    )
    override_reason = (override_reason or "").strip()
    rows = _load(barcodes, actor)
    _check_matches(rows, criteria)
    _check_available(rows)
    last_ones = _check_quantities(rows, per, override_reason, actor)
    _reserve(request, [row[0] for row in rows], set(last_ones), override_reason, actor)
    if request.status == "submitted":
        move_request(request, "under_review", actor)
    move_request(request, "approved", actor, note.strip())
    request.decision_reason = note.strip()
    db.session.flush()
    participants = len({row[1] for row in rows})
    notifications.notify_each(
        "request.approved",
        told_of(request),
        _l("Request %(code)s approved", code=request.code),
        _l(
            "Request %(code)s (%(title)s) was approved: %(n)d aliquots of %(p)d participants "
            "are reserved and will be prepared for %(lab)s.",
            code=request.code,
            title=request.title,
            n=len(rows),
            p=participants,
            lab=request.receiving_lab,
        ),
    )
    return Approval(request, len(rows), participants, sorted(last_ones))


def _refuse_decided(request: SampleRequest) -> None:
    """Only a request waiting for review is approved: a second approval (a reload, the back
    button, another manager at the same moment) would reserve a second set of aliquots."""
    if request.status in OPEN_FOR_RESERVATION:
        return
    decided = next((e for e in reversed(request.events) if e.status == request.status), None)
    if request.status == "approved" and decided is not None:
        message = _l(
            "Request %(code)s was already approved by %(who)s: nothing more was reserved.",
            code=request.code,
            who=decided.actor_name,
        )
    else:
        message = _l(
            "Request %(code)s is %(status)s: only a request waiting for review can be "
            "approved. Nothing was reserved.",
            code=request.code,
            status=label(request.status, "request_status"),
        )
    raise Conflict(message, code="request.status")


def _reserve(request, aliquots: list[Aliquot], last_ones: set[str], reason: str, actor) -> None:
    now = utcnow()
    ids = [a.id for a in aliquots]
    try:
        # A savepoint: on a lost race the transaction stays usable to say what was lost.
        with db.session.begin_nested():
            db.session.execute(
                sa.insert(Reservation),
                [
                    {
                        "request_id": request.id,
                        "aliquot_id": a.id,
                        "reserved_at": now,
                        "reserved_by_id": actor.id,
                        "override_reason": reason if a.barcode in last_ones else None,
                    }
                    for a in aliquots
                ],
            )
            custody.record_many(
                [
                    (
                        a,
                        {
                            "at": now,
                            "reason": reason if a.barcode in last_ones else None,
                            "details": {"request": request.code}
                            | ({"last_aliquot": True} if a.barcode in last_ones else {}),
                        },
                    )
                    for a in aliquots
                ],
                EventKind.RESERVED,
                actor,
            )
    except (sa.exc.IntegrityError, Conflict):
        holders = _holders(ids)
        lost = {
            a.barcode: str(_l("reserved for %(code)s", code=holders[a.id]))
            for a in aliquots
            if a.id in holders
        }
        # No reservation in the way: another change to one of the tubes got there first.
        raise _unavailable(
            lost or {a.barcode: str(_l("changed meanwhile")) for a in aliquots}
        ) from None


def reject(request_id: int, reason: str, *, actor) -> SampleRequest:
    request = request_to_change(request_id, actor=actor)
    reason = custody.require_reason(reason, _l("reject a request"))
    move_request(request, "rejected", actor, reason)
    request.decision_reason = reason
    db.session.flush()
    notifications.notify_each(
        "request.rejected",
        told_of(request),
        _l("Request %(code)s rejected", code=request.code),
        _l(
            "Request %(code)s (%(title)s) was rejected: %(reason)s",
            code=request.code,
            title=request.title,
            reason=reason,
        ),
    )
    return request


def open_reservations(request_id: int) -> list[Reservation]:
    return list(
        db.session.execute(
            sa.select(Reservation).where(
                Reservation.request_id == request_id, Reservation.closed_at.is_(None)
            )
        ).scalars()
    )


def close_reservations(reservations: list[Reservation], outcome: str, actor, reason="") -> int:
    """End reservations; the aliquots still in the bank get a RELEASED custody event."""
    now = utcnow()
    back = []
    for reservation in reservations:
        reservation.closed_at = now
        reservation.outcome = outcome
        if outcome != "shipped":
            back.append(
                (
                    reservation.aliquot,
                    {
                        "at": now,
                        "reason": reason or None,
                        "details": {"request": reservation.request.code, "outcome": outcome},
                    },
                )
            )
    db.session.flush()
    custody.record_many(back, EventKind.RELEASED, actor)
    return len(reservations)


def cancel(request_id: int, reason: str, *, actor) -> SampleRequest:
    """Cancel a request (its researcher, or a manager); its reservations are released.
    Tubes already picked stay checked out, to be returned to their positions."""
    request = request_to_change(request_id, actor=actor)
    reason = custody.require_reason(reason, _l("cancel a request"))
    move_request(request, "cancelled", actor, reason)
    close_reservations(open_reservations(request.id), "cancelled", actor, reason)
    db.session.flush()
    return request


def reservation_summary(request_id: int) -> Counter:
    """How many aliquots the request holds, by state: reserved, picked, shipped…"""
    rows = db.session.execute(
        sa.select(Reservation.closed_at, Reservation.outcome, Reservation.picked_at).where(
            Reservation.request_id == request_id
        )
    )
    summary: Counter = Counter()
    for closed_at, outcome, picked_at in rows:
        summary[outcome if closed_at else ("picked" if picked_at else "reserved")] += 1
    return summary


def reservation_guard(aliquot: Aliquot, purpose: object) -> None:
    """Storage's take-out rule: a reserved aliquot leaves only for its own request."""
    holder = db.session.execute(
        sa.select(Reservation.request_id).where(
            Reservation.aliquot_id == aliquot.id, Reservation.closed_at.is_(None)
        )
    ).scalar()
    if holder is not None and holder != purpose:
        raise Conflict(
            _l(
                "%(code)s is reserved for request %(request)s.",
                code=aliquot.barcode,
                request=f"R{holder:05d}",
            ),
            code="aliquot.reserved",
        )


def reserved_for(aliquot_ids: list[int]) -> dict[int, str]:
    """Storage's box map: the request each of these aliquots is reserved for, by its code."""
    return _holders(list(aliquot_ids)) if aliquot_ids else {}
