"""Log in and out, choose the language, the home page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from biobank.auth import services
from biobank.auth.access import public, requires
from biobank.auth.forms import LanguageForm, LoginForm, LogoutForm
from biobank.auth.roles import Permission

bp = Blueprint("auth", __name__, template_folder="templates")


def _safe_next(target: str | None) -> str:
    # Only a path on this site: an absolute URL here would make the login page an open
    # redirect for phishing.
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("auth.home")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = services.authenticate(form.username.data.strip(), form.password.data)
        if user is None:
            flash(_("Unknown user name or wrong password."), "error")
        else:
            login_user(services.principal(user.id))
            if user.locale:
                session["lang"] = user.locale
            return redirect(_safe_next(form.next.data))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@requires(Permission.SIGNED_IN)
def logout():
    if LogoutForm().validate_on_submit():
        logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
@public
def language():
    form = LanguageForm()
    if form.validate_on_submit():
        session["lang"] = form.lang.data
        if current_user.is_authenticated:
            services.set_locale(current_user.id, form.lang.data)
    return redirect(_safe_next(form.next.data))


@bp.route("/")
@requires(Permission.SIGNED_IN)
def home():
    return render_template("auth/home.html")
