"""One reportable value per participant's visit, analyte and sample type.

An aliquot measured again (a diluted repeat of a value above the range, a plate whose
control failed) leaves several accepted results for one visit. Exactly one of them is
*reportable*: the one the pages plot, the export writes and the responses use. The others
stay on record, *superseded*, with the run whose value replaced them and why.

Serum and plasma of one visit are two measurements, not one measured twice: the sample
type is part of what holds one reportable value (the VEGF response reads serum only).

The rule, in the order ``ASSAY_REPORTABLE_RULE`` lists its steps (biobank/config.py):

``requested``
    a re-assay that was asked for supersedes: the newer run was imported with a re-assay
    reason, or it is a dilution repeat (the reportable value was ``>ULOQ`` and the newer
    one was read at a higher dilution);
``in_range``
    a value within the calibrated range beats a flagged one (``<LLOQ``, ``>ULOQ``, a
    laboratory's ``<`` or ``>``), and a flagged one beats no result;
``latest``
    the newer run supersedes (never between two aliquots of one run);

and when no step decides, the manager chooses at acceptance. Whatever the steps, a
sample the plate gave no result for never supersedes one that has a result.

The comparisons are pure functions of ``Candidate`` values; ``survey`` and ``settle``
read and write the database for ``services.accept_run``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from biobank.assays.models import SUPERSEDED_REASONS, Analyte, AssayRun, Result, run_code
from biobank.errors import Conflict, Invalid
from biobank.extensions import db
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.study.models import Participant, Visit

REQUESTED, DILUTION, IN_RANGE, LATEST, CHOSEN = SUPERSEDED_REASONS[1:]
STEPS = (REQUESTED, IN_RANGE, LATEST)
DEFAULT_RULE = (REQUESTED, IN_RANGE)

# How a result stands: a value (or a qualitative answer), a value flagged at a limit,
# nothing at all (the plate could not give one).
NO_RESULT, FLAGGED, MEASURED = 0, 1, 2


def rule_of(config: Mapping) -> tuple[str, ...]:
    """The steps of the rule the settings give (``ASSAY_REPORTABLE_RULE``)."""
    steps = tuple(config.get("ASSAY_REPORTABLE_RULE", DEFAULT_RULE))
    for step in steps:
        if step not in STEPS:
            raise ValueError(
                f"ASSAY_REPORTABLE_RULE: unknown step {step!r} (known: {', '.join(STEPS)})"
            )
    return steps


def significant(value: float | None, digits: int) -> float | None:
    """``value`` rounded to ``digits`` significant digits, still a number: 2480.4000543
    → 2480.0 at 4 digits, 0.0123456 → 0.01235."""
    if value is None:
        return None
    return float(f"{value:.{digits}g}")


def written(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits as plain text, never in exponent
    form: 12345.6 → "12350", 819.94 → "819.9", 0.0123456 → "0.01235"."""
    return format(Decimal(repr(significant(value, digits))).normalize(), "f")


@dataclass(frozen=True)
class Candidate:
    """One accepted result of a visit, or one the run being accepted would write."""

    run_id: int
    barcode: str
    value: float | None
    flag: str | None = None
    limit: float | None = None
    comparator: str | None = None
    text: str | None = None
    detail: str = ""
    unit: str = ""
    dilution: float = 1.0
    requested: str = ""  # the run's re-assay reason
    result_id: int | None = None  # a result already written
    position: int | None = None  # a row of the run being accepted

    @property
    def run(self) -> str:
        return run_code(self.run_id)

    @property
    def standing(self) -> int:
        if self.text is not None:
            return MEASURED
        if self.flag is not None or self.comparator is not None:
            return FLAGGED
        return MEASURED if self.value is not None else NO_RESULT

    def shown(self, digits: int = 4) -> str:
        return shown(self, digits)


