"""/api/v1/specimens and /api/v1/aliquots: registration, lookup, custody history."""

from __future__ import annotations

import flask
from flask_login import current_user
from flask_smorest import Blueprint

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.custody import services as custody
from biobank.samples import schemas, services
from biobank.schemas import PageArgs

blp = Blueprint("samples_api", __name__, description="Specimens, aliquots, custody.")


@blp.route("/specimens", methods=["POST"])
@requires(Permission.REGISTER)
@blp.arguments(schemas.RegistrationRequestSchema)
@blp.response(201, schemas.RegistrationSchema)
def register(data):
    """Register a visit's primary tubes; returns the aliquots created and their barcodes.

    ``not_collected`` lists the tubes not drawn, each with its reason (a tube recorded so
    and registered later replaces that record). A visit where no tube could be drawn is
    registered with ``not_collected`` alone and its date in ``collected_on``.
    """
    return services.register_collection(
        data["participant"],
        data["visit"],
        data["tubes"],
        actor=current_user,
        not_collected=data["not_collected"],
        collected_on=data["collected_on"],
    )


@blp.route("/aliquots")
@requires(Permission.VIEW_SAMPLES)
@blp.arguments(PageArgs, location="query")
@blp.response(200, schemas.AliquotPageSchema)
def list_aliquots(page):
    return services.list_aliquots(actor=current_user, **page)


@blp.route("/aliquots/<barcode>")
@requires(Permission.VIEW_SAMPLES)
@blp.response(200, schemas.AliquotSchema)
def get_aliquot(barcode):
    """Look up a scanned code (whitespace, lowercase and CR/LF are forgiven).

    The code is the aliquot's barcode, or the code of its old label for a tube of an
    imported inventory (compared exactly, or whatever the case when only one old label
    matches): the answer is the same aliquot, ``barcode`` its barcode in this bank and
    ``legacy_barcode`` its old label.

    A code that names no aliquot of the caller's centre is answered with what it is:
    ``barcode.length``, ``barcode.position`` (a box position such as B4),
    ``barcode.container`` (a box, rack or freezer of the caller's centre) or
    ``barcode.invalid`` (foreign characters, a wrong check character), all 400;
    ``aliquot.other_centre`` (403) for a tube of a centre the caller is not bound to;
    ``aliquot.not_found`` (404).
    """
    return services.scan_aliquot(barcode, actor=current_user)


# An old label may hold a slash ("ab 12/7", sent as ab%2012%2F7), which the rule above does
# not take (nor does a path take the CR/LF a scanner may send): a second rule of the same
# endpoint answers it, registered past the API document, which describes that address once.
flask.Blueprint.add_url_rule(blp, "/aliquots/<path:barcode>", "get_aliquot", get_aliquot)


@blp.route("/aliquots/<barcode>/custody")
@requires(Permission.VIEW_SAMPLES)
@blp.response(200, schemas.CustodySchema)
def aliquot_custody(barcode):
    """The aliquot's chain of custody, oldest event first."""
    aliquot = services.scan_aliquot(barcode, actor=current_user)
    return {
        "barcode": aliquot.barcode,
        "legacy_barcode": aliquot.legacy_barcode,
        "items": custody.history(aliquot.id),
    }


@blp.route("/aliquots/<barcode>/volume-corrections", methods=["POST"])
@requires(Permission.HANDLE)
@blp.arguments(schemas.VolumeCorrectionSchema)
@blp.response(200, schemas.AliquotSchema)
def correct_volume(data, barcode):
    """Correct the volume left; the reason and the old value stay in the custody log."""
    aliquot = services.correct_volume(
        barcode, data["volume_ul"], data["reason"], actor=current_user
    )
    return services.scan_aliquot(aliquot.barcode, actor=current_user)
