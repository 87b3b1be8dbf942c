"""Registering a visit's primary tubes and their aliquots; finding aliquots by barcode."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from biobank.custody import services as custody
from biobank.custody.hashing import canonical_json
from biobank.db import utcnow
from biobank.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from biobank.extensions import db
from biobank.i18n import VALUE_LABELS
from biobank.samples import barcodes, deviations, sprec
from biobank.samples.models import NOT_COLLECTED_REASONS, Aliquot, Specimen, UncollectedTube
from biobank.sites.models import Site
from biobank.sites.services import in_reach
from biobank.study import services as study
from biobank.study.models import Participant, Visit
from biobank.study.protocol import SopLimits
from biobank.study.services import Page

# barcodes.py is a pure module and speaks English; these are the same messages, translated.
BARCODE_MESSAGES = {
    "empty barcode": _l("empty barcode"),
    "not a valid barcode (characters)": _l("not a valid barcode (characters)"),
    "not a valid barcode (check character)": _l("not a valid barcode (check character)"),
}
TIME_FIELDS = {
    "collected_at": _l("the time the blood was drawn"),
    "received_at": _l("the reception time"),
    "spun_at": _l("the centrifugation time"),
    "frozen_at": _l("the freezing time"),
}

# A clock a few minutes fast on a bench tablet must not make a real time "in the future".
CLOCK_SKEW = timedelta(minutes=10)
MAX_ALIQUOTS_PER_TUBE = 50
MAX_ALIQUOT_VOLUME_UL = 10_000
# Why a tube was not drawn, in a few words (forms and the API cap it at this length).
MAX_NOT_COLLECTED_NOTE = 500


@dataclass(frozen=True)
class SpinEntry:
    temperature_c: float
    force_g: int
    minutes: int
    braking: bool = True


@dataclass(frozen=True)
class TubeEntry:
    """What the technician enters for one primary tube."""

    tube_type: str
    collected_at: datetime
    spun_at: datetime
    spin: SpinEntry
    frozen_at: datetime
    received_at: datetime | None = None
    second_spin: SpinEntry | None = None
    precentrifugation_temperature: str = "RT"
    postcentrifugation_temperature: str = "RT"
    storage_temperature_c: int = -80
    tube_barcode: str | None = None
    # None: as many aliquots, of the volume, that the protocol plans for this visit.
    aliquots: int | None = None
    volume_ul: int | None = None
    notes: str = ""


@dataclass(frozen=True)
class NotCollected:
    """A primary tube of the visit that was not drawn, and why: a reason of
    NOT_COLLECTED_REASONS, and a note (required for "other")."""

    tube_type: str
    reason: str
    note: str = ""


@dataclass
class Registration:
    visit: Visit
    specimens: list[Specimen] = field(default_factory=list)
    uncollected: list[UncollectedTube] = field(default_factory=list)

    @property
    def aliquots(self) -> list[Aliquot]:
        return [a for s in self.specimens for a in s.aliquots]


def register_collection(
    participant_code: str,
    visit_code: str,
    tubes: list[TubeEntry],
    *,
    actor,
    not_collected: Iterable[NotCollected] = (),
    collected_on: date | None = None,
) -> Registration:
    """Register the primary tubes of one visit and create their planned aliquots.

    All or nothing: the visit, each specimen with its pre-analytical code, each aliquot
    with its barcode, and one REGISTERED custody event per aliquot. A tube type already
    registered for this visit, or a blood draw dated before the visit's protocol window,
    is refused, and so nothing of the call is written.

    ``not_collected`` records the tubes that were not drawn, each with its reason. A visit
    where no tube could be drawn is registered too: ``collected_on`` (used only then) is
    the day the participant came. A tube recorded as not collected and registered later
    (it was found) replaces that record.
    """
    not_collected = list(not_collected)
    if not tubes and not not_collected:
        raise Invalid(_l("Enter at least one primary tube."), fields={"tubes": ""})
    participant = study.get_participant(participant_code, actor=actor)
    if participant.consent_status != "given":
        raise Conflict(
            _l(
                "Biobank consent of %(p)s is withdrawn: no new sample may be banked.",
                p=participant.code,
            ),
            code="consent.withdrawn",
        )
    seen = set()
    for tube in tubes:
        if tube.tube_type in seen:
            raise Invalid(
                _l("Tube type %(t)s is entered twice.", t=tube.tube_type),
                fields={f"{tube.tube_type}.tube_type": ""},
            )
        seen.add(tube.tube_type)
        _check_times(tube)
    _check_not_collected(not_collected, seen)
    if tubes:
        tz = ZoneInfo(participant.site.timezone)
        first = min(tubes, key=lambda t: t.collected_at)
        collected_on = first.collected_at.astimezone(tz).date()
        date_field = f"{first.tube_type}.collected_at"
    else:
        _check_visit_day(participant, collected_on)
        date_field = "collected_on"
    visit = study.open_visit(
        participant, visit_code, collected_on, actor=actor, date_field=date_field
    )
    registration = Registration(visit)
    for entry in not_collected:
        registration.uncollected.append(_record_not_collected(visit, entry, actor))
    _forget_not_collected(visit, [tube.tube_type for tube in tubes])
    for tube in tubes:
        registration.specimens.append(_register_tube(visit, tube, actor))
    return registration


def _check_not_collected(entries: list[NotCollected], collected: set[str]) -> None:
    """Each tube not collected is named once, is not also collected, and says why."""
    seen = set()
    for entry in entries:
        prefix = entry.tube_type
        if prefix in collected:
            raise Invalid(
                _l(
                    "Tube type %(t)s is entered both as collected and as not collected.",
                    t=prefix,
                ),
                fields={f"{prefix}.tube_type": prefix},
            )
        if prefix in seen:
            raise Invalid(
                _l("Tube type %(t)s is entered twice.", t=prefix),
                fields={f"{prefix}.tube_type": prefix},
            )
        seen.add(prefix)
        if entry.reason not in NOT_COLLECTED_REASONS:
            raise Invalid(
                _l(
                    "Tube %(tube)s: unknown reason %(reason)s for a tube not collected "
                    "(known: %(known)s).",
                    tube=prefix,
                    reason=entry.reason or "—",
                    known=", ".join(NOT_COLLECTED_REASONS),
                ),
                fields={f"{prefix}.not_collected_reason": entry.reason},
            )
        if entry.reason == "other" and not (entry.note or "").strip():
            raise Invalid(
                _l(
                    "Tube %(tube)s: the reason is “other”: say in the note why it was not drawn.",
                    tube=prefix,
                ),
                fields={f"{prefix}.not_collected_note": ""},
            )
        if len(entry.note or "") > MAX_NOT_COLLECTED_NOTE:
            raise Invalid(
                _l(
                    "Tube %(tube)s: the note is limited to %(n)d characters.",
                    tube=prefix,
                    n=MAX_NOT_COLLECTED_NOTE,
                ),
                fields={f"{prefix}.not_collected_note": ""},
            )


def _check_visit_day(participant: Participant, collected_on: date | None) -> None:
    """The day of a visit where no tube was drawn: given, and not after today at the
    centre (the protocol window is checked by ``study.open_visit``)."""
    if collected_on is None:
        raise Invalid(
            _l("No tube was drawn: enter the date of the visit."),
            fields={"collected_on": ""},
        )
    study.refuse_a_future_day(
        participant,
        collected_on,
        "collected_on",
        lambda **said: _l(
            "The visit date %(on)s is in the future: today is %(today)s at %(site)s.", **said
        ),
    )


def _record_not_collected(visit: Visit, entry: NotCollected, actor) -> UncollectedTube:
    """Record (or correct) that a tube of the visit was not drawn; refused for a tube that
    is registered."""
    prefix = entry.tube_type
    try:
        study.tube_type(visit.definition.protocol, entry.tube_type)
    except Invalid as err:  # the same message, on this tube's field
        raise Invalid(err.message, fields={f"{prefix}.tube_type": prefix}) from err
    registered = db.session.execute(
        db.select(Specimen.id).where(
            Specimen.visit_id == visit.id, Specimen.tube_type == entry.tube_type
        )
    ).first()
    if registered:
        raise Conflict(
            _l(
                "The %(t)s tube of visit %(v)s of %(p)s is registered: it cannot be recorded "
                "as not collected.",
                t=prefix,
                v=visit.visit_code,
                p=visit.participant.code,
            ),
            code="uncollected.registered",
            fields={f"{prefix}.not_collected_reason": entry.reason},
        )
    record = db.session.execute(
        db.select(UncollectedTube).where(
            UncollectedTube.visit_id == visit.id, UncollectedTube.tube_type == entry.tube_type
        )
    ).scalar()
    if record is None:
        record = UncollectedTube(visit=visit, tube_type=entry.tube_type)
        db.session.add(record)
    record.reason = entry.reason
    record.note = (entry.note or "").strip()
    record.recorded_at = utcnow()
    record.recorded_by_id = getattr(actor, "id", None)
    concurrent = Conflict(  # built now: a failed flush expires the visit
        _l(
            "The %(t)s tube of visit %(v)s of %(p)s was recorded by someone else at the same "
            "moment. Nothing was written: open the visit's page to see it.",
            t=prefix,
            v=visit.visit_code,
            p=visit.participant.code,
        ),
        code="uncollected.concurrent",
        fields={f"{prefix}.tube_type": prefix},
    )
    try:
        db.session.flush()
    except sa.exc.IntegrityError as err:
        raise concurrent from err
    return record


def _forget_not_collected(visit: Visit, tube_types: list[str]) -> None:
    """A tube recorded as not collected and registered now was found after all: its
    record goes, in the same transaction as the tube's registration."""
    if tube_types:
        db.session.execute(
            sa.delete(UncollectedTube).where(
                UncollectedTube.visit_id == visit.id, UncollectedTube.tube_type.in_(tube_types)
            )
        )