def shown(result, digits: int = 4) -> str:
    """A result (anything with value, flag, limit, comparator, text and detail) as plain
    text: "< 15.6", "> 1000", "1150", "positive IgA lambda", or why there is no value."""
    if result.flag is not None and result.limit is not None:
        return f"{'<' if result.flag == '<LLOQ' else '>'} {written(result.limit, digits)}"
    if result.text is not None:
        return f"{result.text} {result.detail}".strip()
    if result.value is None:
        return result.detail
    prefix = f"{result.comparator} " if result.comparator else ""
    return f"{prefix}{written(result.value, digits)}"


def compare(earlier: Candidate, newer: Candidate, rule: Sequence[str]):
    """Which of two results stays reportable, and the step that said so: ``(winner,
    reason)``, or None when no step of ``rule`` decides."""
    if (earlier.standing == NO_RESULT) != (newer.standing == NO_RESULT):
        # A result beats no result, whatever was asked for.
        return (earlier if newer.standing == NO_RESULT else newer), IN_RANGE
    same_run = earlier.run_id == newer.run_id
    for step in rule:
        if step == REQUESTED:
            if newer.requested and not same_run:
                return newer, REQUESTED
            if earlier.flag == ">ULOQ" and newer.dilution > earlier.dilution:
                return newer, DILUTION
        elif step == IN_RANGE and newer.standing != earlier.standing:
            return (newer if newer.standing > earlier.standing else earlier), IN_RANGE
        elif step == LATEST and not same_run:
            return newer, LATEST
    return None


@dataclass(frozen=True)
class Loss:
    loser: Candidate
    winner: Candidate
    reason: str


@dataclass(frozen=True)
class Outcome:
    """What stays reportable (None: the rule cannot decide) and what is superseded."""

    keep: Candidate | None
    reason: str = ""
    losses: tuple[Loss, ...] = ()


def decide(
    earlier: Candidate | None, incoming: Sequence[Candidate], rule: Sequence[str]
) -> Outcome:
    """The reportable result after the run's results ``incoming`` meet the ``earlier``
    reportable one, each in turn against the one standing."""
    keep, reason, losses = earlier, "", []
    for newer in incoming:
        if keep is None:
            keep = newer
            continue
        decided = compare(keep, newer, rule)
        if decided is None:
            return Outcome(None)
        winner, reason = decided
        losses.append(Loss(newer if winner is keep else keep, winner, reason))
        keep = winner
    return Outcome(keep, reason, tuple(losses))


def chosen(candidates: Sequence[Candidate], choice: Candidate) -> Outcome:
    """The manager's choice: every other candidate is superseded by it."""
    return Outcome(
        choice, CHOSEN, tuple(Loss(c, choice, CHOSEN) for c in candidates if c is not choice)
    )


def reason_words(reason: str, requested: str = "") -> str:
    """Why a result was superseded, in the reader's language; ``requested`` is the
    re-assay reason of the run that superseded it."""
    if reason == REQUESTED:
        return str(_l("re-assay requested: %(reason)s", reason=requested))
    words = {
        DILUTION: _l("diluted repeat of a value above the range"),
        IN_RANGE: _l("a value within the calibrated range is kept over a flagged one"),
        LATEST: _l("the later run is kept"),
        CHOSEN: _l("chosen by the manager who accepted the run"),
    }
    return str(words.get(reason, ""))


