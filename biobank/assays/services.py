"""Assay runs: import a plate (reader file + plate map) or a laboratory's result sheet as a
preview, then accept it (results written in one transaction, with who and when) or
reject it (kept with the reason). A file is imported once: its SHA-256 is unique."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from biobank.assays import (
    pipeline,
    platemap,
    platereader,
    readerdate,
    reportable,
    resultsheet,
    units,
)
from biobank.assays.models import Analyte, AssayRun, Result, Well
from biobank.auth.models import User
from biobank.custody import services as custody
from biobank.db import utcnow
from biobank.errors import Conflict, Invalid, NotFound
from biobank.extensions import db
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.sites.services import in_reach
from biobank.storage import services as storage
from biobank.study.models import Participant, Visit
from biobank.study.services import Page

SAMPLE_TYPE_OF = {"VEGF": "SER"}
INSERT_BATCH = 2_000  # informative only: the analyte's usual matrix


def canonical(data) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- analytes ----------------------------------------------------------------------------


def ensure_default_analytes() -> int:
    """Add the analytes of analytes.toml that the database does not have yet."""
    known = set(db.session.execute(sa.select(Analyte.code)).scalars())
    added = 0
    for spec in resultsheet.load_analytes().values():
        if spec.code in known:
            continue
        db.session.add(
            Analyte(
                code=spec.code,
                name=spec.name,
                kind=spec.kind,
                unit=spec.unit,
                allowed_values=canonical(list(spec.values)),
                aliases=canonical(list(spec.aliases)),
                significant_digits=spec.digits,
            )
        )
        added += 1
    db.session.flush()
    return added


@dataclass(frozen=True)
class AnalyteChoice:
    code: str
    name: str
    kind: str
    unit: str


def analyte_choices() -> list[AnalyteChoice]:
    """The analytes one may import: those declared, and the defaults not yet used (added
    to the database on their first import). Reads only."""
    found = {a.code: AnalyteChoice(a.code, a.name, a.kind, a.unit) for a in list_analytes()}
    for spec in resultsheet.load_analytes().values():
        found.setdefault(spec.code, AnalyteChoice(spec.code, spec.name, spec.kind, spec.unit))
    return sorted(found.values(), key=lambda a: a.code)


def list_analytes() -> list[Analyte]:
    return list(db.session.execute(sa.select(Analyte).order_by(Analyte.code)).scalars())


def get_analyte(code: str) -> Analyte:
    ensure_default_analytes()
    wanted = (code or "").strip().upper()
    analyte = db.session.execute(sa.select(Analyte).where(Analyte.code == wanted)).scalar()
    if analyte is None:
        known = ", ".join(a.code for a in list_analytes())
        raise NotFound(
            _l("No analyte %(code)s (known: %(known)s).", code=wanted, known=known),
            fields={"analyte": wanted},
        )
    return analyte


def declare_analyte(
    code: str, name: str, kind: str, unit: str = "", values=(), aliases=(), *, actor
) -> Analyte:
    """An analyte the administrator adds (a new marker): its unit, or its values."""
    code = (code or "").strip().upper()
    if not code or len(code) > 16 or not code.replace("_", "").isalnum():
        raise Invalid(_l("A code of letters, digits and _ (at most 16)."), fields={"code": code})
    if kind not in ("numeric", "qualitative"):
        raise Invalid(_l("Numeric or qualitative."), fields={"kind": kind})
    if db.session.execute(sa.select(Analyte.id).where(Analyte.code == code)).first():
        raise Conflict(_l("Analyte %(code)s exists.", code=code), fields={"code": code})
    try:
        unit = units.normalize_unit(unit) if kind == "numeric" else ""
    except units.UnitError as err:
        raise Invalid(str(err), fields={"unit": unit}) from err
    analyte = Analyte(
        code=code,
        name=(name or code).strip()[:100],
        kind=kind,
        unit=unit,
        allowed_values=canonical([v.strip().lower() for v in values if v.strip()]),
        aliases=canonical([a.strip() for a in aliases if a.strip()]),
    )
    db.session.add(analyte)
    db.session.flush()
    return analyte


def _specs() -> dict[str, resultsheet.AnalyteSpec]:
    ensure_default_analytes()
    return {
        a.code: resultsheet.AnalyteSpec(
            a.code,
            a.name,
            a.kind,
            a.unit,
            tuple(json.loads(a.allowed_values)),
            tuple(json.loads(a.aliases)),
        )
        for a in list_analytes()
    }


# --- runs --------------------------------------------------------------------------------


REASSAY_REASON_MAX = 500


def _reassay_reason(text: str) -> str:
    """Why a run measures again what was measured ("diluted repeat of >ULOQ samples"):
    free text, as typed."""
    reason = (text or "").strip()
    if len(reason) > REASSAY_REASON_MAX:
        raise Invalid(
            _l("A re-assay reason of at most %(n)d characters.", n=REASSAY_REASON_MAX),
            fields={"reassay_reason": reason[:40]},
        )
    return reason


def _refuse_known(content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    held = db.session.execute(sa.select(AssayRun).where(AssayRun.file_sha256 == digest)).scalar()
    if held is not None:
        raise Conflict(
            _l(
                "This file was already imported: run %(run)s (%(status)s, %(name)s).",
                run=held.code,
                status=held.status,
                name=held.file_name,
            ),
            code="run.duplicate_file",
            fields={"file": held.code},
        )
    return digest


def _aliquots(barcodes, actor) -> dict[str, int]:
    """Barcode → id of the aliquots these barcodes name that the actor may see."""
    codes = sorted(set(barcodes))
    if not codes:
        return {}
    query = sa.select(Aliquot.barcode, Aliquot.id).where(Aliquot.barcode.in_(codes))
    return dict(db.session.execute(samples.aliquots_in_reach(query, actor)).all())


def _in_analyte_unit(data: dict, analyte: Analyte) -> None:
    """Standards in ng/mL, VEGF results in pg/mL: the sample values are converted."""
    unit = data["qc"]["unit"]
    if not unit or unit == analyte.unit:
        return
    try:
        factor = units.convert(1.0, unit, analyte.unit)
    except units.UnitError as err:
        raise Invalid(
            _l(
                "The standards' unit %(unit)s is not a unit of %(analyte)s: %(error)s",
                unit=unit,
                analyte=analyte.code,
                error=str(err),
            ),
            fields={"plate_map": unit},
        ) from err
    for sample in data["samples"]:
        for key in ("concentration", "limit"):
            if sample[key] is not None:
                sample[key] *= factor
        sample["unit"] = analyte.unit


def _store(run: AssayRun) -> None:
    """Add the run; the same file imported at the same moment by someone else loses on
    the unique SHA-256 and is told so."""
    db.session.add(run)
    try:
        db.session.flush()
    except sa.exc.IntegrityError as err:
        raise Conflict(
            _l("This file is being imported by someone else at this moment."),
            code="run.duplicate_file",
            fields={"file": run.file_name},
        ) from err


@dataclass(frozen=True)
class Preview:
    run: AssayRun | None
    data: dict


def preview_plate(
    reader_file: bytes,
    reader_name: str,
    plate_map_file: bytes,
    analyte_code: str,
    options: pipeline.Options,
    *,
    instrument: str = "",
    kit_lot: str = "",
    reassay_reason: str = "",
    measured_on: date | None = None,
    keep: bool = True,
    actor,
) -> Preview:
    """Read, fit and check a plate; with ``keep`` the run is stored as a preview for a
    manager to accept or reject, otherwise nothing is written (a dry run). A
    ``reassay_reason`` says the plate measures again, on purpose, what was measured."""
    reassay_reason = _reassay_reason(reassay_reason)
    digest = _refuse_known(reader_file)
    analyte = get_analyte(analyte_code)
    if analyte.kind != "numeric":
        raise Invalid(_l("A plate measures a numeric analyte."), fields={"analyte": analyte.code})
    try:
        plate = platemap.read_plate_map(plate_map_file)
    except platemap.PlateMapError as err:
        raise Invalid(
            str(_l("Plate map: %(error)s", error=str(err))),
            code="run.plate_map",
            fields={"plate_map": str(err)},
        ) from err
    try:
        result = pipeline.evaluate_file(reader_file, reader_name, plate, options)
    except platereader.ReaderFileError as err:
        raise Invalid(
            f"{reader_name}: {err}", code="run.reader_file", fields={"file": str(err)}
        ) from err
    except pipeline.PipelineError as err:
        if err.choices:
            # Which read to use: the refusal lists the file's reads for the form to offer.
            raise Invalid(
                str(err), code="run.choose_read", fields={"read": str(err), "reads": err.choices}
            ) from err
        raise Invalid(str(err), code="run.not_evaluable", fields={"file": str(err)}) from err
    data = result.preview
    read_on = _read_on(result.read_on, measured_on, data["problems"])
    data["measured_on"] = read_on.isoformat() if read_on else None
    _in_analyte_unit(data, analyte)
    known = _aliquots(plate.samples(), actor)
    for sample in data["samples"]:
        sample["known"] = sample["barcode"] in known
        if not sample["known"]:
            data["problems"].append(
                f"{sample['barcode']} is on the plate map but is not an aliquot of the bank"
            )
    data["analyte"] = analyte.code
    data["wells"] = {
        well: {
            "content": content,
            "kind": plate.kind(content),
            "response": result.responses.get(well),
            "dilution": plate.dilutions.get(content, 1.0),
            # As the reader wrote it: "OVER" or "N/A" stays on record with the run.
            "raw": result.raw.get(well, ""),
        }
        for well, content in plate.wells.items()
    }
    run = None
    if keep:
        run = AssayRun(
            kind="plate",
            analyte_id=analyte.id,
            file_name=reader_name[:255],
            file_sha256=digest,
            content=reader_file,
            plate_map=plate_map_file,
            instrument=(instrument or "").strip()[:100],
            kit_lot=(kit_lot or "").strip()[:100],
            measured_on=read_on,
            reassay_reason=reassay_reason,
            options=canonical(options.as_dict()),
            preview=canonical(data),
            problems=len(data["problems"]),
            created_by_id=getattr(actor, "id", None),
        )
        _store(run)
        data["run"] = run.code
    return Preview(run, data)


def _read_on(
    found: readerdate.Found | None, given: date | None, problems: list[str]
) -> date | None:
    """The day the plate was read: the one given, else the reader file's; an ambiguous
    file date ("03/04/2026") is asked for, a difference between the two is a problem."""
    if given is not None and given > utcnow().date():
        raise Invalid(
            _l("The date the plate was read (%(day)s) is in the future.", day=given.isoformat()),
            code="run.measured_on",
            fields={"measured_on": given.isoformat()},
        )
    if found is None:
        if given is None:
            problems.append(
                "the reader file does not say when the plate was read and no date was given: "
                "the results have no measurement date"
            )
        return given
    if found.day is None and given is None:
        first, second = found.choices
        raise Invalid(
            _l(
                "The reader file dates the read “%(text)s” (%(place)s): %(first)s or "
                "%(second)s? Give the date the plate was read.",
                text=found.text,
                place=found.place,
                first=first.isoformat(),
                second=second.isoformat(),
            ),
            code="run.measured_on",
            fields={"measured_on": found.text},
        )
    if given is not None and found.day is not None and given != found.day:
        problems.append(
            f"the reader file says the plate was read on {found.day.isoformat()} "
            f"({found.place}); {given.isoformat()} was given and is kept"
        )
    return given or found.day


def preview_results(
    data: bytes, filename: str, *, reassay_reason: str = "", keep: bool = True, actor
) -> Preview:
    """A laboratory's row-per-sample result sheet, checked row by row."""
    reassay_reason = _reassay_reason(reassay_reason)
    digest = _refuse_known(data)
    try:
        rows = resultsheet.read_results(data, filename, analytes=_specs())
    except resultsheet.ResultSheetError as err:
        problems = getattr(err, "problems", [str(err)])
        raise Invalid(
            f"{filename}: {err}", code="run.result_sheet", fields={"rows": " | ".join(problems)}
        ) from err
    known = _aliquots([r.barcode for r in rows], actor)
    problems = [
        f"row {r.row}: {r.barcode} is not an aliquot of the bank"
        for r in rows
        if r.barcode not in known
    ]
    preview = {
        "rows": [
            {
                "row": r.row,
                "barcode": r.barcode,
                "analyte": r.analyte,
                "value": r.value,
                "comparator": r.comparator,
                "text": r.text,
                "detail": r.detail,
                "unit": r.unit,
                "reported": f"{r.reported_value} {r.reported_unit}".strip(),
                "method": r.method,
                "measured_on": r.measured_on.isoformat() if r.measured_on else None,
                "known": r.barcode in known,
            }
            for r in rows
        ],
        "problems": problems,
    }
    run = None
    if keep:
        run = AssayRun(
            kind="sheet",
            file_name=filename[:255],
            file_sha256=digest,
            content=data,
            reassay_reason=reassay_reason,
            preview=canonical(preview),
            problems=len(problems),
            created_by_id=getattr(actor, "id", None),
        )
        _store(run)
        preview["run"] = run.code
    return Preview(run, preview)


