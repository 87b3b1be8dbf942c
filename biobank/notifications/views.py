"""Pages: the outbox."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.errors import DomainError
from biobank.notifications import services
from biobank.web import refuse

bp = Blueprint("notifications", __name__, template_folder="templates")
PAGE = 50


@bp.route("/outbox")
@requires(Permission.CONFIGURE)
def outbox():
    page = max(request.args.get("page", 1, type=int), 1)
    pending = request.args.get("pending") == "1"
    failed = request.args.get("failed") == "1"
    result = services.list_outbox(
        limit=PAGE,
        offset=(page - 1) * PAGE,
        pending_only=pending,
        failed_only=failed,
        actor=current_user,
    )
    return render_template(
        "notifications/outbox.html",
        result=result,
        page=page,
        page_size=PAGE,
        pending=pending,
        failed=failed,
    )


@bp.route("/outbox/deliver", methods=["POST"])
@requires(Permission.CONFIGURE)
def deliver():
    try:
        services.check_may_deliver(current_user)
        notifier = services.notifier_from_config(current_app.config)
    except DomainError as err:
        return refuse(err, url_for("notifications.outbox"))
    report = services.deliver_pending(notifier)
    counts = {"sent": report.sent, "failed": report.failed, "held": report.held}
    if notifier.delivers:
        message = _("%(sent)d sent, %(failed)d failed, %(held)d held.", **counts)
    else:
        message = _(
            "%(sent)d sent, %(failed)d failed, %(held)d held (e-mail delivery is not configured).",
            **counts,
        )
    flash(message, "warning" if report.failed else "success")
    return redirect(url_for("notifications.outbox"), 303)


@bp.route("/outbox/deliver")
@requires(Permission.CONFIGURE)
def deliver_page():
    """The button's address opened by a GET (a login that expired, an old tab): the outbox,
    never "This address does not accept that kind of request"."""
    return redirect(url_for("notifications.outbox"), 303)