@dataclass(frozen=True)
class Remeasure:
    """A participant's visit, analyte and sample type the run measures, with the result
    reportable there now, the run's own, and what the rule makes of them."""

    participant: str
    visit: str
    analyte: str
    sample_type: str
    digits: int
    earlier: Candidate | None
    incoming: tuple[Candidate, ...]
    outcome: Outcome
    hidden: bool = False  # another centre's, for a manager bound to a centre

    @property
    def key(self) -> str:
        return f"{self.participant}/{self.visit}/{self.analyte}/{self.sample_type}"

    @property
    def name(self) -> str:
        return f"{self.participant} · {self.visit} · {self.analyte} ({self.sample_type})"

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return ((self.earlier,) if self.earlier else ()) + self.incoming

    @property
    def measured_again(self) -> bool:
        return len(self.candidates) > 1

    @property
    def undecided(self) -> bool:
        return self.outcome.keep is None

    def token(self, candidate: Candidate) -> str:
        """How a choice names a candidate: its run, or its run and aliquot when the run
        measured the visit on two aliquots."""
        alone = sum(c.run_id == candidate.run_id for c in self.candidates) == 1
        return candidate.run if alone else f"{candidate.run}/{candidate.barcode}"

    @property
    def options(self) -> list[str]:
        return [self.token(c) for c in self.candidates]

    def named(self, token: str) -> Candidate | None:
        wanted = (token or "").strip().upper()
        return next((c for c in self.candidates if self.token(c).upper() == wanted), None)

    @property
    def reason(self) -> str:
        if self.undecided:
            return str(_l("you choose"))
        return reason_words(self.outcome.reason, self.outcome.keep.requested)

    def as_json(self) -> dict:
        keep = self.outcome.keep
        return {
            "key": self.key,
            "participant": self.participant,
            "visit": self.visit,
            "analyte": self.analyte,
            "sample_type": self.sample_type,
            "earlier": self._described(self.earlier) if self.earlier else None,
            "this_run": [self._described(c) for c in self.incoming],
            "keeps": self.token(keep) if keep else None,
            "rule": self.outcome.reason or None,
            "reason": self.reason,
            "choose": self.undecided,
            "options": self.options,
        }

    def _described(self, candidate: Candidate) -> dict:
        return {
            "run": candidate.run,
            "barcode": candidate.barcode,
            "value": candidate.value,
            "flag": candidate.flag,
            "limit": candidate.limit,
            "unit": candidate.unit,
            "dilution": candidate.dilution,
            "shown": candidate.shown(self.digits),
        }


@dataclass(frozen=True)
class Survey:
    """What accepting a run does to the reportable values: every group its results fall
    into, and those a manager bound to a centre does not see (``hidden``)."""

    groups: list[Remeasure] = field(default_factory=list)

    @property
    def remeasured(self) -> list[Remeasure]:
        """The groups measured before (or twice by the run): what acceptance asks about."""
        return [g for g in self.groups if g.measured_again and not g.hidden]

    @property
    def withheld(self) -> int:
        return sum(1 for g in self.groups if g.measured_again and g.hidden)


class ChoiceMissing(Invalid):
    """A visit the rule cannot decide was not given the manager's choice (422)."""

    status = 422
    default_code = "run.choice"


# --- the database ------------------------------------------------------------------------


def _origins(aliquot_ids: Iterable[int]) -> dict[int, tuple]:
    """Aliquot id → (barcode, sample type, visit id, visit code, participant code)."""
    query = (
        sa.select(
            Aliquot.id,
            Aliquot.barcode,
            Aliquot.sample_type,
            Visit.id,
            Visit.visit_code,
            Participant.code,
        )
        .join(Specimen, Specimen.id == Aliquot.specimen_id)
        .join(Visit, Visit.id == Specimen.visit_id)
        .join(Participant, Participant.id == Visit.participant_id)
        .where(Aliquot.id.in_(sorted(set(aliquot_ids))))
    )
    return {row[0]: tuple(row[1:]) for row in db.session.execute(query)}


def _analytes(ids: Iterable[int], *, lock: bool) -> dict[int, Analyte]:
    """The analytes, locked when accepting: two acceptances measuring one analyte take
    turns, so the second reads the first's results (PostgreSQL; SQLite writes one at a
    time anyway)."""
    query = sa.select(Analyte).where(Analyte.id.in_(sorted(set(ids)))).order_by(Analyte.id)
    if lock:
        query = query.with_for_update()
    return {a.id: a for a in db.session.execute(query).scalars()}