def _check_times(tube: TubeEntry) -> None:
    prefix = tube.tube_type
    steps = [
        ("collected_at", tube.collected_at),
        ("received_at", tube.received_at),
        ("spun_at", tube.spun_at),
        ("frozen_at", tube.frozen_at),
    ]
    present = [(name, moment) for name, moment in steps if moment is not None]
    for name, moment in present:
        if moment.tzinfo is None:
            raise Invalid(
                _l("Tube %(tube)s: %(f)s has no time zone.", tube=prefix, f=TIME_FIELDS[name]),
                fields={f"{prefix}.{name}": ""},
            )
        if moment > utcnow() + CLOCK_SKEW:
            raise Invalid(
                _l("Tube %(tube)s: %(f)s is in the future.", tube=prefix, f=TIME_FIELDS[name]),
                fields={f"{prefix}.{name}": moment.isoformat()},
            )
    for (first, t1), (second, t2) in pairwise(present):
        if t2 < t1:
            raise Invalid(
                _l(
                    "Tube %(tube)s: %(second)s is before %(first)s. Check the times.",
                    first=TIME_FIELDS[first],
                    second=TIME_FIELDS[second],
                    tube=prefix,
                ),
                fields={f"{prefix}.{second}": t2.isoformat()},
            )
    for name, spin in (("spin", tube.spin), ("second_spin", tube.second_spin)):
        if spin is None:
            continue
        if not (1 <= spin.force_g <= 100_000):
            raise Invalid(
                _l("Centrifugal force must be between 1 and 100000 g."),
                fields={f"{prefix}.{name}_force_g": str(spin.force_g)},
            )
        if not (1 <= spin.minutes <= 240):
            raise Invalid(
                _l("Centrifugation must last 1 to 240 minutes."),
                fields={f"{prefix}.{name}_minutes": str(spin.minutes)},
            )
        if not (-20 <= spin.temperature_c <= 45):
            raise Invalid(
                _l("Centrifuge temperature must be between -20 and 45 °C."),
                fields={f"{prefix}.{name}_temperature_c": str(spin.temperature_c)},
            )