# --- which runs, and what of them, a user bound to a centre sees -------------------------


def _named(preview: dict) -> set[str]:
    """The aliquot barcodes a preview names: a plate's samples, a sheet's rows."""
    return {s["barcode"] for s in preview.get("samples", ())} | {
        r["barcode"] for r in preview.get("rows", ())
    }


def _undecided_in_reach(actor, among: list[int] | sa.Select | None = None) -> list[int]:
    """The runs awaiting a decision (or rejected) whose preview names an aliquot of the
    actor's centre: they have no result yet to tell it."""
    query = sa.select(AssayRun.id, AssayRun.preview).where(AssayRun.status != "accepted")
    if among is not None:
        query = query.where(AssayRun.id.in_(among))
    named = {id_: _named(json.loads(preview)) for id_, preview in db.session.execute(query)}
    reached = samples.reached(set().union(*named.values()), actor)
    return [id_ for id_, codes in named.items() if codes & reached]


def runs_in_reach(query, actor, among: list[int] | sa.Select | None = None):
    """``query`` on runs limited to those a user bound to a centre sees: the runs imported
    at their centre, and those holding at least one of their centre's aliquots (an
    accepted run's results, an undecided run's preview). A plate may hold the tubes of
    several centres: what such a user sees of it is ``seen``. ``among`` (run ids, or a
    query of them) limits the previews read to find the undecided runs."""
    if not samples.bound_to_a_centre(actor):
        return query
    imported_here = AssayRun.created_by_id.in_(in_reach(sa.select(User.id), User.site_id, actor))
    measured_here = sa.exists(
        samples.aliquots_in_reach(
            sa.select(Result.id)
            .join(Aliquot, Aliquot.id == Result.aliquot_id)
            .where(Result.run_id == AssayRun.id),
            actor,
        )
    )
    undecided_here = AssayRun.id.in_(_undecided_in_reach(actor, among))
    return query.where(sa.or_(imported_here, measured_here, undecided_here))


