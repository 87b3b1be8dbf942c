"""The waterfall plot of the primary outcome: one bar per participant, the percent change
of serum VEGF from baseline at M2, sorted from the largest rise to the deepest fall.

Pure matplotlib through its object-oriented API, drawn as the assay pictures are
(biobank/assays/plot.py): under the same lock and rc settings, because matplotlib's rc
settings are global to the process and a curve drawn at the same moment in another
thread must not change this picture's element ids or fonts. The same bars give the same
bytes: SVG ids come from a fixed salt, the SVG carries no date, text stays text in a font
shipped with matplotlib (DejaVu Sans), and the PNG's metadata holds no time.

Arms are told apart by colour (the Okabe–Ito palette, safe for colour-blind readers)
and by hatching, so that a grey print or a reader who does not see the colours still
can; the legend names each arm. Participants appear by their pseudonymised codes only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MultipleLocator

from biobank.assays import plot
from biobank.i18n import percent

FORMATS = plot.FORMATS
DPI = 110
HEIGHT_INCHES = 4.6
# Wide enough for the legend with a few bars; grows with the bars so that each code
# stays readable under its bar, up to a width a page can still scroll through.
MIN_WIDTH_INCHES, INCHES_PER_BAR, MAX_WIDTH_INCHES = 8.0, 0.22, 30.0
# Beyond this many bars their values would overlap: the axis alone tells them.
MAX_LABELLED_BARS = 40

# Okabe & Ito, "Color universal design" (2008): told apart by the common colour-vision
# deficiencies. Hatches repeat the difference without colour.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--")
THRESHOLD_COLOUR = "#444444"


@dataclass(frozen=True)
class Bar:
    participant: str  # the pseudonymised code
    arm: str
    change: float  # percent change from baseline


@dataclass(frozen=True)
class ArmStyle:
    code: str
    label: str  # the legend's words for the arm ("G1 — Group 1 (n = 3)")
    colour: str
    hatch: str


@dataclass(frozen=True)
class Words:
    """The picture's words, in the reader's language (the caller translates them)."""

    axis: str  # the y axis
    decrease: str  # the partial response line
    increase: str  # the progression line
    empty: str  # what an empty picture says


def arm_styles(arms: Sequence[tuple[str, str]]) -> dict[str, ArmStyle]:
    """Colour and hatch of each (code, legend label), in the order given: the protocol's
    order of arms, so an arm keeps its colour from one picture to the next."""
    return {
        code: ArmStyle(code, label, PALETTE[i % len(PALETTE)], HATCHES[i % len(HATCHES)])
        for i, (code, label) in enumerate(arms)
    }


def ordered(bars: Sequence[Bar]) -> list[Bar]:
    """Largest rise first, deepest fall last; equal changes by participant code."""
    return sorted(bars, key=lambda b: (-b.change, b.participant))


def waterfall(
    bars: Sequence[Bar],
    styles: dict[str, ArmStyle],
    words: Words,
    *,
    decrease_pct: float,
    increase_pct: float,
    fmt: str = "svg",
) -> bytes:
    """The waterfall as SVG or PNG bytes. ``decrease_pct`` and ``increase_pct`` draw the
    response thresholds (partial response, progression) as dashed lines."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown picture format {fmt!r}: expected one of {', '.join(FORMATS)}")
    shown = ordered(bars)
    width = min(MAX_WIDTH_INCHES, max(MIN_WIDTH_INCHES, 3.5 + INCHES_PER_BAR * len(shown)))
    with plot.drawing("biobank-waterfall"):
        figure = Figure(figsize=(width, HEIGHT_INCHES), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        if shown:
            _draw(axes, shown, styles, words, decrease_pct, increase_pct)
        else:
            _nothing(axes, words)
        out = io.BytesIO()
        figure.savefig(out, format=fmt, dpi=DPI, metadata=_no_date(fmt))
    return out.getvalue()


def _no_date(fmt: str) -> dict | None:
    # The SVG writer stamps the day unless told not to; the PNG writer never does.
    return {"Date": None} if fmt == "svg" else None


def _draw(axes, bars, styles, words, decrease_pct, increase_pct) -> None:
    positions = range(len(bars))
    for position, bar in zip(positions, bars, strict=True):
        style = styles.get(bar.arm) or ArmStyle(bar.arm, bar.arm, "#7f7f7f", "")
        axes.bar(
            position,
            bar.change,
            width=0.8,
            color=style.colour,
            edgecolor="#1b1f24",
            linewidth=0.6,
            hatch=style.hatch,
        )
    if len(bars) <= MAX_LABELLED_BARS:
        _label_values(axes, bars)
    axes.axhline(0, color="#1b1f24", linewidth=0.8)
    axes.axhline(-decrease_pct, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1)
    axes.axhline(increase_pct, color=THRESHOLD_COLOUR, linestyle=":", linewidth=1)
    axes.set_xticks(list(positions), [b.participant for b in bars], rotation=90, fontsize=8)
    axes.set_xlim(-0.6, len(bars) - 0.4)
    changes = [b.change for b in bars]
    # A fall stops at -100 %; a rise has no bound. Both thresholds stay in view.
    low = max(-105.0, min(min(changes), -decrease_pct) - 10.0)
    high = max(max(changes), increase_pct) + 10.0
    axes.set_ylim(low, high)
    axes.yaxis.set_major_locator(MultipleLocator(_step(high - low)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: percent(value, 0)))
    axes.set_ylabel(words.axis)
    axes.grid(axis="y", alpha=0.3)
    present = [styles[code] for code in styles if any(b.arm == code for b in bars)]
    handles = [
        Patch(facecolor=s.colour, edgecolor="#1b1f24", hatch=s.hatch, label=s.label)
        for s in present
    ]
    handles += [
        Line2D([], [], color=THRESHOLD_COLOUR, linestyle="--", label=words.decrease),
        Line2D([], [], color=THRESHOLD_COLOUR, linestyle=":", label=words.increase),
    ]
    # Beside the axes, never over a bar or a threshold line.
    axes.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
        frameon=False,
    )  # fmt: skip


def _label_values(axes, bars) -> None:
    """Each bar's change written at its end: a change of 0 has no bar to see."""
    for position, bar in enumerate(bars):
        above = bar.change >= 0
        axes.annotate(
            percent(bar.change, 1), (position, bar.change), textcoords="offset points",
            xytext=(0, 3 if above else -3), ha="center", va="bottom" if above else "top",
            fontsize=7,
        )  # fmt: skip


def _step(span: float) -> float:
    """Tick spacing: about six ticks, on round percentages."""
    for step in (10.0, 20.0, 25.0, 50.0, 100.0, 200.0, 500.0, 1000.0):
        if span / step <= 8:
            return step
    return 2000.0


def _nothing(axes, words: Words) -> None:
    axes.set_axis_off()
    axes.text(0.5, 0.5, words.empty, ha="center", va="center", wrap=True, transform=axes.transAxes)
