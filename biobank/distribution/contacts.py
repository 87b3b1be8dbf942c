"""A request's contact at the receiving laboratory: shown on the request, in the API and
on the shipment's manifest, and mailed only once a manager has confirmed the address.

The researcher types that address. Were it mailed as typed, anyone allowed to request
samples could have the bank send its notices (request codes, titles, tracking numbers)
under its own name to any address. So notices go to account addresses, whose owners the
bank knows (the researcher's, the managers'), and to the contact's address only after a
manager, who knows the laboratory, has confirmed it (``services.told_of``). Who confirmed
it and when are kept; a new address is unconfirmed again, whoever changes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from biobank.auth.roles import Permission
from biobank.db import utcnow
from biobank.distribution import services
from biobank.distribution.models import SampleRequest, Shipment
from biobank.errors import Conflict, Forbidden
from biobank.extensions import db
from biobank.i18n import label

# Until the tubes have left: later, nothing more is announced to the laboratory.
OPEN_FOR_CONTACT = ("submitted", "under_review", "approved", "being_prepared")


def _packed(request: SampleRequest) -> bool:
    """A shipment holds the contact as it was when it was packed (its manifest names it)."""
    return bool(
        db.session.execute(sa.select(sa.exists().where(Shipment.request_id == request.id))).scalar()
    )


def changeable(request: SampleRequest) -> bool:
    """Whether the contact may still change: until a shipment is packed for the request."""
    return request.status in OPEN_FOR_CONTACT and not _packed(request)


def _still_open(request: SampleRequest) -> None:
    if request.status not in OPEN_FOR_CONTACT:
        raise Conflict(
            _l(
                "Request %(code)s is %(status)s: its contact no longer changes.",
                code=request.code,
                status=label(request.status, "request_status"),
            ),
            code="request.status",
        )


def change_contact(
    request_id: int, *, contact_name: str, contact_email: str, actor
) -> SampleRequest:
    """A new contact for a request (its researcher, or a manager), until a shipment is
    packed for it. A new address is not mailed until a manager confirms it."""
    request = services.request_to_change(request_id, actor=actor)
    _still_open(request)
    if _packed(request):
        raise Conflict(
            _l(
                "A shipment of request %(code)s is packed already, with its contact on the "
                "manifest: the contact no longer changes.",
                code=request.code,
            ),
            code="request.packed",
        )
    request.contact_name = services.required_text(contact_name, "contact_name", 200)
    request.contact_email = services._email(contact_email)  # clears a confirmation
    request.updated_at = utcnow()
    db.session.flush()
    return request


def confirm_contact(request_id: int, contact_email: str, *, actor) -> SampleRequest:
    """A manager confirms the request's contact address, the one they were shown
    (``contact_email``): from now on the request's notices go there too.

    Refused when the address changed since the manager read it (the researcher changed it
    meanwhile: the new one is read and confirmed in its turn), and when it is confirmed
    already (who confirmed it first stays on record)."""
    if not actor.may(Permission.APPROVE):
        raise Forbidden(_l("Only a manager confirms a contact address."), code="forbidden")
    request = services.request_to_change(request_id, actor=actor)
    _still_open(request)
    seen = (contact_email or "").strip()
    if seen != request.contact_email:
        raise Conflict(
            _l(
                "The contact of request %(code)s is now %(email)s: nothing was confirmed. "
                "Confirm this address if it is the laboratory's.",
                code=request.code,
                email=request.contact_email,
            ),
            code="contact.changed",
            fields={"contact_email": seen},
        )
    if request.contact_confirmed:
        raise Conflict(
            _l(
                "%(email)s was already confirmed by %(who)s.",
                email=request.contact_email,
                who=request.contact_confirmed_by.username,
            ),
            code="contact.already_confirmed",
        )
    request.contact_confirmed_at = utcnow()
    request.contact_confirmed_by_id = actor.id
    db.session.flush()
    # The confirming account, read afresh for the page and the API's answer.
    db.session.expire(request, ["contact_confirmed_by"])
    return request
