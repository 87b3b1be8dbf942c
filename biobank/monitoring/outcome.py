"""The trial's primary outcome: how ready each participant's values are, and the summary
per arm.

The primary outcome is the fall of serum VEGF and of the serum M-spike from baseline
after 2 cycles (visit M2) for every participant, and at months 2, 4 and 6 for Group 2.
For each visit the outcome needs and each of the two analytes, a participant's
**readiness** is one state:

``reportable``
    an accepted run gave the visit its reportable value (biobank/assays/reportable.py);
``not_collected``
    no serum at that visit: the visit is not registered, or its serum tube was recorded
    as not drawn, or no serum specimen was registered with it;
``not_expected``
    the visit is not registered and the participant left the study or withdrew consent
    before its window opened (``completeness.expected_window``, the rule of the
    completeness page);
``not_assayed``
    serum was collected but no run measured the analyte on it, or the accepted run
    gave no value (wells unread, replicates that disagree);
``not_accepted``
    the only result is in a run still in preview, or in a rejected run (``reason`` says
    which, ``runs`` names them).

The **summary** per arm counts the participants included, those with paired baseline
and M2 values, the median and interquartile range of the percent change at M2 and the
response categories at M2. The percent changes and categories are those the assays
domain computes (``outcomes.responses_of``), never recomputed here: the page, the API,
the study export and the participant page agree.

Quartiles are computed by linear interpolation between order statistics (numpy's
``method="linear"``, Hyndman & Fan's type 7: R's default ``quantile`` and Excel's
``QUARTILE.INC``): for n sorted values, the p-quantile sits at position (n − 1)·p from
the first, between the two values around it.

Centre scoping: every query goes through ``sites.services.in_reach`` (participants,
visits, specimens) or ``samples.services.aliquots_in_reach`` (aliquots); a user bound to
a centre sees that centre's participants only, in the counts as in the rows.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import sqlalchemy as sa
from flask_babel import format_date
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import joinedload

from biobank.assays import outcomes, response
from biobank.assays.models import Analyte, AssayRun, run_code
from biobank.assays.outcomes import M_SPIKE, VEGF, Row
from biobank.errors import NotFound
from biobank.extensions import db
from biobank.i18n import label
from biobank.monitoring.completeness import expected_window
from biobank.samples.models import Aliquot, Specimen, UncollectedTube
from biobank.samples.services import aliquots_in_reach
from biobank.sites.services import in_reach
from biobank.study import services as study
from biobank.study.models import Participant, Protocol, TubeType, Visit, VisitDefinition

SERUM = "SER"
BASELINE = response.BASELINE_VISIT
PRIMARY_VISIT = "M2"
# The protocol file lists each arm's visits but not which of them the primary outcome
# reads, and the response criteria say nothing of visits: the trial description does
# (BL and M2 for everyone; M4 and M6 too for Group 2). Each participant's outcome visits
# are these, as far as the protocol schedules them for the arm: Group 1's schedule has
# no M4 or M6, so it stops at M2.
OUTCOME_VISITS = (BASELINE, PRIMARY_VISIT, "M4", "M6")


@dataclass(frozen=True)
class OutcomeAnalyte:
    """An analyte of the primary outcome and the sample type its values must come from
    (None: any, serum first, as the haematological response takes them)."""

    code: str
    sample_type: str | None
    name: str


OUTCOME_ANALYTES = (
    OutcomeAnalyte(VEGF, SERUM, _l("Serum VEGF")),
    OutcomeAnalyte(M_SPIKE, None, _l("M-spike")),
)

# Readiness states.
REPORTABLE = "reportable"
NOT_COLLECTED = "not_collected"
NOT_EXPECTED = "not_expected"
NOT_ASSAYED = "not_assayed"
NOT_ACCEPTED = "not_accepted"
STATES = (REPORTABLE, NOT_ACCEPTED, NOT_ASSAYED, NOT_COLLECTED, NOT_EXPECTED)

# Why a value is not reportable (``Readiness.reason``).
VISIT_NOT_REGISTERED = "visit_not_registered"
WINDOW_NOT_OPEN = "window_not_open"
TUBE_NOT_COLLECTED = "tube_not_collected"
NO_SERUM_SPECIMEN = "no_serum_specimen"
LEFT_STUDY = "left_study"
CONSENT_WITHDRAWN = "consent_withdrawn"
NO_RESULT = "no_result"
NO_VALUE = "no_value"
IN_PREVIEW = "preview"
REJECTED = "rejected"

STATE_WORDS = {
    REPORTABLE: _l("reportable"),
    NOT_ACCEPTED: _l("not accepted"),
    NOT_ASSAYED: _l("not assayed"),
    NOT_COLLECTED: _l("not collected"),
    NOT_EXPECTED: _l("not expected"),
}


@dataclass(frozen=True)
class Readiness:
    """One participant's visit × analyte: its state and what it rests on."""

    visit: str
    analyte: str
    state: str
    reason: str = ""  # a code of the list above, "" when reportable
    result: Row | None = None  # the reportable result, or the accepted one without value
    runs: tuple[str, ...] = ()  # the runs holding a result not accepted
    on: date | None = None  # the day the participant left, or the visit's window opens
    not_drawn: str = ""  # why the serum tube was not drawn (NOT_COLLECTED_REASONS)
    note: str = ""  # what was noted with it

    @property
    def value(self) -> float | None:
        return self.result.value if self.state == REPORTABLE and self.result else None

    @property
    def shown(self) -> str:
        """The reportable value as read, in plain text ("820", "< 15.6"), else ""."""
        return self.result.shown if self.state == REPORTABLE and self.result else ""

    @property
    def unit(self) -> str:
        return self.result.unit if self.result else ""

    @property
    def run(self) -> str | None:
        return self.result.run if self.result else None

    @property
    def state_words(self) -> str:
        return str(STATE_WORDS[self.state])

    @property
    def explanation(self) -> str:
        """What the state rests on, in the reader's language."""
        return explain(self)


