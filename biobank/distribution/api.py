"""JSON API: catalogue, requests, reservations, pick lists, shipments, manifests."""

from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.distribution import contacts, disclosure, paperwork, schemas, services, shipping
from biobank.distribution.paperwork import XLSX
from biobank.distribution.views import paper_response
from biobank.samples import services as samples
from biobank.samples.schemas import AliquotSchema

blp = Blueprint("distribution_api", __name__, description="Requests and shipments")

# A number beyond the database's integer is a request that does not exist, not an error.
REQUEST_ID = f"int(max={schemas.MAX_ID}):request_id"


def _file(description: str, *mimetypes: str) -> dict:
    return {200: {"description": description, "content": {m: {} for m in mimetypes}}}


# --- catalogue ---------------------------------------------------------------------------


@blp.route("/catalogue")
@requires(Permission.CATALOGUE)
@blp.arguments(schemas.CatalogueArgs, location="query")
@blp.response(200, schemas.CatalogueRowSchema(many=True))
def catalogue(criteria):
    """Available aliquots, participants and volume by arm × visit × sample type.

    List arguments are comma-separated or repeated (``visits=BL,M2`` or
    ``visits=BL&visits=M2``). Exact counts for those who may see participant-level data;
    to anyone else, every combination the protocol plans is listed, those of fewer
    participants than ``CATALOGUE_SMALL_CELL`` (none included) as "< 5" with null
    counts, the others as ranges (``participants`` is the range's lowest value,
    ``participants_shown`` the range, "5–9"), and the volume is null."""
    return disclosure.catalogue(criteria, actor=current_user)


@blp.route("/catalogue/match", methods=["POST"])
@requires(Permission.CATALOGUE)
@blp.arguments(schemas.CriteriaSchema)
@blp.response(200, schemas.MatchSchema)
def catalogue_match(criteria):
    """How many participants and aliquots a request with these criteria would get, shown
    as in the catalogue: fewer participants than the threshold, zero included, are null
    counts with ``suppressed`` and ``shown_as: "< N"``; other counts are ranges."""
    return disclosure.match_count(criteria, actor=current_user)


# --- requests ----------------------------------------------------------------------------


@blp.route("/requests")
@requires(Permission.SIGNED_IN)
@blp.arguments(schemas.RequestArgs, location="query")
@blp.response(200, schemas.RequestPageSchema)
def list_requests(args):
    """Requests, newest first: a researcher's own; every request for reviewers and the
    technicians who prepare them."""
    return services.list_requests(
        actor=current_user, status=args["status"], limit=args["limit"], offset=args["offset"]
    )


@blp.route("/requests", methods=["POST"])
@requires(Permission.CATALOGUE)
@blp.arguments(schemas.NewRequestSchema)
@blp.response(201, schemas.RequestDetailSchema)
def submit_request(data):
    """Submit a request for aliquots; the managers are told."""
    return services.submit_request(
        title=data["title"],
        aim=data["aim"],
        receiving_lab=data["receiving_lab"],
        contact_name=data["contact_name"],
        contact_email=data["contact_email"],
        criteria=data["criteria"],
        actor=current_user,
    )


@blp.route(f"/requests/<{REQUEST_ID}>")
@requires(Permission.SIGNED_IN)
@blp.response(200, schemas.RequestDetailSchema)
def get_request(request_id):
    """A request with its history and how many aliquots it holds (another researcher's
    request is not found)."""
    return services.get_request(request_id, actor=current_user)


@blp.route(f"/requests/<{REQUEST_ID}>/review", methods=["POST"])
@requires(Permission.APPROVE)
@blp.response(200, schemas.RequestDetailSchema)
def start_review(request_id):
    """Mark a submitted request as under review."""
    return services.start_review(request_id, actor=current_user)


