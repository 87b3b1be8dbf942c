"""Checking an inventory file against the bank, every row at once, writing nothing.

The file is read (``sheet``, ``columns``, ``cells``), then everything the rows name is
looked up in a few set-wise queries (participants, their visits and tubes, legacy codes,
boxes, positions): the rules then run in memory, so that 50,000 rows cost a handful of
statements, and every problem of the file is reported at once, each by its row and its
column as the spreadsheet shows them.

What a valid file will create is returned as a :class:`Plan`, which ``services.apply``
writes through the study, samples and storage services. A visit's date is checked by the
study's own rules (``study.dated_visit``, ``study.refuse_another_day``), which
``study.open_visits`` applies again when the visits are opened: the preview and the
apply cannot disagree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import chain, islice, pairwise
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from biobank.db import utcnow
from biobank.errors import DomainError, Invalid
from biobank.inventory.columns import HEADER_SEARCH_ROWS, Header, find_header, header_key
from biobank.inventory.lines import Line, Problem, read_lines
from biobank.inventory.lookup import Bank, look_up
from biobank.inventory.sheet import rows_of
from biobank.samples import services as samples
from biobank.sites.models import Site
from biobank.storage import services as storage
from biobank.storage.models import Container
from biobank.storage.positions import Grid, grid_for, split_position
from biobank.study import services as study
from biobank.study.models import DISEASE_STATUSES, Participant, Visit, VisitDefinition
from biobank.uploads import UploadLimits

# What the imported aliquots need of a freezer: the import records them at −80 °C.
STORAGE_TEMPERATURE_C = -80
# Disease statuses as centres write them, in English or in French, by key.
DISEASE_WORDS = {
    "denovo": "de_novo",
    "relapsed": "relapsed",
    "relapse": "relapsed",
    "rechute": "relapsed",
    "enrechute": "relapsed",
    "refractory": "refractory",
    "refractaire": "refractory",
}


# --- what the check finds ------------------------------------------------------------------


@dataclass
class NewParticipant:
    code: str
    site: str
    arm: str
    disease_status: str
    included_on: date
    consent_given_on: date
    row: int


@dataclass
class NewBox:
    code: str
    box_type: str
    rack: str
    row: int


@dataclass
class TubePlan:
    """One primary tube (a specimen) and its aliquots, in file order."""

    tube_type: str
    collected_at: datetime
    spun_at: datetime
    frozen_at: datetime
    lines: list[Line]


@dataclass
class VisitPlan:
    participant: str
    visit: str
    collected_on: date
    tubes: list[TubePlan]
    exists: bool

    @property
    def first_row(self) -> int:
        return min(line.row for tube in self.tubes for line in tube.lines)


@dataclass
class Plan:
    """What a file without problems creates."""

    participants: list[NewParticipant] = field(default_factory=list)
    boxes: list[NewBox] = field(default_factory=list)
    visits: list[VisitPlan] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        tubes = [tube for visit in self.visits for tube in visit.tubes]
        lines = [line for tube in tubes for line in tube.lines]
        return {
            "participants": len(self.participants),
            "visits": sum(1 for visit in self.visits if not visit.exists),
            "specimens": len(tubes),
            "aliquots": len(lines),
            "positions": sum(1 for line in lines if line.box),
            "boxes": len(self.boxes),
        }


@dataclass
class Checked:
    """The file read and checked: its rows, the problems, the notes, what it creates."""

    rows: int
    problems: list[Problem]
    warnings: list[Problem]
    ignored_columns: list[str]
    plan: Plan


# --- the rules -----------------------------------------------------------------------------


@dataclass
class _Participant:
    """A participant as the file's rows need it: the one in the bank, or the one the file
    enrols (its first row says who)."""

    code: str
    site: Site
    arm: str
    included_on: date
    row: int
    record: Participant | None = None  # None: enrolled by this file

    @property
    def left_on(self) -> date | None:
        return self.record.left_on if self.record is not None else None


class Checker:
    """The rules, run over every row; each problem is recorded, never raised."""

    def __init__(self, header: Header, bank: Bank, actor, scope: Site | None) -> None:
        self.header = header
        self.bank = bank
        self.actor = actor
        self.scope = scope  # the centre the import is for, if one
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.people: dict[str, _Participant | None] = {}
        # The problems that refused a participant of the bank, said on each of their rows.
        self.refusals: dict[str, list[Problem]] = {}
        self.new_people: dict[str, NewParticipant] = {}
        self.new_boxes: dict[str, NewBox] = {}
        self.reported: set[tuple[int, str]] = set()
        self.zoned: dict[tuple[datetime, str], datetime] = {}
        self.now = utcnow()

    # -- reporting

    def problem(self, line: Line, key: str, message) -> None:
        """Record a problem of the row's cell; a cell is reported once (an unreadable
        date is not reported again as missing)."""
        self._report(Problem(line.row, self.title(key), message))

    def _report(self, problem: Problem) -> None:
        cell = (problem.row, problem.column)
        if cell not in self.reported:
            self.reported.add(cell)
            self.problems.append(problem)

    def title(self, key: str) -> str:
        if key == "volume_ul" and self.header.volume_key:
            return self.header.title(self.header.volume_key)
        return self.header.title(key)

    # -- participants

    def participant(self, line: Line) -> _Participant | None:
        """Who the row is about; None (with the problem recorded) when that cannot be
        told. The rows of a participant the file enrols must agree with its first row."""
        code = line.participant
        if code in self.people:
            person = self.people[code]
            if person is None:  # refused on its first row; a bank's refusal on each row
                for problem in self.refusals.get(code, ()):
                    self._report(Problem(line.row, problem.column, problem.message))
            elif person.record is None:
                self._same_enrolment(line, person)
            else:
                self._matches_record(line, person.record)
            return person
        record = self.bank.participants.get(code)
        before = len(self.problems)
        person = self._known(line, record) if record is not None else self._enrolled(line)
        self.people[code] = person
        if person is None and record is not None:
            # What the bank holds refuses every row of the participant (another centre's,
            # consent withdrawn); a participant the file enrols is refused on its first row.
            self.refusals[code] = [p for p in self.problems[before:] if p.row == line.row]
        return person

    def _known(self, line: Line, record: Participant) -> _Participant | None:
        if not self._in_reach(record.site_id):
            self.problem(
                line,
                "participant",
                _l(
                    "Participant %(p)s is registered at another centre: only that centre "
                    "and the central biobank can import its tubes.",
                    p=record.code,
                ),
            )
            return None
        if not self._matches_record(line, record):
            return None
        return _Participant(
            record.code, record.site, record.arm_code, record.included_on, line.row, record
        )

    def _matches_record(self, line: Line, record: Participant) -> bool:
        sound = True
        if line.site and line.site != record.site.code:
            sound = False
            self.problem(
                line,
                "site",
                _l(
                    "Participant %(p)s is a participant of %(known)s, not of %(given)s.",
                    p=record.code,
                    known=record.site.code,
                    given=line.site,
                ),
            )
        if line.arm and line.arm != record.arm_code:
            sound = False
            self.problem(
                line,
                "arm",
                _l(
                    "Participant %(p)s is in arm %(known)s, not %(given)s.",
                    p=record.code,
                    known=record.arm_code,
                    given=line.arm,
                ),
            )
        if record.consent_status != "given":
            sound = False
            self.problem(
                line,
                "participant",
                _l(
                    "Biobank consent of %(p)s is withdrawn: no sample of theirs may be banked.",
                    p=record.code,
                ),
            )
        if sound:
            sound = self._in_scope(line, record.site)
        return sound

    def _enrolled(self, line: Line) -> _Participant | None:
        """A participant the bank does not know: the row must say all enrolment needs."""
        code = line.participant
        sound = True
        if not study.PARTICIPANT_CODE.match(code):
            sound = False
            self.problem(
                line,
                "participant",
                _l(
                    "“%(code)s” is not a study code: centre letters, a dash, a number "
                    "(LIM-001). Never a name or a date of birth.",
                    code=code,
                ),
            )
        site = self._site_of(line)
        sound = site is not None and sound
        arms = {arm.code for arm in self.bank.protocol.arms}
        if not line.arm:
            sound = self._missing(line, "arm", code)
        elif line.arm not in arms:
            sound = False
            self.problem(
                line,
                "arm",
                _l(
                    "Unknown arm %(arm)s (known: %(known)s).",
                    arm=line.arm,
                    known=", ".join(sorted(arms)),
                ),
            )
        if line.included_on is None:
            sound = self._missing(line, "included_on", code)
        if line.consent_given_on is None:
            sound = False
            self.problem(
                line,
                "consent_given_on",
                _l(
                    "Participant %(p)s is new to the bank: the date the biobank consent was "
                    "signed is required, and no sample is banked without it.",
                    p=code,
                ),
            )
        elif line.included_on is not None and line.consent_given_on > line.included_on:
            sound = False
            self.problem(
                line,
                "consent_given_on",
                _l("Biobank consent must be given on or before inclusion."),
            )
        status = self._disease_status(line)
        sound = sound and status is not None
        if not sound:
            return None
        self.new_people[code] = NewParticipant(
            code,
            site.code,
            line.arm,
            status,
            line.included_on,
            line.consent_given_on,
            line.row,
        )
        return _Participant(code, site, line.arm, line.included_on, line.row)

    def _missing(self, line: Line, key: str, code: str) -> bool:
        self.problem(
            line,
            key,
            _l(
                "Participant %(p)s is new to the bank: %(column)s is required to enrol them.",
                p=code,
                column=self.title(key),
            ),
        )
        return False

    def _disease_status(self, line: Line) -> str | None:
        if not line.disease_status:
            self._missing(line, "disease_status", line.participant)
            return None
        status = DISEASE_WORDS.get(header_key(line.disease_status))
        if status not in DISEASE_STATUSES:
            self.problem(
                line,
                "disease_status",
                _l(
                    "Unknown disease status “%(s)s” (known: de_novo, relapsed, refractory).",
                    s=line.disease_status,
                ),
            )
            return None
        return status

    def _site_of(self, line: Line) -> Site | None:
        """The centre of a participant the file enrols: the row's, else the import's."""
        if not line.site:
            if self.scope is not None:
                return self.scope
            self._missing(line, "site", line.participant)
            return None
        site = self.bank.sites.get(line.site)
        if site is None:
            self.problem(line, "site", _l("No site with code %(code)s.", code=line.site))
            return None
        return site if self._in_scope(line, site) else None

    def _in_reach(self, site_id: int) -> bool:
        bound = getattr(self.actor, "site_id", None)
        return bound is None or bound == site_id

    def _in_scope(self, line: Line, site: Site) -> bool:
        """A centre's user imports their centre's rows only; an import for one centre
        takes that centre's rows only."""
        if not self._in_reach(site.id):
            self.problem(
                line,
                "site",
                _l(
                    "This row is of centre %(site)s: you can import your own centre's "
                    "inventory only.",
                    site=site.code,
                ),
            )
            return False
        if self.scope is not None and site.id != self.scope.id:
            self.problem(
                line,
                "site",
                _l(
                    "This row is of centre %(site)s: this import is for %(scope)s only.",
                    site=site.code,
                    scope=self.scope.code,
                ),
            )
            return False
        return True

    def _same_enrolment(self, line: Line, person: _Participant) -> None:
        """The rows of a participant the file enrols all say the same of them."""
        first = self.new_people[person.code]
        given = {
            "site": (line.site, first.site),
            "arm": (line.arm, first.arm),
            "included_on": (line.included_on, first.included_on),
            "consent_given_on": (line.consent_given_on, first.consent_given_on),
        }
        for key, (value, expected) in given.items():
            if value is not None and value != expected:
                self.problem(
                    line,
                    key,
                    _l(
                        "%(value)s differs from row %(row)d for participant %(p)s: the rows "
                        "of one participant must agree.",
                        value=_display(value),
                        row=first.row,
                        p=person.code,
                    ),
                )

    # -- times, visits, tubes

    def localise(self, line: Line, person: _Participant) -> None:
        """The row's times as moments: those written without a zone are in the
        participant's centre's zone. Then their order, and none in the future."""
        zone = ZoneInfo(person.site.timezone)
        for key in ("collected_at", "spun_at", "frozen_at"):
            moment = getattr(line, key)
            if moment is not None and moment.tzinfo is None:
                setattr(line, key, self._in_zone(moment, zone))
        steps = [(key, getattr(line, key)) for key in ("collected_at", "spun_at", "frozen_at")]
        for key, moment in steps:
            if moment is not None and moment > self.now + samples.CLOCK_SKEW:
                self.problem(line, key, _l("This time is in the future."))
        present = [(key, moment) for key, moment in steps if moment is not None]
        for (first, earlier), (second, later) in pairwise(present):
            if later < earlier:
                self.problem(
                    line,
                    second,
                    _l(
                        "%(second)s is before %(first)s: check the times.",
                        first=self.title(first),
                        second=self.title(second),
                    ),
                )

    def _in_zone(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The local moment in the zone; the rows of a tube share one object."""
        key = (moment, zone.key)
        if key not in self.zoned:
            self.zoned[key] = moment.replace(tzinfo=zone)
        return self.zoned[key]

    def definition(self, line: Line, person: _Participant) -> VisitDefinition | None:
        """The protocol visit of the row: the one already registered, or the protocol's
        visit for the participant's arm."""
        if person.record is not None:
            visit = self.bank.visits.get((person.record.id, line.visit))
            if visit is not None:
                return visit.definition
        try:
            return study.visit_definition(self.bank.protocol, person.arm, line.visit)
        except Invalid as err:
            self.problem(line, "visit", err.message)
            return None

    def volume(self, line: Line, definition: VisitDefinition) -> None:
        """The tube type is the protocol's; the volume more than 0 and at most what the
        protocol plans for an aliquot of this tube at this visit."""
        try:
            study.tube_type(definition.protocol, line.tube_type)
        except Invalid as err:
            self.problem(line, "tube_type", err.message)
            return
        plan = next((p for p in definition.sample_plans if p.tube_type == line.tube_type), None)
        if plan is None:
            self.problem(
                line,
                "tube_type",
                _l(
                    "The protocol plans no %(t)s tube at visit %(v)s.",
                    t=line.tube_type,
                    v=definition.code,
                ),
            )
            return
        if line.volume_ul is None:
            return
        if line.volume_ul <= 0:
            self.problem(line, "volume_ul", _l("The volume must be more than 0 µL."))
        elif line.volume_ul > plan.volume_ul:
            self.problem(
                line,
                "volume_ul",
                _l(
                    "%(volume)d µL is more than the %(planned)d µL the protocol plans for an "
                    "aliquot of this tube at visit %(v)s.",
                    volume=line.volume_ul,
                    planned=plan.volume_ul,
                    v=definition.code,
                ),
            )

    # -- codes and places

    def legacy(self, line: Line, first_rows: dict[str, int]) -> None:
        """A code names one tube: none of the bank (as a barcode or an old label,
        whatever the case, as a scan compares them), and once in the file."""
        code = line.legacy_barcode
        if code is None:
            return
        if code in self.bank.codes_in_use:
            self.problem(
                line,
                "legacy_barcode",
                _l(
                    "%(code)s already names a tube of the bank (its barcode or its old "
                    "label): a code names one tube only.",
                    code=code,
                ),
            )
        elif code.casefold() in first_rows:
            self.problem(
                line,
                "legacy_barcode",
                _l(
                    "%(code)s is already given in row %(row)d.",
                    code=code,
                    row=first_rows[code.casefold()],
                ),
            )
        else:
            first_rows[code.casefold()] = line.row

    def place(self, line: Line, first_rows: dict[tuple[str, int, int], int]) -> None:
        """The box and position of the row: both or neither; a box of the actor's
        storage, or one to create in a named rack; a position of its grid, free in the
        bank and given once in the file."""
        if line.box is None and line.position is None:
            if line.box_type or line.rack:
                self.problem(line, "box", _l("Give the box the tube is in."))
            return
        if line.box is None:
            self.problem(line, "box", _l("A position is given: give the box too."))
            return
        if line.position is None:
            self.problem(
                line, "position", _l("Give the tube's position in box %(box)s.", box=line.box)
            )
            return
        box = self.bank.boxes.get(line.box)
        if box is not None:
            grid, box_id = storage.grid_of(box), box.id
            path = self.bank.paths[box.id]
        else:
            found = self._box_to_create(line)
            if found is None:
                return
            grid, path = found
            box_id = None
        numbers = split_position(line.position)
        if numbers is None or not grid.contains(*numbers):
            self.problem(
                line,
                "position",
                _l(
                    "“%(pos)s” is not a position of box %(box)s: from %(first)s to %(last)s.",
                    pos=line.position,
                    box=line.box,
                    first=grid.label(1, 1),
                    last=grid.label(grid.rows, grid.cols),
                ),
            )
            return
        line.cell = numbers
        label = grid.label(*numbers)
        if box_id is not None and (box_id, *numbers) in self.bank.taken:
            self.problem(
                line,
                "position",
                _l(
                    "Position %(pos)s of box %(box)s holds a tube already.",
                    pos=label,
                    box=line.box,
                ),
            )
            return
        key = (line.box, *numbers)
        if key in first_rows:
            self.problem(
                line,
                "position",
                _l(
                    "Position %(pos)s of box %(box)s is already given in row %(row)d.",
                    pos=label,
                    box=line.box,
                    row=first_rows[key],
                ),
            )
            return
        first_rows[key] = line.row
        self._cold_enough(line, path)

    def _box_to_create(self, line: Line) -> tuple[Grid, list[Container]] | None:
        """A box the bank does not have: created where the row says, with its type."""
        if not (line.box_type and line.rack):
            self.problem(
                line,
                "box",
                _l(
                    "No box %(box)s in your storage: set it up first, or give its box_type "
                    "and rack to create it.",
                    box=line.box,
                ),
            )
            return None
        planned = self.new_boxes.get(line.box)
        if planned is not None:
            if (planned.box_type, planned.rack) != (line.box_type, line.rack):
                self.problem(
                    line,
                    "box_type" if planned.box_type != line.box_type else "rack",
                    _l(
                        "Box %(box)s is created by row %(row)d as a %(type)s in rack "
                        "%(rack)s: the rows of one box must agree.",
                        box=line.box,
                        row=planned.row,
                        type=planned.box_type,
                        rack=planned.rack,
                    ),
                )
                return None
        elif not self._creatable(line):
            return None
        kind = self.bank.box_types[line.box_type]
        rack = self.bank.racks[line.rack]
        self.new_boxes.setdefault(line.box, NewBox(line.box, line.box_type, line.rack, line.row))
        return grid_for(kind.rows, kind.cols), self.bank.paths[rack.id]

    def _creatable(self, line: Line) -> bool:
        sound = True
        if not storage.BARCODE.match(line.box) or line.box in self.bank.codes_used:
            sound = False
            self.problem(
                line,
                "box",
                _l(
                    "Box %(box)s cannot be created: its code is used already, or is not 2 to "
                    "40 capital letters, digits or dashes.",
                    box=line.box,
                ),
            )
        if line.box_type not in self.bank.box_types:
            sound = False
            known = ", ".join(sorted(self.bank.box_types)) or "—"
            self.problem(
                line,
                "box_type",
                _l("No box type named %(t)s (known: %(known)s).", t=line.box_type, known=known),
            )
        if line.rack not in self.bank.racks:
            sound = False
            self.problem(line, "rack", _l("No rack %(rack)s in your storage.", rack=line.rack))
        return sound

    def _cold_enough(self, line: Line, path: list[Container]) -> None:
        place = storage.temperature_class_of(path)
        if place is None or int(place) > STORAGE_TEMPERATURE_C:
            self.problem(
                line,
                "box",
                _l(
                    "Box %(box)s is not in a freezer at %(needed)d °C or colder: the "
                    "aliquots cannot be stored there.",
                    box=line.box,
                    needed=STORAGE_TEMPERATURE_C,
                ),
            )


def _display(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


# --- tubes and visits: what the rows make together ------------------------------------------


@dataclass
class _Tube:
    person: _Participant
    definition: VisitDefinition
    lines: list[Line] = field(default_factory=list)


def _tube_times(checker: Checker, key: tuple[str, str, str], tube: _Tube) -> TubePlan | None:
    """The rows of one primary tube give its times once: every row agrees with the first
    that gives them all. More aliquots than a tube makes are refused."""
    timed = [line for line in tube.lines if line.collected_at and line.spun_at and line.frozen_at]
    if not timed:
        return None
    first = timed[0]
    times = ("collected_at", "spun_at", "frozen_at")
    for line in timed[1:]:
        differing = next((k for k in times if getattr(line, k) != getattr(first, k)), None)
        if differing is not None:
            checker.problem(
                line,
                differing,
                _l(
                    "%(column)s differs from row %(row)d: the rows of one tube (%(p)s, visit "
                    "%(v)s, %(t)s) must give the same times.",
                    column=checker.title(differing),
                    row=first.row,
                    p=key[0],
                    v=key[1],
                    t=key[2],
                ),
            )
    if len(tube.lines) > samples.MAX_ALIQUOTS_PER_TUBE:
        for line in tube.lines[samples.MAX_ALIQUOTS_PER_TUBE :]:
            checker.problem(
                line,
                "tube_type",
                _l(
                    "One tube makes at most %(n)d aliquots: row %(row)d and the rows before "
                    "it already give %(n)d for %(p)s, visit %(v)s, %(t)s.",
                    n=samples.MAX_ALIQUOTS_PER_TUBE,
                    row=tube.lines[samples.MAX_ALIQUOTS_PER_TUBE - 1].row,
                    p=key[0],
                    v=key[1],
                    t=key[2],
                ),
            )
    return TubePlan(key[2], first.collected_at, first.spun_at, first.frozen_at, tube.lines)


def _visit_plan(
    checker: Checker, person: _Participant, definition: VisitDefinition, tubes: list[TubePlan]
) -> VisitPlan:
    """The visit the tubes belong to: the day of its first blood draw at the centre, and
    the protocol's rules for that day (study.open_visit's: refused before the window,
    flagged after it, refused after the participant left the study)."""
    zone = ZoneInfo(person.site.timezone)
    first = min(tubes, key=lambda tube: tube.collected_at)
    collected_on = first.collected_at.astimezone(zone).date()
    line = min(first.lines, key=lambda line: line.row)
    existing = None
    if person.record is not None:
        existing = checker.bank.visits.get((person.record.id, definition.code))
    plan = VisitPlan(person.code, definition.code, collected_on, tubes, existing is not None)
    if existing is not None:
        _joins_visit(checker, line, existing, collected_on, tubes)
    else:
        _opens_visit(checker, line, person, definition, collected_on)
    return plan


def _joins_visit(
    checker: Checker, line: Line, visit: Visit, collected_on: date, tubes: list[TubePlan]
) -> None:
    """Tubes of a visit the bank has: the same day, and a tube type it does not have."""
    try:
        study.refuse_another_day(visit, line.participant, collected_on)
    except DomainError as err:
        checker.problem(line, "collected_at", err.message)
    for tube in tubes:
        if (visit.id, tube.tube_type) in checker.bank.tubes:
            for each in tube.lines:
                checker.problem(
                    each,
                    "tube_type",
                    _l(
                        "The %(t)s tube of visit %(v)s of %(p)s is already registered.",
                        t=tube.tube_type,
                        v=visit.visit_code,
                        p=each.participant,
                    ),
                )


def _opens_visit(
    checker: Checker,
    line: Line,
    person: _Participant,
    definition: VisitDefinition,
    collected_on: date,
) -> None:
    """A visit the file opens, by study.dated_visit's rules (those of open_visit)."""
    try:
        dated = study.dated_visit(person, definition, collected_on)
    except DomainError as err:
        checker.problem(line, "collected_at", err.message)
        return
    if dated.out_of_window:
        checker.warnings.append(
            Problem(
                line.row,
                checker.title("collected_at"),
                _l(
                    "Visit %(visit)s of %(p)s, collected on %(on)s (study day %(day)d), is "
                    "after its window (study days %(first)d to %(last)d): it is registered "
                    "and flagged as out of window.",
                    visit=definition.code,
                    p=person.code,
                    on=collected_on.isoformat(),
                    day=dated.study_day,
                    first=dated.window.earliest_day,
                    last=dated.window.latest_day,
                ),
            )
        )


# --- the whole file ------------------------------------------------------------------------


def check(
    data: bytes, filename: str, *, actor, scope: Site | None, limits: UploadLimits
) -> Checked:
    """Read the file and check every row against the bank; nothing is written."""
    problems: list[Problem] = []
    raw = rows_of(data, filename, limits)
    head = list(islice(raw, HEADER_SEARCH_ROWS))
    header = find_header(head)
    if header is None:
        raise Invalid(
            _l(
                "%(name)s has no header row: its first row must name the columns "
                "(participant, visit, tube_type, …). Start from the template.",
                name=filename,
            ),
            code="inventory.no_header",
            fields={"file": filename},
        )
    problems.extend(Problem(p.row, p.column, p.message) for p in header.problems)
    lines = read_lines(chain(head, raw), header, problems)
    if header.problems:
        # Without its required columns no row can be checked: the header is fixed first.
        return Checked(len(lines), problems, [], header.ignored, Plan())
    checker = Checker(header, look_up(lines, actor), actor, scope)
    checker.problems = problems
    checker.reported = {(problem.row, problem.column) for problem in problems}
    tubes = _rows_by_tube(checker, lines)
    plan = _plan(checker, tubes)
    problems.sort(key=lambda p: p.row or 0)
    checker.warnings.sort(key=lambda p: p.row or 0)
    return Checked(len(lines), problems, checker.warnings, header.ignored, plan)


def _rows_by_tube(checker: Checker, lines: list[Line]) -> dict[tuple[str, str, str], _Tube]:
    """Each row checked on its own, then gathered by primary tube (participant, visit,
    tube type), in file order."""
    legacy_rows: dict[str, int] = {}
    place_rows: dict[tuple[str, int, int], int] = {}
    tubes: dict[tuple[str, str, str], _Tube] = {}
    for line in lines:
        checker.legacy(line, legacy_rows)
        checker.place(line, place_rows)
        if not (line.participant and line.visit and line.tube_type):
            continue
        person = checker.participant(line)
        if person is None:
            continue
        checker.localise(line, person)
        definition = checker.definition(line, person)
        if definition is None:
            continue
        checker.volume(line, definition)
        key = (person.code, definition.code, line.tube_type)
        tubes.setdefault(key, _Tube(person, definition)).lines.append(line)
    return tubes


def _plan(checker: Checker, tubes: dict[tuple[str, str, str], _Tube]) -> Plan:
    visits: dict[tuple[str, str], list[TubePlan]] = defaultdict(list)
    owners: dict[tuple[str, str], _Tube] = {}
    for key, tube in tubes.items():
        planned = _tube_times(checker, key, tube)
        if planned is not None:
            visits[key[:2]].append(planned)
            owners[key[:2]] = tube
    plan = Plan(list(checker.new_people.values()), list(checker.new_boxes.values()))
    for key, planned in visits.items():
        owner = owners[key]
        plan.visits.append(_visit_plan(checker, owner.person, owner.definition, planned))
    return plan
