"""A plate from reader blocks to results, as pure steps: choose the reads, correct the
wavelength, subtract the blank, fit the standards, check them, interpolate the samples.
Each step is a function of the previous one's output; the preview is plain data (the
JSON the command line prints and the run keeps)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from biobank.assays import curvefit, platereader, readerdate
from biobank.assays.platemap import PlateMap
from biobank.assays.platereader import EMPTY, OVERFLOW, UNREADABLE, Block, Reading, corrected

# A sample's status in the preview and the run: a concentration, a limit the value lies
# beyond, or no result, each with its reason. Every sample of the plate map has one,
# whatever its wells read: a sample is never left out.
QUANTIFIED = "quantified"
ABOVE = curvefit.ABOVE  # ">ULOQ"
BELOW = curvefit.BELOW  # "<LLOQ"
NO_RESULT = "no result"
STATUSES = (QUANTIFIED, ABOVE, BELOW, NO_RESULT)

SATURATED = "reader saturated — dilute and re-assay"
# A saturated well where a competitive assay is read: a high signal is a low concentration.
SATURATED_LOW = "reader saturated: a signal over the reader's range is below the calibrated range"


class PipelineError(ValueError):
    """The plate cannot be evaluated at all (no read chosen, no standards to fit).
    ``choices`` lists the file's reads when the error is that one must be chosen."""

    def __init__(self, message: str, choices: list[dict] | None = None):
        super().__init__(message)
        self.choices = choices or []


# Reads that correct the 450 nm read for the plate's imperfections (drc users and kit
# inserts say 540, 570 or 620–630 nm; some readers offer 650 or 690).
REFERENCE_WAVELENGTHS = (540, 570, 620, 630, 650, 690)


@dataclass(frozen=True)
class Options:
    read: int | None = None  # wavelength (e.g. 450) or block number (1, 2, …) of the read
    reference: int | None = None  # of the correction read (540, 570), if any
    model: str = "4PL"
    weighting: str = "1/y2"
    cv_limit_pct: float = 20.0
    # A long list whose columns are named (one row per well); without it a long list
    # is found and read by itself (platereader.read_plate_file).
    long_list: bool = False
    well_column: str = "Well"
    sample_column: str = "Sample"
    value_column: str = "Value"

    def as_dict(self) -> dict:
        return asdict(self)


def read_choices(blocks: Sequence[Block]) -> list[dict]:
    """The reads a file offers, numbered as --read takes them: a grid block's label or a
    list's column, with its wavelength."""
    return [
        {"number": n, "label": b.label or b.anchor, "wavelength": b.wavelength_nm}
        for n, b in enumerate(blocks, 1)
    ]


def _listed(blocks: Sequence[Block]) -> str:
    return ", ".join(
        f"{c['number']}: {c['label']}"
        + (
            f" ({c['wavelength']} nm)"
            if c["wavelength"] and str(c["wavelength"]) not in c["label"]
            else ""
        )
        for c in read_choices(blocks)
    )


def _find(blocks: Sequence[Block], wanted: int, what: str) -> Block:
    by_wavelength = [b for b in blocks if b.wavelength_nm == wanted]
    if len(by_wavelength) == 1:
        return by_wavelength[0]
    if 1 <= wanted <= len(blocks) and not by_wavelength:
        return blocks[wanted - 1]
    several = (
        f"{len(by_wavelength)} reads at {wanted} nm"
        if by_wavelength
        else f"no {what} read {wanted}"
    )
    raise PipelineError(
        f"{several} in the file: give the number of the {what} read "
        f"(reads found: {_listed(blocks)})",
        read_choices(blocks),
    )


def choose_reads(blocks: Sequence[Block], options: Options) -> tuple[Block, Block | None]:
    """The read and its correction read: as asked (by wavelength or number), or the only
    read, or the one 450 nm read with the one correction read (540–690 nm) the file has."""
    if not blocks:
        raise PipelineError("the file has no 8 × 12 block")
    if options.read is not None:
        primary = _find(blocks, options.read, "primary")
    elif len(blocks) == 1:
        primary = blocks[0]
    else:
        at_450 = [b for b in blocks if b.wavelength_nm == 450]
        if len(at_450) != 1:
            raise PipelineError(
                f"the file has {len(blocks)} reads: say which one is the read "
                f"(reads found: {_listed(blocks)})",
                read_choices(blocks),
            )
        primary = at_450[0]
    reference = None
    if options.reference is not None:
        reference = _find(blocks, options.reference, "reference")
        if reference is primary:
            raise PipelineError(
                f"the correction read is the read itself ({primary.label or primary.anchor})",
                read_choices(blocks),
            )
    elif options.read is None:
        references = [
            b for b in blocks if b is not primary and b.wavelength_nm in REFERENCE_WAVELENGTHS
        ]
        if len(references) == 1:
            reference = references[0]
    return primary, reference