@blp.route(f"/requests/<{REQUEST_ID}>/proposal")
@requires(Permission.APPROVE)
@blp.arguments(schemas.ProposalArgs, location="query")
@blp.response(200, schemas.ReservationProposalSchema)
def proposal(args, request_id):
    """The aliquots an approval would reserve (nothing is reserved yet): fewer thaws first,
    never the last of a participant × visit × sample type unless ``allow_last``."""
    return services.propose(
        request_id,
        per_participant_visit=args["per_participant_visit"],
        max_participants=args["max_participants"],
        allow_last=args["allow_last"],
        actor=current_user,
    )


@blp.route(f"/requests/<{REQUEST_ID}>/approve", methods=["POST"])
@requires(Permission.APPROVE)
@blp.arguments(schemas.ApproveSchema)
@blp.response(200, schemas.ApprovalSchema)
def approve(data, request_id):
    """Approve and reserve exactly these aliquots, all or nothing. 409 naming the aliquots
    (``fields.aliquots``) when some were reserved meanwhile, taken out or withdrawn, or
    when the last of a group is asked for without ``override_reason``."""
    return services.approve(
        request_id,
        data["aliquots"],
        per_participant_visit=data["per_participant_visit"],
        override_reason=data["override_reason"],
        note=data["note"],
        actor=current_user,
    )


@blp.route(f"/requests/<{REQUEST_ID}>/reject", methods=["POST"])
@requires(Permission.APPROVE)
@blp.arguments(schemas.ReasonSchema)
@blp.response(200, schemas.RequestDetailSchema)
def reject(data, request_id):
    """Reject a request, saying why; its researcher is told."""
    return services.reject(request_id, data["reason"], actor=current_user)


@blp.route(f"/requests/<{REQUEST_ID}>/cancel", methods=["POST"])
@requires(Permission.CATALOGUE)
@blp.arguments(schemas.ReasonSchema)
@blp.response(200, schemas.RequestDetailSchema)
def cancel(data, request_id):
    """Cancel a request (its researcher, or a manager); its reservations are released."""
    return services.cancel(request_id, data["reason"], actor=current_user)


@blp.route(f"/requests/<{REQUEST_ID}>/contact", methods=["PUT"])
@requires(Permission.CATALOGUE)
@blp.arguments(schemas.ContactSchema)
@blp.response(200, schemas.RequestDetailSchema)
def change_contact(data, request_id):
    """Change the laboratory's contact (its researcher, or a manager) until the tubes
    leave. A new address is not mailed until a manager confirms it."""
    return contacts.change_contact(
        request_id,
        contact_name=data["contact_name"],
        contact_email=data["contact_email"],
        actor=current_user,
    )


@blp.route(f"/requests/<{REQUEST_ID}>/contact/confirm", methods=["POST"])
@requires(Permission.APPROVE)
@blp.arguments(schemas.ConfirmContactSchema)
@blp.response(200, schemas.RequestDetailSchema)
def confirm_contact(data, request_id):
    """A manager confirms the contact's address, as the request shows it: the request's
    later notices go there too. 409 ``contact.changed`` when it is no longer the
    request's address, ``contact.already_confirmed`` when it is confirmed already."""
    return contacts.confirm_contact(request_id, data["contact_email"], actor=current_user)


# --- picking -----------------------------------------------------------------------------


@blp.route(f"/requests/<{REQUEST_ID}>/pick-list")
@requires(Permission.HANDLE)
@blp.response(200, schemas.PickListSchema)
def pick_list(request_id):
    """The request's reserved aliquots in freezer walk order, picked or not."""
    return shipping.pick_list(request_id, actor=current_user)


@blp.route(f"/requests/<{REQUEST_ID}>/pick-list.pdf")
@requires(Permission.HANDLE)
@blp.doc(responses=_file("The pick list to print", "application/pdf"))
def pick_list_pdf(request_id):
    """The pick list as a PDF, in the reader's language."""
    return paper_response(paperwork.pick_list_pdf(request_id, actor=current_user))


