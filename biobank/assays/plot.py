"""The picture of a standard curve: calibrators, fitted curve, samples, LLOQ / ULOQ.

Pure matplotlib through its object-oriented API (``Figure`` + an Agg or SVG canvas):
no pyplot, no backend switch, no global figure state. The few rc settings a picture
needs (deterministic SVG ids, text kept as text) are applied in an ``rc_context`` held
under a module lock, so concurrent requests in one process cannot interleave them.

The words and the numbers a picture writes follow the reader's language when it is drawn
in a request (gettext and the number filters of ``biobank.i18n``); elsewhere, English.

Matplotlib wants a writable config/cache directory for its font cache. When the default
one is not writable (a service account without a home) and ``MPLCONFIGDIR`` is unset,
a stable per-user directory under the system temp dir is used instead, so the font cache
is built once rather than on every start.
"""

from __future__ import annotations

import io
import math
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _writable(path: Path) -> bool:
    """True when ``path`` exists and is writable, or can be created."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _ensure_matplotlib_dirs() -> None:
    if "matplotlib" in sys.modules or os.environ.get("MPLCONFIGDIR"):
        return  # already imported (its dirs are settled) or explicitly configured
    try:
        home = Path.home()
    except (KeyError, RuntimeError):  # no HOME and no passwd entry
        home = Path(tempfile.gettempdir())
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "matplotlib"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "matplotlib"
    if _writable(config) and _writable(cache):
        return
    user = os.getuid() if hasattr(os, "getuid") else "user"
    fallback = Path(tempfile.gettempdir()) / f"biobank-matplotlib-{user}"
    try:
        fallback.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return  # let matplotlib fall back to its own temporary directory
    os.environ["MPLCONFIGDIR"] = str(fallback)


_ensure_matplotlib_dirs()

import matplotlib as mpl  # noqa: E402
import numpy as np  # noqa: E402
from flask_babel import gettext as _  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FixedFormatter,
    FixedLocator,
    FuncFormatter,
    NullLocator,
)

from biobank.assays.curvefit import (  # noqa: E402
    ABOVE,
    BELOW,
    Fit,
    SampleResult,
    StandardCheck,
)
from biobank.i18n import fixed, measure  # noqa: E402

__all__ = ["Point", "curve_picture", "drawing", "time_course_picture"]

DPI = 110
SIZE_INCHES = (7.0, 4.8)  # 770 × 528 px at 110 dpi
FORMATS = ("png", "svg")

_RC = {
    "svg.hashsalt": "biobank-standard-curve",  # stable element ids: reproducible SVG
    "svg.fonttype": "none",  # text stays text (searchable, accessible, smaller)
    "font.family": "DejaVu Sans",  # shipped with matplotlib: same glyphs everywhere
}
_LOCK = threading.Lock()


@contextmanager
def drawing(salt: str = _RC["svg.hashsalt"]):
    """Where every picture of the application is drawn: matplotlib's settings are global
    to the process, so one picture at a time, under the settings that make it
    reproducible. ``salt`` keeps one kind of picture's SVG ids apart from another's."""
    with _LOCK, mpl.rc_context({**_RC, "svg.hashsalt": salt}):
        yield


_COLOURS = {
    "curve": "#1f4e79",
    "passed": "#1f77b4",
    "failed": "#d62728",
    "zero": "#7f7f7f",
    "sample": "#2ca02c",
    "flagged": "#ff7f0e",
    "limit": "#555555",
}


def _zero_position(low: float) -> float:
    """Where zero standards are drawn on the log axis: two halvings left of the lowest."""
    return low / 4.0


def _range(fit: Fit, standards: Sequence[StandardCheck], samples: Sequence[SampleResult]):
    """The lowest and highest positive concentration the picture has to show."""
    xs = [s.expected for s in standards if s.expected > 0]
    for sample in samples:
        if sample.concentration is not None and sample.concentration > 0:
            xs.append(sample.concentration / sample.dilution)
        elif sample.limit is not None and sample.limit > 0:
            xs.append(sample.limit / sample.dilution)
    if not xs:
        c = fit.params["c"]
        xs = [c / 100.0, c * 100.0]
    low, high = min(xs), max(xs)
    if low == high:
        low, high = low / 10.0, high * 10.0
    return low, high


def curve_picture(
    fit: Fit,
    standards: Sequence[StandardCheck],
    samples: Sequence[SampleResult],
    *,
    unit: str,
    title: str = "",
    fmt: str = "png",
    lloq: float | None = None,
    uloq: float | None = None,
) -> bytes:
    """Draw the standard curve and return it as PNG (110 dpi, 770 × 528 px) or SVG bytes.

    Log concentration axis; zero standards drawn left of the lowest standard, past an
    axis break, and labelled 0. Standards are drawn replicate by replicate (failed ones
    as red crosses), samples at their mean response and undiluted interpolated
    concentration, flagged samples as arrows at the limit they were reported against.
    LLOQ / ULOQ default to the lowest / highest non-zero standard that passed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown picture format {fmt!r}: expected one of {', '.join(FORMATS)}")
    passed = [s.expected for s in standards if s.expected > 0 and s.passed]
    if lloq is None and passed:
        lloq = min(passed)
    if uloq is None and passed:
        uloq = max(passed)

    with drawing():
        figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        _draw(figure, fit, standards, samples, unit=unit, title=title, lloq=lloq, uloq=uloq)
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else None
        figure.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def _draw(figure, fit, standards, samples, *, unit, title, lloq, uloq) -> None:
    ax = figure.add_subplot()
    ax.set_xscale("log")
    low, high = _range(fit, standards, samples)
    has_zero = any(s.expected == 0 for s in standards)
    x_zero = _zero_position(low)
    left = x_zero / 1.6 if has_zero else low / 1.6
    right = high * 1.6
    ax.set_xlim(left, right)

    # The fitted curve, from the axis break (or the left edge) to the right edge.
    start = (x_zero * low) ** 0.5 if has_zero else left
    grid = np.geomspace(start, right, 300)
    ax.plot(grid, fit.predict(grid), color=_COLOURS["curve"], lw=1.6, label=_fit_name(fit))

    # Standards, replicate by replicate.
    groups: dict[str, tuple[list[float], list[float]]] = {
        "passed": ([], []),
        "failed": ([], []),
        "zero": ([], []),
    }
    for check in standards:
        key = "zero" if check.expected == 0 else ("passed" if check.passed else "failed")
        x = x_zero if check.expected == 0 else check.expected
        for response in check.responses:
            groups[key][0].append(x)
            groups[key][1].append(response)
    styles = {
        "passed": {"marker": "o", "label": _("standard")},
        "failed": {"marker": "X", "label": _("standard, failed"), "s": 60},
        "zero": {"marker": "s", "label": _("zero standard (drawn at 0)")},
    }
    for key, (xs, ys) in groups.items():
        if xs:
            style = {"s": 28, **styles[key]}
            ax.scatter(xs, ys, color=_COLOURS[key], zorder=3, **style)

    _ticks(ax, low if has_zero else left, right, x_zero if has_zero else None)
    if has_zero:
        _axis_break(ax, x_zero, low)

    # Samples: placed on the curve; flagged ones at the limit, pointing out of the range.
    placed = ([], [])
    below = ([], [])
    above = ([], [])
    for sample in samples:
        if sample.mean_response is None:
            continue
        if sample.flag is None and sample.concentration is not None:
            placed[0].append(sample.concentration / sample.dilution)
            placed[1].append(sample.mean_response)
        elif sample.flag == BELOW and sample.limit is not None:
            below[0].append(sample.limit / sample.dilution)
            below[1].append(sample.mean_response)
        elif sample.flag == ABOVE and sample.limit is not None:
            above[0].append(sample.limit / sample.dilution)
            above[1].append(sample.mean_response)
    if placed[0]:
        ax.scatter(*placed, marker="D", s=30, color=_COLOURS["sample"], zorder=4, label=_("sample"))
    if below[0]:
        ax.scatter(
            *below, marker="<", s=45, color=_COLOURS["flagged"], zorder=4, label=_("sample < LLOQ")
        )
    if above[0]:
        ax.scatter(
            *above, marker=">", s=45, color=_COLOURS["flagged"], zorder=4, label=_("sample > ULOQ")
        )

    for value, name, style in ((lloq, _("LLOQ"), "--"), (uloq, _("ULOQ"), ":")):
        if value is not None and value > 0:
            ax.axvline(
                value,
                color=_COLOURS["limit"],
                ls=style,
                lw=1,
                label=f"{name} {measure(value, 6)} {unit}".rstrip(),
            )

    ax.set_xlabel(_("Concentration (%(unit)s)", unit=unit) if unit else _("Concentration"))
    ax.set_ylabel(_("Response"))
    ax.yaxis.set_major_formatter(_localised())
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.25)
    ax.legend(loc="best", fontsize="small", frameon=False)
    ax.text(
        0.99,
        0.02,
        _summary(fit),
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize="x-small",
        color="#333333",
    )