def _register_tube(visit: Visit, tube: TubeEntry, actor) -> Specimen:
    protocol = visit.definition.protocol
    kind = study.tube_type(protocol, tube.tube_type)
    plan = next((p for p in visit.definition.sample_plans if p.tube_type == tube.tube_type), None)
    count = tube.aliquots if tube.aliquots is not None else (plan.aliquots if plan else None)
    volume = tube.volume_ul if tube.volume_ul is not None else (plan.volume_ul if plan else None)
    prefix = tube.tube_type
    if count is None or volume is None:
        raise Invalid(
            _l(
                "The protocol plans no %(t)s tube at visit %(v)s: enter the number and volume "
                "of aliquots.",
                t=tube.tube_type,
                v=visit.visit_code,
            ),
            fields={f"{prefix}.aliquots": ""},
        )
    if not (1 <= count <= MAX_ALIQUOTS_PER_TUBE):
        raise Invalid(
            _l("Number of aliquots must be 1 to %(n)d.", n=MAX_ALIQUOTS_PER_TUBE),
            fields={f"{prefix}.aliquots": str(count)},
        )
    if not (1 <= volume <= MAX_ALIQUOT_VOLUME_UL):
        raise Invalid(
            _l("Aliquot volume must be 1 to %(n)d µL.", n=MAX_ALIQUOT_VOLUME_UL),
            fields={f"{prefix}.volume_ul": str(volume)},
        )
    _refuse_duplicate(visit, tube)

    sample_type = kind.sample_type
    if sample_type == "PL1" and tube.second_spin is not None:
        sample_type = "PL2"  # double-spun plasma is a distinct, platelet-poor sample type
    code = _sprec_code(tube, kind.container, sample_type)
    specimen = Specimen(
        visit=visit,
        tube_type=tube.tube_type,
        tube_barcode=(tube.tube_barcode or "").strip() or None,
        container=kind.container,
        sample_type=sample_type,
        collected_at=tube.collected_at,
        received_at=tube.received_at,
        precentrifugation_temperature=tube.precentrifugation_temperature,
        spun_at=tube.spun_at,
        spin_temperature_c=tube.spin.temperature_c,
        spin_force_g=tube.spin.force_g,
        spin_minutes=tube.spin.minutes,
        spin_braking=tube.spin.braking,
        second_spin_temperature_c=tube.second_spin and tube.second_spin.temperature_c,
        second_spin_force_g=tube.second_spin and tube.second_spin.force_g,
        second_spin_minutes=tube.second_spin and tube.second_spin.minutes,
        postcentrifugation_temperature=tube.postcentrifugation_temperature,
        frozen_at=tube.frozen_at,
        storage_temperature_c=tube.storage_temperature_c,
        sprec_code=str(code),
        sprec_others=canonical_json(code.others),
        notes=tube.notes,
        created_by_id=getattr(actor, "id", None),
    )
    _record_deviations(specimen, study.sop_limits(protocol, tube.tube_type))
    db.session.add(specimen)
    duplicate = _duplicate_error(visit, tube)  # built now: a failed flush expires the visit
    try:
        db.session.flush()  # the specimen: its id and time go into the custody events
        codes = _new_barcodes(count)
        # Each aliquot inserted with its REGISTERED event as its chain's head, the events in
        # one statement: a registration's statements do not grow with its aliquots.
        aliquots = custody.open_chains(
            [
                (
                    {
                        "barcode": codes[n - 1],
                        "specimen_id": specimen.id,
                        "sample_type": sample_type,
                        "series_number": n,
                        "series_total": count,
                        "initial_volume_ul": volume,
                        "volume_ul": volume,
                        "status": "registered",
                        "freeze_thaw_count": 0,
                        "registered_at": specimen.created_at,
                    },
                    {
                        "at": specimen.created_at,
                        "details": {
                            "specimen": specimen.id,
                            "sprec": specimen.sprec_code,
                            "volume_ul": volume,
                            "series": f"{n}/{count}",
                        },
                    },
                )
                for n in range(1, count + 1)
            ],
            custody.EventKind.REGISTERED,
            actor,
        )
    except sa.exc.IntegrityError as err:
        # Lost a race with another registration of the same tube.
        raise duplicate from err
    # The new specimen's aliquots are these: known without reading them back.
    set_committed_value(specimen, "aliquots", aliquots)
    for aliquot in aliquots:
        set_committed_value(aliquot, "specimen", specimen)
    return specimen


def _record_deviations(specimen: Specimen, limits: SopLimits | None) -> None:
    """Keep where the tube's handling broke the SOP limits: a warning on the sample for
    those who use it, never a reason to refuse the tube."""
    found = deviations.found(limits, specimen)
    specimen.deviations = canonical_json(found)
    specimen.deviates = bool(found)


def _sprec_code(tube: TubeEntry, container: str, sample_type: str) -> sprec.SprecCode:
    def spin(entry: SpinEntry | None):
        if entry is None:
            return None
        return sprec.Spin(entry.temperature_c, entry.force_g, entry.minutes, entry.braking)

    try:
        return sprec.derive_fluid_code(
            sprec.FluidPreanalytics(
                sample_type=sample_type,
                container=container,
                collected_at=tube.collected_at,
                first_spin_at=tube.spun_at,
                precentrifugation_temperature=tube.precentrifugation_temperature,
                first_spin=spin(tube.spin),
                second_spin=spin(tube.second_spin),
                frozen_at=tube.frozen_at,
                postcentrifugation_temperature=tube.postcentrifugation_temperature,
                storage_temperature_c=tube.storage_temperature_c,
            )
        )
    except ValueError as err:  # times in an order no processing can have
        raise Invalid(
            _l("Tube %(tube)s: %(detail)s", tube=tube.tube_type, detail=str(err)),
            fields={f"{tube.tube_type}.frozen_at": ""},
        ) from err