def _run_in_reach(code: str | int, actor) -> AssayRun:
    """The run a code names, if the actor sees it: another centre's run is not found."""
    text = str(code).strip().upper().removeprefix("A")
    number = int(text) if text.isdigit() and len(text) <= 9 else None
    run = db.session.get(AssayRun, number) if number is not None else None
    if run is not None and samples.bound_to_a_centre(actor):
        query = runs_in_reach(sa.select(AssayRun.id).where(AssayRun.id == run.id), actor, [run.id])
        run = run if db.session.execute(query).first() is not None else None
    if run is None:
        raise NotFound(_l("No assay run %(code)s.", code=code), fields={"run": str(code)})
    return run


def _shown(preview: dict, hidden: set[str]) -> dict:
    """The preview without the samples of these aliquots: their rows or samples, wells
    and the problems naming them. The standards, controls and curve stay: they are no
    participant's."""
    if not hidden:
        return preview
    shown = dict(preview)
    if "samples" in preview:
        shown["samples"] = [s for s in preview["samples"] if s["barcode"] not in hidden]
    if "rows" in preview:
        shown["rows"] = [r for r in preview["rows"] if r["barcode"] not in hidden]
    if "wells" in preview:
        shown["wells"] = {
            well: info
            for well, info in preview["wells"].items()
            if info.get("content") not in hidden
        }
    shown["problems"] = [
        problem
        for problem in preview.get("problems", ())
        if not any(code in problem for code in hidden)
    ]
    shown["withheld"] = len(hidden)
    return shown


