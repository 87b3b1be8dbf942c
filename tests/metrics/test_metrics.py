"""/metrics: who may read it, what it says, and the counts of several gunicorn workers
added up."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from biobank import create_app
from biobank.custody import verification
from biobank.db import utcnow
from biobank.extensions import db as _db
from biobank.notifications import services as notifications
from biobank.notifications.services import Retry
from biobank.samples.models import Aliquot
from biobank.storage import services as storage
from tests import factories
from tests.conftest import IsolatedClient

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-0123456789abcdef"


def samples_of(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, its labels): value} of a Prometheus text answer."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def scrape(client, **kwargs) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    return samples_of(response.get_data(as_text=True))


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples, name: str, **labels) -> float:
    """The sum of ``name`` over every series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def families(samples) -> set[str]:
    return {name for name, _ in samples}


@pytest.fixture
def configured(app):
    """An application on the same database with a token and a network allowed."""

    def make(**settings):
        other = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                "WTF_CSRF_ENABLED": False,
                "SECRET_KEY": "test-secret",
                **settings,
            }
        )
        other.test_client_class = IsolatedClient
        made.append(other)
        return other

    made = []
    yield make
    for other in made:
        with other.app_context():
            _db.engine.dispose()


# --- who may read it ------------------------------------------------------------------------


def test_the_allowed_addresses_read_the_metrics_any_other_finds_nothing(client):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    mapped = {"REMOTE_ADDR": "::ffff:127.0.0.1"}  # IPv4 seen through an IPv6 socket
    assert client.get("/metrics", environ_base=mapped).status_code == 200

    elsewhere = {"REMOTE_ADDR": "192.0.2.7"}
    hidden = client.get("/metrics", environ_base=elsewhere)
    unknown = client.get("/no-such-page", environ_base=elsewhere)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.mimetype == unknown.mimetype
    assert b"biobank_" not in hidden.data


def test_the_token_opens_the_metrics_from_anywhere_a_wrong_one_does_not(configured):
    app = configured(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_ADDRESSES=["10.9.0.0/16"])
    client = app.test_client()
    away = {"REMOTE_ADDR": "192.0.2.7"}

    def status(authorization=None, environ=away):
        headers = {"Authorization": authorization} if authorization else {}
        return client.get("/metrics", headers=headers, environ_base=environ).status_code

    assert status(f"Bearer {TOKEN}") == 200
    assert status(f"bearer {TOKEN}") == 200
    assert status(f"Bearer {TOKEN[:-1]}x") == 404
    assert status(f"Bearer {TOKEN}x") == 404
    assert status(f"Basic {TOKEN}") == 404
    assert status() == 404
    assert status(environ={"REMOTE_ADDR": "10.9.200.3"}) == 200  # inside the network
    assert status(environ={"REMOTE_ADDR": "127.0.0.1"}) == 404  # no longer listed


def test_without_a_token_configured_no_bearer_opens_the_metrics(client):
    away = {"REMOTE_ADDR": "192.0.2.7"}
    for authorization in ("Bearer ", "Bearer None", f"Bearer {TOKEN}"):
        answer = client.get("/metrics", headers={"Authorization": authorization}, environ_base=away)
        assert answer.status_code == 404


@pytest.mark.parametrize(
    "settings, named",
    [
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
        ({"METRICS_ALLOWED_ADDRESSES": ["127.0.0.1", "localhost"]}, "METRICS_ALLOWED_ADDRESSES"),
    ],
)
def test_a_mistaken_access_setting_stops_the_start(configured, settings, named):
    with pytest.raises(RuntimeError, match=named):
        configured(**settings)


def test_the_addresses_come_from_the_environment(monkeypatch):
    from biobank.config import from_environment

    monkeypatch.setenv("METRICS_ALLOWED_ADDRESSES", "10.0.0.5, 192.168.0.0/24 ::1")
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    settings = from_environment()
    assert settings["METRICS_ALLOWED_ADDRESSES"] == ["10.0.0.5", "192.168.0.0/24", "::1"]
    assert settings["METRICS_TOKEN"] == TOKEN


def test_a_scrape_sets_no_cookie_reads_no_account_and_writes_nothing(app, db, login_as, api_as):
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()).lower())

    signed_in = login_as("admin")
    with_token = api_as("technician")
    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        for client in (signed_in, with_token, app.test_client()):
            answer = client.get("/metrics")
            assert answer.status_code == 200
            assert "Set-Cookie" not in answer.headers
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    # The scrape's own reads only: the account and the token were never looked up.
    assert statements and {s.split()[0] for s in statements} <= {"select", "set"}
    assert not [s for s in statements if "user_account" in s or "api_token" in s]
    assert sum(s.startswith("select") for s in statements) == 3 * 3  # 3 reads a scrape


# --- what it says ---------------------------------------------------------------------------


