"""Pictures of results: a run's fitted curve, a participant's time course."""

from __future__ import annotations

import json

from biobank.assays import pipeline, platemap, plot
from biobank.assays.models import AssayRun


def run_curve(run: AssayRun, fmt: str, *, leave_out: frozenset[str] = frozenset()) -> bytes:
    """The fitted curve with its standards and samples, recomputed from the run's file,
    plate map and options (the steps are pure: the same input gives the same fit). The
    samples ``leave_out`` names (other centres' aliquots, for a user bound to a centre)
    are not drawn."""
    options = pipeline.Options(**json.loads(run.options or "{}"))
    plate = platemap.read_plate_map(run.plate_map)
    result = pipeline.evaluate_file(run.content, run.file_name, plate, options)
    unit = json.loads(run.preview)["qc"]["unit"]
    title = f"{run.code} · {run.analyte.code if run.analyte else ''} · {run.file_name}"
    drawn = [sample for sample in result.samples if sample.name not in leave_out]
    return plot.curve_picture(result.fit, result.checks, drawn, unit=unit, title=title, fmt=fmt)


def time_course(participant: str, analyte: str, rows, *, day_label: str) -> bytes:
    """Values by study day; a flagged value is drawn at its limit, open. ``day_label``
    is the x axis's name in the reader's language."""
    points = [
        plot.Point(
            r.study_day, r.value if r.value is not None else r.limit, r.visit, r.flag is not None
        )
        for r in rows
        if r.value is not None or r.limit is not None
    ]
    return plot.time_course_picture(
        points,
        title=f"{participant} · {analyte}",
        ylabel=with_unit(analyte, rows[0].unit if rows else ""),
        xlabel=day_label,
    )


def with_unit(name: str, unit: str | None) -> str:
    """The name with its unit, as "VEGF (pg/mL)"; a ratio has no unit, so no empty "()"."""
    return f"{name} ({unit})" if unit else name