@dataclass
class PlateResult:
    preview: dict
    fit: curvefit.Fit | None
    checks: list[curvefit.StandardCheck]
    samples: list[curvefit.SampleResult]
    responses: dict[str, float | None]
    problems: list[str] = field(default_factory=list)
    # Each mapped well as the file gives it ("0.532", "OVER", ""): kept with the run.
    raw: dict[str, str] = field(default_factory=dict)
    # The day the file says the plate was read (readerdate.Found), None when it does not.
    read_on: readerdate.Found | None = None


def _state(reading: Reading | None) -> str | None:
    """None for a number, else EMPTY, OVERFLOW or UNREADABLE; a well the file lacks
    (a long list that does not list it) is empty."""
    return EMPTY if reading is None else reading.flag


def _what(well: str, reading: Reading | None) -> str:
    """A well without a number, in words: "A4 over the reader's range (OVER)"."""
    state = _state(reading)
    if state == OVERFLOW:
        return f"{well} over the reader's range ({reading.raw})"
    if state == UNREADABLE:
        return f"{well} without a reading ({reading.raw})"
    return f"{well} empty in the file"


def _responses(
    plate: PlateMap, readings: dict[str, Reading], problems: list[str]
) -> dict[str, float | None]:
    """The corrected response of every mapped well, blank subtracted; problems noted.

    A standard's or a blank's well without a number is left out of the fit or of the
    blank, and said so; a sample's wells are judged with the sample (see ``_judged``)."""
    values: dict[str, float | None] = {}
    for well, content in plate.wells.items():
        reading = readings.get(well)
        values[well] = reading.value if _state(reading) is None else None
        if values[well] is not None:
            continue
        kind = plate.kind(content)
        if kind == "standard":
            problems.append(f"standard {content}, well {_what(well, reading)}: left out of the fit")
        elif kind == "blank":
            problems.append(f"blank, well {_what(well, reading)}: left out of the blank")
        elif kind == "control":
            problems.append(f"control {content}, well {_what(well, reading)}")
    blank_wells = plate.groups().get("BLANK", [])
    blanks = [values[w] for w in blank_wells if values.get(w) is not None]
    if blanks:
        blank = statistics.fmean(blanks)
        values = {w: (v - blank if v is not None else None) for w, v in values.items()}
    elif blank_wells:
        problems.append("no blank well has a reading: the responses are not blank-subtracted")
    return values


def _judged(
    sample: curvefit.SampleResult,
    readings: dict[str, Reading],
    fit: curvefit.Fit,
    qc: curvefit.RunQC,
) -> tuple[curvefit.SampleResult, str, str]:
    """The sample, its status and the reason, from what each of its wells read.

    ``sample`` was interpolated from its wells that gave a number only, so it is never
    the last word when a well gave none: a saturated well makes the sample "> ULOQ"
    (nothing quantifiable, dilute and re-assay), unless a replicate reads within the
    range, when the replicates disagree and there is no result; a well empty or without
    a reading leaves no result either, even when another replicate read: one well of a
    duplicate is not a result."""
    wells = sample.wells
    saturated = [w for w in wells if _state(readings.get(w)) == OVERFLOW]
    missing = [w for w in wells if _state(readings.get(w)) in (EMPTY, UNREADABLE)]
    numeric = [w for w in wells if _state(readings.get(w)) is None]
    nothing = {"concentration": None, "flag": None, "limit": None, "cv_pct": None, "cv_flag": False}
    if saturated:
        # Over the reader's range is beyond the highest standard: the high end of the
        # curve, "> ULOQ" for a sandwich ELISA, "< LLOQ" for a competitive one.
        high = ABOVE if fit.params["d"] >= fit.params["a"] else BELOW
        reason = SATURATED if high == ABOVE else SATURATED_LOW
        limit = qc.uloq if high == ABOVE else qc.lloq
        if numeric and sample.flag != high:
            reads = ", ".join(numeric)
            reason = (
                f"replicates disagree: {', '.join(saturated)} saturated, {reads} within the "
                "reader's range — dilute and re-assay"
            )
            return replace(sample, **nothing, note=reason), NO_RESULT, reason
        if limit is None:
            reason = f"{reason}; {curvefit.NOTE_NO_RANGE}"
            return replace(sample, **nothing, note=reason), NO_RESULT, reason
        judged = replace(
            sample,
            concentration=None,
            flag=high,
            limit=limit * sample.dilution,
            cv_pct=None,
            cv_flag=False,
            note=reason,
        )
        return judged, high, reason
    if missing:
        reason = "no reading: " + ", ".join(_what(w, readings.get(w)) for w in missing)
        if numeric:
            reason += f" ({len(numeric)} of {len(wells)} replicates read) — re-assay"
        return replace(sample, **nothing, note=reason), NO_RESULT, reason
    if sample.flag in (ABOVE, BELOW):
        return sample, sample.flag, sample.note
    if sample.concentration is None:
        return sample, NO_RESULT, sample.note or curvefit.NOTE_NO_RESPONSE
    return sample, QUANTIFIED, sample.note


