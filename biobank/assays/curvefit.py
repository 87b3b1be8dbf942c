"""Standard-curve fitting (4PL / 5PL), calibrator QC and sample interpolation.

Pure numerics: numpy and scipy only, nothing from the application (flask_babel marks the
one message a fit can carry; it translates outside a request too), so every function
here can be tested on its own and called from a request, a CLI or a notebook alike.

Models (``x`` a concentration, ``y`` a response such as an optical density)::

    4PL          y = d + (a - d) / (1 + (x / c) ** b)
    5PL, b > 0   y = d + (a - d) / (1 + (x / c) ** b) ** g
    5PL, b < 0   y = a + (d - a) / (1 + (x / c) ** b) ** g

``a`` is always the response at zero concentration and ``d`` the response at infinite
concentration, ``c`` the inflection point (in concentration units; for the 4PL it is the
concentration giving the mid response) and ``|b|`` the slope. The direction of the
curve is carried by ``a - d``: a sandwich ELISA rises (``a < d``), a competitive assay
falls (``a > d``).

For the 4PL the sign of ``b`` changes nothing (a negative ``b`` only mirrors the same
curve), so a 4PL is reported with ``b > 0``. For the 5PL it does: the asymmetry ``g``
shapes the high-concentration end when ``b > 0`` (the response nears ``d`` as
``(x / c) ** (-b g)``, ``a`` as ``x ** b``) and the low-concentration end when ``b < 0``.
These are the two forms of drc's LL.5, ``c + (d - c) / (1 + exp(b (log x - log e))) ** f``,
with its ``b`` of either sign (drc's ``e`` is our ``c``, its ``f`` our ``g``; its ``c`` and
``d`` are our ``d`` and ``a`` when b > 0, our ``a`` and ``d`` when b < 0). A 5PL fit tries
both and keeps the one with the lower (weighted) residual sum of squares, and keeps the
asymmetry only when the standards identify it (see ``fit_curve``): otherwise the curve is
the 4PL, reported as a 5PL with ``g = 1`` and a ``note`` saying so.

Acceptance follows ICH M10 (ligand-binding assays): at least 6 non-zero calibrators,
each back-calculated within ±20 % of its nominal value (±25 % at the lowest and highest),
at least 75 % of them passing; samples outside the calibrated range are reported as
outside it, never extrapolated.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from flask_babel import lazy_gettext as _l
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import fdtrc

__all__ = [
    "CurveFitError",
    "Fit",
    "RunQC",
    "SampleResult",
    "StandardCheck",
    "check_standards",
    "fit_curve",
    "interpolate_samples",
    "run_qc",
]

MODELS = ("4PL", "5PL")
# The form a fit kept (Fit.form): the 4PL, or the 5PL with g shaping the high (b > 0) or
# the low (b < 0) concentration end.
FORMS = ("4PL", "5PL-high", "5PL-low")
WEIGHTINGS = ("none", "1/y2")

RECOVERY_LIMIT_PCT = 20.0
RECOVERY_LIMIT_ENDS_PCT = 25.0
MIN_CALIBRATORS = 6
MIN_PASSING_FRACTION = (3, 4)  # 75 %, kept as a fraction so the comparison is exact

# Absorbs floating-point noise in a recovery, so that exactly ±20 % passes; 0.01
# percentage points beyond the limit are nine orders of magnitude away.
_RECOVERY_EPS_PCT = 1e-9
# The same for the range checks on interpolated concentrations (relative).
_RANGE_EPS = 1e-9
# With 1/y² weighting a response near zero (a blank-subtracted zero standard) would get
# an unbounded weight: sigma is floored at this fraction of the largest |response|.
_SIGMA_FLOOR = 0.01

_B_BOUNDS = (1e-3, 10.0)
_G_BOUNDS = (1e-2, 20.0)
_C_MARGIN = 1e3  # c may lie this factor beyond the lowest / highest non-zero concentration
# The 5PL keeps its asymmetry only when it fits the standards better than the 4PL at this
# level (extra-sum-of-squares F test, one extra parameter).
ASYMMETRY_P_VALUE = 0.05
# A 4PL whose weighted residual sum of squares is below this fraction of the weighted total
# sum of squares fits to rounding error: there is no asymmetry left to find.
_EXACT_FIT = 1e-16
# g this close (relative) to a bound of _G_BOUNDS counts as at the bound.
_AT_BOUND = 1e-6

NOTE_NO_ASYMMETRY = _l(
    "The standards do not determine the 5PL's asymmetry (the 5PL fits them no better than "
    "the 4PL, or its g reaches a bound): the 4PL was kept (g = 1)."
)


class CurveFitError(ValueError):
    """The data cannot be fitted (too few concentrations, bad values, no convergence)."""


def _curve(x, a, b, c, d, g=1.0):
    """The 5PL (the 4PL when g == 1) at x >= 0, any shape, either sign of b.

    Written from whichever asymptote is nearer, so that no precision is lost to
    cancellation at either end: exactly y = a at x = 0, and inverse(predict(x)) == x
    to about 1e-11 over six orders of magnitude of (x / c) ** b.
    """
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        u = np.power(x / c, b)
        if b > 0:  # u = 0 at x = 0: y = a there, d as u grows
            near_a = a + (d - a) * -np.expm1(-g * np.log1p(u))  # 1 - (1 + u)^-g, small u
            near_d = d + (a - d) * np.power(1.0 + u, -g)
            return np.where(u <= 1.0, near_a, near_d)
        # b < 0: u is infinite at x = 0 (y = a) and falls to 0 as x grows (y = d).
        near_a = a + (d - a) * np.power(1.0 + u, -g)
        near_d = d + (a - d) * -np.expm1(-g * np.log1p(u))
        return np.where(u >= 1.0, near_a, near_d)


@dataclass(frozen=True)
class Fit:
    """A fitted standard curve."""

    model: str  # the model asked for
    params: dict[str, float] = field(hash=False)
    weighting: str
    r2: float
    # Why a 5PL was reduced to the 4PL (g = 1), for the reader; empty otherwise.
    note: str = field(default="", hash=False)

    def _p(self) -> tuple[float, float, float, float, float]:
        p = self.params
        return p["a"], p["b"], p["c"], p["d"], p.get("g", 1.0)

    def predict(self, x):
        """The response at concentration(s) ``x``: a float for a scalar, else an array."""
        a, b, c, d, g = self._p()
        y = _curve(x, a, b, c, d, g)
        return float(y) if np.ndim(y) == 0 else y

    def inverse(self, y: float) -> float | None:
        """The concentration giving response ``y``; None when ``y`` is not strictly between
        the two asymptotes (the curve never reaches it) or is not a finite number."""
        a, b, c, d, g = self._p()
        y = float(y)
        if not math.isfinite(y) or not min(a, d) < y < max(a, d):
            return None
        # b > 0: (x / c) ** b = ((a - d) / (y - d)) ** (1 / g) - 1, written with
        # q = (a - y) / (y - d) so that nothing cancels when y is close to a; b < 0: the
        # same with a and d swapped, nothing cancelling when y is close to d.
        q = (a - y) / (y - d) if b > 0 else (d - y) / (y - a)
        try:
            ratio = q if g == 1.0 else math.expm1(math.log1p(q) / g)
            x = c * ratio ** (1.0 / b) if ratio > 0.0 else math.nan
        except (OverflowError, ValueError):
            return None
        return float(x) if math.isfinite(x) and x > 0.0 else None

    @property
    def form(self) -> str:
        """The form kept (one of FORMS): "4PL" (also a 5PL with g = 1, its asymmetry not
        identified), "5PL-high" (b > 0, g shapes the high-concentration end) or "5PL-low"
        (b < 0, g shapes the low-concentration end)."""
        if self.model == "4PL" or self.params.get("g", 1.0) == 1.0:
            return "4PL"
        return "5PL-high" if self.params["b"] > 0 else "5PL-low"

    @property
    def increasing(self) -> bool:
        """True when the response rises with concentration (sandwich ELISA)."""
        return self.params["d"] > self.params["a"]


def _as_vector(values, what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise CurveFitError(f"{what} must be numbers") from exc
    if array.ndim != 1:
        raise CurveFitError(f"{what} must be a flat list of numbers")
    if not np.all(np.isfinite(array)):
        raise CurveFitError(f"{what} contain a missing or non-finite value (NaN or infinity)")
    return array


def _starts(x: np.ndarray, y: np.ndarray) -> list[list[float]]:
    """Starting values (a, b, c, d): a and d from the mean responses at the lowest and
    highest concentrations, b = 1 (the curve then rises when d > a, as for an ELISA, and
    falls otherwise), c from the geometric middle of the non-zero concentrations and from
    where the mean responses cross half-way between a and d."""
    levels = np.unique(x)
    means = np.array([y[x == level].mean() for level in levels])
    a0, d0 = float(means[0]), float(means[-1])
    if a0 == d0:
        a0, d0 = float(y.min()), float(y.max())
    nonzero = levels[levels > 0]
    c_geo = float(np.exp(np.log(nonzero).mean()))
    c_values = [c_geo]
    half = (a0 + d0) / 2.0
    for i in range(len(levels) - 1):
        lo, hi = levels[i], levels[i + 1]
        if lo > 0 and (means[i] - half) * (means[i + 1] - half) <= 0 and means[i] != means[i + 1]:
            t = (half - means[i]) / (means[i + 1] - means[i])
            c_values.append(float(np.exp(np.log(lo) + t * (np.log(hi) - np.log(lo)))))
            break
    return [[a0, 1.0, c, d0] for c in c_values]


def _bounds(x: np.ndarray, model: str) -> tuple[list[float], list[float]]:
    nonzero = x[x > 0]
    log_c = (math.log(nonzero.min() / _C_MARGIN), math.log(nonzero.max() * _C_MARGIN))
    lower = [-np.inf, _B_BOUNDS[0], log_c[0], -np.inf]
    upper = [np.inf, _B_BOUNDS[1], log_c[1], np.inf]
    if model == "5PL":
        lower.append(_G_BOUNDS[0])
        upper.append(_G_BOUNDS[1])
    return lower, upper


def _model_log_c(x, a, b, log_c, d, g=1.0):
    # c is fitted on a log scale: concentrations span decades and this keeps the problem
    # well conditioned; the reported parameter is c itself.
    return _curve(x, a, b, math.exp(log_c), d, g)


def _model_log_c_low(x, a, b, log_c, d, g):
    # The 5PL with b < 0, fitted with a positive b so that one set of bounds serves both.
    return _curve(x, a, -b, math.exp(log_c), d, g)


def _least_squares(x, y, sigma, p0, lower, upper, model=_model_log_c):
    clipped = [min(max(v, lo), hi) for v, lo, hi in zip(p0, lower, upper, strict=True)]
    with warnings.catch_warnings():
        # The covariance is not used; an exactly fitting curve makes it undefined.
        warnings.simplefilter("ignore", OptimizeWarning)
        popt, _ = curve_fit(
            model,
            x,
            y,
            p0=clipped,
            sigma=sigma,
            bounds=(lower, upper),
            method="trf",
            x_scale="jac",
            max_nfev=20000,
            ftol=1e-12,
            xtol=1e-12,
            gtol=1e-12,
        )
    residuals = (y - model(x, *popt)) / (1.0 if sigma is None else sigma)
    cost = float(np.sum(residuals**2))
    return popt, cost


def _best_of(x, y, sigma, starts, bounds, errors, model=_model_log_c):
    """The lowest-cost converged fit over several starting points, or None."""
    best = None
    for p0 in starts:
        try:
            popt, cost = _least_squares(x, y, sigma, p0, *bounds, model)
        except (RuntimeError, ValueError, FloatingPointError) as exc:
            errors.append(str(exc))
            continue
        if np.all(np.isfinite(popt)) and math.isfinite(cost) and (best is None or cost < best[1]):
            best = (popt, cost)
    return best


def fit_curve(
    concentrations: Sequence[float],
    responses: Sequence[float],
    *,
    model: str = "4PL",
    weighting: str = "1/y2",
) -> Fit:
    """Fit a 4PL or 5PL curve by (weighted) least squares.

    Replicates are passed as repeated concentrations; zero concentrations are allowed
    (the curve is defined there: y = a). ``weighting="1/y2"`` weights each point by
    1/y² (sigma = |y|, floored at 1 % of the largest |y| so a response near zero does not
    take over the fit). ``r2`` is computed on the unweighted residuals.

    A 5PL is fitted in both forms (g shaping the high-concentration end, b > 0, or the
    low one, b < 0) and the one with the lower weighted residual sum of squares is kept.
    When the standards do not determine the asymmetry (see ``_asymmetry_identified``)
    the 4PL is kept instead, reported as the 5PL with g = 1 and ``note`` saying so:
    ``Fit.form`` tells which form was kept.

    Raises CurveFitError for fewer than 4 (4PL) or 5 (5PL) distinct concentrations,
    negative or non-finite values, constant responses or when the fit does not converge.
    """
    if model not in MODELS:
        raise CurveFitError(f"unknown model {model!r}: expected one of {', '.join(MODELS)}")
    if weighting not in WEIGHTINGS:
        raise CurveFitError(
            f"unknown weighting {weighting!r}: expected one of {', '.join(WEIGHTINGS)}"
        )
    x = _as_vector(concentrations, "concentrations")
    y = _as_vector(responses, "responses")
    if x.shape != y.shape:
        raise CurveFitError(
            f"{len(x)} concentrations but {len(y)} responses: give one concentration per response"
        )
    if np.any(x < 0):
        raise CurveFitError("concentrations cannot be negative")
    n_params = 4 if model == "4PL" else 5
    distinct = len(np.unique(x))
    if distinct < n_params:
        raise CurveFitError(
            f"a {model} fit needs at least {n_params} distinct concentrations, got {distinct}"
        )
    if not np.any(x > 0):
        raise CurveFitError("no non-zero concentration to fit")
    if np.ptp(y) == 0.0:
        raise CurveFitError("the responses do not vary with concentration: nothing to fit")

    sigma = None
    if weighting == "1/y2":
        sigma = np.maximum(np.abs(y), _SIGMA_FLOOR * float(np.max(np.abs(y))))

    lower, upper = _bounds(x, model)
    errors: list[str] = []
    starts = [[a, b, math.log(c), d] for a, b, c, d in _starts(x, y)]
    best4 = _best_of(x, y, sigma, starts, (lower[:4], upper[:4]), errors)
    best, sign, note = best4, 1.0, ""
    if model == "5PL":
        # Each form from the 4PL optimum with g = 1, where both forms are that 4PL: from
        # there the raw starts reach the same optimum (on simulated plates of either form,
        # with and without noise), at three times the cost. They serve when that fails.
        raw = [[*p0, 1.0] for p0 in starts]
        first = [[*best4[0], 1.0]] if best4 is not None else raw
        high = _best_of(x, y, sigma, first, (lower, upper), errors)
        if high is None and first is not raw:
            high = _best_of(x, y, sigma, raw, (lower, upper), errors)
        low = _best_of(x, y, sigma, first, (lower, upper), errors, _model_log_c_low)
        if low is None and first is not raw:
            low = _best_of(x, y, sigma, raw, (lower, upper), errors, _model_log_c_low)
        best, sign = high, 1.0
        if low is not None and (high is None or low[1] < high[1]):
            best, sign = low, -1.0
        if (
            best is not None
            and best4 is not None
            and not _asymmetry_identified(x, y, sigma, best4[1], best[1], float(best[0][4]))
        ):
            best, sign, note = (np.append(best4[0], 1.0), best4[1]), 1.0, NOTE_NO_ASYMMETRY
    if best is None:
        detail = f" ({errors[-1]})" if errors else ""
        raise CurveFitError(f"the {model} fit did not converge{detail}")

    popt = best[0]
    names = ["a", "b", "c", "d", "g"][:n_params]
    values = [float(v) for v in popt]
    values[1] *= sign
    values[2] = math.exp(values[2])
    params = dict(zip(names, values, strict=True))

    fitted = _curve(x, params["a"], params["b"], params["c"], params["d"], params.get("g", 1.0))
    if not np.all(np.isfinite(fitted)):
        raise CurveFitError(f"the {model} fit did not converge (non-finite fitted values)")
    ss_res = float(np.sum((y - fitted) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot
    return Fit(model=model, params=params, weighting=weighting, r2=r2, note=note)


def _asymmetry_identified(x, y, sigma, cost4: float, cost5: float, g: float) -> bool:
    """Whether the standards determine the 5PL's asymmetry g: g is not at a bound of
    _G_BOUNDS, some residual degree of freedom is left, the 4PL does not already fit to
    rounding error, and the 5PL's (weighted) residual sum of squares is lower than the
    4PL's beyond chance: extra-sum-of-squares F test, 1 and n - 5 degrees of freedom, at
    ASYMMETRY_P_VALUE. When it fails, g's confidence interval is wide enough to hold 1:
    the asymmetry the fit found is the noise's, not the assay's."""
    if any(abs(g / bound - 1.0) <= _AT_BOUND for bound in _G_BOUNDS):
        return False
    dof = len(y) - 5
    if dof < 1:
        return False
    scale = 1.0 if sigma is None else sigma
    total = float(np.sum(((y - y.mean()) / scale) ** 2))
    if cost4 <= _EXACT_FIT * total or cost5 >= cost4:
        return False
    if cost5 <= 0.0:
        return True
    f_ratio = (cost4 - cost5) / (cost5 / dof)
    return float(fdtrc(1, dof, f_ratio)) < ASYMMETRY_P_VALUE


@dataclass(frozen=True)
class StandardCheck:
    """One calibrator back-calculated against the curve."""

    name: str
    expected: float
    responses: tuple[float, ...]
    back_calculated: float | None
    recovery_pct: float | None
    limit_pct: float
    passed: bool


def check_standards(
    fit: Fit, standards: Sequence[tuple[str, float, Sequence[float]]]
) -> list[StandardCheck]:
    """Back-calculate each standard (name, nominal concentration, responses) from its
    mean response. Recovery = back-calculated / nominal × 100 must lie within ±20 %,
    ±25 % at the lowest and highest non-zero standards. A zero standard is the curve's
    anchor and is not back-calculated (back_calculated None, limit 0, passed True). A
    mean response the curve never reaches fails."""
    rows = []
    for name, expected, responses in standards:
        expected = float(expected)
        values = tuple(float(r) for r in responses)
        if not math.isfinite(expected) or expected < 0:
            raise CurveFitError(f"standard {name!r}: nominal concentration {expected!r} invalid")
        if not values or not all(math.isfinite(v) for v in values):
            raise CurveFitError(f"standard {name!r}: needs at least one finite response")
        rows.append((str(name), expected, values))

    nonzero = [expected for _, expected, _ in rows if expected > 0]
    lowest, highest = (min(nonzero), max(nonzero)) if nonzero else (None, None)

    checks = []
    for name, expected, values in rows:
        if expected == 0:
            checks.append(StandardCheck(name, expected, values, None, None, 0.0, True))
            continue
        at_end = expected in (lowest, highest)
        limit = RECOVERY_LIMIT_ENDS_PCT if at_end else RECOVERY_LIMIT_PCT
        back = fit.inverse(float(np.mean(values)))
        if back is None:
            checks.append(StandardCheck(name, expected, values, None, None, limit, False))
            continue
        recovery = back / expected * 100.0
        passed = abs(recovery - 100.0) <= limit + _RECOVERY_EPS_PCT
        checks.append(StandardCheck(name, expected, values, back, recovery, limit, passed))
    return checks


@dataclass(frozen=True)
class RunQC:
    """ICH M10 acceptance of a calibration curve."""

    calibrators: int  # non-zero standards
    passed: int  # non-zero standards within their recovery limit
    r2: float
    enough_calibrators: bool  # at least 6 non-zero standards
    enough_passing: bool  # at least 75 % of the non-zero standards pass
    lloq: float | None  # lowest non-zero standard that passed (None if none did)
    uloq: float | None  # highest non-zero standard that passed (None if none did)

    @property
    def acceptable(self) -> bool:
        return (
            self.enough_calibrators
            and self.enough_passing
            and self.lloq is not None
            and self.uloq is not None
        )


def run_qc(fit: Fit, checks: Sequence[StandardCheck]) -> RunQC:
    """Count the calibrators and derive the quantification range from those that pass."""
    calibrators = [check for check in checks if check.expected > 0]
    passing = [check for check in calibrators if check.passed]
    need_num, need_den = MIN_PASSING_FRACTION
    return RunQC(
        calibrators=len(calibrators),
        passed=len(passing),
        r2=fit.r2,
        enough_calibrators=len(calibrators) >= MIN_CALIBRATORS,
        enough_passing=bool(calibrators) and len(passing) * need_den >= len(calibrators) * need_num,
        lloq=min((check.expected for check in passing), default=None),
        uloq=max((check.expected for check in passing), default=None),
    )


@dataclass(frozen=True)
class SampleResult:
    """One sample interpolated on the curve."""

    name: str
    wells: tuple[str, ...]
    responses: tuple[float, ...]
    dilution: float
    mean_response: float | None
    cv_pct: float | None
    cv_flag: bool
    concentration: float | None  # interpolated × dilution; None when flagged
    flag: str | None  # None, "<LLOQ" or ">ULOQ"
    limit: float | None  # the limit reported with the flag, × dilution
    note: str


BELOW = "<LLOQ"
ABOVE = ">ULOQ"
NOTE_BELOW = "below the calibrated range"
NOTE_ABOVE = "re-run at a higher dilution"
NOTE_NO_RESPONSE = "no response to interpolate"
NOTE_NO_RANGE = "not quantifiable: no calibrator passed, so there is no calibrated range"


def interpolate_samples(
    fit: Fit,
    samples: Sequence[tuple[str, Sequence[str], Sequence[float], float]],
    *,
    lloq: float | None,
    uloq: float | None,
    cv_limit_pct: float = 20.0,
) -> list[SampleResult]:
    """Interpolate each sample (name, wells, responses, dilution) from its mean response.

    Below ``lloq`` (before dilution), or at or beyond the zero-concentration asymptote:
    "<LLOQ" with limit lloq × dilution. Above ``uloq``, or at or beyond the other
    asymptote: ">ULOQ" with limit uloq × dilution and a note to re-run at a higher
    dilution. Flagged samples get no concentration: nothing is extrapolated. The
    replicate CV (sample sd, ddof=1, over the mean) is flagged above ``cv_limit_pct``;
    the concentration is still reported with a CV flag.

    ``lloq`` / ``uloq`` None (no calibrator passed, see RunQC): there is no calibrated
    range, so no sample gets a concentration; each is noted as not quantifiable.
    """
    no_range = lloq is None or uloq is None
    if not no_range:
        lloq, uloq = float(lloq), float(uloq)
        if not (math.isfinite(lloq) and math.isfinite(uloq) and 0 < lloq <= uloq):
            raise ValueError(f"need 0 < lloq <= uloq, got lloq={lloq!r}, uloq={uloq!r}")
    a, d = fit.params["a"], fit.params["d"]
    results = []
    for name, wells, responses, dilution in samples:
        dilution = float(dilution)
        if not math.isfinite(dilution) or dilution <= 0:
            raise ValueError(f"sample {name!r}: dilution must be a positive number")
        values = tuple(float(r) for r in responses)
        finite = [v for v in values if math.isfinite(v)]
        base = {"name": str(name), "wells": tuple(wells), "responses": values, "dilution": dilution}
        if not finite:
            results.append(
                SampleResult(
                    **base,
                    mean_response=None,
                    cv_pct=None,
                    cv_flag=False,
                    concentration=None,
                    flag=None,
                    limit=None,
                    note=NOTE_NO_RESPONSE,
                )
            )
            continue
        mean = float(np.mean(finite))
        cv = None
        if len(finite) >= 2 and mean != 0:
            cv = float(np.std(finite, ddof=1) / abs(mean) * 100.0)
        cv_flag = cv is not None and cv > cv_limit_pct

        x = fit.inverse(mean)
        if no_range:
            flag = None
        elif x is None:
            # Beyond an asymptote: on the high side when past d (the response at infinity).
            high = (mean - d) * (d - a) >= 0
            flag = ABOVE if high else BELOW
        elif x < lloq * (1 - _RANGE_EPS):
            flag = BELOW
        elif x > uloq * (1 + _RANGE_EPS):
            flag = ABOVE
        else:
            flag = None

        notes = []
        if no_range:
            notes.append(NOTE_NO_RANGE)
        elif flag == BELOW:
            notes.append(NOTE_BELOW)
        elif flag == ABOVE:
            notes.append(NOTE_ABOVE)
        if cv_flag:
            notes.append(f"replicate CV {cv:.1f} % above {cv_limit_pct:g} %")
        results.append(
            SampleResult(
                **base,
                mean_response=mean,
                cv_pct=cv,
                cv_flag=cv_flag,
                concentration=None if flag or no_range or x is None else x * dilution,
                flag=flag,
                limit=(lloq if flag == BELOW else uloq) * dilution if flag else None,
                note="; ".join(notes),
            )
        )
    return results