@blp.route(f"/requests/<{REQUEST_ID}>/pick", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.BarcodeSchema)
@blp.response(200, schemas.PickedSchema)
def pick(data, request_id):
    """A scanned tube checked against the pick list and checked out for the request; any
    other tube is refused (409 ``pick.wrong_tube``)."""
    return shipping.pick(request_id, data["barcode"], actor=current_user)


# --- shipments ---------------------------------------------------------------------------


@blp.route("/shipments")
@requires(Permission.HANDLE)
@blp.arguments(schemas.ShipmentArgs, location="query")
@blp.response(200, schemas.ShipmentPageSchema)
def list_shipments(args):
    """Shipments, newest first (a centre's users: those from or to their centre)."""
    return shipping.list_shipments(
        actor=current_user, status=args["status"], limit=args["limit"], offset=args["offset"]
    )


@blp.route("/shipments", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.NewShipmentSchema)
@blp.response(201, schemas.ShipmentDetailSchema)
def create_shipment(data):
    """Start packing a shipment: for a request (``request_id``) or a transfer to another
    site (``destination_site``), in shipping boxes of ``box_rows`` × ``box_cols``."""
    return shipping.create_shipment(
        request_id=data["request_id"],
        destination_site=data["destination_site"],
        box_rows=data["box_rows"],
        box_cols=data["box_cols"],
        actor=current_user,
    )


@blp.route("/shipments/<code>")
@requires(Permission.HANDLE)
@blp.response(200, schemas.ShipmentDetailSchema)
def get_shipment(code):
    """A shipment with its tubes, their places in the shipping boxes and receipt outcome."""
    return shipping.get_shipment(code, actor=current_user)


@blp.route("/shipments/<code>/items", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.BarcodeSchema)
@blp.response(201, schemas.ShipmentItemSchema)
def add_item(data, code):
    """Pack a scanned tube into the next free place (a request's tube not yet picked is
    picked now)."""
    return shipping.add_to_shipment(code, data["barcode"], actor=current_user)


@blp.route("/shipments/<code>/items/<barcode>", methods=["DELETE"])
@requires(Permission.HANDLE)
@blp.response(204)
def remove_item(code, barcode):
    """Take a tube out of a shipment still being packed (it stays checked out)."""
    shipping.remove_from_shipment(code, barcode, actor=current_user)


@blp.route("/shipments/<code>/dispatch", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.DispatchSchema)
@blp.response(200, schemas.ShipmentDetailSchema)
def dispatch(details, code):
    """The shipment leaves: every tube is recorded SHIPPED and its freezer place freed."""
    return shipping.dispatch(code, details, actor=current_user)


@blp.route("/shipments/<code>/manifest")
@requires(Permission.HANDLE)
@blp.response(200, schemas.ManifestSchema)
def manifest(code):
    """The manifest's lines, box by box and position by position."""
    shipment = shipping.get_shipment(code, actor=current_user)
    return {"shipment": shipment, "items": paperwork.manifest_lines(shipment, actor=current_user)}


@blp.route("/shipments/<code>/manifest.xlsx")
@requires(Permission.HANDLE)
@blp.doc(responses=_file("The manifest as a spreadsheet", XLSX))
def manifest_xlsx(code):
    """The manifest as an Excel workbook (a sheet of tubes and a map of each box)."""
    return paper_response(paperwork.manifest(code, "xlsx", actor=current_user))


@blp.route("/shipments/<code>/manifest.pdf")
@requires(Permission.HANDLE)
@blp.doc(responses=_file("The manifest to print", "application/pdf"))
def manifest_pdf(code):
    """The manifest as a PDF to put in the parcel."""
    return paper_response(paperwork.manifest(code, "pdf", actor=current_user))


# --- receipt and use ---------------------------------------------------------------------