def test_requests_are_counted_by_route_rule_and_status(client, api_as, world):
    before = scrape(client)
    api = api_as("technician")
    for _ in range(3):
        assert api.get(f"/api/v1/aliquots/{world['barcode']}").status_code == 200
    missing = api.get("/api/v1/aliquots/NOSUCHONE").status_code
    assert missing in (400, 404)
    assert client.get("/no-such-page").status_code == 404
    after = scrape(client)

    def grown(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    rule = "/api/v1/aliquots/<barcode>"
    assert grown("biobank_http_requests_total", route=rule, status="200", method="GET") == 3
    assert grown("biobank_http_requests_total", route=rule, status=str(missing)) == 1
    assert grown("biobank_http_requests_total", route="<unmatched>", status="404") == 1
    assert grown("biobank_http_request_duration_seconds_count", route=rule) == 4
    assert grown("biobank_http_request_duration_seconds_bucket", route=rule, le="+Inf") == 4
    # The route is the rule: no series names a tube.
    labels = {v for (_, ls) in after for _, v in ls}
    assert not [v for v in labels if world["barcode"] in v or "NOSUCHONE" in v]
    buckets = {
        float(dict(ls)["le"])
        for (n, ls) in after
        if n == "biobank_http_request_duration_seconds_bucket"
    }
    assert min(buckets) == 0.005 and max(buckets - {float("inf")}) == 10.0


@pytest.fixture
def bank(db, sites, tmp_path, app):
    """A visit's ten aliquots, four stored in a freezer that warmed an hour ago, one
    destroyed; an outbox with a message pending, one to be retried and one given up."""
    app.instance_path = str(tmp_path / "instance")
    factories.freezer({"BX-0001": "Box 1"})
    factories.participant("LIM", code="LIM-001")
    barcodes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
    for code in barcodes[:4]:
        storage.store(code, "BX-0001", actor=None)
    storage.destroy(barcodes[9], "Tube cracked", actor=None)
    ended = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    storage.record_excursion(
        "FR-0001", started_at=ended - timedelta(hours=2), ended_at=ended, highest_c=-41.5,
        actor=None,
    )  # fmt: skip

    class Down:
        delivers = True

        def send(self, message):
            raise ConnectionRefusedError(111, "Connection refused")

    notifications.notify("request.approved", ["a@chu.fr"], "given up", "b")
    notifications.deliver_pending(Down(), retry=Retry(max_attempts=1))
    notifications.notify("request.approved", ["b@chu.fr"], "retrying", "b")
    notifications.deliver_pending(Down(), retry=Retry(max_attempts=5))
    notifications.notify("request.approved", ["c@chu.fr"], "pending", "b")
    db.session.commit()
    return {"ended": ended}


def test_the_banks_state_is_read_at_the_scrape(bank, client, db):
    found = scrape(client)
    assert value(found, "biobank_scrape_database_up") == 1

    in_database = dict(
        db.session.execute(
            sa.select(Aliquot.status, sa.func.count()).group_by(Aliquot.status)
        ).all()
    )
    assert in_database == {"in_storage": 4, "registered": 5, "destroyed": 1}
    for status in ("registered", "in_storage", "destroyed", "shipped", "lost"):
        assert value(found, "biobank_aliquots", status=status) == in_database.get(status, 0)

    assert value(found, "biobank_outbox_messages", state="pending") == 1
    assert value(found, "biobank_outbox_messages", state="retrying") == 1
    assert value(found, "biobank_outbox_messages", state="failed") == 1

    assert value(found, "biobank_temperature_excursions_recent") == 1
    last_end = value(found, "biobank_temperature_excursion_last_end_timestamp_seconds")
    assert last_end == bank["ended"].timestamp()
    # Never verified on this machine: no verification to report.
    assert "biobank_custody_last_verification_timestamp_seconds" not in families(found)


def test_the_last_custody_verification_is_reported(bank, app, client):
    result = app.test_cli_runner().invoke(args=["custody", "verify"])
    assert result.exit_code == 0, result.output
    kept = verification.load(app.instance_path)
    assert kept is not None and kept.intact and kept.aliquots == 10

    found = scrape(client)
    assert value(found, "biobank_custody_last_verification_timestamp_seconds") == (
        kept.at.timestamp()
    )
    assert value(found, "biobank_custody_last_verification_intact") == 1
    assert value(found, "biobank_custody_last_verification_broken_chains") == 0


def test_an_unreadable_verification_file_is_left_out_of_the_scrape(app, client, tmp_path):
    app.instance_path = str(tmp_path)
    verification.path_in(tmp_path).write_text("{not json", encoding="utf-8")
    found = scrape(client)
    assert not [name for name in families(found) if "custody" in name]
    assert value(found, "biobank_scrape_database_up") == 1


def test_a_broken_chain_found_by_the_last_verification_is_reported(bank, app, db, client):
    # The log refuses changes: its triggers go first, as someone with DDL rights would.
    postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        db.session.execute(sa.text("ALTER TABLE custody_event DISABLE TRIGGER USER"))
    else:  # each SQLite test has its own copy of the database
        db.session.execute(sa.text("DROP TRIGGER custody_event_no_update"))
    try:
        db.session.execute(sa.text("UPDATE custody_event SET actor_name = 'mallory' WHERE id = 1"))
    finally:
        if postgresql:
            db.session.execute(sa.text("ALTER TABLE custody_event ENABLE TRIGGER USER"))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["custody", "verify"])
    assert result.exit_code == 1
    found = scrape(client)
    assert value(found, "biobank_custody_last_verification_intact") == 0
    assert value(found, "biobank_custody_last_verification_broken_chains") == 1


