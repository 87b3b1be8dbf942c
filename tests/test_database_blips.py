"""A database that drops its connections (a restart, a failover, pg_terminate_backend)
never makes a 500 (biobank/transaction.py): the pool tests a connection before lending
it, a read that loses its connection half-way is run once more and answers as usual, a
write that cannot complete answers 503 with Retry-After and has written nothing.

On PostgreSQL the sessions are really ended, by a second connection running
pg_terminate_backend; the retry rule itself is also checked on SQLite, with a lost
connection as SQLAlchemy reports it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import psycopg
import pytest
import sqlalchemy as sa
from flask import has_request_context

from biobank.custody.models import CustodyEvent
from biobank.extensions import db as _db
from biobank.samples import services as samples
from biobank.samples.models import Aliquot
from biobank.sites import services as site_services
from biobank.sites.models import Site
from biobank.storage import services as storage
from tests import factories

THREADS = 4
REQUESTS_PER_THREAD = 50
ROUNDS = 3
JOIN_SECONDS = 300
# Ends every other session of the test database, as a failover or a restart does; waits
# (up to 5 s each) until the sessions are gone.
END_SESSIONS = (
    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@pytest.fixture
def postgresql(app):
    """The URL of the PostgreSQL test database, for a plain psycopg connection."""
    if _db.engine.dialect.name != "postgresql":
        pytest.skip(
            "ends PostgreSQL sessions with pg_terminate_backend: an SQLite file has no server "
            "connection to lose (the PostgreSQL run of the suite executes these)"
        )
    url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def end_sessions(url: str) -> int:
    """End every session of the database but this one's; how many were ended."""
    with psycopg.connect(url, autocommit=True) as connection:
        return sum(bool(ended) for (ended,) in connection.execute(END_SESSIONS))


@pytest.fixture
def tubes(db, sites):
    factories.participant("LIM", code="LIM-001")
    barcodes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
    factories.freezer({"BX-0001": "Box 1"})
    db.session.commit()
    return barcodes


@pytest.fixture
def troubles(caplog):
    """The log records a lost connection must never make: errors, and tracebacks at any
    level."""
    caplog.set_level(logging.WARNING)

    def found():
        return [
            f"{r.name} {r.levelname}: {r.getMessage()}"
            for r in caplog.records
            if r.levelno >= logging.ERROR or r.exc_info
        ]

    return found


def warnings_about_the_database(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("biobank") and "database" in r.getMessage()
    ]


# The test's own reads end their transaction, so that the test's session holds no
# connection when the sessions are ended.


def volume_and_events(barcode: str) -> tuple[int, int]:
    _db.session.rollback()
    volume, aliquot_id = _db.session.execute(
        sa.select(Aliquot.volume_ul, Aliquot.id).where(Aliquot.barcode == barcode)
    ).one()
    events = _db.session.execute(
        sa.select(sa.func.count()).where(CustodyEvent.aliquot_id == aliquot_id)
    ).scalar()
    _db.session.rollback()
    return volume, events


def site_codes() -> set[str]:
    _db.session.rollback()
    codes = set(_db.session.execute(sa.select(Site.code)).scalars())
    _db.session.rollback()
    return codes


class Calls:
    """Wraps a function the request calls: counts the calls and runs ``before`` (with the
    call's number, from 1) ahead of the first ``times`` of them."""

    def __init__(self, function, before, times=1):
        self.function, self.before, self.times, self.count = function, before, times, 0

    def __call__(self, *args, **kwargs):
        self.count += 1
        if self.count <= self.times:
            self.before(self.count)
        return self.function(*args, **kwargs)


def ends_own_session(url):
    """Inside a request: end every session, the request's own included (it holds one, in
    a transaction), as a failover would half-way through."""

    def end(_call):
        _db.session.execute(sa.select(1))  # the request's connection is taken
        assert end_sessions(url) >= 1

    return end


def lost_connection(error_class=sa.exc.OperationalError):
    """What SQLAlchemy raises when the server closed a connection it had lent."""
    return error_class(
        "SELECT aliquot.id FROM aliquot",
        {},
        Exception("server closed the connection unexpectedly"),
        connection_invalidated=True,
    )


def raises(error):
    def fail(_call):
        raise error

    return fail


def assert_unavailable(response, *, api: bool):
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "5"
    if api:
        error = response.get_json()["error"]
        assert error["code"] == "database_unavailable"
        assert "nothing was saved" in error["message"]
    else:
        assert "nothing was saved" in response.get_data(as_text=True)


# --- on PostgreSQL, with sessions really ended ----------------------------------------