def _refuse_duplicate(visit: Visit, tube: TubeEntry) -> None:
    query = db.select(Specimen.id).where(
        Specimen.visit_id == visit.id, Specimen.tube_type == tube.tube_type
    )
    if visit.id is not None and db.session.execute(query).first():
        raise _duplicate_error(visit, tube)
    barcode = (tube.tube_barcode or "").strip()
    if (
        barcode
        and db.session.execute(
            db.select(Specimen.id).where(Specimen.tube_barcode == barcode)
        ).first()
    ):
        raise Conflict(
            _l("Primary tube %(b)s is already registered.", b=barcode),
            code="specimen.duplicate",
            fields={f"{tube.tube_type}.tube_barcode": barcode},
        )


def _duplicate_error(visit: Visit, tube: TubeEntry) -> Conflict:
    return Conflict(
        _l(
            "The %(t)s tube of visit %(v)s of %(p)s is already registered. Nothing was "
            "written: scan its aliquots to find them.",
            t=tube.tube_type,
            v=visit.visit_code,
            p=visit.participant.code,
        ),
        code="specimen.duplicate",
        fields={f"{tube.tube_type}.tube_type": tube.tube_type},
    )


def _new_barcodes(count: int) -> list[str]:
    """``count`` fresh barcodes, checked against the table in one query per draw: neither
    an aliquot's barcode nor, as it is or in lowercase, a tube's old label (both indexed):
    a barcode must never equal an old label."""
    codes: set[str] = set()
    for _ in range(8):
        while len(codes) < count:
            codes.add(barcodes.new_aliquot_barcode())
        variants = {variant: code for code in codes for variant in (code, code.lower())}
        found = db.session.execute(
            sa.union_all(
                sa.select(Aliquot.barcode).where(Aliquot.barcode.in_(codes)),
                sa.select(Aliquot.legacy_barcode).where(Aliquot.legacy_barcode.in_(variants)),
            )
        ).scalars()
        taken = {variants[value] for value in found}
        if not taken:
            return sorted(codes)
        codes -= taken
    raise Conflict(_l("Could not draw unused barcodes; try again."))


# --- finding aliquots ----------------------------------------------------------------------


@dataclass(frozen=True)
class AliquotSummary:
    """What a scan shows: one flat row, read with one indexed query (the hot path)."""

    id: int
    barcode: str
    legacy_barcode: str | None  # the code of its old label, for a tube of an imported inventory
    status: str
    volume_ul: int
    initial_volume_ul: int
    sample_type: str
    series_number: int
    series_total: int
    freeze_thaw_count: int
    registered_at: datetime
    custody_count: int
    tube_type: str
    sprec_code: str
    collected_at: datetime
    visit: str
    collected_on: date
    participant: str
    consent_status: str
    site: str
    location: str | None = None  # given by storage (see set_location_column)

    @property
    def series_label(self) -> str:
        return f"{self.series_number}/{self.series_total}"


_SUMMARY_COLUMNS = (
    Aliquot.id,
    Aliquot.barcode,
    Aliquot.legacy_barcode,
    Aliquot.status,
    Aliquot.volume_ul,
    Aliquot.initial_volume_ul,
    Aliquot.sample_type,
    Aliquot.series_number,
    Aliquot.series_total,
    Aliquot.freeze_thaw_count,
    Aliquot.registered_at,
    Aliquot.custody_count,
    Specimen.tube_type,
    Specimen.sprec_code,
    Specimen.collected_at,
    Visit.visit_code,
    Visit.collected_on,
    Participant.code,
    Participant.consent_status,
    Site.code,
)


def site_scope(query, actor):
    """``query`` (joined to Participant) limited to the actor's centre, if bound to one."""
    return in_reach(query, Participant.site_id, actor)


# --- the centre rule of aliquots ------------------------------------------------------------


def _joined_tables(query) -> set:
    """The tables a query already joins (an implicit FROM named only by a selected column
    is no join: joining it again is what makes it one)."""
    found: set = set()

    def walk(clause) -> None:
        if isinstance(clause, sa.Join):
            walk(clause.left)
            walk(clause.right)
        else:
            found.add(clause)

    for clause in query.get_final_froms():
        if isinstance(clause, sa.Join):
            walk(clause)
    return found


def aliquots_in_reach(query, actor):
    """``query`` (on aliquots, or on anything joined to Aliquot) limited to the aliquots the
    actor may see: those of their centre's participants, or all of them for a user of the
    central biobank. The one centre rule of every aliquot-level query (storage,
    distribution, assays), built on ``sites.services.in_reach``.

    The joins aliquot → specimen → visit → participant that the query lacks are added, so
    that the caller may select the participant's or the visit's columns as well. What lies
    outside is simply not in the answer: "not found", never "forbidden", so that its
    existence is not disclosed either."""
    joined = _joined_tables(query)
    if Participant.__table__ not in joined:
        if Visit.__table__ not in joined:
            if Specimen.__table__ not in joined:
                query = query.join(Specimen, Specimen.id == Aliquot.specimen_id)
            query = query.join(Visit, Visit.id == Specimen.visit_id)
        query = query.join(Participant, Participant.id == Visit.participant_id)
    return site_scope(query, actor)


def bound_to_a_centre(actor) -> bool:
    """Whether the centre rule leaves anything out for this actor."""
    return actor is not None and getattr(actor, "site_id", None) is not None


def reached(barcodes: Iterable[str], actor) -> set[str]:
    """Which of these barcodes name aliquots the actor may see: does this actor reach
    these tubes."""
    codes = sorted({code for code in barcodes if code})
    if not codes:
        return set()
    named = sa.select(Aliquot.barcode).where(Aliquot.barcode.in_(codes))
    return set(db.session.execute(aliquots_in_reach(named, actor)).scalars())


def out_of_reach(barcodes: Iterable[str], actor) -> set[str]:
    """Which of these barcodes name aliquots of a centre the actor is not bound to: what a
    record shared by several centres (a plate, a request, a box) leaves out for them.
    Barcodes of no aliquot at all are not among them."""
    codes = sorted({code for code in barcodes if code})
    if not codes or not bound_to_a_centre(actor):
        return set()
    named = sa.select(Aliquot.barcode).where(Aliquot.barcode.in_(codes))
    return set(db.session.execute(named).scalars()) - reached(codes, actor)


