"""Forging a session with a known key: the application has no default key, whatever
BIOBANK_ENV says; without a configured key it makes its own, kept in the instance folder
for its owner only, and it refuses short keys and a key file others can read."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from flask import Flask

from biobank.secret_key import MIN_KEY_BYTES, SecretKeyError, instance_key
from tests.conftest import PASSWORD

SHIPPED_DEFAULT = "dev-only-not-secret"


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """An empty instance folder of its own, and no key in the environment."""
    folder = tmp_path / "instance"
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(folder))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("BIOBANK_ENV", raising=False)
    return folder


@pytest.fixture
def make_app(database_url, instance, new_apps):
    return lambda **settings: new_apps({"SQLALCHEMY_DATABASE_URI": database_url, **settings})


@pytest.fixture
def username(db, make_user):
    name = make_user("technician").username
    db.session.commit()
    return name


def forged_session(make_app, username) -> str:
    """A session cookie signed with the key that shipped as the default: what anyone who
    read the source could make."""
    forger = make_app(TESTING=True, SECRET_KEY=SHIPPED_DEFAULT, WTF_CSRF_ENABLED=False)
    client = forger.test_client()
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.headers["Location"] == "/"
    assert client.get("/scan").status_code == 200  # the cookie works where the key is known
    return client.get_cookie("session").value


@pytest.mark.parametrize("env", [None, "Production", "prod", "production"])
def test_without_a_key_the_app_makes_its_own_and_a_forged_cookie_is_refused(
    monkeypatch, instance, make_app, username, env
):
    if env is not None:
        monkeypatch.setenv("BIOBANK_ENV", env)
    cookie = forged_session(make_app, username)

    app = make_app()
    key_file = instance / "secret_key"
    key = key_file.read_text().strip()
    assert app.secret_key == key != SHIPPED_DEFAULT
    assert len(key.encode()) >= MIN_KEY_BYTES
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    client = app.test_client()
    client.set_cookie("session", cookie)
    response = client.get("/scan")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")

    again = make_app(WTF_CSRF_ENABLED=False)
    assert again.secret_key == key  # the next start signs with the same key
    client = again.test_client()
    assert (
        client.post("/login", data={"username": username, "password": PASSWORD}).status_code == 303
    )
    # A session made before a restart still works after it: people stay signed in.
    restarted = make_app().test_client()
    restarted.set_cookie("session", client.get_cookie("session").value)
    assert restarted.get("/scan").status_code == 200


@pytest.mark.parametrize("key", [SHIPPED_DEFAULT, "x" * (MIN_KEY_BYTES - 1), "é" * 15])
def test_a_short_key_is_refused_at_start_outside_testing(make_app, key):
    with pytest.raises(SecretKeyError, match=r"SECRET_KEY is \d+ bytes long"):
        make_app(SECRET_KEY=key)
    with pytest.raises(SecretKeyError):
        make_app(SECRET_KEY=key, BIOBANK_ENV="production")


def test_a_short_key_from_the_environment_is_refused(monkeypatch, make_app):
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(SecretKeyError, match="SECRET_KEY"):
        make_app()


def test_a_long_configured_key_is_used_and_no_file_is_made(make_app, instance):
    key = "k" * MIN_KEY_BYTES
    assert make_app(SECRET_KEY=key).secret_key == key
    assert not (instance / "secret_key").exists()


def test_tests_may_use_a_short_key(make_app):
    assert make_app(SECRET_KEY="test-secret", TESTING=True).secret_key == "test-secret"


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(make_app, instance, mode):
    instance.mkdir(exist_ok=True)
    key_file = instance / "secret_key"
    key_file.write_text("k" * 64)
    key_file.chmod(mode)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        make_app()


def test_an_empty_key_file_is_refused(make_app, instance, monkeypatch):
    monkeypatch.setattr("biobank.secret_key.WRITE_GRACE_SECONDS", 0.1)
    instance.mkdir(exist_ok=True)
    key_file = instance / "secret_key"
    key_file.touch(mode=0o600)
    key_file.chmod(0o600)
    with pytest.raises(SecretKeyError, match="is empty"):
        make_app()


def test_workers_starting_together_share_one_key(tmp_path):
    path = tmp_path / "secret_key"
    start = threading.Barrier(8)
    keys = []

    def worker():
        start.wait()
        keys.append(instance_key(path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(keys) == 8 and len(set(keys)) == 1
    assert keys[0] == path.read_text().strip()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_key_file_is_private_whatever_the_umask(tmp_path):
    previous = os.umask(0)
    try:
        instance_key(tmp_path / "secret_key")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
