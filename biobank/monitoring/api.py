"""/api/v1/study/completeness."""

from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.monitoring import schemas
from biobank.monitoring.completeness import completeness

blp = Blueprint(
    "monitoring_api", __name__, description="Study monitoring: collection completeness."
)


@blp.route("/study/completeness")
@requires(Permission.VIEW_SAMPLES)
@blp.arguments(schemas.CompletenessArgs, location="query")
@blp.response(200, schemas.CompletenessSchema)
def collection_completeness(args):
    """Every expected primary tube of the participants in reach: collected, not collected
    (with its reason), not expected, upcoming, due or missing on ``as_of``.

    A user bound to a centre sees that centre only: another centre's code answers as an
    unknown one does, with no item. An unknown arm or status is a 400 naming the field."""
    return completeness(
        actor=current_user,
        site_code=args.get("site"),
        arm_code=args.get("arm"),
        as_of=args.get("as_of"),
        status=args.get("status"),
        due_by=args.get("due_by"),
    )
