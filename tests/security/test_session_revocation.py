"""Sessions end on the server's word: a copy of a session cookie stops working when its
owner logs out, changes password, or is given a new password by an administrator."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_login.config import COOKIE_NAME
from flask_login.utils import encode_cookie

from biobank.auth import services as auth
from biobank.auth.models import AccountEvent
from tests.conftest import PASSWORD
from tests.pages import refused

NEW_PASSWORD = "plum orchard violin seventy"


@pytest.fixture
def nurse(db, sites):
    user = auth.create_user("nurse.lim", "technician", PASSWORD, site_code="LIM")
    db.session.commit()
    return user


def log_in(app, username, password=PASSWORD):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def copy_of(app, client):
    """Another browser holding a copy of ``client``'s cookies (a shared computer, a cookie
    stolen from a proxy log)."""
    other = app.test_client()
    for cookie in client._cookies.values():
        other.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return other


def signed_in(client) -> bool:
    response = client.get("/scan")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def events(db, kind) -> list[AccountEvent]:
    db.session.rollback()
    query = sa.select(AccountEvent).where(AccountEvent.kind == kind).order_by(AccountEvent.id)
    return db.session.execute(query).scalars().all()


def change(client, current=PASSWORD, new=NEW_PASSWORD, again=None, **extra):
    data = {"current_password": current, "password": new, "password_again": again or new}
    return client.post("/account/password", data={**data, **extra})


def test_a_copied_cookie_stops_working_after_logout(app, nurse):
    browser = log_in(app, "nurse.lim")
    thief = copy_of(app, browser)
    assert signed_in(thief)
    browser.post("/logout")
    assert not signed_in(browser)
    assert not signed_in(thief)


def test_logging_out_ends_every_session_of_the_account_and_is_audited(app, db, nurse):
    desk, tablet = log_in(app, "nurse.lim"), log_in(app, "nurse.lim")
    desk.post("/logout")
    assert not signed_in(tablet)
    [ended] = events(db, "sessions_ended")
    assert ended.actor_id == ended.subject_id == nurse.id
    assert signed_in(log_in(app, "nurse.lim"))  # logging in again works


def test_a_remember_me_cookie_stops_working_after_logout(app, nurse):
    """Login sets no remember-me cookie; one made as Flask-Login would (it holds the
    session id, generation included) is refused once its owner has logged out."""
    browser = log_in(app, "nurse.lim")
    name = app.config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME)
    assert not any(c.key == name for c in browser._cookies.values())
    with app.test_request_context():
        remembered = encode_cookie(auth.principal(nurse.id).get_id())
    returning = app.test_client()
    returning.set_cookie(name, remembered)
    assert signed_in(returning)
    browser.post("/logout")
    returning = app.test_client()
    returning.set_cookie(name, remembered)
    assert not signed_in(returning)


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app, db, nurse):
    desk, tablet = log_in(app, "nurse.lim"), log_in(app, "nurse.lim")
    copy = copy_of(app, desk)
    response = change(desk)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert signed_in(desk)
    assert not signed_in(tablet)
    assert not signed_in(copy)  # the cookie as it was before the change
    assert auth.authenticate("nurse.lim", NEW_PASSWORD) is not None
    assert auth.authenticate("nurse.lim", PASSWORD) is None
    [changed] = events(db, "password_changed")
    assert changed.actor_id == changed.subject_id == nurse.id


def test_the_password_page_is_linked_from_every_page(app, nurse):
    page = log_in(app, "nurse.lim").get("/").get_data(as_text=True)
    assert 'href="/account/password"' in page


@pytest.mark.parametrize(
    ("current", "new", "again", "message"),
    [
        ("not my password", NEW_PASSWORD, None, "current password is not right"),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "not the same"),
        (PASSWORD, "aaaaaaaaaa", None, "too easy to guess"),
    ],
)
def test_a_refused_password_change_changes_nothing(app, db, nurse, current, new, again, message):
    desk, tablet = log_in(app, "nurse.lim"), log_in(app, "nurse.lim")
    page = refused(desk, change(desk, current, new, again))
    assert message in page
    assert NEW_PASSWORD not in page and PASSWORD not in page  # passwords are never kept
    assert signed_in(desk) and signed_in(tablet)
    assert auth.authenticate("nurse.lim", PASSWORD) is not None
    assert events(db, "password_changed") == []


def test_tokens_are_revoked_with_the_password_only_when_asked(app, db, nurse):
    kept = auth.issue_token("nurse.lim")
    db.session.commit()
    desk = log_in(app, "nurse.lim")
    assert change(desk).status_code == 303
    bearer = {"Authorization": f"Bearer {kept}"}
    assert app.test_client().get("/api/v1/me", headers=bearer).status_code == 200
    assert change(desk, NEW_PASSWORD, PASSWORD, revoke_tokens="y").status_code == 303
    assert app.test_client().get("/api/v1/me", headers=bearer).status_code == 401
    [revoked] = events(db, "token_revoked")
    assert revoked.actor_id == revoked.subject_id == nurse.id


def test_an_administrator_setting_a_password_ends_the_holders_sessions(app, db, nurse, login_as):
    browser = log_in(app, "nurse.lim")
    token = auth.issue_token("nurse.lim")
    db.session.commit()
    admin = login_as("admin")
    data = {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    response = admin.post("/users/nurse.lim/password", data=data)
    assert response.status_code == 303
    assert not signed_in(browser)
    assert signed_in(admin)
    # Tokens stay unless asked for.
    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/me", headers=bearer).status_code == 200
    assert signed_in(log_in(app, "nurse.lim", NEW_PASSWORD))
    [changed] = events(db, "password_changed")
    assert (changed.actor_id, changed.subject_id) == (admin.user.id, nurse.id)


def test_the_command_line_setting_a_password_ends_the_sessions(app, nurse):
    browser = log_in(app, "nurse.lim")
    result = app.test_cli_runner().invoke(
        args=["user", "password", "nurse.lim", "--password", NEW_PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert not signed_in(browser)


def test_switching_an_account_off_and_on_again_does_not_revive_its_sessions(app, nurse, login_as):
    browser = log_in(app, "nurse.lim")
    admin = login_as("admin")
    assert admin.post("/users/nurse.lim/active", data={"active": "0"}).status_code == 303
    assert not signed_in(browser)
    assert admin.post("/users/nurse.lim/active", data={"active": "1"}).status_code == 303
    assert not signed_in(browser)
    assert signed_in(log_in(app, "nurse.lim"))
