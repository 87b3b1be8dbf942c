"""Registering a visit's primary tubes and their aliquots; finding aliquots by barcode."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import contains_eager

from biobank.custody import services as custody
from biobank.custody.hashing import canonical_json
from biobank.db import utcnow
from biobank.errors import Conflict, Invalid, NotFound
from biobank.extensions import db
from biobank.samples import barcodes, sprec
from biobank.samples.models import Aliquot, Specimen
from biobank.sites.models import Site
from biobank.sites.services import in_reach
from biobank.study import services as study
from biobank.study.models import Participant, Visit
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


@dataclass
class Registration:
    visit: Visit
    specimens: list[Specimen] = field(default_factory=list)

    @property
    def aliquots(self) -> list[Aliquot]:
        return [a for s in self.specimens for a in s.aliquots]


def register_collection(
    participant_code: str, visit_code: str, tubes: list[TubeEntry], *, actor
) -> Registration:
    """Register the primary tubes of one visit and create their planned aliquots.

    All or nothing: the visit, each specimen with its pre-analytical code, each aliquot
    with its barcode, and one REGISTERED custody event per aliquot. A tube type already
    registered for this visit is refused, and so nothing of the call is written.
    """
    if not tubes:
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
    tz = ZoneInfo(participant.site.timezone)
    collected_on = min(t.collected_at for t in tubes).astimezone(tz).date()
    visit = study.open_visit(participant, visit_code, collected_on, actor=actor)
    registration = Registration(visit)
    for tube in tubes:
        registration.specimens.append(_register_tube(visit, tube, actor))
    return registration


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
    db.session.add(specimen)
    codes = _new_barcodes(count)
    aliquots = [
        Aliquot(
            barcode=codes[n - 1],
            specimen=specimen,
            sample_type=sample_type,
            series_number=n,
            series_total=count,
            initial_volume_ul=volume,
            volume_ul=volume,
        )
        for n in range(1, count + 1)
    ]
    db.session.add_all(aliquots)
    duplicate = _duplicate_error(visit, tube)  # built now: a failed flush expires the visit
    try:
        db.session.flush()
    except sa.exc.IntegrityError as err:
        # Lost a race with another registration of the same tube.
        raise duplicate from err
    for aliquot in aliquots:
        custody.record(
            aliquot,
            custody.EventKind.REGISTERED,
            actor,
            at=specimen.created_at,
            details={
                "specimen": specimen.id,
                "sprec": specimen.sprec_code,
                "volume_ul": volume,
                "series": aliquot.series_label,
            },
        )
    return specimen


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
    """``count`` fresh barcodes, checked against the table in one query per draw."""
    codes: set[str] = set()
    for _ in range(8):
        while len(codes) < count:
            codes.add(barcodes.new_aliquot_barcode())
        taken = set(
            db.session.execute(
                db.select(Aliquot.barcode).where(Aliquot.barcode.in_(codes))
            ).scalars()
        )
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
    at_site = by_barcode.where(Participant.site_id == sa.bindparam("site_id"))
    return _ScanStatements(summary, by_barcode, at_site)


_scan = _scan_statements(sa.null())


def set_location_column(make_column: Callable[[sa.ColumnElement], sa.ColumnElement]) -> None:
    """Let storage say where a tube is in the scan's own query (one round trip, not two):
    ``make_column(aliquot_id)`` returns a correlated scalar subquery giving the location."""
    global _scan
    _scan = _scan_statements(make_column(Aliquot.id))


def _summaries(rows) -> list[AliquotSummary]:
    return [AliquotSummary(*row) for row in rows]


def site_scope(query, actor):
    """``query`` (joined to Participant) limited to the actor's centre, if bound to one."""
    return in_reach(query, Participant.site_id, actor)


def valid_code(raw_code: str) -> str:
    """The normalized code, or Invalid naming what is wrong with it.

    Whitespace, lowercase and a scanner's CR/LF are forgiven; a wrong check character is
    reported as such, because it means a misread or mistyped code, not a missing tube.
    """
    try:
        return barcodes.validate(raw_code)
    except barcodes.BarcodeError as err:
        message = BARCODE_MESSAGES.get(str(err), str(err))
        raise Invalid(message, code="barcode.invalid", fields={"barcode": raw_code}) from err


def _not_found(code: str) -> NotFound:
    return NotFound(
        _l("No aliquot with barcode %(code)s.", code=code),
        code="aliquot.not_found",
        fields={"barcode": code},
    )


def scan_aliquot(raw_code: str, *, actor) -> AliquotSummary:
    """The aliquot a scanned or typed code names, as one flat summary.

    A centre's user finds only their centre's aliquots; another centre's is "not found".
    """
    code = valid_code(raw_code)
    # Column rows through the session's connection: the ORM's per-query machinery would
    # cost more than the indexed lookup.
    connection = db.session.connection()
    if actor is not None and actor.site_id is not None:
        params = {"barcode": code, "site_id": actor.site_id}
        row = connection.execute(_scan.by_barcode_at_site, params).first()
    else:
        row = connection.execute(_scan.by_barcode, {"barcode": code}).first()
    if row is None:
        raise _not_found(code)
    return _summaries([row])[0]


def find_aliquot(raw_code: str, *, actor) -> Aliquot:
    """The aliquot row itself, for the services that change it and the detail page."""
    code = valid_code(raw_code)
    query = site_scope(
        db.select(Aliquot)
        .join(Aliquot.specimen)
        .join(Specimen.visit)
        .join(Visit.participant)
        .where(Aliquot.barcode == code),
        actor,
    )
    aliquot = db.session.execute(query).scalar()
    if aliquot is None:
        raise _not_found(code)
    return aliquot


def find_aliquots(raw_codes: list[str], *, actor) -> list[Aliquot]:
    """The aliquots these codes name, in the order given, with their specimen, visit and
    participant loaded in the same query. All or nothing: one bad or unknown code and the
    error names it."""
    codes = [valid_code(raw) for raw in raw_codes]
    query = site_scope(
        db.select(Aliquot)
        .join(Aliquot.specimen)
        .join(Specimen.visit)
        .join(Visit.participant)
        .options(contains_eager(Aliquot.specimen, Specimen.visit, Visit.participant))
        .where(Aliquot.barcode.in_(codes)),
        actor,
    )
    found = {a.barcode: a for a in db.session.execute(query).unique().scalars()}
    missing = [code for code in codes if code not in found]
    if missing:
        raise NotFound(
            _l("No aliquot with barcode %(codes)s.", codes=", ".join(missing)),
            code="aliquot.not_found",
            fields={"barcodes": ", ".join(missing)},
        )
    return [found[code] for code in dict.fromkeys(codes)]


def list_aliquots(*, actor, limit: int = 100, offset: int = 0) -> Page:
    query = site_scope(_scan.summary, actor)
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
    return Registration(visit, list(specimens))


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
