"""Accounts, passwords, tokens, login and CSRF."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from biobank import create_app
from biobank.auth import services as auth
from biobank.auth.models import ApiToken
from biobank.errors import Conflict, Invalid, NotFound
from tests.conftest import PASSWORD
from tests.pages import refused


def test_passwords_are_stored_as_scrypt_hashes(db, make_user):
    user = make_user("technician")
    assert user.password_hash.startswith("scrypt:")
    assert PASSWORD not in user.password_hash


def test_authentication_accepts_the_password_only(db, make_user):
    user = make_user("manager")
    assert auth.authenticate(user.username, PASSWORD) is user
    assert auth.authenticate(user.username, PASSWORD + "x") is None
    assert auth.authenticate("nobody", PASSWORD) is None


def test_an_inactive_account_cannot_log_in(db, make_user):
    user = make_user("manager")
    user.active = False
    assert auth.authenticate(user.username, PASSWORD) is None


@pytest.mark.parametrize(
    ("name", "role", "password", "site", "error", "field"),
    [
        ("", "technician", PASSWORD, None, Invalid, "username"),
        ("x", "surgeon", PASSWORD, None, Invalid, "role"),
        ("x", "technician", "short", None, Invalid, "password"),
        ("x", "technician", PASSWORD, "NOWHERE", NotFound, "site"),
    ],
)
def test_bad_account_data_is_refused_naming_the_field(
    db, sites, name, role, password, site, error, field
):
    with pytest.raises(error) as refused:
        auth.create_user(name, role, password, site_code=site)
    assert field in refused.value.fields


def test_user_names_are_unique(db, sites):
    auth.create_user("alice", "technician", PASSWORD)
    with pytest.raises(Conflict):
        auth.create_user("alice", "manager", PASSWORD)


def test_a_token_is_kept_only_as_its_sha256(db, make_user):
    user = make_user("technician")
    token = auth.issue_token(user.username)
    assert len(token) >= 43  # 256 bits in URL-safe base64
    stored = db.session.execute(sa.select(ApiToken.token_sha256)).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored
    assert auth.principal_for_token(token).id == user.id
    assert auth.principal_for_token(token + "x") is None


def test_revoked_tokens_no_longer_authenticate(db, api_as):
    client = api_as("technician")
    assert client.get("/api/v1/me").status_code == 200
    auth.revoke_tokens(client.user.username)
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_login_with_a_wrong_password_says_so_and_stays_logged_out(client, make_user, db):
    user = make_user("technician")
    response = client.post("/login", data={"username": user.username, "password": "nope"})
    page = refused(client, response)
    assert "wrong password" in page
    assert f'value="{user.username}"' in page and "nope" not in page  # never the password
    assert client.get("/").status_code == 302


def test_login_returns_to_the_page_asked_for_but_never_off_site(client, make_user, db):
    user = make_user("technician")
    form = {"username": user.username, "password": PASSWORD}
    inside = client.post("/login", data={**form, "next": "/scan"})
    assert inside.headers["Location"] == "/scan"
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        outside = client.post("/login", data={**form, "next": target})
        assert outside.headers["Location"] == "/", target


def test_logout_ends_the_session(login_as):
    client = login_as("technician")
    assert client.get("/scan").status_code == 200
    client.post("/logout")
    assert client.get("/scan").status_code == 302


def test_forms_are_refused_without_their_csrf_token(database_url, sites):
    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "csrf-test"}
    )
    with app.app_context():
        client = app.test_client()
        response = client.post("/login", data={"username": "x", "password": "y"})
        assert response.status_code == 400
        assert "expired" in response.get_data(as_text=True)


def test_api_writes_with_a_session_cookie_need_the_csrf_token(database_url, db, make_user):
    """A page on another site could otherwise make a logged-in browser post to the API."""
    username = make_user("technician").username
    db.session.commit()  # and no read after it: the other app must get the SQLite lock
    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "csrf-test"}
    )
    with app.app_context():
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        client.post(
            "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
        )
        response = client.post("/api/v1/specimens", json={})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "csrf"


def test_the_app_refuses_to_start_in_production_with_the_default_key(database_url):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database_url,
                "BIOBANK_ENV": "production",
                "SECRET_KEY": "dev-only-not-secret",
            }
        )
    create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "BIOBANK_ENV": "production",
            "SECRET_KEY": "a real secret from the environment",
        }
    )


def test_user_commands_create_an_account_and_a_working_token(app, sites):
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=[
            "user",
            "create",
            "bench1",
            "--role",
            "technician",
            "--password",
            PASSWORD,
            "--site",
            "LIM",
        ]
    )
    assert created.exit_code == 0, created.output
    issued = runner.invoke(args=["user", "token", "bench1"])
    assert issued.exit_code == 0, issued.output
    token = issued.output.strip().splitlines()[-1]
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.get_json() == {"username": "bench1", "role": "technician", "site": "LIM"}


def test_user_create_without_password_prints_a_generated_one(app, sites):
    result = app.test_cli_runner().invoke(args=["user", "create", "mgr", "--role", "manager"])
    assert result.exit_code == 0
    password = result.output.split("password: ")[1].strip()
    assert auth.authenticate("mgr", password) is not None


def test_user_create_with_an_unknown_site_fails_and_creates_nobody(app, db, sites):
    result = app.test_cli_runner().invoke(
        args=[
            "user",
            "create",
            "x",
            "--role",
            "technician",
            "--password",
            PASSWORD,
            "--site",
            "NOPE",
        ]
    )
    assert result.exit_code == 1
    assert "NOPE" in result.output
    with pytest.raises(NotFound):
        auth.get_user("x")


def test_an_admin_creates_an_account_from_the_accounts_page(login_as):
    admin = login_as("admin")
    response = admin.post(
        "/users",
        data={"username": "nurse.lim", "role": "technician", "site": "LIM", "password": PASSWORD},
    )
    assert response.status_code == 303
    assert "nurse.lim" in admin.get("/users").get_data(as_text=True)
    assert auth.get_user("nurse.lim").site.code == "LIM"


def test_a_token_issued_on_the_accounts_page_is_shown_once_and_works(app, login_as, make_user):
    admin = login_as("admin")
    user = make_user("technician")
    page = admin.post(f"/users/{user.username}/token").get_data(as_text=True)
    token = page.split('class="mono token" readonly value="')[1].split('"')[0]
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.get_json()["username"] == user.username
    assert token not in admin.get("/users").get_data(as_text=True)


def test_a_switched_off_account_can_neither_log_in_nor_use_its_token(app, login_as, api_as):
    admin = login_as("admin")
    client = api_as("technician")
    admin.post(f"/users/{client.user.username}/active", data={"active": "0"})
    assert client.get("/api/v1/me").status_code == 401
    assert auth.authenticate(client.user.username, PASSWORD) is None


def test_an_admin_cannot_switch_off_their_own_account(login_as):
    admin = login_as("admin")
    response = admin.post(f"/users/{admin.user.username}/active", data={"active": "0"})
    refused(admin, response)
    assert admin.get("/users").status_code == 200