class _AtTheScannerSite:
    """The actor of the scan's prebuilt statement: bound to the centre given when it runs
    (the ``site_id`` parameter), so that the statement is built once by the centre rule."""

    site_id = sa.bindparam("site_id")


_AT_THE_SCANNER_SITE = _AtTheScannerSite()


@dataclass(frozen=True)
class _ScanStatements:
    summary: sa.Select
    by_barcode: sa.Select
    by_barcode_at_site: sa.Select


def _scan_statements(location) -> _ScanStatements:
    """The scan's statements, built once: building one per call costs more Python than the
    indexed lookup itself. ``location`` is a correlated column giving where the aliquot is
    (storage, a domain above this one, provides it; NULL until it does)."""
    summary = (
        sa.select(*_SUMMARY_COLUMNS, location.label("location"))
        .join(Aliquot.specimen)
        .join(Specimen.visit)
        .join(Visit.participant)
        .join(Participant.site)
    )
    by_barcode = summary.where(Aliquot.barcode == sa.bindparam("barcode"))
    at_site = aliquots_in_reach(by_barcode, _AT_THE_SCANNER_SITE)
    return _ScanStatements(summary, by_barcode, at_site)


_scan = _scan_statements(sa.null())


def set_location_column(make_column: Callable[[sa.ColumnElement], sa.ColumnElement]) -> None:
    """Let storage say where a tube is in the scan's own query (one round trip, not two):
    ``make_column(aliquot_id)`` returns a correlated scalar subquery giving the location."""
    global _scan
    _scan = _scan_statements(make_column(Aliquot.id))


def _summaries(rows) -> list[AliquotSummary]:
    return [AliquotSummary(*row) for row in rows]


# --- what a scanned code is ---------------------------------------------------------------

ALIQUOT_CODE_LENGTH = barcodes.BODY_LENGTH + 1
# A position in a box as typed or read off a box map (B4, A01, "c-3"): one row letter and
# a column number, the shapes storage accepts. A scan that is one is a slip of the hand
# (the position was scanned, or typed into the tube field), not a misread tube.
_POSITION = re.compile(r"[A-Z]\s*[-:/]?\s*0*[0-9]{1,3}")
# What a message quotes of a code: a pasted paragraph is cut so the message stays readable.
_QUOTE_LIMIT = 24


@dataclass(frozen=True)
class CodeMeaning:
    """What a scanned code names when it is not an aliquot's barcode (a box, a rack, a
    freezer), as a higher domain recognises it."""

    kind: str  # a key of i18n.VALUE_LABELS["scanned"]: "box", "rack", "freezer"...
    code: str
    endpoint: str  # the page that shows it, called with barcode=code


# Functions (code, actor) -> CodeMeaning | None that recognise a code as something of a
# higher domain the actor may see (storage: a container of the actor's centre). Asked only
# once a code has turned out not to be an aliquot of the actor's centre, so that a scan
# that finds its tube pays nothing for them.
_CODE_RESOLVERS: list[Callable[[str, object], CodeMeaning | None]] = []


def add_code_resolver(resolver: Callable[[str, object], CodeMeaning | None]) -> None:
    """Register ``resolver(code, actor)`` for the scan lookup (see ``_CODE_RESOLVERS``)."""
    if resolver not in _CODE_RESOLVERS:
        _CODE_RESOLVERS.append(resolver)


class NotATube(Invalid):
    """A scanned code that names something else than a tube; ``meaning`` says what."""

    def __init__(self, message, *, meaning: CodeMeaning, fields: dict):
        super().__init__(message, code="barcode.container", fields=fields)
        self.meaning = meaning


def _shown(code: str) -> str:
    return code if len(code) <= _QUOTE_LIMIT else code[: _QUOTE_LIMIT - 1] + "…"


def _aliquot_shaped(raw_code: str) -> str | None:
    """The normalized code if it can be an aliquot's barcode (its length, its characters,
    its check character), else None."""
    code = barcodes.normalize(raw_code)
    if len(code) != ALIQUOT_CODE_LENGTH:
        return None
    try:
        return barcodes.validate(code)
    except barcodes.BarcodeError:
        return None


def _misread(raw_code: str, field_name: str) -> Invalid:
    """Why a code that is no aliquot barcode is not one, from its shape alone."""
    code = barcodes.normalize(raw_code)
    fields = {field_name: raw_code}
    if not code:
        return Invalid(BARCODE_MESSAGES["empty barcode"], code="barcode.invalid", fields=fields)
    if _POSITION.fullmatch(code):
        return Invalid(
            _l(
                "%(code)s is a position in a box, not a tube: scan the barcode on the tube.",
                code=_shown(code),
            ),
            code="barcode.position",
            fields=fields,
        )
    if len(code) != ALIQUOT_CODE_LENGTH:
        if len(code) == 1:
            message = _l(
                "%(code)s has one character; an aliquot barcode has %(length)d.",
                code=code,
                length=ALIQUOT_CODE_LENGTH,
            )
        else:
            message = _l(
                "%(code)s has %(num)d characters; an aliquot barcode has %(length)d.",
                code=_shown(code),
                num=len(code),
                length=ALIQUOT_CODE_LENGTH,
            )
        return Invalid(message, code="barcode.length", fields=fields)
    try:
        barcodes.validate(code)
    except barcodes.BarcodeError as err:
        message = BARCODE_MESSAGES.get(str(err), str(err))
        return Invalid(message, code="barcode.invalid", fields=fields)
    raise AssertionError(f"{code!r} is a valid aliquot barcode")  # callers checked it


def valid_code(raw_code: str) -> str:
    """The normalized aliquot barcode, or Invalid naming what is wrong with it.

    Whitespace, lowercase and a scanner's CR/LF are forgiven. A code that cannot be an
    aliquot's is reported by what it looks like: a position in a box (B4), a code of the
    wrong length, foreign characters, a wrong check character (a misread or mistyped
    code, not a missing tube). The lookups below also say when it is a container or
    another centre's tube.
    """
    code = _aliquot_shaped(raw_code)
    if code is None:
        raise _misread(raw_code, "barcode")
    return code


