"""Guessing passwords through the login page: failed sign-ins are counted per account and
per address and, past the limits, refused before any password is checked; a flood of
sign-ins cannot take every core from the scans and the API."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace

import limits.storage.memory
import pytest
from flask.testing import FlaskClient

import biobank.auth.services as auth_services
from biobank import create_app
from biobank.auth import throttle
from biobank.errors import TooManyAttempts
from biobank.extensions import db as _db
from tests import factories
from tests.conftest import PASSWORD, IsolatedClient, _settings

WRONG = "not the password at all"


class FakeClock:
    """time.time() for the throttle and the limits library's memory storage."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    monkeypatch.setattr(throttle, "time", fake)
    return fake


@pytest.fixture
def hashes(monkeypatch):
    """Every password hash comparison the sign-in runs, and the most running at once."""
    real = auth_services.check_password_hash
    lock = threading.Lock()
    seen = SimpleNamespace(calls=0, running=0, most=0)

    def spy(pwhash, password):
        with lock:
            seen.calls += 1
            seen.running += 1
            seen.most = max(seen.most, seen.running)
        try:
            return real(pwhash, password)
        finally:
            with lock:
                seen.running -= 1

    monkeypatch.setattr(auth_services, "check_password_hash", spy)
    return seen


def reconfigure(app, **settings):
    app.config.update(settings)
    throttle.init_app(app)


@pytest.fixture
def accounts(db, make_user):
    def make(count: int = 1) -> list[str]:
        names = [make_user("technician").username for _ in range(count)]
        db.session.commit()
        return names

    return make


def sign_in(client, username, password=WRONG, **kwargs):
    return client.post("/login", data={"username": username, "password": password}, **kwargs)


def message(client) -> str:
    return client.get("/login").get_data(as_text=True)


def signed_in(client) -> bool:
    return client.get("/scan").status_code == 200


def test_the_sixth_wrong_password_and_then_the_right_one_are_refused_unchecked(
    client, accounts, hashes, clock
):
    (name,) = accounts()
    for _ in range(5):
        assert sign_in(client, name).status_code == 303
        assert "wrong password" in message(client)
    assert hashes.calls == 5

    refused = sign_in(client, name)
    assert refused.status_code == 303
    assert "Too many failed sign-ins for this account. Try again in 1 minute." in message(client)
    right = sign_in(client, name, PASSWORD)
    assert right.status_code == 303
    assert right.headers["Location"].startswith("/login")
    assert "Too many failed sign-ins for this account." in message(client)
    assert not signed_in(client)
    assert hashes.calls == 5  # neither attempt ran scrypt


