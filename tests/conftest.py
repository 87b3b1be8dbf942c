"""Fixtures: a migrated database per test, the app, clients logged in by role.

The suite runs on SQLite by default. With BIOBANK_TEST_DATABASE_URL set to a
PostgreSQL URL it runs, unchanged, against that database: the schema is migrated once
per run and every table is emptied after each test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from flask_migrate import upgrade
from hypothesis import settings

from biobank import create_app
from biobank.extensions import db as _db
from tests import factories

# Shared, noisy machines: a slow example is not a failure; correctness is what is tested.
settings.register_profile("biobank", deadline=None, print_blob=True)
settings.load_profile("biobank")

TEST_DATABASE_URL = os.environ.get("BIOBANK_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct horse battery"


def _settings(url: str) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test-secret",
        "SERVER_NAME": None,
    }


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory) -> str:
    """Apply every migration once, from an empty database; return its URL."""
    if TEST_DATABASE_URL:
        url = TEST_DATABASE_URL
        engine = sa.create_engine(url)
        try:
            with engine.connect():
                pass
        except sa.exc.OperationalError as err:  # a requested database is never skipped
            pytest.exit(f"BIOBANK_TEST_DATABASE_URL is unreachable: {err}", returncode=3)
        finally:
            engine.dispose()
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("template") / "template.sqlite3")
    app = create_app(_settings(url))
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    return url


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


@pytest.fixture
def database_url(migrated_database, tmp_path) -> str:
    """A database for one test: a copy of the migrated SQLite file, or the PostgreSQL
    database emptied after the test."""
    if _is_sqlite(migrated_database):
        template = Path(migrated_database.removeprefix("sqlite:///"))
        copy = tmp_path / "test.sqlite3"
        shutil.copyfile(template, copy)
        return "sqlite:///" + str(copy)
    return migrated_database


class IsolatedClient(FlaskClient):
    """Each request in an application context of its own, as in production.

    The tests hold an app context open to call services; without this, requests would
    share its ``g`` (Flask-Login caches the user there) and its database session. What
    the test set up is committed first: the request sees the database, not the test's
    session, and on SQLite an open transaction of the test would hold the write lock."""

    def open(self, *args, **kwargs):
        _db.session.commit()
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app(_settings(database_url))
    # What the commands and pages keep in the instance folder (the last custody
    # verification, inventory uploads) stays out of this checkout's.
    app.instance_path = str(tmp_path / "instance")
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        _db.session.remove()
        if not _is_sqlite(database_url):
            _empty_postgresql()
        _db.engine.dispose()


def _empty_postgresql() -> None:
    tables = [t.name for t in _db.metadata.sorted_tables]
    with _db.engine.begin() as connection:
        # TRUNCATE does not fire the row triggers that keep custody_event append-only.
        connection.exec_driver_sql(
            "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
        )


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def protocol(app):
    return factories.protocol()


@pytest.fixture
def sites(protocol):
    return factories.sites()


@pytest.fixture
def make_user(sites):
    def make(role: str, site: str | None = None, name: str | None = None):
        return factories.user(role, site=site, name=name, password=PASSWORD)

    return make


@pytest.fixture
def world(db, make_user):
    """Something for every URL parameter of the app's routes to name, for the tests that
    walk them all."""
    factories.participant("LIM", code="LIM-001")
    aliquot = factories.visit("LIM-001", "BL").aliquots[0]
    target = make_user("technician", name="target")
    db.session.commit()
    return {
        "code": "LIM-001",
        "visit_code": "BL",
        "barcode": aliquot.barcode,
        "username": target.username,
        "request_id": 1,
        "fmt": "pdf",
    }


@pytest.fixture
def login_as(app, make_user):
    """A test client logged in through the login form as a new user of ``role``."""

    def login(role: str, site: str | None = None):
        user = make_user(role, site=site)
        _db.session.commit()
        client = app.test_client()
        response = client.post("/login", data={"username": user.username, "password": PASSWORD})
        assert response.status_code == 303, response.get_data(as_text=True)
        client.user = user
        return client

    return login


@pytest.fixture
def api_as(app, make_user):
    """A test client sending a fresh bearer token of a new user of ``role``."""

    def as_role(role: str, site: str | None = None):
        user = make_user(role, site=site)
        token = factories.token(user)
        _db.session.commit()
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        client.user = user
        return client

    return as_role


def pytest_collection_modifyitems(config, items):
    # Browser tests last: they are the slowest and the least specific when they fail.
    items.sort(key=lambda item: "e2e" in item.keywords)
    if TEST_DATABASE_URL and not _is_sqlite(TEST_DATABASE_URL):
        # The pages' markup, keys and taps do not depend on the database: checked once, on
        # the SQLite suite, so that CI's two suites side by side stay within its budget.
        # Deselected, not skipped: they are not missing, they ran in the other suite.
        once = [item for item in items if "markup" in item.keywords]
        if once:
            config.hook.pytest_deselected(items=once)
            items[:] = [item for item in items if "markup" not in item.keywords]
