"""/api/v1/study/outcome."""

from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint

from biobank.assays.views import criteria
from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.db import utcnow
from biobank.monitoring import outcome, outcome_schemas

blp = Blueprint("outcome_api", __name__, description="The trial's primary outcome, per arm.")


@blp.route("/study/outcome")
@requires(Permission.VIEW_SAMPLES)
@blp.response(200, outcome_schemas.OutcomeSummarySchema)
def summary():
    """Per arm: participants included, those with paired baseline and M2 values (serum
    VEGF; M-spike), the median and quartiles of the percent change at M2 (linear
    interpolation) and the response categories at M2; per participant the readiness of
    each outcome visit and analyte. A user bound to a centre gets that centre's only."""
    return outcome.summary(criteria(), actor=current_user, now=utcnow())
