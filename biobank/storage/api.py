"""/api/v1/containers, /api/v1/boxes, /api/v1/aliquots/<barcode>/position."""

from __future__ import annotations

from flask import request
from flask_login import current_user
from flask_smorest import Blueprint

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.samples import services as samples
from biobank.samples.schemas import AliquotSchema
from biobank.storage import allocating, rack_import, schemas, services

blp = Blueprint("storage_api", __name__, description="Freezers, racks, boxes and positions.")


@blp.route("/containers")
@requires(Permission.VIEW_SAMPLES)
@blp.arguments(schemas.ContainerArgs, location="query")
@blp.response(200, schemas.ContainerPageSchema)
def list_containers(args):
    """Containers (with ``kind=box``: their grid and free positions)."""
    return services.list_containers(
        kind=args["kind"], actor=current_user, limit=args["limit"], offset=args["offset"]
    )


@blp.route("/containers", methods=["POST"])
@requires(Permission.CONFIGURE)
@blp.arguments(schemas.NewContainerSchema)
@blp.response(201, schemas.ContainerSchema)
def create_container(data):
    """Add a room, freezer, tank, shelf, rack or box."""
    return services.create_container(
        data["kind"],
        data["name"],
        parent=data["parent"],
        type_name=data["type"],
        barcode=data["barcode"],
        site=data["site"],
        temperature_class=data["temperature_class"],
        set_point_c=data["set_point_c"],
        actor=current_user,
    )


@blp.route("/boxes/<barcode>")
@requires(Permission.VIEW_SAMPLES)
@blp.response(200, schemas.BoxMapSchema)
def box(barcode):
    """A box and what each of its positions holds."""
    return services.box_map(barcode, actor=current_user)


@blp.route("/aliquots/<barcode>/position", methods=["PUT"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.PositionRequestSchema)
@blp.response(200, schemas.StoredSchema)
def put_position(data, barcode):
    """Store the aliquot, or move it, to a box position (409 when the position is taken).
    Without a position: where it stands if it is already in that box, else the next free
    one. An aliquot already exactly there answers ``unchanged: true`` and records nothing."""
    return services.store(barcode, data["box"], data["position"], move=True, actor=current_user)


@blp.route("/aliquots/<barcode>/position", methods=["DELETE"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.CheckOutSchema)
@blp.response(200, AliquotSchema)
def delete_position(data, barcode):
    """Check the aliquot out of storage, saying why (its position is kept for its return)."""
    services.check_out(barcode, data["reason"], destination=data["destination"], actor=current_user)
    return samples.scan_aliquot(barcode, actor=current_user)


@blp.route("/aliquots/<barcode>/return", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.ReturnSchema)
@blp.response(200, schemas.StoredSchema)
def return_aliquot(data, barcode):
    """Put a checked-out aliquot back, with the volume left and whether it was thawed."""
    return services.return_aliquot(
        barcode,
        data["volume_ul"],
        thawed=data["thawed"],
        box=data["box"],
        position=data["position"],
        actor=current_user,
    )


@blp.route("/containers/<barcode>/move", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.MoveContainerSchema)
@blp.response(200, schemas.ContainerMoveSchema)
def move_container(data, barcode):
    """Move a box, rack or shelf with everything in it (a MOVED event per aliquot); one
    already there is left as it is (``unchanged``, no event)."""
    return services.move_container(barcode, data["parent"], actor=current_user)


@blp.route("/containers/<barcode>", methods=["DELETE"])
@requires(Permission.CONFIGURE)
@blp.response(204)
def delete_container(barcode):
    """Remove an empty container (refused while it holds tubes or containers)."""
    services.delete_container(barcode, actor=current_user)


@blp.route("/containers/<barcode>/contents")
@requires(Permission.VIEW_SAMPLES)
@blp.response(200, schemas.ContentSchema(many=True))
def container_contents(barcode):
    """Everything stored in a container, e.g. a freezer that failed."""
    return services.contents(barcode, actor=current_user)


@blp.route("/containers/<barcode>/excursions", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.ExcursionSchema)
@blp.response(201, schemas.ExcursionResultSchema)
def record_excursion(data, barcode):
    """A temperature excursion: a custody event for every aliquot inside at that time."""
    count = services.record_excursion(
        barcode,
        started_at=data["started_at"],
        ended_at=data["ended_at"],
        highest_c=data["highest_c"],
        note=data["note"],
        actor=current_user,
    )
    return {"container": barcode.strip().upper(), "aliquots": count}


@blp.route("/containers/<barcode>/evacuation-plan")
@requires(Permission.HANDLE)
@blp.response(200, schemas.AllocationPlanSchema)
def evacuation_plan(barcode):
    """Free positions elsewhere for everything in a failing freezer."""
    return allocating.evacuation(barcode, actor=current_user)


@blp.route("/allocations", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.AllocationRequestSchema)
@blp.response(200, schemas.AllocationPlanSchema)
def propose_allocation(data):
    """Proposed positions for a visit's aliquots (nothing is stored yet)."""
    return allocating.propose_for_visit(data["participant"], data["visit"], actor=current_user)


@blp.route("/allocations/apply", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.AllocationApplySchema)
@blp.response(200, schemas.AllocationResultSchema)
def apply_allocation(data):
    """Store a confirmed (or edited) proposal, all or nothing."""
    placements = [(p["barcode"], p["box"], p["position"]) for p in data["placements"]]
    return {"stored": allocating.store_all(placements, actor=current_user)}


@blp.route("/rack-scans", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.RackScanArgs, location="query")
@blp.response(200, schemas.RackScanSchema)
def rack_scan(args):
    """Compare a rack-scanner CSV (the request body, or a multipart field ``file``) with the
    database; with ``apply=true``, record the moved tubes in one transaction. A tube read
    by the code of its old label (an imported inventory) is listed by its barcode, and in
    ``old_labels`` with that code: print its new label."""
    upload = request.files.get("file")
    data = upload.read() if upload is not None else request.get_data()
    if args["apply"]:
        preview = rack_import.apply_rack(data, box=args["box"], actor=current_user)
    else:
        preview = rack_import.preview_rack(data, box=args["box"], actor=current_user)
    return {**preview.as_dict(), "old_labels": preview.old_labels_as_list()}
