"""Log in and out, choose the language, the home page."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from wtforms.fields.choices import SelectChoice

from biobank.auth import services
from biobank.auth.access import public, requires
from biobank.auth.forms import LanguageForm, LoginForm, LogoutForm, UserForm
from biobank.auth.roles import Permission, Role
from biobank.errors import DomainError, Invalid
from biobank.i18n import label
from biobank.sites.services import list_sites
from biobank.web import local_path, refill, refuse, refuse_form

bp = Blueprint("auth", __name__, template_folder="templates")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if request.method == "GET":
        return render_template("auth/login.html", form=refill(form))
    here = url_for("auth.login", next=form.next.data or None)
    if not form.validate_on_submit():
        return refuse_form(form, here)
    user = services.authenticate(form.username.data.strip(), form.password.data)
    if user is None:
        return refuse(Invalid(_("Unknown user name or wrong password.")), here)
    login_user(services.principal(user.id))
    if user.locale:
        session["lang"] = user.locale
    return redirect(local_path(form.next.data, url_for("auth.home")), 303)


@bp.route("/logout", methods=["POST"])
@requires(Permission.SIGNED_IN)
def logout():
    if LogoutForm().validate_on_submit():
        logout_user()
    return redirect(url_for("auth.login"), 303)


@bp.route("/language", methods=["POST"])
@public
def language():
    form = LanguageForm()
    if form.validate_on_submit():
        session["lang"] = form.lang.data
        if current_user.is_authenticated:
            services.set_locale(current_user.id, form.lang.data)
    return redirect(local_path(form.next.data, url_for("auth.home")), 303)


@bp.route("/")
@requires(Permission.SIGNED_IN)
def home():
    return render_template("auth/home.html")


def _user_form() -> UserForm:
    form = UserForm()
    form.role.choices = [SelectChoice(r.value, label(r.value, "role")) for r in Role]
    form.site.choices = [SelectChoice("", "—")] + [
        SelectChoice(s.code, f"{s.code} — {s.name}") for s in list_sites()
    ]
    return form


@bp.route("/users")
@requires(Permission.ADMINISTER)
def users():
    return render_template(
        "auth/users.html", users=services.list_users(), form=refill(_user_form()), token=None
    )


@bp.route("/users", methods=["POST"])
@requires(Permission.ADMINISTER)
def create_user():
    form = _user_form()
    here = url_for("auth.users")
    if not form.validate_on_submit():
        return refuse_form(form, here)
    try:
        user = services.create_user(
            form.username.data,
            form.role.data,
            form.password.data,
            site_code=form.site.data or None,
            email=form.email.data or None,
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, here)
    flash(_("Account %(name)s created.", name=user.username), "success")
    return redirect(here, 303)


@bp.route("/users/<username>/token", methods=["POST"])
@requires(Permission.ADMINISTER)
def issue_token(username):
    token = services.issue_token(username, actor=current_user)
    # Shown on this page once, in answer to the POST: a secret never travels through the
    # session cookie, as a redirect would need. Only its SHA-256 is kept.
    return render_template(
        "auth/users.html",
        users=services.list_users(),
        form=_user_form(),
        token=token,
        token_user=username,
    )


@bp.route("/users/<username>/active", methods=["POST"])
@requires(Permission.ADMINISTER)
def set_active(username):
    active = request.form.get("active") == "1"
    try:
        services.set_active(username, active, actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("auth.users"))
    flash(
        _("Account %(name)s switched on.", name=username)
        if active
        else _("Account %(name)s switched off.", name=username),
        "success",
    )
    return redirect(url_for("auth.users"), 303)