def _reportable_now(visit_ids: Iterable[int], analyte_ids: Iterable[int]) -> dict:
    """(visit id, analyte id, sample type) → the reportable result there now. Columns,
    not objects: a result the session loaded earlier must not stand in for the row."""
    query = (
        sa.select(
            Visit.id.label("visit_id"),
            Result.analyte_id,
            Aliquot.sample_type,
            Result.id.label("result_id"),
            Result.run_id,
            Aliquot.barcode,
            Result.value,
            Result.flag,
            Result.limit,
            Result.comparator,
            Result.text,
            Result.detail,
            Result.unit,
            Result.dilution,
            AssayRun.reassay_reason.label("requested"),
        )
        .join(AssayRun, AssayRun.id == Result.run_id)
        .join(Aliquot, Aliquot.id == Result.aliquot_id)
        .join(Specimen, Specimen.id == Aliquot.specimen_id)
        .join(Visit, Visit.id == Specimen.visit_id)
        .where(
            Result.reportable,
            AssayRun.status == "accepted",
            Visit.id.in_(sorted(set(visit_ids))),
            Result.analyte_id.in_(sorted(set(analyte_ids))),
        )
        .order_by(Result.id)
    )
    found = {}
    for row in db.session.execute(query).mappings():
        values = dict(row)
        group = (values.pop("visit_id"), values.pop("analyte_id"), values.pop("sample_type"))
        found[group] = Candidate(**values)
    return found


def _incoming(run: AssayRun, position: int, row: dict, barcode: str) -> Candidate:
    return Candidate(
        run_id=run.id,
        barcode=barcode,
        value=row.get("value"),
        flag=row.get("flag"),
        limit=row.get("limit"),
        comparator=row.get("comparator"),
        text=row.get("text"),
        detail=row.get("detail") or "",
        unit=row.get("unit") or "",
        dilution=row.get("dilution") or 1.0,
        requested=run.reassay_reason or "",
        position=position,
    )


def survey(
    run: AssayRun, rows: Sequence[dict], *, rule: Sequence[str], actor, lock: bool = False
) -> Survey:
    """Group the results the run would write (``rows``, as inserted) by participant's
    visit, analyte and sample type, beside the reportable result of each group now, and
    decide each group by the rule. Reads only."""
    origins = _origins(row["aliquot_id"] for row in rows)
    analytes = _analytes((row["analyte_id"] for row in rows), lock=lock)
    now = _reportable_now((o[2] for o in origins.values()), analytes)
    grouped: dict[tuple, list[Candidate]] = {}
    for position, row in enumerate(rows):
        barcode, sample_type, visit_id, *_ = origins[row["aliquot_id"]]
        key = (visit_id, row["analyte_id"], sample_type)
        grouped.setdefault(key, []).append(_incoming(run, position, row, barcode))
    hidden = samples.out_of_reach([o[0] for o in origins.values()], actor)
    groups = []
    for (visit_id, analyte_id, sample_type), incoming in grouped.items():
        origin = origins[rows[incoming[0].position]["aliquot_id"]]
        earlier = now.get((visit_id, analyte_id, sample_type))
        groups.append(
            Remeasure(
                participant=origin[4],
                visit=origin[3],
                analyte=analytes[analyte_id].code,
                sample_type=sample_type,
                digits=analytes[analyte_id].significant_digits,
                earlier=earlier,
                incoming=tuple(incoming),
                outcome=decide(earlier, incoming, rule),
                hidden=any(c.barcode in hidden for c in incoming),
            )
        )
    groups.sort(key=lambda g: (g.participant, g.visit, g.analyte, g.sample_type))
    return Survey(groups)