def _outside_reach(codes: list[str], actor) -> list[str]:
    """Which of these aliquot barcodes exist at a centre the actor is not bound to."""
    return sorted(out_of_reach(codes, actor))


def _other_centre(codes: list[str], field_name: str) -> Forbidden:
    # Only that the tube exists elsewhere: nothing of its participant, visit or place.
    if len(codes) == 1:
        message = _l(
            "%(code)s is registered at another centre: only that centre and the central "
            "biobank can see it.",
            code=codes[0],
        )
    else:
        message = _l(
            "%(codes)s are registered at another centre: only that centre and the central "
            "biobank can see them.",
            codes=", ".join(codes),
        )
    return Forbidden(message, code="aliquot.other_centre", fields={field_name: " ".join(codes)})


def _resolve(code: str, actor) -> CodeMeaning | None:
    for resolver in _CODE_RESOLVERS:
        meaning = resolver(code, actor)
        if meaning is not None:
            return meaning
    return None


def _not_a_tube(meaning: CodeMeaning, raw_code: str, field_name: str) -> NotATube:
    phrase = VALUE_LABELS["scanned"].get(meaning.kind)  # "box %(code)s", "la boîte %(code)s"
    what = phrase % {"code": meaning.code} if phrase is not None else meaning.code
    return NotATube(
        _l("This is %(what)s, not a tube: scan the barcode on the tube.", what=what),
        meaning=meaning,
        fields={field_name: raw_code},
    )


def _not_an_aliquot(
    raw_code: str, actor, field_name: str = "barcode", *, named: str | None = None
) -> DomainError:
    """Why ``raw_code`` names no aliquot of the actor's centre: another centre's tube, a
    container, a position, a misread code, or no tube at all. ``named`` is the barcode of
    the aliquot whose old label the code is, when the lookup found one."""
    code = barcodes.normalize(raw_code)
    shaped = _aliquot_shaped(code)
    if named is not None and named != shaped and _outside_reach([named], actor):
        # Quoted as it was scanned: the tube's own barcode is that centre's to know.
        return _other_centre([_as_scanned(raw_code, named)], field_name)
    if shaped is not None and _outside_reach([shaped], actor):
        return _other_centre([shaped], field_name)
    meaning = _resolve(code, actor) if code else None
    if meaning is not None:
        return _not_a_tube(meaning, raw_code, field_name)
    if shaped is not None:
        return _not_found(shaped, field_name)
    return _misread(raw_code, field_name)


def _not_found(code: str, field_name: str = "barcode") -> NotFound:
    return NotFound(
        _l("No aliquot with barcode %(code)s.", code=code),
        code="aliquot.not_found",
        fields={field_name: code},
    )


def _as_scanned(raw_code: str, barcode: str) -> str:
    """How a message quotes a code that names the aliquot ``barcode``: its barcode when it
    is that barcode, else the old label as scanned."""
    if _aliquot_shaped(raw_code) == barcode:
        return barcode
    return _shown(_old_label_code(raw_code) or raw_code)


# --- old labels: the codes the tubes of an imported inventory carried before -------------
#
# A tube imported from a centre's own inventory gets a barcode of this bank and keeps the
# code of its old label (``Aliquot.legacy_barcode``, of any shape: "LIM-2019-00042",
# "12345678", "ab 12/7"). Until its new label is printed and stuck on, the old one is what
# is scanned: every lookup accepts it, with the same centre rule as a barcode.
#
# A code never names two tubes, so the lookups trust whichever matches: a barcode is never
# drawn equal to an old label (``_new_barcodes``), and an inventory import refuses an old
# label that a scan would take for an existing tube (``codes_in_use``). A tube's barcode
# is looked for first only because it is the common case (one indexed query).

# The longest old label (the column's length): a longer code is none.
LEGACY_BARCODE_LENGTH = Aliquot.__table__.c.legacy_barcode.type.length


def _old_label_code(raw_code: str) -> str | None:
    """The code as an old label is compared: trimmed of the whitespace and CR/LF a scanner
    adds, its case kept; None when it cannot be one (empty, or too long)."""
    code = (raw_code or "").strip()
    return code if 0 < len(code) <= LEGACY_BARCODE_LENGTH else None


def _by_old_label(raw_codes: Iterable[str], *, ambiguous: set[str] | None = None) -> dict[str, str]:
    """Raw code → the barcode of the aliquot, at any centre, whose old label the code is.

    Compared exactly first. A code that matches no old label exactly matches one whatever
    the case only when exactly one old label is that code (the same code in two cases may
    be two tubes' labels: then the code must be typed exactly; such codes are added to
    ``ambiguous``). Case is ignored for ASCII letters on every database; for other
    letters, where the database's lower() does.
    """
    wanted = {raw: code for raw in raw_codes if (code := _old_label_code(raw)) is not None}
    if not wanted:
        return {}
    exact = dict(
        db.session.execute(
            sa.select(Aliquot.legacy_barcode, Aliquot.barcode).where(
                Aliquot.legacy_barcode.in_(set(wanted.values()))
            )
        ).all()
    )
    named = {raw: exact[code] for raw, code in wanted.items() if code in exact}
    lowered = {raw: code.lower() for raw, code in wanted.items() if raw not in named}
    if lowered:
        in_lowercase = sa.func.lower(Aliquot.legacy_barcode)
        matches: dict[str, set[str]] = {}
        rows = db.session.execute(
            sa.select(in_lowercase, Aliquot.barcode).where(
                Aliquot.legacy_barcode.is_not(None), in_lowercase.in_(set(lowered.values()))
            )
        )
        for key, barcode in rows:
            matches.setdefault(key, set()).add(barcode)
        for raw, key in lowered.items():
            found = matches.get(key, set())
            if len(found) == 1:
                named[raw] = next(iter(found))
            elif found and ambiguous is not None:
                ambiguous.add(raw)
    return named


