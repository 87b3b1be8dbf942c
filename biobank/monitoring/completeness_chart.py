"""The bar chart of collection completeness: tubes collected and missing, per visit, one
panel per centre, as an SVG.

Drawn the way biobank/assays/plot.py draws (importing it first settles matplotlib's
config directory): the object-oriented API, no pyplot, and the few rc settings that make
the SVG reproducible (fixed element ids, text kept as text) applied under the same lock
as the assay pictures, since rc settings are global to the process. Missing bars are
hatched as well as red, so that the chart reads without colour.
"""

from __future__ import annotations

import io

from flask import has_request_context
from flask_babel import format_date
from flask_babel import gettext as _
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from biobank.assays import plot
from biobank.i18n import measure
from biobank.monitoring.completeness import COLLECTED, MISSING, STATUS_WORDS, Completeness

WIDTH_INCHES = 7.5
PANEL_INCHES = 2.3
MAX_CENTRES = 24  # beyond, the picture would be too tall to read: filter by centre
# (status, fill, hatch): the hatch is drawn in the edge's colour, white on the red bars.
BARS = (
    (COLLECTED, "#1d7a3a", ""),
    (MISSING, "#b3261e", "///"),
)


def completeness_chart(result: Completeness) -> bytes:
    """Collected and missing tubes per visit, one panel per centre, as SVG bytes."""
    every_centre = sorted(result.by_centre_visit)
    centres = every_centre[:MAX_CENTRES]
    visits = [code for code, _name in result.visits]
    with plot.drawing("biobank-completeness"):
        figure = Figure(
            figsize=(WIDTH_INCHES, 1.0 + PANEL_INCHES * max(len(centres), 1)),
            layout="constrained",
        )
        FigureCanvasSVG(figure)
        if centres and visits:
            axes = figure.subplots(len(centres), 1, sharex=True, squeeze=False)[:, 0]
            for ax, centre in zip(axes, centres, strict=True):
                _panel(ax, centre, visits, result.by_centre_visit[centre])
            handles, labels = axes[0].get_legend_handles_labels()
            figure.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
        else:
            ax = figure.add_subplot()
            ax.set_axis_off()
            ax.text(0.5, 0.5, _("No tube matches these filters."), ha="center", va="center")
        title = _("Tubes collected and missing, as of %(date)s", date=_day(result))
        if len(every_centre) > len(centres):
            title += "\n" + _(
                "The first %(shown)d centres of %(total)d: choose a centre to see the others.",
                shown=len(centres),
                total=len(every_centre),
            )
        figure.suptitle(title)
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _panel(ax, centre: str, visits: list[str], counts: dict[str, dict[str, int]]) -> None:
    width = 0.38
    for index, (status, colour, hatch) in enumerate(BARS):
        heights = [counts.get(visit, {}).get(status, 0) for visit in visits]
        bars = ax.bar(
            [position + (index - 0.5) * width for position in range(len(visits))],
            heights,
            width,
            label=_status_word(status),
            color=colour,
            hatch=hatch,
            edgecolor="#ffffff" if hatch else colour,
            linewidth=0.5,
        )
        ax.bar_label(bars, labels=[measure(h) if h else "" for h in heights], fontsize="x-small")
    ax.set_title(centre, loc="left", fontsize="medium", fontweight="bold")
    ax.set_xticks(range(len(visits)), visits)
    ax.set_ylabel(_("tubes"))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.2)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _status_word(status: str) -> str:
    return str(STATUS_WORDS[status])


def _day(result: Completeness) -> str:
    return format_date(result.as_of, "medium") if has_request_context() else str(result.as_of)