def explain(item: Readiness) -> str:
    """Why a visit's value is or is not there, in words a monitor can act on."""
    if item.state == REPORTABLE:
        return str(_l("accepted in run %(run)s", run=item.run))
    if item.reason == LEFT_STUDY:
        return str(
            _l(
                "left the study on %(date)s, before the visit's window opened",
                date=format_date(item.on),
            )
        )
    if item.reason == CONSENT_WITHDRAWN:
        return str(
            _l(
                "consent withdrawn on %(date)s, before the visit's window opened",
                date=format_date(item.on),
            )
        )
    if item.reason == WINDOW_NOT_OPEN:
        return str(
            _l("visit not registered; its window opens on %(date)s", date=format_date(item.on))
        )
    if item.reason == TUBE_NOT_COLLECTED:
        words = label(item.not_drawn, "not_collected")
        text = str(_l("serum tube not drawn: %(reason)s", reason=words))
        return f"{text} ({item.note})" if item.note else text
    if item.reason in (IN_PREVIEW, REJECTED):
        runs = ", ".join(item.runs)
        if item.reason == IN_PREVIEW:
            return str(_l("result in run %(runs)s, awaiting acceptance", runs=runs))
        return str(_l("result only in rejected run %(runs)s", runs=runs))
    if item.reason == NO_VALUE:
        return str(
            _l(
                "run %(run)s gave no value: %(detail)s",
                run=item.run,
                detail=item.result.detail if item.result else "",
            )
        )
    words = {
        VISIT_NOT_REGISTERED: _l("visit not registered"),
        NO_SERUM_SPECIMEN: _l("no serum tube registered at this visit"),
        NO_RESULT: _l("serum collected; no run measured this analyte on it"),
    }
    return str(words.get(item.reason, ""))


