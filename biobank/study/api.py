"""/api/v1/participants, /api/v1/sites, /api/v1/protocol."""

from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.sites import services as sites
from biobank.study import schemas, services

blp = Blueprint("study_api", __name__, description="Sites, participants, visits, protocol.")


@blp.route("/participants")
@requires(Permission.VIEW_SAMPLES)
@blp.arguments(schemas.ParticipantArgs, location="query")
@blp.response(200, schemas.ParticipantPageSchema)
def list_participants(args):
    """Participants the caller may see (a centre's users see their centre's only)."""
    return services.list_participants(
        actor=current_user,
        site_code=args.get("site"),
        arm_code=args.get("arm"),
        limit=args["limit"],
        offset=args["offset"],
    )


@blp.route("/participants", methods=["POST"])
@requires(Permission.REGISTER)
@blp.arguments(schemas.NewParticipantSchema)
@blp.response(201, schemas.ParticipantSchema)
def create_participant(data):
    """Enrol a participant under a pseudonymised study code."""
    return services.register_participant(
        data["code"],
        data["site"],
        data["arm"],
        data["disease_status"],
        data["included_on"],
        data["consent_given_on"],
        actor=current_user,
    )


@blp.route("/participants/<code>")
@requires(Permission.VIEW_SAMPLES)
@blp.response(200, schemas.ParticipantDetailSchema)
def get_participant(code):
    """One participant with the visits registered so far."""
    return services.get_participant(code, actor=current_user)


@blp.route("/participants/<code>/leaving", methods=["POST"])
@requires(Permission.APPROVE)
@blp.arguments(schemas.LeavingSchema)
@blp.response(200, schemas.ParticipantSchema)
def record_leaving(data, code):
    """Record, or correct, the day the participant left the study and why. Not a consent
    withdrawal: the banked samples stay usable; visits after that day are refused."""
    return services.record_leaving(
        code, data["left_on"], data["reason"], data["note"], actor=current_user
    )


@blp.route("/participants/<code>/visits")
@requires(Permission.VIEW_SAMPLES)
@blp.response(200, schemas.VisitSchema(many=True))
def participant_visits(code):
    return services.get_participant(code, actor=current_user).visits


@blp.route("/sites")
@requires(Permission.SIGNED_IN)
@blp.response(200, schemas.SiteSchema(many=True))
def list_sites():
    return sites.list_sites()


@blp.route("/protocol")
@requires(Permission.SIGNED_IN)
@blp.response(200, schemas.ProtocolSchema)
def current_protocol():
    """The protocol version in force: arms, schedule, sample plan."""
    return services.current_protocol()