def _ask(run: AssayRun, surveyed: Survey, *, again: bool = False) -> Conflict:
    """The refusal that lists what the run measures again, for the manager to confirm."""
    shown = surveyed.remeasured
    if again:
        message = _l(
            "Since the page was shown, another run measured visits of run %(run)s: check "
            "the list again, then confirm.",
            run=run.code,
        )
    else:
        message = ngettext(
            "Run %(run)s measures again %(num)d visit already measured: check which value "
            "is kept, then confirm.",
            "Run %(run)s measures again %(num)d visits already measured: check which value "
            "is kept, then confirm.",
            len(shown) + surveyed.withheld,
            run=run.code,
        )
    fields: dict = {"remeasured": [g.as_json() for g in shown]}
    if surveyed.withheld:
        fields["withheld"] = surveyed.withheld
    return Conflict(message, code="run.remeasures", fields=fields)


def _outcomes(
    run: AssayRun, surveyed: Survey, choices: Mapping[str, str]
) -> list[tuple[Remeasure, Outcome]]:
    """Each group's outcome: the rule's, or the manager's choice where the rule cannot
    decide. A choice missing, naming no candidate, or given where the rule decides is
    refused naming the visit."""
    wanted = {key.strip(): value for key, value in choices.items()}
    by_key = {g.key: g for g in surveyed.groups if not g.hidden}
    for key in wanted:
        group = by_key.get(key)
        if group is None or not group.undecided:
            raise ChoiceMissing(
                _l(
                    "%(key)s is not a visit of run %(run)s awaiting a choice.",
                    key=key,
                    run=run.code,
                ),
                fields={f"choices.{key}": key},
            )
    if any(g.hidden and g.undecided for g in surveyed.groups):
        raise Conflict(
            _l(
                "Run %(run)s measures again results of another centre that the rule cannot "
                "decide: a manager who sees every centre accepts it.",
                run=run.code,
            ),
            code="run.remeasures_elsewhere",
        )
    decided = []
    for group in surveyed.groups:
        if not group.undecided:
            decided.append((group, group.outcome))
            continue
        choice = group.named(wanted.get(group.key, ""))
        if choice is None:
            raise ChoiceMissing(
                _l(
                    "Choose the value kept for %(visit)s: %(options)s.",
                    visit=group.name,
                    options=" / ".join(group.options),
                ),
                fields={f"choices.{group.key}": wanted.get(group.key, "")},
            )
        decided.append((group, chosen(group.candidates, choice)))
    return decided


def settle(
    run: AssayRun,
    rows: list[dict],
    *,
    rule: Sequence[str],
    confirm: bool,
    choices: Mapping[str, str],
    listed: Collection[str] | None,
    actor,
) -> None:
    """Mark which of the run's ``rows`` (about to be inserted) are reportable, and
    supersede the earlier reportable results they replace. A run that measures again
    what was measured is refused (409, ``run.remeasures``, the list of visits) unless
    ``confirm``; ``listed`` are the visits a page showed when it confirmed: one more
    measured since is asked about again."""
    surveyed = survey(run, rows, rule=rule, actor=actor, lock=True)
    if surveyed.remeasured or surveyed.withheld:
        if not confirm:
            raise _ask(run, surveyed)
        if listed is not None and {g.key for g in surveyed.remeasured} - set(listed):
            raise _ask(run, surveyed, again=True)
    for group, outcome in _outcomes(run, surveyed, choices):
        for candidate in group.incoming:
            rows[candidate.position].update(
                reportable=candidate is outcome.keep,
                superseded_by_run_id=None,
                superseded_reason="",
            )
        for loss in outcome.losses:
            _supersede(rows, loss)


def _supersede(rows: list[dict], loss: Loss) -> None:
    change = {
        "reportable": False,
        "superseded_by_run_id": loss.winner.run_id,
        "superseded_reason": loss.reason,
    }
    if loss.loser.position is not None:
        rows[loss.loser.position].update(change)
    else:
        db.session.execute(
            sa.update(Result).where(Result.id == loss.loser.result_id).values(change)
        )