@dataclass(frozen=True)
class ParticipantOutcome:
    """A participant's readiness at each outcome visit, and the responses at M2."""

    code: str
    site: str
    arm: str
    left_on: date | None
    readiness: tuple[Readiness, ...]
    vegf: response.Response | None  # serum VEGF at M2
    haematological: response.Response | None  # M-spike (and immunofixation) at M2

    def at(self, visit: str, analyte: str) -> Readiness | None:
        return next((r for r in self.readiness if r.visit == visit and r.analyte == analyte), None)

    def paired(self, analyte: str) -> bool:
        """Both baseline and M2 have a reportable value of ``analyte``."""
        return all(
            (item := self.at(visit, analyte)) is not None and item.state == REPORTABLE
            for visit in (BASELINE, PRIMARY_VISIT)
        )

    @property
    def vegf_change(self) -> float | None:
        return self.vegf.percent_change if self.vegf else None

    @property
    def m_spike_change(self) -> float | None:
        return self.haematological.percent_change if self.haematological else None


@dataclass(frozen=True)
class Spread:
    """Median and quartiles of ``n`` values (linear interpolation, see the module)."""

    n: int
    median: float
    q1: float
    q3: float


QUARTILE_METHOD = "linear"
# The percent changes have one decimal; quartiles interpolated at quarter positions
# have at most three: rounding to three drops the binary float's noise and nothing else.
SPREAD_DECIMALS = 3


def spread(values) -> Spread | None:
    """The median and interquartile range of ``values``; None when there are none."""
    numbers = sorted(float(v) for v in values if v is not None)
    if not numbers:
        return None
    q1, median, q3 = np.percentile(numbers, [25, 50, 75], method=QUARTILE_METHOD)
    return Spread(
        len(numbers),
        round(float(median), SPREAD_DECIMALS),
        round(float(q1), SPREAD_DECIMALS),
        round(float(q3), SPREAD_DECIMALS),
    )


# The order categories are listed in, best first.
CATEGORY_ORDER = (
    response.COMPLETE,
    response.VERY_GOOD_PARTIAL,
    response.PARTIAL,
    response.STABLE,
    response.PROGRESSION,
    response.NOT_EVALUABLE_BY_M_SPIKE,
    response.NOT_EVALUABLE,
)


def counted(responses) -> tuple[tuple[str, int], ...]:
    """(category, how many) of the responses given, in CATEGORY_ORDER, zeros left out."""
    counts = Counter(r.category for r in responses if r is not None)
    ordered = [c for c in CATEGORY_ORDER if c in counts]
    ordered += sorted(c for c in counts if c not in CATEGORY_ORDER)
    return tuple((category, counts[category]) for category in ordered)


@dataclass(frozen=True)
class ArmSummary:
    code: str
    name: str
    included: int
    paired_vegf: int
    paired_m_spike: int
    vegf_change: Spread | None
    m_spike_change: Spread | None
    vegf_responses: tuple[tuple[str, int], ...]
    haematological_responses: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Summary:
    arms: tuple[ArmSummary, ...]
    participants: tuple[ParticipantOutcome, ...]
    visits: tuple[str, ...]  # the outcome visits some arm has, in schedule order
    criteria_version: str
    baseline: str = BASELINE
    visit: str = PRIMARY_VISIT
    quartile_method: str = QUARTILE_METHOD

    @property
    def columns(self) -> list[tuple[str, OutcomeAnalyte]]:
        """Visit × analyte, the columns of the readiness table."""
        return [(visit, analyte) for visit in self.visits for analyte in OUTCOME_ANALYTES]


# --- the services ------------------------------------------------------------------------