def test_the_pool_tests_a_connection_before_lending_it(app, postgresql, api_as, tubes, caplog):
    """Sessions ended between two requests: the next one is answered without noticing."""
    client = api_as("technician")
    assert client.get(f"/api/v1/aliquots/{tubes[0]}").status_code == 200
    caplog.set_level(logging.WARNING)
    _db.session.commit()
    assert end_sessions(postgresql) >= 1  # the pool's idle connections among them
    response = client.get(f"/api/v1/aliquots/{tubes[0]}")
    assert response.status_code == 200 and response.get_json()["barcode"] == tubes[0]
    assert warnings_about_the_database(caplog) == []  # found dead at checkout, not half-way


def test_an_api_read_that_loses_its_connection_is_answered_as_usual(
    app, postgresql, api_as, tubes, monkeypatch, caplog, troubles
):
    client = api_as("technician")
    scan = Calls(samples.scan_aliquot, ends_own_session(postgresql))
    monkeypatch.setattr(samples, "scan_aliquot", scan)
    response = client.get(f"/api/v1/aliquots/{tubes[0]}", headers={"X-Request-ID": "scan-0001"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["barcode"] == tubes[0]
    assert "Retry-After" not in response.headers
    assert scan.count == 2  # run once more, on a fresh connection
    assert response.headers["X-Request-ID"] == "scan-0001"
    lines = warnings_about_the_database(caplog)
    assert len(lines) == 1 and "run once more" in lines[0], lines
    assert troubles() == []


def test_a_read_whose_connection_is_lost_once_its_answer_is_ready_is_answered(
    app, postgresql, api_as, tubes, monkeypatch, caplog, troubles
):
    """The session is ended after the request's last statement: its transaction cannot
    even be rolled back, and the answer is sent all the same."""
    client = api_as("technician")
    scan_aliquot = samples.scan_aliquot

    def scan_then_end(*args, **kwargs):
        found = scan_aliquot(*args, **kwargs)
        ends_own_session(postgresql)(1)
        return found

    monkeypatch.setattr(samples, "scan_aliquot", scan_then_end)
    response = client.get(f"/api/v1/aliquots/{tubes[0]}")
    assert response.status_code == 200 and response.get_json()["barcode"] == tubes[0]
    monkeypatch.undo()
    assert client.get(f"/api/v1/aliquots/{tubes[0]}").status_code == 200
    assert warnings_about_the_database(caplog) == []
    assert troubles() == []


def test_a_page_that_loses_its_connection_is_drawn_as_usual(
    app, postgresql, login_as, tubes, monkeypatch, troubles
):
    bench = login_as("technician")
    overview = Calls(storage.overview, ends_own_session(postgresql))
    monkeypatch.setattr(storage, "overview", overview)
    response = bench.get("/storage")
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert "Freezer −80 n°1" in page and "BX-0001" in page
    assert bench.user.username in page  # the signed-in page, not an anonymous one
    assert overview.count == 2
    assert troubles() == []


def test_a_read_whose_connection_is_lost_twice_is_a_503_not_a_500(
    app, postgresql, api_as, tubes, monkeypatch, troubles
):
    client = api_as("technician")
    scan = Calls(samples.scan_aliquot, ends_own_session(postgresql), times=2)
    monkeypatch.setattr(samples, "scan_aliquot", scan)
    response = client.get(f"/api/v1/aliquots/{tubes[0]}")
    assert_unavailable(response, api=True)
    assert scan.count == 2  # once more, never twice more
    assert troubles() == []


def test_an_api_write_that_loses_its_connection_is_a_503_and_writes_nothing(
    app, postgresql, api_as, tubes, monkeypatch, troubles
):
    client = api_as("technician")
    before = volume_and_events(tubes[0])
    # The correction is flushed (the volume and a custody event), then the session is
    # ended before the request reads the tube back.
    correct = Calls(samples.correct_volume, lambda _: None)
    monkeypatch.setattr(samples, "correct_volume", correct)
    scan = Calls(samples.scan_aliquot, ends_own_session(postgresql))
    monkeypatch.setattr(samples, "scan_aliquot", scan)
    response = client.post(
        f"/api/v1/aliquots/{tubes[0]}/volume-corrections",
        json={"volume_ul": 123, "reason": "weighed"},
    )
    assert_unavailable(response, api=True)
    assert correct.count == 1 and scan.count == 1  # a write is never run again
    assert volume_and_events(tubes[0]) == before
    assert troubles() == []


@pytest.mark.parametrize("lost_at", ["statement", "commit"])
def test_a_page_form_that_loses_its_connection_is_a_503_page_and_writes_nothing(
    app, postgresql, login_as, sites, monkeypatch, troubles, lost_at
):
    admin = login_as("admin")
    create = Calls(site_services.create_site, lambda _: None)
    monkeypatch.setattr(site_services, "create_site", create)
    if lost_at == "statement":  # the site is flushed, then the next statement fails

        def create_then_read(*args, **kwargs):
            site = create(*args, **kwargs)
            ends_own_session(postgresql)(1)
            site_services.list_sites()
            return site

        monkeypatch.setattr(site_services, "create_site", create_then_read)
    else:  # the view ends well and the commit fails

        def end_before_commit(session):
            if has_request_context():
                end_sessions(postgresql)

        sa.event.listen(_db.session, "before_commit", end_before_commit)
    try:
        response = admin.post(
            "/sites", data={"code": "NEW", "name": "Nouveau centre", "timezone": "Europe/Paris"}
        )
    finally:
        if lost_at == "commit":
            sa.event.remove(_db.session, "before_commit", end_before_commit)
    assert_unavailable(response, api=False)
    assert admin.user.username in response.get_data(as_text=True)  # the usual error page
    assert create.count == 1
    assert "NEW" not in site_codes()
    assert troubles() == []


@dataclass
class Outcome:
    method: str
    url: str
    status: int
    retry_after: str | None
    volume: int | None = None


def test_many_requests_while_sessions_are_ended_three_times_make_no_500(
    app, postgresql, api_as, login_as, tubes, troubles
):
    """Four threads read and write through the API and the pages while another ends every
    session three times. Each round waits until every thread has finished a request since
    the last one, so that no single request meets two rounds."""
    aliquots = [a.barcode for a in factories.visit("LIM-001", "M2").aliquots]
    aliquots += [a.barcode for a in factories.visit("LIM-001", "M4").aliquots]
    assert len(aliquots) >= THREADS
    apis = [api_as("technician") for _ in range(THREADS)]
    pages = [login_as("technician") for _ in range(THREADS)]
    _db.session.commit()
    start = {b: volume_and_events(b) for b in aliquots[:THREADS]}

    ready = threading.Condition()
    finished = [0] * THREADS
    seen = [0] * THREADS  # `finished` when the last round was over
    rounds: list[int] = []  # sessions ended by each round
    outcomes: list[list[Outcome]] = [[] for _ in range(THREADS)]
    crashed: list[str] = []
    working = [THREADS]  # threads still sending requests

    def request(n: int, i: int) -> Outcome:
        barcode = aliquots[n]
        kind = i % 4
        if kind == 0:
            url = f"/api/v1/aliquots/{barcode}"
            response = apis[n].get(url)
        elif kind == 1:
            url = "/storage"
            response = pages[n].get(url)
        elif kind == 2:
            url = f"/api/v1/aliquots/{barcode}/volume-corrections"
            volume = 400 - i
            response = apis[n].post(url, json={"volume_ul": volume, "reason": "weighed"})
            return Outcome(
                "POST", url, response.status_code, response.headers.get("Retry-After"), volume
            )
        else:
            url = f"/api/v1/aliquots/{barcode}/custody"
            response = apis[n].get(url)
        return Outcome("GET", url, response.status_code, response.headers.get("Retry-After"))

    def work(n: int) -> None:
        try:
            with app.app_context():
                i = 0
                while i < REQUESTS_PER_THREAD or len(rounds) < ROUNDS:
                    if i >= 4 * REQUESTS_PER_THREAD:
                        break  # the ending thread is stuck: the count below tells
                    outcomes[n].append(request(n, i))
                    i += 1
                    with ready:
                        finished[n] += 1
                        ready.notify_all()
        except Exception as err:  # a request that raised is a failure to show
            crashed.append(f"thread {n}: {type(err).__name__}: {err}")
        finally:
            with ready:
                working[0] -= 1
                ready.notify_all()

    def end_rounds() -> None:
        gap = REQUESTS_PER_THREAD * THREADS // (ROUNDS + 1)
        for _ in range(ROUNDS):
            with ready:
                due = ready.wait_for(
                    lambda: (
                        not working[0]
                        or (
                            all(f > s for f, s in zip(finished, seen, strict=True))
                            and sum(finished) - sum(seen) >= gap
                        )
                    ),
                    timeout=JOIN_SECONDS,
                )
                if not due or not working[0]:
                    crashed.append("the threads stopped before the sessions were ended")
                    return
            ended = end_sessions(postgresql)
            with ready:
                seen[:] = finished
                rounds.append(ended)
                ready.notify_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    threads.append(threading.Thread(target=end_rounds))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_SECONDS)
    assert not any(t.is_alive() for t in threads), "a thread never finished"
    assert crashed == []
    assert len(rounds) == ROUNDS and all(ended >= 1 for ended in rounds), rounds

    everything = [o for per_thread in outcomes for o in per_thread]
    assert len(everything) >= THREADS * REQUESTS_PER_THREAD
    assert [o for o in everything if o.status >= 500 and o.status != 503] == []
    assert [o for o in everything if o.method == "GET" and o.status != 200] == []
    assert [o for o in everything if o.method == "POST" and o.status not in (200, 503)] == []
    assert all(o.retry_after == "5" for o in everything if o.status == 503)
    # Nothing half-written: each tube holds its last accepted volume, and one custody
    # event per accepted correction.
    for n in range(THREADS):
        accepted = [o for o in outcomes[n] if o.method == "POST" and o.status == 200]
        volume, events = volume_and_events(aliquots[n])
        assert events == start[aliquots[n]][1] + len(accepted)
        assert volume == (accepted[-1].volume if accepted else start[aliquots[n]][0])
    assert troubles() == []


# --- on any database: the rule, with the error SQLAlchemy raises ---------------------


@pytest.mark.parametrize("error_class", [sa.exc.OperationalError, sa.exc.InterfaceError])
def test_a_read_is_run_once_more_after_a_lost_connection(
    app, api_as, tubes, monkeypatch, caplog, troubles, error_class
):
    client = api_as("technician")
    scan = Calls(samples.scan_aliquot, raises(lost_connection(error_class)))
    monkeypatch.setattr(samples, "scan_aliquot", scan)
    response = client.get(f"/api/v1/aliquots/{tubes[0]}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["barcode"] == tubes[0]
    assert scan.count == 2
    assert any("run once more" in line for line in warnings_about_the_database(caplog))
    assert troubles() == []


def test_a_page_read_is_run_once_more_in_a_fresh_request(app, login_as, tubes, monkeypatch):
    bench = login_as("technician")
    overview = Calls(storage.overview, raises(lost_connection()))
    monkeypatch.setattr(storage, "overview", overview)
    response = bench.get("/storage")
    assert response.status_code == 200
    assert bench.user.username in response.get_data(as_text=True)
    assert overview.count == 2


def test_a_read_is_run_once_more_only_once(app, api_as, tubes, monkeypatch, troubles):
    client = api_as("technician")
    scan = Calls(samples.scan_aliquot, raises(lost_connection()), times=5)
    monkeypatch.setattr(samples, "scan_aliquot", scan)
    assert_unavailable(client.get(f"/api/v1/aliquots/{tubes[0]}"), api=True)
    assert scan.count == 2
    assert troubles() == []


def test_a_write_is_never_run_again_and_writes_nothing(app, api_as, tubes, monkeypatch, troubles):
    client = api_as("technician")
    before = volume_and_events(tubes[0])
    correct = Calls(samples.correct_volume, lambda _: None)
    monkeypatch.setattr(samples, "correct_volume", correct)
    scan = Calls(samples.scan_aliquot, raises(lost_connection()))
    monkeypatch.setattr(samples, "scan_aliquot", scan)
    response = client.post(
        f"/api/v1/aliquots/{tubes[0]}/volume-corrections",
        json={"volume_ul": 123, "reason": "weighed"},
    )
    assert_unavailable(response, api=True)
    assert correct.count == 1 and scan.count == 1
    assert volume_and_events(tubes[0]) == before
    assert troubles() == []


def test_a_commit_that_fails_answers_503_with_retry_after(app, login_as, sites):
    admin = login_as("admin")
    app.config["DATABASE_RETRY_AFTER_SECONDS"] = 12

    def drop_connection(session):
        if has_request_context():
            raise lost_connection()

    sa.event.listen(_db.session, "before_commit", drop_connection)
    try:
        response = admin.post(
            "/sites", data={"code": "NEW", "name": "Nouveau centre", "timezone": "Europe/Paris"}
        )
    finally:
        sa.event.remove(_db.session, "before_commit", drop_connection)
    assert response.status_code == 503 and response.headers["Retry-After"] == "12"
    assert "nothing was saved" in response.get_data(as_text=True)
    assert "NEW" not in site_codes()


def test_a_page_asked_while_the_database_is_away_is_a_503_not_a_500(
    app, login_as, sites, monkeypatch, troubles
):
    """The database refuses connections (a server restarting): even the signed-in
    account cannot be read, and the error page is drawn without it."""
    bench = login_as("technician")
    from biobank.auth import services as auth

    def refused(*args, **kwargs):
        raise sa.exc.OperationalError(
            "SELECT 1", {}, Exception("connection refused"), connection_invalidated=False
        )

    monkeypatch.setattr(auth, "session_principal", refused)
    response = bench.get("/storage")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "nothing was saved" in response.get_data(as_text=True)
    assert troubles() == []
