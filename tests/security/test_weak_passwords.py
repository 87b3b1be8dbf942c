"""Passwords that an attacker guesses first (repeated letters, common passwords, the user
name itself) are refused wherever a password is set: the accounts page, the password
change page and the command line."""

from __future__ import annotations

import pytest

from biobank.auth import services as auth
from biobank.errors import Invalid, NotFound
from tests.conftest import PASSWORD
from tests.pages import refused

NAME = "laboratoire.paris"
WEAK = ["aaaaaaaaaa", "password123", NAME]
STRONG = "plum orchard violin seventy"


def message_for(password: str) -> str:
    if password == NAME:
        return "must not be the user name"
    return "too easy to guess"


@pytest.mark.parametrize("password", WEAK)
def test_the_services_refuse_weak_passwords(db, sites, password):
    with pytest.raises(Invalid) as refusal:
        auth.create_user(NAME, "technician", password)
    assert message_for(password) in str(refusal.value.message)
    assert "password" in refusal.value.fields


def test_zxcvbn_says_why(db, sites):
    with pytest.raises(Invalid) as refusal:
        auth.create_user(NAME, "technician", "aaaaaaaaaa")
    assert 'Repeats like "aaa" are easy to guess.' in str(refusal.value.message)


@pytest.mark.parametrize("password", WEAK)
def test_the_accounts_page_refuses_weak_passwords(db, login_as, password):
    admin = login_as("admin")
    data = {"username": NAME, "role": "technician", "site": "PAR", "password": password}
    page = refused(admin, admin.post("/users", data=data))
    assert message_for(password) in page
    with pytest.raises(NotFound):
        auth.get_user(NAME)


@pytest.mark.parametrize("password", WEAK)
def test_an_administrator_cannot_set_a_weak_password(db, login_as, password):
    auth.create_user(NAME, "technician", PASSWORD, site_code="PAR")
    admin = login_as("admin")
    data = {"password": password, "password_again": password}
    page = refused(admin, admin.post(f"/users/{NAME}/password", data=data))
    assert message_for(password) in page
    assert auth.authenticate(NAME, PASSWORD) is not None


@pytest.mark.parametrize("password", WEAK)
def test_the_password_change_page_refuses_weak_passwords(app, db, sites, password):
    auth.create_user(NAME, "technician", PASSWORD, site_code="PAR")
    db.session.commit()
    client = app.test_client()
    client.post("/login", data={"username": NAME, "password": PASSWORD})
    data = {"current_password": PASSWORD, "password": password, "password_again": password}
    page = refused(client, client.post("/account/password", data=data))
    assert message_for(password) in page
    assert auth.authenticate(NAME, PASSWORD) is not None


@pytest.mark.parametrize("password", WEAK)
def test_the_command_line_refuses_weak_passwords(app, db, sites, password):
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=["user", "create", NAME, "--role", "technician", "--password", password]
    )
    assert created.exit_code == 1
    assert message_for(password) in created.output
    auth.create_user(NAME, "technician", PASSWORD)
    db.session.commit()
    changed = runner.invoke(args=["user", "password", NAME, "--password", password])
    assert changed.exit_code == 1
    assert message_for(password) in changed.output
    assert auth.authenticate(NAME, PASSWORD) is not None


def test_password_length_is_bounded_both_ways(db, sites):
    """At least 10 characters as before; at most 128, refused before zxcvbn, whose
    estimate grows with the length."""
    for password, message in [
        ("plum orchard " * 10, "at most 128 characters"),
        ("Xk9#vq2!", "at least 10 characters"),
    ]:
        with pytest.raises(Invalid) as refusal:
            auth.create_user(NAME, "technician", password)
        assert message in str(refusal.value.message)


def test_a_strong_password_is_accepted_where_a_weak_one_is_refused(app, db, login_as):
    admin = login_as("admin")
    data = {"username": NAME, "role": "technician", "site": "PAR"}
    refused(admin, admin.post("/users", data={**data, "password": "password123"}))
    assert admin.post("/users", data={**data, "password": STRONG}).status_code == 303
    assert auth.authenticate(NAME, STRONG) is not None
    runner = app.test_cli_runner()
    assert runner.invoke(args=["user", "password", NAME, "--password", "aaaaaaaaaa"]).exit_code
    result = runner.invoke(args=["user", "password", NAME, "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert auth.authenticate(NAME, PASSWORD) is not None


def test_the_minimum_score_is_a_setting(app, db, sites):
    app.config["PASSWORD_MIN_SCORE"] = 4
    with pytest.raises(Invalid):
        auth.create_user(NAME, "technician", "Tr0ub4dour&3xyz")
    app.config["PASSWORD_MIN_SCORE"] = 0
    assert auth.create_user(NAME, "technician", "aaaaaaaaaa").username == NAME