def summary(criteria: response.Criteria, *, actor, now: datetime) -> Summary:
    """Every participant the actor reaches, their readiness and responses at M2, and the
    figures per arm. ``now`` (UTC) decides, in each centre's time zone, whether a visit
    not registered is still to come."""
    participants = _participants(actor)
    schedules = _Schedules()
    facts = _Facts.load(participants, actor)
    courses = outcomes.courses_of(outcomes.accepted_rows(actor))
    rows = tuple(
        _outcome_of(p, schedules.of(p), facts, courses.get(p.code, {}), criteria, now)
        for p in participants
    )
    protocol = schedules.protocol(participants[0].study_code if participants else None)
    arm_names = {arm.code: arm.name for arm in protocol.arms} if protocol else {}
    arm_codes = list(arm_names) + sorted({p.arm_code for p in participants} - set(arm_names))
    definitions = protocol.visit_definitions if protocol else []
    return Summary(
        arms=tuple(_arm(code, arm_names.get(code, code), rows) for code in arm_codes),
        participants=rows,
        visits=tuple(d.code for d in definitions if d.code in OUTCOME_VISITS),
        criteria_version=criteria.version,
    )


def participant_outcome(
    code: str, criteria: response.Criteria, *, actor, now: datetime
) -> ParticipantOutcome:
    """One participant's readiness and responses at M2 (404 outside the actor's reach)."""
    participant = study.get_participant(code, actor=actor)
    facts = _Facts.load([participant], actor)
    course = outcomes.time_course(participant.code, actor=actor)
    return _outcome_of(participant, _Schedules().of(participant), facts, course, criteria, now)


def _arm(code: str, name: str, rows: tuple[ParticipantOutcome, ...]) -> ArmSummary:
    members = [r for r in rows if r.arm == code]
    return ArmSummary(
        code=code,
        name=name,
        included=len(members),
        paired_vegf=sum(r.paired(VEGF) for r in members),
        paired_m_spike=sum(r.paired(M_SPIKE) for r in members),
        vegf_change=spread(r.vegf_change for r in members),
        m_spike_change=spread(r.m_spike_change for r in members),
        vegf_responses=counted(r.vegf for r in members),
        haematological_responses=counted(r.haematological for r in members),
    )


# --- one participant ---------------------------------------------------------------------


def _outcome_of(
    participant: Participant,
    visits: list[VisitDefinition],
    facts: _Facts,
    course: dict[str, list[Row]],
    criteria: response.Criteria,
    now: datetime,
) -> ParticipantOutcome:
    today = participant.site.today(now)
    readiness = []
    for definition in visits:
        for analyte in OUTCOME_ANALYTES:
            rows = _of_sample_type(course.get(analyte.code, []), analyte.sample_type)
            readiness.append(_readiness(participant, definition, analyte, rows, facts, today))
    computed = outcomes.responses_of(course, criteria)
    return ParticipantOutcome(
        code=participant.code,
        site=participant.site.code,
        arm=participant.arm_code,
        left_on=participant.left_on,
        readiness=tuple(readiness),
        vegf=_at_primary_visit(computed.vegf),
        haematological=_at_primary_visit(computed.haematological),
    )


class _Schedules:
    """The outcome visits of each arm, from the protocol in force for the participant's
    study: read once per study, not once per participant."""

    def __init__(self) -> None:
        self._protocols: dict[str | None, Protocol | None] = {}

    def protocol(self, study_code: str | None) -> Protocol | None:
        if study_code not in self._protocols:
            try:
                self._protocols[study_code] = study.current_protocol(study_code)
            except NotFound:  # no protocol loaded yet: nothing is scheduled
                self._protocols[study_code] = None
        return self._protocols[study_code]

    def of(self, participant: Participant) -> list[VisitDefinition]:
        protocol = self.protocol(participant.study_code)
        return [
            d
            for d in (protocol.visit_definitions if protocol else [])
            if d.code in OUTCOME_VISITS and d.applies_to(participant.arm_code)
        ]


def _of_sample_type(rows: list[Row], sample_type: str | None) -> list[Row]:
    return [r for r in rows if sample_type is None or r.sample_type == sample_type]


def _at_primary_visit(responses: list[response.Response]) -> response.Response | None:
    return next((r for r in responses if r.visit == PRIMARY_VISIT), None)