def test_the_wait_grows_with_the_failures_and_a_success_does_not_clear_them(
    client, accounts, hashes, clock
):
    (name,) = accounts()
    first = clock.now
    for round_ in range(4):  # 4 × 5 failures, a minute apart: the hour's 20 are spent
        if round_ == 3:
            # The owner signs in, rightly, in between: the failures still count.
            assert sign_in(client, name, PASSWORD).headers["Location"] == "/"
            client.post("/logout")
        for _ in range(5):
            sign_in(client, name)
        clock.advance(61)
    assert hashes.calls == 21

    sign_in(client, name)
    left = 3600 - (clock.now - first)  # until the first failure leaves the hour
    minutes = int(-(-left // 60))
    assert minutes == 56
    assert f"for this account. Try again in {minutes} minutes." in message(client)
    assert sign_in(client, name, PASSWORD).headers["Location"].startswith("/login")
    clock.advance(left)
    assert sign_in(client, name, PASSWORD).headers["Location"] == "/"
    assert hashes.calls == 22


def test_the_day_limit_speaks_in_hours(app, client, accounts, clock):
    reconfigure(app, LOGIN_LIMITS_PER_ACCOUNT="3 per minute; 6 per day")
    (name,) = accounts()
    for _ in range(2):
        for _ in range(3):
            sign_in(client, name)
        clock.advance(61)
    sign_in(client, name)
    assert "Try again in 24 hours." in message(client)


def test_the_window_expires(client, accounts, hashes, clock):
    (name,) = accounts()
    for _ in range(5):
        sign_in(client, name)
    clock.advance(30)
    assert sign_in(client, name, PASSWORD).headers["Location"].startswith("/login")
    assert "Try again in 1 minute." in message(client)
    clock.advance(31)  # the first failure leaves the minute's window
    assert sign_in(client, name, PASSWORD).headers["Location"] == "/"
    assert signed_in(client)
    assert hashes.calls == 6


def test_a_locked_account_does_not_lock_another_but_the_address_limit_does(
    client, accounts, hashes, clock
):
    first, *others, last = accounts(5)
    for _ in range(6):
        sign_in(client, first)
    assert "for this account" in message(client)

    # Same address, another account: its own count, not the first account's.
    sign_in(client, others[0])
    assert "wrong password" in message(client)
    calls = hashes.calls
    # 20 failures from this address within the minute (5 + 1 + 4 + 5 + 5).
    for name in others:
        for _ in range(5 if name != others[0] else 4):
            sign_in(client, name)
    assert hashes.calls == calls + 14
    assert sign_in(client, last, PASSWORD).headers["Location"].startswith("/login")
    assert "Too many failed sign-ins from this network address. Try again in 1 minute." in (
        message(client)
    )
    assert hashes.calls == calls + 14

    # Another address is not concerned.
    elsewhere = client.application.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert sign_in(elsewhere, last, PASSWORD).headers["Location"] == "/"


def test_a_forged_forwarded_for_does_not_escape_the_address_limit(client, accounts, hashes, clock):
    """Without a proxy declared (PROXY_HOPS = 0), X-Forwarded-For is the client's to
    write: believing it would give an attacker a new address per guess."""
    *names, last = accounts(5)
    for i, name in enumerate(names):
        for j in range(5):
            client.post(
                "/login",
                data={"username": name, "password": WRONG},
                headers={"X-Forwarded-For": f"10.9.{i}.{j}"},
            )
    assert hashes.calls == 20
    client.post(
        "/login",
        data={"username": last, "password": PASSWORD},
        headers={"X-Forwarded-For": "10.9.9.9"},
    )
    assert "from this network address" in message(client)
    assert hashes.calls == 20


def test_behind_a_declared_proxy_each_client_address_counts_alone(app, accounts, clock):
    settings = _settings(app.config["SQLALCHEMY_DATABASE_URI"])
    proxied = create_app({**settings, "PROXY_HOPS": 1, "LOGIN_LIMITS_PER_ADDRESS": "3 per minute"})
    proxied.test_client_class = IsolatedClient
    first, second = accounts(2)
    client = proxied.test_client()
    for _ in range(3):
        sign_in(client, first, headers={"X-Forwarded-For": "10.1.1.1"})
    assert "wrong password" in message(client)
    sign_in(client, second, headers={"X-Forwarded-For": "10.1.1.1"})
    assert "from this network address" in message(client)
    # Another client behind the same proxy.
    assert (
        sign_in(client, second, PASSWORD, headers={"X-Forwarded-For": "10.1.1.2"}).headers[
            "Location"
        ]
        == "/"
    )
    with proxied.app_context():
        _db.engine.dispose()


def test_unknown_names_are_throttled_alike_and_still_hashed(client, hashes, clock):
    """The refusal does not tell a real account from an unknown name, and an unknown name
    costs the same password check (the dummy hash) as a real one."""
    for _ in range(5):
        sign_in(client, "nobody.here")
    assert hashes.calls == 5
    sign_in(client, "nobody.here")
    assert "Too many failed sign-ins for this account. Try again in 1 minute." in message(client)
    assert hashes.calls == 5


def test_the_refusal_is_logged_without_the_password(client, accounts, caplog, clock):
    (name,) = accounts()
    for _ in range(5):
        sign_in(client, name)
    with caplog.at_level(logging.WARNING, logger="biobank"):
        sign_in(client, name, "Secret-Guess-42")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    line = warnings[0].getMessage()
    assert name in line and "127.0.0.1" in line and "5 per 1 minute" in line
    assert "account" in line
    assert "Secret-Guess-42" not in caplog.text and WRONG not in caplog.text


def test_successful_sign_ins_are_never_counted(client, accounts, hashes):
    (name,) = accounts()
    for _ in range(30):
        assert sign_in(client, name, PASSWORD).headers["Location"] == "/"
        client.post("/logout")
    assert hashes.calls == 30


def test_a_full_house_of_password_checks_is_refused_as_busy_without_hashing(
    app, client, accounts, hashes
):
    reconfigure(app, PASSWORD_CHECKS_AT_ONCE=1, PASSWORD_CHECK_WAIT=0.05)
    (name,) = accounts()
    slots = app.extensions[throttle.EXTENSION].checks
    assert slots.acquire(timeout=1)  # another sign-in is being checked
    try:
        response = sign_in(client, name, PASSWORD)
    finally:
        slots.release()
    assert response.headers["Location"].startswith("/login")
    assert "The server is busy signing other people in; try again in a few seconds." in (
        message(client)
    )
    assert hashes.calls == 0
    assert sign_in(client, name, PASSWORD).headers["Location"] == "/"


def test_password_checks_at_once_are_bounded(app):
    """However many threads ask, no more than PASSWORD_CHECKS_AT_ONCE checks run at once;
    the others wait their turn, or are refused once PASSWORD_CHECK_WAIT has passed."""
    reconfigure(
        app,
        PASSWORD_CHECKS_AT_ONCE=2,
        PASSWORD_CHECK_WAIT=0.2,
        LOGIN_LIMITS_PER_ACCOUNT="1000 per minute",
    )
    lock = threading.Lock()
    seen = SimpleNamespace(running=0, most=0, ran=0, busy=0)
    release = threading.Event()

    def slow_check():
        with lock:
            seen.running += 1
            seen.ran += 1
            seen.most = max(seen.most, seen.running)
        release.wait(1.5)
        with lock:
            seen.running -= 1
        return False

    def attempt(i):
        with app.app_context():
            try:
                throttle.verify(f"user{i}", "10.0.0.9", slow_check)
            except TooManyAttempts:
                with lock:
                    seen.busy += 1

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    release.set()
    assert seen.most == 2
    assert seen.ran == 2 and seen.busy == 6


def test_failed_sign_ins_from_eight_threads_leave_the_scan_answering(
    app, db, accounts, api_as, hashes
):
    reconfigure(
        app,
        LOGIN_LIMITS_PER_ACCOUNT="10000 per minute",
        LOGIN_LIMITS_PER_ADDRESS="10000 per minute",
        PASSWORD_CHECKS_AT_ONCE=2,
        PASSWORD_CHECK_WAIT=30,
    )
    (name,) = accounts()
    factories.participant("LIM", code="LIM-001")
    barcode = factories.visit("LIM-001").aliquots[0].barcode
    scanner = api_as("technician")
    token = scanner.environ_base["HTTP_AUTHORIZATION"]
    db.session.commit()
    statuses = []

    def attacker(i):
        client = FlaskClient(app, app.response_class, use_cookies=True)
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{i}"
        for _ in range(4):
            statuses.append(sign_in(client, name if i % 2 else f"ghost{i}").status_code)

    threads = [threading.Thread(target=attacker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while hashes.calls < 4 and time.monotonic() < deadline:  # the flood is on
            time.sleep(0.02)
        reader = FlaskClient(app, app.response_class)
        scans = [
            reader.get(f"/api/v1/aliquots/{barcode}", headers={"Authorization": token})
            for _ in range(5)
        ]
        during = hashes.calls
    finally:
        for thread in threads:
            thread.join(120)
    assert [scan.status_code for scan in scans] == [200] * 5
    assert scans[-1].get_json()["barcode"] == barcode
    assert 4 <= during < 32, "the scans were made while the sign-ins were being checked"
    assert statuses == [303] * 32 and hashes.calls == 32
    assert hashes.most <= 2


def test_the_api_answers_429_with_retry_after(app, client):
    @app.route("/api/v1/test-throttled")
    def throttled():
        raise TooManyAttempts("Too many.", retry_after=240)

    response = client.get("/api/v1/test-throttled")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "240"
    assert response.get_json()["error"]["code"] == "too_many_attempts"


def test_no_api_route_takes_a_password(app):
    """The login page is the one place a password is checked: the API takes bearer
    tokens only, so it needs no throttle of its own."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        assert "password" not in rule.rule and "login" not in rule.rule
    spec = app.test_client().get("/api/v1/openapi.json").get_data(as_text=True)
    assert "password" not in spec.lower()


def test_a_storage_that_cannot_count_stops_the_start(app):
    with pytest.raises(RuntimeError, match="redis://"):
        reconfigure(app, RATELIMIT_STORAGE_URI="sqlite:///instance/limits.sqlite3")


def test_an_unreachable_storage_falls_back_to_counting_in_the_process(
    app, client, accounts, hashes, caplog
):
    reconfigure(
        app,
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1",
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.5},
    )
    (name,) = accounts()
    with caplog.at_level(logging.ERROR, logger="biobank"):
        for _ in range(6):
            sign_in(client, name)
    assert "Too many failed sign-ins for this account." in message(client)
    assert hashes.calls == 5
    assert "did not answer" in caplog.text and "127.0.0.1:1" not in caplog.text


def test_a_sign_in_does_not_wait_for_the_write_lock(app, client, accounts, database_url):
    """Checking a password takes a while: on SQLite a sign-in must not hold (nor wait for)
    the one write lock, or a burst of failed sign-ins would stop every scan's write."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the write lock is SQLite's")
    import sqlite3

    (name,) = accounts()
    app.config["SQLITE_BUSY_TIMEOUT_MS"] = 200
    writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another request in the middle of its write
        response = sign_in(client, name, PASSWORD)
        assert response.status_code == 303
        assert response.headers["Location"].endswith("/")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert signed_in(client)