def _barcodes_named(raw_codes: Iterable[str]) -> dict[str, str]:
    """Raw code → the barcode of the aliquot, at any centre, a scanned code names: the
    aliquot whose barcode it is, else the one whose old label it is. A code that names no
    aliquot is left out."""
    raws = list(dict.fromkeys(raw_codes))
    shaped = {raw: code for raw in raws if (code := _aliquot_shaped(raw)) is not None}
    existing: set[str] = set()
    if shaped:
        existing = set(
            db.session.execute(
                sa.select(Aliquot.barcode).where(Aliquot.barcode.in_(set(shaped.values())))
            ).scalars()
        )
    named = {raw: code for raw, code in shaped.items() if code in existing}
    return named | _by_old_label(raw for raw in raws if raw not in named)


def barcodes_named(raw_codes: Iterable[str]) -> dict[str, str]:
    """Raw code → the barcode of the aliquot it names (by its barcode or its old label),
    at any centre, for a list of codes a record names whoever's tubes they are (a
    shipment's manifest). A code that names no aliquot is left out."""
    return _barcodes_named(raw_codes)


def barcode_named(raw_code: str) -> str:
    """The aliquot barcode a scanned or typed code stands for, at any centre: for a record
    that lists its tubes whoever's they are (a shipment's manifest at its receipt). The
    barcode of the aliquot whose barcode or old label the code is; else the code itself
    when it is a well-formed barcode (of no tube); else Invalid, as ``valid_code``."""
    named = _barcodes_named([raw_code]).get(raw_code)
    return named if named is not None else valid_code(raw_code)


def old_labels(raw_codes: Iterable[str], *, actor) -> dict[str, str | None]:
    """The codes among these that are tubes' old labels, for a list scanned at once (a
    rack, the tubes of a plate): code → the barcode of its tube when the actor reaches
    it, None for another centre's tube (which the list treats as another centre's
    barcode). The other codes are left out."""
    named = _barcodes_named(raw_codes)
    old = {raw: code for raw, code in named.items() if code != _aliquot_shaped(raw)}
    reachable = reached(old.values(), actor)
    return {raw: code if code in reachable else None for raw, code in old.items()}


def code_as_scanned(raw_code: str) -> str:
    """A scanned code as a page shows it and sends it back: an aliquot barcode normalized
    (trimmed, uppercase), any other code trimmed only, since an old label's case may be
    what tells it from another."""
    return _aliquot_shaped(raw_code or "") or (raw_code or "").strip()


def old_label_read(raw_code: str, aliquot) -> str | None:
    """The old label ``aliquot`` was found by, when ``raw_code`` is that label and not its
    barcode: the tube still carries its old label, and the page says to print its new
    one. ``aliquot`` is an Aliquot or an AliquotSummary; None when it was found by its
    barcode or has no old label."""
    if aliquot.legacy_barcode is None or barcodes.normalize(raw_code or "") == aliquot.barcode:
        return None
    return aliquot.legacy_barcode


def codes_in_use(codes: Iterable[str]) -> set[str]:
    """Which of these codes, old labels about to be imported, a scan would take for a tube
    already in the bank: an aliquot's barcode (as a scan reads it: trimmed, any case), or
    an aliquot's old label (whatever the case). An import refuses them, so that a code
    always names one tube."""
    wanted = {raw: code for raw in codes if (code := _old_label_code(raw)) is not None}
    if not wanted:
        return set()
    as_barcodes = {raw: barcodes.normalize(code) for raw, code in wanted.items()}
    taken = set(
        db.session.execute(
            sa.select(Aliquot.barcode).where(Aliquot.barcode.in_(set(as_barcodes.values())))
        ).scalars()
    )
    lowered = {raw: code.lower() for raw, code in wanted.items()}
    labelled = set(
        db.session.execute(
            sa.select(sa.func.lower(Aliquot.legacy_barcode)).where(
                Aliquot.legacy_barcode.is_not(None),
                sa.func.lower(Aliquot.legacy_barcode).in_(set(lowered.values())),
            )
        ).scalars()
    )
    return {raw for raw in wanted if as_barcodes[raw] in taken or lowered[raw] in labelled}


# --- finding aliquots by barcode -------------------------------------------------------------

_Found = TypeVar("_Found")  # what a lookup returns: an Aliquot, or an AliquotSummary


def _found_by_code(raw_code: str, actor, lookup: Callable[[str], _Found | None]) -> _Found:
    """What ``lookup(barcode)`` finds in the actor's reach for a scanned code: the aliquot
    whose barcode it is, else the one whose old label it is; else why there is none."""
    shaped = _aliquot_shaped(raw_code)
    if shaped is not None:
        found = lookup(shaped)
        if found is not None:
            return found
    ambiguous: set[str] = set()
    named = _by_old_label([raw_code], ambiguous=ambiguous).get(raw_code)
    if named is not None:
        found = lookup(named)
        if found is not None:
            return found
    if ambiguous:
        raise _ambiguous_old_label(raw_code)
    raise _not_an_aliquot(raw_code, actor, named=named)


def _ambiguous_old_label(raw_code: str, field_name: str = "barcode") -> Invalid:
    return Invalid(
        _l(
            "%(code)s is the old label of several tubes, written in other cases: type it "
            "exactly as it is on the label.",
            code=_shown(_old_label_code(raw_code) or raw_code),
        ),
        code="barcode.ambiguous",
        fields={field_name: raw_code},
    )


def scan_aliquot(raw_code: str, *, actor) -> AliquotSummary:
    """The aliquot a scanned or typed code names (its barcode, or its old label), as one
    flat summary.

    A centre's user finds only their centre's aliquots. A code that finds none is
    explained (``_not_an_aliquot``): another centre's tube, a box or other container, a
    position, a code of the wrong length or a misread one, or no tube at all.
    """
    # Column rows through the session's connection: the ORM's per-query machinery would
    # cost more than the indexed lookup.
    connection = db.session.connection()

    def by_barcode(code: str) -> AliquotSummary | None:
        if actor is not None and actor.site_id is not None:
            params = {"barcode": code, "site_id": actor.site_id}
            row = connection.execute(_scan.by_barcode_at_site, params).first()
        else:
            row = connection.execute(_scan.by_barcode, {"barcode": code}).first()
        return None if row is None else _summaries([row])[0]

    return _found_by_code(raw_code, actor, by_barcode)


