"""The transaction rule (biobank/transaction.py): a request commits only when no refusal
happened; a refused form is answered by Post/Redirect/Get and writes nothing, even after a
failed flush; a GET never writes; a commit the database refuses is a message, not a 500."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from flask import has_request_context, url_for

from biobank.errors import Conflict
from biobank.extensions import db as _db
from biobank.sites import services as sites
from biobank.sites.models import Site
from biobank.web import kept_form, refuse
from tests.pages import refused


def site_codes() -> set[str]:
    _db.session.rollback()
    return set(_db.session.execute(sa.select(Site.code)).scalars())


@pytest.fixture
def probe(app, make_user):
    """Routes that break the rules on purpose, added before the first request."""

    def refuse_after_writing():
        sites.create_site("NEW", "Written, then refused", actor=None)
        return refuse(Conflict("Refused after a write."), url_for("probe_page"))

    def refuse_after_a_failed_flush():
        _db.session.add(Site(code="LIM", name="Same code twice"))
        try:
            _db.session.flush()  # LIM exists: the flush fails, the session must roll back
        except sa.exc.IntegrityError:
            return refuse(Conflict("Site LIM exists."), url_for("probe_page"))
        raise AssertionError("the flush should have failed")

    def write_on_get():
        sites.create_site("GET", "Written by a GET", actor=None)
        return "done"

    def succeed():
        sites.create_site("OK", "Written and kept", actor=None)
        return "done"

    def page():
        kept = kept_form()
        return f"kept name={kept.get('name')} refusal={kept.refusal}"

    app.add_url_rule("/probe/refuse", "probe_refuse", refuse_after_writing, methods=["POST"])
    app.add_url_rule("/probe/flush", "probe_flush", refuse_after_a_failed_flush, methods=["POST"])
    app.add_url_rule("/probe/get", "probe_get", write_on_get)
    app.add_url_rule("/probe/ok", "probe_ok", succeed, methods=["POST"])
    app.add_url_rule("/probe/page", "probe_page", page)
    for endpoint in ("probe_refuse", "probe_flush", "probe_get", "probe_ok", "probe_page"):
        app.view_functions[endpoint].required_permission = None
    _db.session.commit()
    return app.test_client()


def test_a_refused_form_redirects_and_writes_nothing(probe, sites):
    response = probe.post("/probe/refuse", data={"name": "typed"})
    assert response.status_code == 303 and response.location.endswith("/probe/page")
    assert "NEW" not in site_codes()
    page = probe.get(response.location).get_data(as_text=True)
    assert "kept name=typed" in page and "Refused after a write." in page


def test_a_refusal_after_a_failed_flush_is_a_message_not_a_500(probe, sites):
    response = probe.post("/probe/flush", data={"name": "x"})
    assert response.status_code == 303
    assert "Site LIM exists." in probe.get(response.location).get_data(as_text=True)
    assert site_codes() == {"BIO", "LIM", "PAR"}


def test_what_was_typed_is_shown_once_and_a_reload_starts_afresh(probe, sites):
    response = probe.post("/probe/refuse", data={"name": "typed", "password": "secret"})
    first = probe.get(response.location).get_data(as_text=True)
    assert "kept name=typed" in first
    again = probe.get(response.location).get_data(as_text=True)
    assert "kept name= " in again and "refusal=None" in again


def test_passwords_and_tokens_are_never_kept_in_the_session(probe, sites):
    probe.post("/probe/refuse", data={"name": "n", "password": "hunter2", "csrf_token": "t"})
    with probe.session_transaction() as session:
        kept = dict(session["kept_form"]["data"])
    assert kept == {"name": "n"}


def test_a_long_text_does_not_overflow_the_session_cookie(probe, sites):
    response = probe.post("/probe/refuse", data={"name": "n", "aim": "x" * 6000})
    cookie = response.headers["Set-Cookie"]
    assert len(cookie) < 4096
    assert "kept name=n" in probe.get(response.location).get_data(as_text=True)


def test_a_get_never_writes(probe, sites):
    assert probe.get("/probe/get").status_code == 200
    assert "GET" not in site_codes()


def test_a_request_without_refusal_commits(probe, sites):
    assert probe.post("/probe/ok").status_code == 200
    assert "OK" in site_codes()


def test_a_commit_the_database_refuses_is_a_503_with_a_message(probe, sites, app):
    def drop_connection(session):
        if has_request_context():  # the test client's own commit before the request passes
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    sa.event.listen(_db.session, "before_commit", drop_connection)
    try:
        response = probe.post("/probe/ok")
    finally:
        sa.event.remove(_db.session, "before_commit", drop_connection)
    assert response.status_code == 503
    assert "nothing was saved" in response.get_data(as_text=True)
    assert "OK" not in site_codes()


def test_each_request_and_each_refusal_is_logged_with_its_request_id(probe, sites, caplog):
    caplog.set_level(logging.INFO, logger="biobank")
    response = probe.post(
        "/probe/refuse", data={"name": "Secret Name"}, headers={"X-Request-ID": "bench-42-abc"}
    )
    assert response.headers["X-Request-ID"] == "bench-42-abc"
    lines = [r.getMessage() for r in caplog.records]
    assert any("refused conflict: Refused after a write." in line for line in lines)
    assert any(line.startswith("POST /probe/refuse probe_refuse 303") for line in lines)
    assert all(getattr(r, "request_id", None) == "bench-42-abc" for r in caplog.records)
    assert not any("Secret Name" in line for line in lines)  # form values are never logged


def test_a_request_id_that_is_not_one_is_replaced(probe, sites):
    response = probe.get("/probe/page", headers={"X-Request-ID": "x forged <log> line"})
    assert " " not in response.headers["X-Request-ID"]
    assert len(response.headers["X-Request-ID"]) == 16


def test_the_refused_page_of_a_real_form_keeps_its_values(login_as, sites, protocol):
    admin = login_as("admin")
    response = admin.post(
        "/sites", data={"code": "lim", "name": "Again", "timezone": "Europe/Paris"}
    )
    page = refused(admin, response)
    assert "Site LIM already exists." in page and 'value="Again"' in page


def test_a_write_lock_held_past_the_busy_timeout_is_a_503_not_a_500(probe, sites, app):
    """On SQLite a writing request takes the write lock at its start: when another
    connection keeps it past the busy timeout, the request is told nothing was saved."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("sqlite"):
        pytest.skip("the write lock is SQLite's")
    import sqlite3

    app.config["SQLITE_BUSY_TIMEOUT_MS"] = 100
    _db.session.commit()
    _db.engine.dispose()  # new connections take the short timeout
    writer = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another request in the middle of its write
        response = probe.post("/probe/ok")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert response.status_code == 503
    assert "nothing was saved" in response.get_data(as_text=True)
    assert "OK" not in site_codes()