@dataclass(frozen=True)
class SeenRun:
    """A run as one user sees it: its columns, and its preview without the samples of the
    aliquots of centres the user is not bound to (``withheld``, their barcodes)."""

    run: AssayRun
    shown: dict
    withheld: frozenset[str]

    def __getattr__(self, name):
        # The run's own columns and relations (code, status, file_name, analyte…); never
        # a special name, which copy and pickle look up before ``run`` is set.
        if name.startswith("__") or name == "run":
            raise AttributeError(name)
        return getattr(self.run, name)

    @property
    def preview(self) -> str:
        return canonical(self.shown)


def seen(run: AssayRun, *, actor) -> SeenRun:
    """``run`` as ``actor`` sees it (see ``SeenRun``)."""
    preview = json.loads(run.preview)
    hidden = samples.out_of_reach(_named(preview), actor)
    return SeenRun(run, _shown(preview, hidden), frozenset(hidden))


def get_run(code: str | int, *, actor) -> SeenRun:
    """A run the actor sees, as they see it; another centre's run is not found."""
    return seen(_run_in_reach(code, actor), actor=actor)


def list_runs(*, actor, status: str | None = None, limit: int = 100, offset: int = 0) -> Page:
    """Runs newest first: those the actor sees (see ``runs_in_reach``)."""
    query = runs_in_reach(sa.select(AssayRun), actor)
    if status:
        query = query.where(AssayRun.status == status)
    total = db.session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
    items = db.session.execute(query.order_by(AssayRun.id.desc()).limit(limit).offset(offset))
    return Page(list(items.scalars()), total)