def find_aliquot(raw_code: str, *, actor) -> Aliquot:
    """The aliquot row itself, for the services that change it and the detail page; a
    code that names none is explained as by ``scan_aliquot``."""

    def by_barcode(code: str) -> Aliquot | None:
        query = aliquots_in_reach(db.select(Aliquot).where(Aliquot.barcode == code), actor)
        return db.session.execute(query).scalar()

    return _found_by_code(raw_code, actor, by_barcode)


def find_aliquots(raw_codes: list[str], *, actor) -> list[Aliquot]:
    """The aliquots these codes (barcodes or old labels) name, in the order given, each
    once, with their specimen, visit and participant loaded in the same query. All or
    nothing: one bad or unknown code and the error names it (and says what it is, as
    ``scan_aliquot`` does)."""
    named = _barcodes_named(raw_codes)
    scanned = list(dict.fromkeys(raw_codes))
    misread = next(
        (raw for raw in scanned if raw not in named and _aliquot_shaped(raw) is None), None
    )
    if misread is not None:
        raise _not_an_aliquot(misread, actor, "barcodes")
    found: dict[str, Aliquot] = {}
    if named:
        query = aliquots_in_reach(
            db.select(Aliquot).where(Aliquot.barcode.in_(set(named.values()))), actor
        ).options(contains_eager(Aliquot.specimen, Specimen.visit, Visit.participant))
        found = {a.barcode: a for a in db.session.execute(query).unique().scalars()}
    missing = [raw for raw in scanned if named.get(raw) not in found]
    if len(missing) == 1:
        raise _not_an_aliquot(missing[0], actor, "barcodes", named=named.get(missing[0]))
    if missing:
        # A code that names an aliquot the query did not find names another centre's.
        elsewhere = sorted(_as_scanned(raw, named[raw]) for raw in missing if raw in named)
        if elsewhere:
            raise _other_centre(elsewhere, "barcodes")
        unknown = ", ".join(dict.fromkeys(_aliquot_shaped(raw) for raw in missing))
        raise NotFound(
            _l("No aliquot with barcode %(codes)s.", codes=unknown),
            code="aliquot.not_found",
            fields={"barcodes": unknown},
        )
    return [found[code] for code in dict.fromkeys(named[raw] for raw in raw_codes)]


def list_aliquots(*, actor, status: str | None = None, limit: int = 100, offset: int = 0) -> Page:
    """The aliquots the actor sees, by id (of one ``status``: those registered and not
    stored yet, those missing since a receipt)."""
    query = aliquots_in_reach(_scan.summary, actor)
    if status:
        query = query.where(Aliquot.status == status)
    total = db.session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
    rows = db.session.execute(query.order_by(Aliquot.id).limit(limit).offset(offset))
    return Page(_summaries(rows), total)


def visit_aliquots(participant_code: str, visit_code: str, *, actor) -> Registration:
    """A registered visit with its specimens and aliquots, for the result page."""
    participant = study.get_participant(participant_code, actor=actor)
    visit = next((v for v in participant.visits if v.visit_code == visit_code), None)
    if visit is None:
        raise NotFound(_l("%(p)s has no visit %(v)s.", p=participant.code, v=visit_code))
    specimens = (
        db.session.execute(
            db.select(Specimen).where(Specimen.visit_id == visit.id).order_by(Specimen.tube_type)
        )
        .scalars()
        .all()
    )
    return Registration(visit, list(specimens), uncollected_tubes(visit))


def uncollected_tubes(visit: Visit) -> list[UncollectedTube]:
    """The tubes of a registered visit recorded as not drawn, by tube type."""
    query = (
        db.select(UncollectedTube)
        .where(UncollectedTube.visit_id == visit.id)
        .order_by(UncollectedTube.tube_type)
    )
    return list(db.session.execute(query).scalars())


def visits_missing_a_tube(participant: Participant) -> list[Visit]:
    """The participant's registered visits with a tube recorded as not collected: the
    tube may still be found and registered."""
    query = (
        db.select(Visit)
        .where(
            Visit.participant_id == participant.id,
            Visit.id.in_(db.select(UncollectedTube.visit_id)),
        )
        .order_by(Visit.collected_on)
    )
    return list(db.session.execute(query).scalars())


def visit_deviation(visit: Visit) -> deviations.Deviation | None:
    """The deviation of a visit collected after its protocol window, or None."""
    if not visit.out_of_window:
        return None
    window = study.visit_window(visit.participant, visit.definition)
    return deviations.visit_outside_window(visit.study_day, window.earliest_day, window.latest_day)


def aliquot_deviations(aliquot: Aliquot) -> list[deviations.Deviation]:
    """What whoever uses this aliquot must know of it against the protocol: its tube's
    handling outside the SOP, more freeze–thaw cycles than the SOP allows before an
    assay, its visit outside its window."""
    specimen = aliquot.specimen
    found = deviations.listed(specimen.deviations)
    limits = study.sop_limits(specimen.visit.definition.protocol, specimen.tube_type)
    thawed = deviations.freeze_thaw(aliquot.freeze_thaw_count, limits)
    if thawed is not None:
        found.append(deviations.described(thawed))
    late = visit_deviation(specimen.visit)
    if late is not None:
        found.append(late)
    return found


def correct_volume(raw_code: str, volume_ul: int, reason: str, *, actor) -> Aliquot:
    """Set the volume left after a measurement error; the old value stays in the log."""
    aliquot = find_aliquot(raw_code, actor=actor)
    reason = custody.require_reason(reason, _l("correct a volume"))
    if not (0 <= volume_ul <= aliquot.initial_volume_ul):
        raise Invalid(
            _l("Volume must be between 0 and %(n)d µL.", n=aliquot.initial_volume_ul),
            fields={"volume_ul": str(volume_ul)},
        )
    before = aliquot.volume_ul
    aliquot.volume_ul = volume_ul
    custody.record(
        aliquot,
        custody.EventKind.VOLUME_CORRECTED,
        actor,
        reason=reason,
        details={"from_ul": before, "to_ul": volume_ul},
    )
    return aliquot