def _readiness(
    participant: Participant,
    definition: VisitDefinition,
    analyte: OutcomeAnalyte,
    rows: list[Row],
    facts: _Facts,
    today: date,
) -> Readiness:
    def state(state: str, reason: str = "", **values) -> Readiness:
        return Readiness(definition.code, analyte.code, state, reason, **values)

    # The value the responses use, chosen as they choose it (serum first, one per visit).
    valued = {r.visit: r for r in outcomes.per_visit_values(rows)}
    if definition.code in valued:
        return state(REPORTABLE, result=valued[definition.code])

    visit_id = facts.visits.get((participant.id, definition.code))
    if visit_id is None:
        window = study.visit_window(participant, definition)
        expected = expected_window(
            participant.included_on,
            window.earliest_day,
            window.latest_day,
            participant.left_on,
            participant.consent_withdrawn_on,
        )
        if expected is None:
            if participant.left_on is not None and participant.left_on < window.earliest:
                return state(NOT_EXPECTED, LEFT_STUDY, on=participant.left_on)
            return state(NOT_EXPECTED, CONSENT_WITHDRAWN, on=participant.consent_withdrawn_on)
        if today < window.earliest:
            return state(NOT_COLLECTED, WINDOW_NOT_OPEN, on=window.earliest)
        return state(NOT_COLLECTED, VISIT_NOT_REGISTERED)
    if visit_id not in facts.serum_visits:
        if visit_id in facts.not_drawn:
            reason, note = facts.not_drawn[visit_id]
            return state(NOT_COLLECTED, TUBE_NOT_COLLECTED, not_drawn=reason, note=note)
        return state(NOT_COLLECTED, NO_SERUM_SPECIMEN)

    pending = facts.undecided_runs(visit_id, analyte)
    if pending:
        waiting = tuple(code for status, code in pending if status == "preview")
        if waiting:
            return state(NOT_ACCEPTED, IN_PREVIEW, runs=waiting)
        return state(NOT_ACCEPTED, REJECTED, runs=tuple(code for _, code in pending))
    without_value = [r for r in outcomes.reportable_rows(rows) if r.visit == definition.code]
    if without_value:
        return state(NOT_ASSAYED, NO_VALUE, result=without_value[0])
    return state(NOT_ASSAYED, NO_RESULT)


# --- what the database holds, read once for every participant ---------------------------