def _undecided(run: AssayRun) -> None:
    if run.status != "preview":
        raise Conflict(
            _l("Run %(run)s is already %(status)s.", run=run.code, status=run.status),
            code="run.decided",
        )


def _decide(run: AssayRun, status: str, actor) -> None:
    _undecided(run)
    run.status = status
    run.decided_at = utcnow()
    run.decided_by_id = getattr(actor, "id", None)


def accept_run(
    code: str | int,
    *,
    confirm: bool = False,
    choices: dict[str, str] | None = None,
    listed: list[str] | None = None,
    actor,
) -> AssayRun:
    """Write the preview's results, in one transaction, with who accepted it and when.
    Samples that are not aliquots of the bank are left out (the preview listed them). A
    manager bound to a centre decides on the runs they see, and for the whole plate: its
    curve and standards hold for every sample on it.

    A run that measures again a visit already measured is refused with the list of those
    visits (409 ``run.remeasures``) until it is accepted with ``confirm``, and with the
    manager's ``choices`` ({visit key: run}) where the rule cannot decide which value is
    reportable (biobank/assays/reportable.py)."""
    run = _run_in_reach(code, actor)
    # One acceptance of a run at a time: the second waits, then finds it decided.
    db.session.refresh(run, with_for_update=True)
    _undecided(run)
    preview = json.loads(run.preview)
    rows = _results_of(run, preview)
    reportable.settle(
        run,
        rows,
        rule=reportable.rule_of(current_app.config),
        confirm=confirm,
        choices=choices or {},
        listed=listed,
        actor=actor,
    )
    _decide(run, "accepted", actor)
    _insert(Result, rows)
    if run.kind == "plate":
        _write_wells(run, preview)
    db.session.flush()
    return run


def remeasures(run: AssayRun, *, actor) -> reportable.Survey:
    """What accepting this run would measure again, and which value the rule would keep
    (nothing for a decided run). Reads only."""
    if run.status != "preview":
        return reportable.Survey()
    rows = _results_of(run, json.loads(run.preview))
    return reportable.survey(run, rows, rule=reportable.rule_of(current_app.config), actor=actor)


def _results_of(run: AssayRun, preview: dict) -> list[dict]:
    """The result rows accepting the run writes."""
    return _plate_results(run, preview) if run.kind == "plate" else _sheet_results(run, preview)


def _on_plate(preview: dict) -> dict[str, int]:
    # The aliquots the preview found, whoever accepts: a manager of one centre accepting
    # the central laboratory's plate writes every result the preview showed.
    return _aliquots([s["barcode"] for s in preview["samples"] if s["known"]], None)


def _plate_results(run: AssayRun, preview: dict) -> list[dict]:
    found = _on_plate(preview)
    return [
        {
            "run_id": run.id,
            "aliquot_id": found[sample["barcode"]],
            "analyte_id": run.analyte_id,
            "value": sample["concentration"],
            "unit": sample["unit"],
            "flag": sample["flag"],
            "limit": sample["limit"],
            "dilution": sample["dilution"],
            "cv_pct": sample["cv_pct"],
            "method": run.instrument or "ELISA",
            "measured_on": run.measured_on,  # the day the plate was read, never the import
            "source": "wells " + ", ".join(sample["wells"]),
            "detail": _detail(sample),
        }
        for sample in preview["samples"]
        if sample["barcode"] in found
    ]


