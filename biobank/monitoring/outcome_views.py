"""Pages: the trial summary and each participant's primary outcome readiness.

Everything here is participant-level (codes, values, per-participant bars), so every
route asks for ``Permission.VIEW_SAMPLES``: researchers, who see aggregate counts only
through the small-cell rule of biobank/distribution/disclosure.py, do not see it.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext as _
from flask_login import current_user

from biobank.assays import response
from biobank.assays.views import criteria
from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.db import utcnow
from biobank.i18n import percent
from biobank.monitoring import outcome, waterfall
from biobank.web import add_panel, file_response

bp = Blueprint("outcome", __name__, template_folder="templates")

MIMETYPES = {"svg": "image/svg+xml", "png": "image/png"}


@bp.route("/study/outcome")
@requires(Permission.VIEW_SAMPLES)
def summary():
    found = outcome.summary(criteria(), actor=current_user, now=utcnow())
    return render_template("monitoring/outcome.html", summary=found)


@bp.route("/study/outcome/waterfall.svg")
@requires(Permission.VIEW_SAMPLES)
def waterfall_svg():
    return _waterfall("svg")


@bp.route("/study/outcome/waterfall.png")
@requires(Permission.VIEW_SAMPLES)
def waterfall_png():
    return _waterfall("png")


def _waterfall(fmt: str):
    rules = criteria()
    found = outcome.summary(rules, actor=current_user, now=utcnow())
    picture = waterfall_picture(found, rules, fmt)
    return file_response(picture, MIMETYPES[fmt], f"outcome-waterfall.{fmt}", inline=True)


def waterfall_picture(found: outcome.Summary, rules: response.Criteria, fmt: str) -> bytes:
    """The serum VEGF change at M2 of every participant who has one, one bar each, in
    the reader's language."""
    bars = [
        waterfall.Bar(p.code, p.arm, p.vegf_change)
        for p in found.participants
        if p.vegf_change is not None
    ]
    styles = waterfall.arm_styles(
        [(arm.code, _arm_label(arm, bars)) for arm in found.arms if arm.included]
    )
    decrease, increase = rules.vegf_partial_decrease_pct, rules.vegf_progression_increase_pct
    words = waterfall.Words(
        axis=_("Serum VEGF, change from baseline at %(visit)s", visit=found.visit),
        decrease=_("partial response threshold (%(value)s)", value=percent(-decrease, 0)),
        increase=_("progression threshold (%(value)s)", value=percent(increase, 0)),
        empty=_(
            "No participant has serum VEGF values at baseline and at %(visit)s yet.",
            visit=found.visit,
        ),
    )
    return waterfall.waterfall(
        bars, styles, words, decrease_pct=decrease, increase_pct=increase, fmt=fmt
    )


def _arm_label(arm: outcome.ArmSummary, bars: list[waterfall.Bar]) -> str:
    drawn = sum(1 for bar in bars if bar.arm == arm.code)
    return f"{arm.code} — {arm.name} (n = {drawn})"


# --- the participant page's section ------------------------------------------------------


def _participant_panel(participant) -> str:
    if not current_user.may(Permission.VIEW_SAMPLES):
        return ""
    found = outcome.participant_outcome(
        participant.code, criteria(), actor=current_user, now=utcnow()
    )
    if not found.readiness:
        return ""
    return render_template(
        "monitoring/_readiness_participant.html",
        outcome=found,
        analytes=outcome.OUTCOME_ANALYTES,
        primary_visit=outcome.PRIMARY_VISIT,
    )


def register_panels() -> None:
    add_panel("participant", _participant_panel)