@dataclass
class _Facts:
    """The registered outcome visits, their serum, their aliquots, and the runs not
    accepted that name those aliquots: read in a few queries for all participants."""

    visits: dict[tuple[int, str], int] = field(default_factory=dict)  # (participant, code) → id
    serum_visits: set[int] = field(default_factory=set)
    not_drawn: dict[int, tuple[str, str]] = field(default_factory=dict)  # visit → reason, note
    aliquots: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # → barcode, type
    undecided: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def load(cls, participants: list[Participant], actor) -> _Facts:
        facts = cls()
        if not participants:
            return facts
        ids = [p.id for p in participants] if len(participants) == 1 else None
        facts._read_visits(actor, ids)
        facts._read_serum(actor, ids)
        facts._read_not_drawn(actor, ids)
        facts._read_aliquots(actor, ids)
        facts._read_undecided_runs()
        return facts

    def undecided_runs(self, visit_id: int, analyte: OutcomeAnalyte) -> list[tuple[str, str]]:
        """(status, run code) of the runs in preview or rejected that measured ``analyte``
        on an aliquot of the visit (of its sample type), in run order."""
        found = {
            run
            for barcode, sample_type in self.aliquots.get(visit_id, ())
            if analyte.sample_type is None or sample_type == analyte.sample_type
            for run in self.undecided.get((barcode, analyte.code), ())
        }
        return sorted(found, key=lambda run: run[1])

    def _read_visits(self, actor, ids) -> None:
        query = _scoped(
            sa.select(Visit.participant_id, Visit.visit_code, Visit.id)
            .join(Participant, Participant.id == Visit.participant_id)
            .where(Visit.visit_code.in_(OUTCOME_VISITS)),
            actor,
            ids,
        )
        self.visits = {(pid, code): vid for pid, code, vid in db.session.execute(query)}

    def _read_serum(self, actor, ids) -> None:
        query = _scoped(
            sa.select(Specimen.visit_id)
            .join(Visit, Visit.id == Specimen.visit_id)
            .join(Participant, Participant.id == Visit.participant_id)
            .where(Specimen.sample_type == SERUM, Visit.visit_code.in_(OUTCOME_VISITS)),
            actor,
            ids,
        )
        self.serum_visits = set(db.session.execute(query).scalars())

    def _read_not_drawn(self, actor, ids) -> None:
        serum_tubes = _serum_tube_types()
        query = _scoped(
            sa.select(UncollectedTube.visit_id, UncollectedTube.reason, UncollectedTube.note)
            .join(Visit, Visit.id == UncollectedTube.visit_id)
            .join(Participant, Participant.id == Visit.participant_id)
            .where(
                UncollectedTube.tube_type.in_(serum_tubes),
                Visit.visit_code.in_(OUTCOME_VISITS),
            )
            .order_by(UncollectedTube.id),
            actor,
            ids,
        )
        for visit_id, reason, note in db.session.execute(query):
            self.not_drawn.setdefault(visit_id, (reason, note or ""))

    def _read_aliquots(self, actor, ids) -> None:
        query = aliquots_in_reach(
            sa.select(Specimen.visit_id, Aliquot.barcode, Aliquot.sample_type)
            .select_from(Aliquot)
            .join(Specimen, Specimen.id == Aliquot.specimen_id)
            .join(Visit, Visit.id == Specimen.visit_id)
            .where(Visit.visit_code.in_(OUTCOME_VISITS)),
            actor,
        )
        if ids is not None:
            query = query.where(Participant.id.in_(ids))
        for visit_id, barcode, sample_type in db.session.execute(query):
            self.aliquots.setdefault(visit_id, []).append((barcode, sample_type))

    def _read_undecided_runs(self) -> None:
        """The runs in preview or rejected have no result rows: what they measured is in
        their preview (a plate's samples for the run's analyte, a sheet's rows each with
        its analyte). Only the barcodes of aliquots read above are kept."""
        known = {barcode for rows in self.aliquots.values() for barcode, _ in rows}
        if not known:
            return
        codes = [a.code for a in OUTCOME_ANALYTES]
        query = (
            sa.select(AssayRun.id, AssayRun.status, AssayRun.kind, Analyte.code, AssayRun.preview)
            .outerjoin(Analyte, Analyte.id == AssayRun.analyte_id)
            .where(
                AssayRun.status != "accepted",
                sa.or_(AssayRun.kind == "sheet", Analyte.code.in_(codes)),
            )
            .order_by(AssayRun.id)
        )
        found: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        for run_id, status, kind, analyte, preview in db.session.execute(query):
            for barcode, measured in _measured_in(kind, analyte, json.loads(preview or "{}")):
                if barcode in known and measured in codes:
                    found[(barcode, measured)].add((status, run_code(run_id)))
        self.undecided = {key: sorted(runs) for key, runs in found.items()}


def _measured_in(kind: str, analyte: str | None, preview: dict):
    """(barcode, analyte code) of every sample a run's preview holds."""
    if kind == "plate":
        for sample in preview.get("samples", ()):
            yield sample.get("barcode"), analyte
    else:
        for row in preview.get("rows", ()):
            yield row.get("barcode"), row.get("analyte")


def _scoped(query, actor, ids):
    query = in_reach(query, Participant.site_id, actor)
    return query.where(Participant.id.in_(ids)) if ids is not None else query


def _serum_tube_types() -> list[str]:
    """The tube types that give serum, in every protocol loaded (SST in POEMS-LENDEX)."""
    query = sa.select(TubeType.code).where(TubeType.sample_type == SERUM).distinct()
    return list(db.session.execute(query).scalars())


def _participants(actor) -> list[Participant]:
    query = sa.select(Participant).options(joinedload(Participant.site)).order_by(Participant.code)
    return list(db.session.execute(in_reach(query, Participant.site_id, actor)).scalars())