def _localised() -> FuncFormatter:
    """Tick numbers in the reader's language ("0,5", not "0.5"), never an offset or a power
    of ten written apart from them. One per axis: a formatter belongs to its axis."""
    return FuncFormatter(lambda value, _position: measure(value, 6))


def _fit_name(fit: Fit) -> str:
    """The curve's legend: the form the fit kept, not the one asked for (a 5PL whose
    asymmetry the standards do not determine is drawn, and named, as the 4PL it is)."""
    if fit.form == "5PL-high":
        return _("5PL fit, asymmetric at the high end")
    if fit.form == "5PL-low":
        return _("5PL fit, asymmetric at the low end")
    return _("4PL fit")


def _summary(fit: Fit) -> str:
    """The fit in two lines: its form, weighting and R², then its parameters."""
    weighting = _("none") if fit.weighting == "none" else fit.weighting
    first = _(
        "%(form)s, weighting %(weighting)s, R² = %(r2)s",
        form=fit.form,
        weighting=weighting,
        r2=fixed(fit.r2, 4),
    )
    names = ("a", "b", "c", "d", "g")
    parameters = "  ".join(f"{k}={measure(fit.params[k])}" for k in names if k in fit.params)
    return f"{first}\n{parameters}"


def _ticks(ax, low: float, high: float, x_zero: float | None) -> None:
    """Plain-number ticks (1-2-5 per decade over short ranges, decades over long ones),
    none left of the axis break, and a "0" tick at the zero position."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    steps = (1, 2, 5) if last - first <= 4 else (1,)
    ticks = [
        m * 10.0**k
        for k in range(first, last + 1)
        for m in steps
        if low / 1.0001 <= m * 10.0**k <= high
    ]
    labels = [measure(t, 6) for t in ticks]
    if x_zero is not None:
        ticks.insert(0, x_zero)
        labels.insert(0, "0")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter(labels))
    ax.xaxis.set_minor_locator(NullLocator())


def _axis_break(ax, x_zero: float, low: float) -> None:
    """Mark the break between the zero position and the lowest standard."""
    x_break = (x_zero * low) ** 0.5
    ax.axvline(x_break, color="#bbbbbb", lw=0.8, ls=(0, (2, 2)))
    ax.text(
        x_break,
        0,
        "//",
        transform=ax.get_xaxis_transform(),
        ha="center",
        va="center",
        fontsize="small",
        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
        clip_on=False,
    )


@dataclass(frozen=True)
class Point:
    day: int
    value: float
    label: str  # the visit code, written over the point
    flagged: bool  # outside the calibrated range: drawn open, at its limit


def time_course_picture(
    points: Sequence[Point], *, title: str, ylabel: str, xlabel: str, fmt: str = "png"
) -> bytes:
    """A participant's values of one analyte by study day, as a PNG (or an SVG).

    The axis labels come from the caller, in the reader's language ("study day").
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown picture format {fmt!r}: expected one of {', '.join(FORMATS)}")
    with drawing():
        figure = Figure(figsize=(6.4, 3.2), dpi=110)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.plot([p.day for p in points], [p.value for p in points], color="#0b5cad", lw=1.5)
        for point in points:
            axes.plot(
                [point.day], [point.value], marker="o", markersize=7, color="#0b5cad",
                markerfacecolor="white" if point.flagged else "#0b5cad",
            )  # fmt: skip
            axes.annotate(
                point.label, (point.day, point.value), textcoords="offset points",
                xytext=(0, 8), ha="center", fontsize=8,
            )  # fmt: skip
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.xaxis.set_major_formatter(_localised())
        axes.yaxis.set_major_formatter(_localised())
        axes.set_title(title, fontsize=10)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return out.getvalue()