def test_the_pool_gauge_counts_the_connections_held(client, db):
    assert value(scrape(client), "biobank_db_pool_connections_in_use") == 0
    with db.engine.connect() as held:
        held.execute(sa.text("SELECT 1"))
        assert value(scrape(client), "biobank_db_pool_connections_in_use") == 1


def test_a_database_that_does_not_answer_leaves_the_scrape_standing(configured, tmp_path):
    gone = tmp_path / "no-such-folder" / "biobank.sqlite3"
    app = configured(SQLALCHEMY_DATABASE_URI=f"sqlite:///{gone}")
    client = app.test_client()
    assert client.get("/api/v1/health").status_code == 200
    found = scrape(client)
    assert value(found, "biobank_scrape_database_up") == 0
    assert not families(found) & {"biobank_aliquots", "biobank_outbox_messages"}
    assert total(found, "biobank_http_requests_total", route="/api/v1/health") >= 1


# --- several gunicorn workers ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read()


def _counts_by_process(folder: Path, scratch: Path) -> dict[int, float]:
    """The requests each worker counted, read from its own file of the folder."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        alone = scratch / f"worker-{pid}"
        alone.mkdir(parents=True, exist_ok=True)
        (alone / path.name).write_bytes(path.read_bytes())
        samples = [
            s
            for family in MultiProcessCollector(None, path=str(alone)).collect()
            for s in family.samples
            if s.name == "biobank_http_requests_total"
        ]
        counts[pid] = sum(s.value for s in samples)
    return counts


def test_the_workers_counts_add_up_in_one_scrape(db, database_url, tmp_path):
    factories.protocol()
    factories.sites()
    factories.participant("LIM", code="LIM-001")
    factories.visit("LIM-001", "BL")
    db.session.commit()

    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left by a server that stopped")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("METRICS_", "GUNICORN_"))},
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "k" * 48,
        "BIOBANK_ENV": "development",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "1",
        "GUNICORN_ACCESS_LOG": "",
    }
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        sent = 0
        for _ in range(600):  # until it listens, or it stopped
            assert server.poll() is None, log.read_text()
            try:
                _get(f"{base}/api/v1/health")
            except OSError:
                time.sleep(0.1)
                continue
            sent += 1
            break
        assert sent == 1, log.read_text()
        # Started afresh: what an earlier server left in the folder is gone.
        assert not (folder / "counter_1.db").exists()

        # Requests side by side until both workers have answered some.
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(50):
                list(pool.map(lambda _: _get(f"{base}/api/v1/health"), range(40)))
                sent += 40
                if len(_counts_by_process(folder, tmp_path / "each")) >= 2:
                    break
        by_process = _counts_by_process(folder, tmp_path / "each")
        assert len(by_process) == 2 and all(n > 0 for n in by_process.values()), by_process

        found = samples_of(_get(f"{base}/metrics").decode())
        assert total(found, "biobank_http_requests_total", route="/api/v1/health") == sent
        assert total(found, "biobank_http_requests_total") >= sent
        assert sum(by_process.values()) == total(found, "biobank_http_requests_total")
        assert value(found, "biobank_scrape_database_up") == 1
        assert value(found, "biobank_aliquots", status="registered") == 10
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def gunicorn_hooks(monkeypatch):
    """gunicorn.conf.py loaded as gunicorn loads it; the environment put back after."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.setenv("_BIOBANK_METRICS_TEMPORARY_DIR", "")
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Server:
    class log:
        warning = staticmethod(lambda *args: None)


def test_gunicorn_empties_the_named_folder_of_prometheus_files_only(gunicorn_hooks, tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    for name in ("counter_12.db", "histogram_12.db", "gauge_livesum_12.db", "biobank.db"):
        (folder / name).write_bytes(b"x")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    gunicorn_hooks.on_starting(_Server())
    assert sorted(p.name for p in folder.iterdir()) == ["biobank.db"]
    gunicorn_hooks.on_exit(_Server())
    assert folder.is_dir()  # named by the environment: left where it is


def test_gunicorn_makes_a_folder_when_none_is_named_and_removes_it_at_the_end(gunicorn_hooks):
    # Made as the settings are read: before the application is preloaded and imports
    # prometheus-client, which reads the variable once.
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert folder.is_dir() and not list(folder.iterdir())
    (folder / "counter_1.db").write_bytes(b"x")  # the arbiter's own, from the preload
    gunicorn_hooks.on_starting(_Server())
    assert not list(folder.iterdir())
    (folder / "gauge_liveall_77.db").write_bytes(b"x")
    (folder / "counter_77.db").write_bytes(b"x")

    class Worker:
        pid = 77

    gunicorn_hooks.child_exit(_Server(), Worker())
    # The ended worker's live values are dropped; its counts stay in the sums.
    assert sorted(p.name for p in folder.iterdir()) == ["counter_77.db"]
    gunicorn_hooks.on_exit(_Server())
    assert not folder.exists()
