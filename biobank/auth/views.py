"""Log in and out, choose the language, the home page."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_user, logout_user
from wtforms.fields.choices import SelectChoice

from biobank.auth import services
from biobank.auth.access import public, record_token_first_use, requires
from biobank.auth.forms import (
    AccessForm,
    LanguageForm,
    LoginForm,
    LogoutForm,
    PasswordChangeForm,
    SetPasswordForm,
    UserForm,
)
from biobank.auth.models import AccountEventKind
from biobank.auth.roles import Permission, Role
from biobank.errors import DomainError, Invalid, NotFound
from biobank.i18n import label
from biobank.sites.services import list_sites
from biobank.transaction import writes_nothing
from biobank.web import kept_form, local_path, refill, refuse, refuse_form

bp = Blueprint("auth", __name__, template_folder="templates")
WRONG_PASSWORD = "login.wrong_password"
# Every request of the application, not only this blueprint's: a token's first use is
# recorded once the request's own transaction has ended (see the function).
bp.teardown_app_request(record_token_first_use)

EVENT_LABELS = {
    AccountEventKind.ACCOUNT_CREATED: _l("account created"),
    AccountEventKind.ROLE_CHANGED: _l("role or centre changed"),
    AccountEventKind.ACCOUNT_SWITCHED_OFF: _l("account switched off"),
    AccountEventKind.ACCOUNT_SWITCHED_ON: _l("account switched on"),
    AccountEventKind.PASSWORD_CHANGED: _l("password changed"),
    AccountEventKind.SESSIONS_ENDED: _l("logged out everywhere"),
    AccountEventKind.TOKEN_ISSUED: _l("API token issued"),
    AccountEventKind.TOKEN_REVOKED: _l("API token revoked"),
    AccountEventKind.TOKEN_FIRST_USED: _l("API token used for the first time"),
}


@bp.route("/login", methods=["GET", "POST"])
@public
@writes_nothing
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if request.method != "POST":  # GET, and HEAD, which must never try a password
        refusal = kept_form().refusal or {}
        return render_template(
            "auth/login.html",
            form=refill(form),
            # Shown in the form, tied to both fields; other refusals (too many tries) are
            # about the account, not what was typed, and are flashed.
            wrong=refusal.get("message") if refusal.get("code") == WRONG_PASSWORD else None,
        )
    here = url_for("auth.login", next=form.next.data or None)
    if not form.validate_on_submit():
        return refuse_form(form, here)
    try:
        user = services.authenticate(
            form.username.data.strip(), form.password.data, address=request.remote_addr
        )
    except DomainError as err:  # too many failed sign-ins, or too many at once
        return refuse(err, here)
    if user is None:
        wrong = Invalid(_("Unknown user name or wrong password."), code=WRONG_PASSWORD)
        return refuse(wrong, here, flash_it=False)
    login_user(services.principal(user.id))
    if user.locale:
        session["lang"] = user.locale
    return redirect(local_path(form.next.data, url_for("auth.home")), 303)


@bp.route("/logout", methods=["POST"])
@requires(Permission.SIGNED_IN)
def logout():
    if LogoutForm().validate_on_submit():
        # Every session of the account ends, not only this cookie: a copy of it taken
        # before (a shared computer, a stolen cookie) stops working too.
        services.end_sessions(actor=current_user)
        logout_user()
    return redirect(url_for("auth.login"), 303)


@bp.route("/account/password")
@requires(Permission.SIGNED_IN)
def password():
    return render_template("auth/password.html", form=refill(PasswordChangeForm()))


@bp.route("/account/password", methods=["POST"])
@requires(Permission.SIGNED_IN)
def change_password():
    form = PasswordChangeForm()
    here = url_for("auth.password")
    if not form.validate_on_submit():
        return refuse_form(form, here)
    try:
        services.change_password(
            form.current_password.data,
            form.password.data,
            revoke_tokens=form.revoke_tokens.data,
            actor=current_user,
            address=request.remote_addr,
        )
    except DomainError as err:  # also: too many wrong current passwords
        return refuse(err, here)
    # Every other session of the account has ended; this one carries on with the
    # account's new session generation.
    login_user(services.principal(current_user.id))
    flash(_("Your password was changed. Your other sessions have ended."), "success")
    return redirect(url_for("auth.home"), 303)


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


def _site_choices() -> list[SelectChoice]:
    sites = list_sites()
    if current_user.site_id is not None:
        # An administrator of a centre gives accounts that centre only (the service
        # refuses any other); the list offers nothing else.
        return [
            SelectChoice(s.code, f"{s.code} — {s.name}")
            for s in sites
            if s.id == current_user.site_id
        ]
    return [SelectChoice("", "—")] + [SelectChoice(s.code, f"{s.code} — {s.name}") for s in sites]


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice(r.value, label(r.value, "role")) for r in Role]


def _centre_field(field) -> None:
    field.choices = _site_choices()
    if current_user.site_id is not None:
        field.description = _l("An administrator of a centre manages that centre's accounts only.")


def _user_form() -> UserForm:
    form = UserForm()
    form.role.choices = _role_choices()
    _centre_field(form.site)
    return form


def _users_page(**context):
    return render_template(
        "auth/users.html",
        users=services.list_users(actor=current_user),
        events=services.recent_events(actor=current_user),
        event_labels=EVENT_LABELS,
        **context,
    )


@bp.route("/users")
@requires(Permission.ADMINISTER)
def users():
    return _users_page(form=refill(_user_form()), token=None)


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


@bp.route("/users/<username>")
@requires(Permission.ADMINISTER)
def account(username):
    user = services.get_user(username, actor=current_user)
    access = AccessForm(data={"role": user.role, "site": user.site.code if user.site else ""})
    access.role.choices = _role_choices()
    _centre_field(access.site)
    return render_template(
        "auth/account.html",
        user=user,
        access=refill(access),
        password_form=refill(SetPasswordForm()),
        events=services.recent_events(actor=current_user, username=user.username),
        event_labels=EVENT_LABELS,
    )


def _refuse_for(err: DomainError, username: str):
    # An account out of reach has no page to go back to.
    if isinstance(err, NotFound):
        return refuse(err, url_for("auth.users"))
    return refuse(err, url_for("auth.account", username=username))


@bp.route("/users/<username>/access", methods=["POST"])
@requires(Permission.ADMINISTER)
def set_access(username):
    form = AccessForm()
    form.role.choices = _role_choices()
    _centre_field(form.site)
    if not form.validate_on_submit():
        return refuse_form(form, url_for("auth.account", username=username))
    try:
        services.set_access(
            username, role=form.role.data, site_code=form.site.data or None, actor=current_user
        )
    except DomainError as err:
        return _refuse_for(err, username)
    flash(_("Role and centre of %(name)s saved.", name=username), "success")
    return redirect(url_for("auth.account", username=username), 303)


@bp.route("/users/<username>/password", methods=["POST"])
@requires(Permission.ADMINISTER)
def set_password(username):
    form = SetPasswordForm()
    if not form.validate_on_submit():
        return refuse_form(form, url_for("auth.account", username=username))
    try:
        services.set_password(
            username, form.password.data, revoke_tokens=form.revoke_tokens.data, actor=current_user
        )
    except DomainError as err:
        return _refuse_for(err, username)
    flash(
        _("Password of %(name)s changed: every session of the account has ended.", name=username),
        "success",
    )
    return redirect(url_for("auth.account", username=username), 303)


@bp.route("/users/<username>/token", methods=["POST"])
@requires(Permission.ADMINISTER)
def issue_token(username):
    try:
        token = services.issue_token(username, actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("auth.users"))
    # Shown on this page once, in answer to the POST: a secret never travels through the
    # session cookie, as a redirect would need. Only its SHA-256 is kept.
    return _users_page(form=_user_form(), token=token, token_user=username)


@bp.route("/users/<username>/tokens/revoke", methods=["POST"])
@requires(Permission.ADMINISTER)
def revoke_tokens(username):
    try:
        count = services.revoke_tokens(username, actor=current_user)
    except DomainError as err:
        return _refuse_for(err, username)
    flash(
        ngettext(
            "%(num)d API token of %(name)s revoked.",
            "%(num)d API tokens of %(name)s revoked.",
            count,
            name=username,
        ),
        "success",
    )
    return redirect(url_for("auth.account", username=username), 303)


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
