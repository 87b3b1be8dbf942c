"""Who may reach a route: login, bearer tokens, permissions."""

from __future__ import annotations

import re
from functools import wraps

import sqlalchemy as sa
from flask import abort, current_app, g, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from biobank.auth import services
from biobank.auth.roles import Permission
from biobank.errors import error_response, wants_json
from biobank.extensions import login_manager


def requires(permission: Permission):
    """Refuse the route to users without ``permission`` (401 when not logged in).

    The permission is kept on the view as ``required_permission``, which is how the
    role-matrix test finds what every route demands.
    """

    def decorator(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.may(permission):
                abort(403, description=_l("Your role does not allow this."))
            return view(*args, **kwargs)

        guarded.required_permission = permission
        return guarded

    return decorator


def public(view):
    """Mark a route as open to anyone (the login page, the API document)."""
    view.required_permission = None
    return view


_SESSION_ID = re.compile(r"[0-9]+:[0-9]+")


@login_manager.user_loader
def load_user(session_id: str):
    """The account of a session, while the session's generation is still the account's
    (``Principal.get_id``): logging out, a new password or switching the account off
    counts the generation up and ends every session made before, copies of the cookie
    and remember-me cookies included. One indexed lookup per request."""
    if not _SESSION_ID.fullmatch(session_id or ""):
        return None  # a session from before generations existed: log in again
    user_id, _, generation = session_id.partition(":")
    return services.session_principal(int(user_id), int(generation))


@login_manager.request_loader
def load_user_from_bearer(req):
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    use = services.authenticate_token(token.strip())
    if use is None:
        return None
    g.authenticated_by_token = True
    if use.first_use:
        g.token_first_use = (use.token_id, use.principal.id, req.remote_addr)
    return use.principal


def record_token_first_use(_error=None) -> None:
    """At the end of a request authenticated by a token never used before: record that
    first use (``services.record_token_first_use``).

    Not at authentication time: the request's own transaction has begun by then, and on
    SQLite a writing request holds the write lock a second connection would wait for.
    Registered as a teardown of every request by auth.views; teardowns run in the reverse
    order of their registration, and blueprints are registered before the transaction
    rule, so the request's transaction has been committed or rolled back. A GET still
    writes nothing of its own: this is the credential's audit, on a connection of its
    own. Should it fail, the next use of the token records it."""
    pending = g.pop("token_first_use", None)
    if pending is None:
        return
    try:
        services.record_token_first_use(*pending)
    except sa.exc.SQLAlchemyError:
        current_app.logger.warning(
            "first use of API token %s not recorded", pending[0], exc_info=True
        )


@login_manager.unauthorized_handler
def unauthorized():
    if wants_json():
        return error_response(
            401, "unauthorized", _l("Log in, or send Authorization: Bearer <token>.")
        )
    return redirect(url_for("auth.login", next=request.full_path))