def _write_wells(run: AssayRun, preview: dict) -> None:
    found = _on_plate(preview)
    _insert(
        Well,
        [
            {
                "run_id": run.id,
                "position": well,
                "role": info["kind"],
                "content": info["content"][:40],
                "aliquot_id": found.get(info["content"]),
                "dilution": info["dilution"],
                "response": info["response"],
                "raw": info.get("raw", "")[:40],
            }
            for well, info in preview["wells"].items()
        ],
    )


def _detail(sample: dict) -> str:
    """Why a plate's result has a limit or no value ("reader saturated — dilute and
    re-assay"): a sample without a result keeps its row, value empty, saying so."""
    reason = sample.get("reason") or ""
    if sample.get("status") == pipeline.NO_RESULT:
        return f"{pipeline.NO_RESULT} — {reason}" if reason else pipeline.NO_RESULT
    return reason


def _sheet_results(run: AssayRun, preview: dict) -> list[dict]:
    found = _aliquots([r["barcode"] for r in preview["rows"] if r["known"]], None)
    analytes = {a.code: a.id for a in list_analytes()}
    return [
        {
            "run_id": run.id,
            "aliquot_id": found[row["barcode"]],
            "analyte_id": analytes[row["analyte"]],
            "value": row["value"],
            "unit": row["unit"] or "",
            "comparator": row["comparator"],
            "text": row["text"],
            "detail": row["detail"] or "",
            "method": row["method"] or "",
            "measured_on": date.fromisoformat(row["measured_on"]) if row["measured_on"] else None,
            "source": f"row {row['row']}",
            "dilution": 1.0,
        }
        for row in preview["rows"]
        if row["barcode"] in found
    ]


def _insert(model, rows: list[dict]) -> None:
    # Plain rows in one executemany: thousands of ORM objects would cost more than the rows.
    # NULLs are written, not left out: rows leaving out different columns would be sent
    # in as many batches as there are changes from one kind of row to the next. Batches of
    # INSERT_BATCH rows bound the parameters held at once (a 20,000-row sheet).
    statement = sa.insert(model).execution_options(render_nulls=True)
    for start in range(0, len(rows), INSERT_BATCH):
        db.session.execute(statement, rows[start : start + INSERT_BATCH])


def reject_run(code: str | int, reason: str, *, actor) -> AssayRun:
    run = _run_in_reach(code, actor)
    reason = custody.require_reason(reason, _l("reject a run"))
    _decide(run, "rejected", actor)
    run.reason = reason
    db.session.flush()
    return run


# --- plate design ------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    plate: platemap.PlateMap
    workbook: bytes
    taken_ul: dict[str, int]


def parse_entries(text: str, *, actor) -> list[tuple[str, float]]:
    """Scanned tubes, one per line, each optionally followed by its dilution ("2" or
    "1:2"): the list a technician scans for a plate. A box's barcode stands for every
    tube in the box. A tube's old label (an imported inventory) stands for the tube, by
    its barcode, even an old label holding spaces ("ab 12/7 1:2")."""
    lines = [
        (number, line)
        for number, line in enumerate((text or "").splitlines(), 1)
        if line.replace(";", " ").replace(",", " ").split()
    ]
    candidates = [code for _, line in lines for code, _rest in _line_readings(line)]
    old = samples.old_labels(candidates, actor=actor)
    entries = []
    for number, line in lines:
        labelled = next(((code, rest) for code, rest in _line_readings(line) if code in old), None)
        if labelled is not None:
            code, rest = labelled
            dilution = _dilution(rest, number, line) if rest else 1.0
            # Another centre's tube stays the code scanned: taking its volume explains it.
            entries.append((old[code] or code, dilution))
            continue
        parts = line.replace(";", " ").replace(",", " ").split()
        dilution = _dilution(parts[1], number, line) if len(parts) > 1 else 1.0
        entries += [(code, dilution) for code in _tubes(parts[0], number, actor)]
    if not entries:
        raise Invalid(_l("Scan at least one tube."), fields={"aliquots": ""})
    return entries


# The end of a line of the tube list that may be a dilution after the tube's code.
_LAST_WORD = re.compile(r"(.+?)[\s,;]+([^\s,;]+)")


