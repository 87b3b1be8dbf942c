"""/api/v1/health (the process is up) and /api/v1/health/ready (the database answers and
its schema is at the migrations' head), as a proxy or a monitoring machine asks them: no
token, no cookie."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask_migrate import stamp

from biobank import MIGRATIONS, create_app

READY = "/api/v1/health/ready"
HEALTH = "/api/v1/health"


def _migrations() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def _head() -> str:
    (head,) = _migrations().get_heads()
    return head


def _app_on(url: str, **settings):
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "test-secret-test-secret-test-secret",
            **settings,
        }
    )


def _refusal(response, code: str) -> str:
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    error = response.get_json()["error"]
    assert error["code"] == code
    assert "Set-Cookie" not in response.headers
    return error["message"]


def test_ready_on_a_migrated_database(client):
    response = client.get(READY)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "revision": _head()}
    assert "Set-Cookie" not in response.headers


def test_ready_needs_no_account_and_sets_no_cookie_for_one(login_as):
    signed_in = login_as("technician")
    response = signed_in.get(READY)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_not_ready_while_migrations_are_pending(app, client):
    head = _head()
    older = _migrations().get_revision(head).down_revision
    stamp(revision=older)
    try:
        message = _refusal(client.get(READY), "migrations_pending")
        assert older in message and head in message
        assert "flask db upgrade" in message
        assert client.get(HEALTH).status_code == 200
    finally:
        stamp(revision="head")
    assert client.get(READY).status_code == 200


def test_not_ready_on_a_database_migrated_by_a_later_release(app, db, client):
    later = "f0e1d2c3b4a5"  # a revision these migrations do not hold

    def record(revision: str) -> None:
        with db.engine.begin() as connection:
            update = sa.text("UPDATE alembic_version SET version_num = :revision")
            connection.execute(update, {"revision": revision})

    record(later)
    try:
        message = _refusal(client.get(READY), "migrations_pending")
        assert later in message and _head() in message
        assert "flask db upgrade" not in message
    finally:
        record(_head())  # alembic's stamp cannot start from a revision it does not know
    assert client.get(READY).status_code == 200


def test_not_ready_on_a_database_never_migrated(tmp_path):
    app = _app_on("sqlite:///" + str(tmp_path / "empty.sqlite3"))
    message = _refusal(app.test_client().get(READY), "migrations_pending")
    assert "none" in message and _head() in message


@pytest.mark.parametrize(
    "url",
    [
        # Nothing listens on port 1: the connection is refused at once.
        "postgresql+psycopg://postgres@127.0.0.1:1/biobank",
        "sqlite:////nonexistent-directory/biobank.sqlite3",
    ],
    ids=["postgresql-refused", "sqlite-unopenable"],
)
def test_a_dead_database_is_not_ready_but_the_process_is_up(url):
    client = _app_on(url).test_client()
    _refusal(client.get(READY), "database_unavailable")
    health = client.get(HEALTH)
    assert health.status_code == 200
    assert health.get_json() == {"status": "ok"}


def test_a_database_server_that_never_answers_is_refused_in_seconds():
    """A host that accepts the connection and then says nothing (a hung server, a firewall
    that swallows packets): without a connect timeout, libpq waits for ever and the worker
    thread with it."""
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(silent.accept()[0]), daemon=True).start()
    port = silent.getsockname()[1]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/biobank"
    app = _app_on(url, DATABASE_CONNECT_TIMEOUT_SECONDS=1)
    started = time.monotonic()
    try:
        _refusal(app.test_client().get(READY), "database_unavailable")
    finally:
        silent.close()
        for connection in held:
            connection.close()
    # Once, and once more for the read's retry on a fresh connection.
    assert time.monotonic() - started < 10


def test_a_database_failing_under_a_running_app_is_not_ready(app, client, monkeypatch):
    assert client.get(READY).status_code == 200

    def gone(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT 1", None, ConnectionError("server closed"))

    monkeypatch.setattr(sa.orm.Session, "execute", gone)
    _refusal(client.get(READY), "database_unavailable")
    assert client.get(HEALTH).status_code == 200
    monkeypatch.undo()
    assert client.get(READY).status_code == 200


def test_the_api_document_describes_both_checks(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "200" in paths[HEALTH]["get"]["responses"]
    assert {"200", "503"} <= set(paths[READY]["get"]["responses"])