def evaluate_file(data: bytes, filename: str, plate: PlateMap, options: Options) -> PlateResult:
    """The plate from the reader's file: its 8 × 12 blocks or its long list, found by
    themselves, or a long list whose columns the options name."""
    if not options.long_list:
        return _evaluate_found(data, filename, plate, options)
    try:
        listed = platereader.long_list(
            data,
            filename,
            well_column=options.well_column,
            sample_column=options.sample_column,
            value_column=options.value_column,
        )
    except platereader.ReaderFileError as named_error:
        # Columns named otherwise than said ("OD450", not "Value"): the list is read as
        # it is found, if it is found; else the error about the named columns stands.
        try:
            return _evaluate_found(data, filename, plate, options)
        except platereader.ReaderFileError:
            raise named_error from None
    reads = {"read": f"{options.value_column} ({filename})", "reference": None}
    problems = _named_otherwise(listed.names, plate)
    result = evaluate_readings(listed.readings, plate, options, reads, problems)
    result.read_on = listed.read_on
    return result


def _evaluate_found(data: bytes, filename: str, plate: PlateMap, options: Options) -> PlateResult:
    found = platereader.read_plate_file(data, filename)
    result = evaluate(found.blocks, plate, options)
    result.read_on = found.read_on
    return result


def _named_otherwise(names: dict[str, str], plate: PlateMap) -> list[str]:
    """A long list's sample names that are not what the plate map puts in their wells."""
    return [
        f"well {well}: the file names {name}, the plate map {plate.wells.get(well) or 'nothing'}"
        for well, name in sorted(names.items())
        if name and name.upper() != (plate.wells.get(well) or "").upper()
    ]


def evaluate(blocks: Sequence[Block], plate: PlateMap, options: Options) -> PlateResult:
    """Everything the preview shows, from the reader's blocks and the plate map."""
    primary, reference = choose_reads(blocks, options)
    reads = {
        "read": primary.label or primary.anchor,
        "reference": (reference.label or reference.anchor) if reference else None,
    }
    problems = _named_otherwise(primary.names, plate)
    return evaluate_readings(corrected(primary, reference), plate, options, reads, problems)