@blp.route("/shipments/<code>/check-in", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.CheckInSchema)
@blp.response(200, schemas.CheckedSchema)
def check_in(data, code):
    """One tube scanned on arrival; a tube the manifest does not list is noted unexpected.
    A tube scanned again: 409 ``receipt.already_checked_in`` (unless it is now ``damaged``
    or gets a note). After the receipt is complete, a tube recorded missing is found and
    received (``outcome: found``)."""
    return shipping.check_in(
        code, data["barcode"], damaged=data["damaged"], note=data["note"], actor=current_user
    )


@blp.route("/shipments/<code>/check-in-rack", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.RackFileSchema, location="files")
@blp.response(200, schemas.CheckedSchema(many=True))
def check_in_rack(files, code):
    """A rack-scanner CSV of the arriving tubes (multipart field ``file``): each tube read
    is checked in."""
    return shipping.check_in_rack(code, files["file"].read(), actor=current_user)


@blp.route("/shipments/<code>/receipt")
@requires(Permission.HANDLE)
@blp.response(200, schemas.ReceiptSchema)
def receipt(code):
    """What has been checked in so far, by outcome."""
    return shipping.receipt(code, actor=current_user)


@blp.route("/shipments/<code>/receipt", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.CompleteReceiptSchema)
@blp.response(200, schemas.ReceiptSchema)
def complete_receipt(data, code):
    """Close the receipt: scanned tubes are recorded RECEIVED, the others missing (status and
    MISSING custody event); the managers are told of any discrepancy. Once only: 409
    ``receipt.already_recorded``."""
    return shipping.complete_receipt(
        code,
        received_at=data["received_at"],
        condition=data["condition"],
        temperature_c=data["temperature_c"],
        actor=current_user,
    )


@blp.route("/shipments/<code>/use", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.UseSchema)
@blp.response(200, AliquotSchema)
def record_use(data, code):
    """A received tube used by the laboratory: consumed, or ``returned`` with what is left."""
    aliquot = shipping.record_use(
        code, data["barcode"], data["used_ul"], returned=data["returned"], actor=current_user
    )
    return samples.scan_aliquot(aliquot.barcode, actor=current_user)


@blp.route("/aliquots/<barcode>/found", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.FoundSchema)
@blp.response(200, AliquotSchema)
def record_found(data, barcode):
    """A tube recorded missing at a receipt was found (``where``): FOUND in its custody, and
    checked out (in hand) until it is stored again or received with its shipment. 409
    ``aliquot.not_missing`` for a tube that is not missing."""
    aliquot = shipping.record_found(barcode, data["where"], note=data["note"], actor=current_user)
    return samples.scan_aliquot(aliquot.barcode, actor=current_user)


# --- consent withdrawal ------------------------------------------------------------------


@blp.route("/participants/<code>/withdraw-consent", methods=["POST"])
@requires(Permission.APPROVE)
@blp.arguments(schemas.WithdrawalSchema)
@blp.response(200, schemas.AffectedListSchema)
def withdraw_consent(data, code):
    """Record the withdrawal of biobank consent: the participant's reservations are
    released at once. Returns the aliquots to destroy or recall."""
    affected = shipping.withdraw_consent(code, data["withdrawn_on"], actor=current_user)
    return {"affected": affected}


@blp.route("/participants/<code>/withdrawn-aliquots")
@requires(Permission.APPROVE)
@blp.response(200, schemas.AffectedListSchema)
def withdrawn_aliquots(code):
    """The participant's aliquots still in the bank or on their way."""
    return {"affected": shipping.affected_by_withdrawal(code, actor=current_user)}


@blp.route("/participants/<code>/destroyed", methods=["POST"])
@requires(Permission.APPROVE)
@blp.arguments(schemas.DestroySchema)
@blp.response(200, schemas.DestroyedSchema)
def destroy_withdrawn(data, code):
    """Record the destruction of aliquots of a participant who withdrew consent."""
    count = shipping.destroy_withdrawn(code, data["aliquots"], data["reason"], actor=current_user)
    return {"destroyed": count}