def _line_readings(line: str) -> list[tuple[str, str | None]]:
    """The ways a line of the tube list reads as a tube's code and its dilution, the
    longest code first: the whole line; all but its last word, then that word; its first
    word, then its second. An old label may hold spaces; a barcode never does."""
    whole = line.strip()
    readings: list[tuple[str, str | None]] = [(whole, None)]
    split = _LAST_WORD.fullmatch(whole)
    if split is not None:
        readings.append((split[1], split[2]))
    parts = whole.replace(";", " ").replace(",", " ").split()
    readings.append((parts[0], parts[1] if len(parts) > 1 else None))
    return readings


def _dilution(text: str, number: int, line: str) -> float:
    try:
        dilution = float(text.split(":")[-1])
    except ValueError:
        raise Invalid(
            _l("Line %(n)d: %(value)s is not a dilution.", n=number, value=text),
            fields={"aliquots": line},
        ) from None
    if dilution < 1:
        raise Invalid(
            _l("Line %(n)d: a dilution is 1 or more.", n=number), fields={"aliquots": line}
        )
    return dilution


def _tubes(code: str, number: int, actor) -> list[str]:
    try:
        return [samples.valid_code(code)]
    except Invalid:
        pass
    try:
        box = storage.box_map(code, actor=actor)
    except NotFound:
        raise Invalid(
            _l("Line %(n)d: %(code)s is neither a tube nor a box.", n=number, code=code),
            fields={"aliquots": code},
        ) from None
    return [well.barcode for well in box.wells if well.barcode]


def design_plate(
    template_name: str, entries: list[tuple[str, float]], volume_per_well_ul: int, *, actor
) -> Design:
    """Lay the tubes out on a plate from a layout template and record what each one gives
    (wells × volume per well ÷ dilution, rounded up) as a CONSUMED custody event."""
    templates = platemap.load_layout_templates()
    if template_name not in templates:
        raise Invalid(
            _l("No layout %(name)s.", name=template_name), fields={"template": template_name}
        )
    if not 1 <= volume_per_well_ul <= 1000:
        raise Invalid(_l("From 1 to 1000 µL per well."), fields={"volume_per_well_ul": ""})
    codes = [code for code, _ in entries]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        raise Invalid(
            _l("Scanned twice: %(codes)s.", codes=", ".join(twice)), fields={"aliquots": ""}
        )
    template = templates[template_name]
    try:
        plate = platemap.lay_out(template, entries)
    except platemap.PlateMapError as err:
        raise Invalid(str(err), fields={"aliquots": str(err)}) from err
    details, taken = {}, {}
    for code, dilution in entries:
        need = math.ceil(template.sample_replicates * volume_per_well_ul / dilution)
        aliquot = storage.take_volume(
            code, int(need), str(_l("Plate layout %(name)s", name=template.name)), actor=actor
        )
        taken[code] = int(need)
        visit = aliquot.specimen.visit
        details[code] = {
            "Participant": visit.participant.code,
            "Visit": visit.visit_code,
            "Sample type": aliquot.sample_type,
            "Taken (µL)": str(int(need)),
        }
    workbook = platemap.write_plate_map(plate, title=template.name, details=details)
    return Design(plate, workbook, taken)


# --- where a plate's samples come from ---------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """Whose sample an aliquot is, as the run page names it: "LIM-003 · M2", serum."""

    participant: str
    visit: str
    sample_type: str


def sample_origins(barcodes, *, actor) -> dict[str, Origin]:
    """Barcode → the participant, visit and sample type of the aliquots these barcodes name,
    in one query. Only the aliquots in the actor's reach answer: a barcode of no aliquot,
    or of another centre's, is simply not in the result."""
    codes = sorted({code for code in barcodes if code})
    if not codes:
        return {}
    query = (
        sa.select(Aliquot.barcode, Participant.code, Visit.visit_code, Aliquot.sample_type)
        .join(Specimen, Specimen.id == Aliquot.specimen_id)
        .join(Visit, Visit.id == Specimen.visit_id)
        .join(Participant, Participant.id == Visit.participant_id)
        .where(Aliquot.barcode.in_(codes))
    )
    rows = db.session.execute(samples.aliquots_in_reach(query, actor))
    return {barcode: Origin(*origin) for barcode, *origin in rows}
