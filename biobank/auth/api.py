"""/api/v1/me and /api/v1/health."""

from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from biobank.auth.access import public, requires
from biobank.auth.roles import Permission

blp = Blueprint("auth_api", __name__, description="Who is calling; is the service up.")


class MeSchema(Schema):
    username = fields.String()
    role = fields.String()
    site = fields.String(attribute="site_code")


class HealthSchema(Schema):
    status = fields.String()


@blp.route("/health")
@public
@blp.response(200, HealthSchema)
def health():
    """Liveness probe for the reverse proxy: answers without touching the database."""
    return {"status": "ok"}


@blp.route("/me")
@requires(Permission.SIGNED_IN)
@blp.response(200, MeSchema)
def me():
    """The account behind the token or session."""
    return current_user
