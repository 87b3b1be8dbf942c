"""Who may reach a route: login, bearer tokens, permissions."""

from __future__ import annotations

from functools import wraps

from flask import abort, g, redirect, request, url_for
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


@login_manager.user_loader
def load_user(user_id: str):
    return services.principal(int(user_id))


@login_manager.request_loader
def load_user_from_bearer(req):
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    user = services.principal_for_token(token.strip())
    if user is not None:
        g.authenticated_by_token = True
    return user


@login_manager.unauthorized_handler
def unauthorized():
    if wants_json():
        return error_response(
            401, "unauthorized", _l("Log in, or send Authorization: Bearer <token>.")
        )
    return redirect(url_for("auth.login", next=request.full_path))