def evaluate_readings(
    readings: dict[str, Reading], plate: PlateMap, options: Options, reads: dict, problems
) -> PlateResult:
    """From corrected readings on: blank, fit, checks, samples, controls."""
    values = _responses(plate, readings, problems)
    groups = plate.groups()
    unit = plate.standards[0].unit if plate.standards else ""
    standards = []
    for standard in plate.standards:
        wells = groups.get(standard.name, [])
        measured = [values[w] for w in wells if values.get(w) is not None]
        if measured:
            standards.append((standard.name, standard.concentration, measured))
    concentrations = [c for _, c, rs in standards for _ in rs]
    responses = [r for _, _, rs in standards for r in rs]
    try:
        fit = curvefit.fit_curve(
            concentrations, responses, model=options.model, weighting=options.weighting
        )
    except curvefit.CurveFitError as err:
        raise PipelineError(f"the standards cannot be fitted: {err}") from err
    checks = curvefit.check_standards(fit, standards)
    qc = curvefit.run_qc(fit, checks)
    for check in checks:
        if not check.passed and check.recovery_pct is None:
            problems.append(f"standard {check.name}: cannot be back-calculated from the curve")
        elif not check.passed:
            problems.append(
                f"standard {check.name}: recovery {check.recovery_pct:.1f} % outside "
                f"±{check.limit_pct:g} %"
            )
    # Every sample of the plate map, whatever its wells read: one without a number in
    # any well is interpolated from nothing, then judged from its wells.
    sample_inputs = []
    for barcode in plate.samples():
        wells = groups[barcode]
        measured = [values[w] for w in wells if values.get(w) is not None]
        sample_inputs.append((barcode, wells, measured, plate.dilutions.get(barcode, 1.0)))
    interpolated = curvefit.interpolate_samples(
        fit, sample_inputs, lloq=qc.lloq, uloq=qc.uloq, cv_limit_pct=options.cv_limit_pct
    )
    samples, statuses = [], []
    for sample in interpolated:
        sample, status, reason = _judged(sample, readings, fit, qc)
        samples.append(sample)
        statuses.append((status, reason))
        if status in (ABOVE, BELOW):
            note = f" — {reason}" if reason else ""
            limit = f" ({f'{sample.limit:g} {unit}'.rstrip()})" if sample.limit is not None else ""
            over = [w for w in sample.wells if _state(readings.get(w)) == OVERFLOW]
            wells = f" (wells {', '.join(over)} over the reader's range)" if over else ""
            problems.append(f"{sample.name}: {status}{limit}{note}{wells}")
        elif status == NO_RESULT:
            problems.append(f"{sample.name}: no result — {reason}")
        if sample.cv_flag:
            problems.append(
                f"{sample.name}: replicate CV {sample.cv_pct:.1f} % above "
                f"{options.cv_limit_pct:g} %"
            )
    controls = _controls(plate, groups, values, fit, problems)
    if not qc.acceptable:
        problems.append(
            f"the curve fails its acceptance: {qc.passed} of {qc.calibrators} calibrators "
            f"pass (at least 6 calibrators and 75 % passing are required)"
        )
    preview = {
        "fit": {
            "model": fit.model,
            "form": fit.form,
            "note": str(fit.note),
            "params": fit.params,
            "r2": fit.r2,
            "weighting": fit.weighting,
        },
        "reads": reads,
        "qc": {
            "calibrators": qc.calibrators,
            "passed": qc.passed,
            "acceptable": qc.acceptable,
            "lloq": qc.lloq,
            "uloq": qc.uloq,
            "unit": unit,
        },
        "standards": [
            {
                "name": c.name,
                "expected": c.expected,
                "back_calculated": c.back_calculated,
                "recovery_pct": c.recovery_pct,
                "pass": c.passed,
            }
            for c in checks
        ],
        "controls": controls,
        "samples": [
            {
                "barcode": s.name,
                "wells": list(s.wells),
                "dilution": s.dilution,
                "concentration": s.concentration,
                "unit": unit,
                "cv_pct": s.cv_pct,
                "flag": s.flag,
                "limit": s.limit,
                "status": status,
                "reason": str(reason or ""),
            }
            for s, (status, reason) in zip(samples, statuses, strict=True)
        ],
        "problems": problems,
    }
    raw = {well: (r.raw if (r := readings.get(well)) else "") for well in plate.wells}
    return PlateResult(preview, fit, checks, samples, values, problems, raw)


def _controls(plate, groups, values, fit, problems) -> list[dict]:
    found = []
    for control in plate.controls:
        measured = [values[w] for w in groups.get(control.name, []) if values.get(w) is not None]
        if not measured:
            continue
        value = fit.inverse(statistics.fmean(measured))
        inside = (
            value is not None
            and (control.low is None or value >= control.low)
            and (control.high is None or value <= control.high)
        )
        if not inside:
            problems.append(
                f"control {control.name}: {value if value is None else round(value, 2)} outside "
                f"the kit range {control.low}–{control.high}"
            )
        found.append(
            {
                "name": control.name,
                "value": value,
                "low": control.low,
                "high": control.high,
                "pass": inside,
            }
        )
    return found
