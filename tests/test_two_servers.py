"""Two application servers on one database, as a bank runs them behind a load balancer:
two gunicorns started from gunicorn.conf.py, each on its own port with its own metrics
folder and the same signing key, serving the test database. Clients call both over HTTP
from real threads released at the same instant, many rounds over:

- technicians storing different tubes into the same free box position: one is stored,
  every other one is told the position was taken (409, naming the tube there), never a
  500; the box holds one tube there and the losers stay where they were;
- managers approving several researchers' requests for the same aliquot: one request
  reserves it, every other one is told the aliquot is reserved for it (409), nothing
  else is reserved.

Every chain of custody involved is read back through the API and verified in the
database. The locks and unique indexes that decide these races live in PostgreSQL, across
processes: the test runs on PostgreSQL only (BIOBANK_TEST_DATABASE_URL, as the CI's
PostgreSQL run sets it)."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.custody.models import GENESIS_HASH
from biobank.distribution.models import Reservation, SampleRequest
from biobank.samples import services as samples
from biobank.samples.models import Aliquot
from biobank.storage import services as storage
from biobank.storage.models import Container, StoredPosition
from biobank.storage.positions import Grid
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request, stock

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 10
CLIENTS = 8  # client n calls server n % 2: half the threads on each
START_SECONDS = 120  # for both servers to answer /api/v1/health/ready
REQUEST_SECONDS = 60
STOP_SECONDS = 30
LOG_LINES = 300  # of each server's log, printed when the test fails

pytestmark = pytest.mark.slow


@pytest.fixture
def postgresql(db):
    if db.engine.dialect.name != "postgresql":
        reason = (
            "two servers racing on one database are tested on PostgreSQL only: set "
            "BIOBANK_TEST_DATABASE_URL (the CI's PostgreSQL run does)"
        )
        pytest.skip(reason)


# --- the servers ---------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path

    def tail(self) -> str:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as err:
            return f"(no log: {err})"
        return "\n".join(lines[-LOG_LINES:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(name: str, database_url: str, secret_key: str, folder: Path) -> Server:
    """``gunicorn -c gunicorn.conf.py wsgi:app`` from the repository's top level, on a free
    port of 127.0.0.1, with a metrics folder of its own and no control socket."""
    folder.mkdir(parents=True)
    port = _free_port()
    # Nothing of the caller's gunicorn settings (GUNICORN_CMD_ARGS included) leaks in.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    environment.update(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": secret_key,
            "BIOBANK_ENV": "development",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "4",
            "GUNICORN_GRACEFUL_TIMEOUT": "10",
            "GUNICORN_CONTROL_SOCKET": "",
            "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = folder / "gunicorn.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers in a process group of their own
        )
    return Server(name, port, process, log)


def _wait_ready(server: Server, deadline: float) -> None:
    while True:
        if server.process.poll() is not None:
            pytest.fail(f"{server.name} ended with {server.process.returncode} before it was ready")
        try:
            status, _ = _call(server, "GET", "/api/v1/health/ready", timeout=5)
        except OSError:
            status = None
        if status == 200:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{server.name} not ready after {START_SECONDS} s (last answer {status})")
        time.sleep(0.2)


def _stop(server: Server) -> None:
    if server.process.poll() is not None:
        return
    server.process.terminate()  # gunicorn's graceful stop: its workers finish and end
    try:
        server.process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=STOP_SECONDS)


@contextmanager
def two_servers(database_url: str, folder: Path):
    """Two gunicorns on the same database and key, ready; stopped on the way out, their
    logs printed when what ran inside failed."""
    key = secrets.token_urlsafe(48)
    servers: list[Server] = []
    failed = True
    try:
        for name in ("server-1", "server-2"):
            servers.append(_start(name, database_url, key, folder / name))
        deadline = time.monotonic() + START_SECONDS
        for server in servers:
            _wait_ready(server, deadline)
        yield servers
        failed = False
    finally:
        for server in servers:
            _stop(server)
        if failed:
            for server in servers:
                print(f"--- {server.name} (127.0.0.1:{server.port}), last lines of its log ---")
                print(server.tail())


# --- HTTP ----------------------------------------------------------------------------------


def _headers(token: str | None) -> dict:
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _answer(connection: http.client.HTTPConnection) -> tuple[int, dict]:
    response = connection.getresponse()
    body = response.read()
    try:
        return response.status, json.loads(body) if body else {}
    except ValueError:
        return response.status, {"not json": body.decode("utf-8", "replace")[:2000]}


def _call(
    server: Server,
    method: str,
    path: str,
    token: str | None = None,
    body=None,
    *,
    timeout=REQUEST_SECONDS,
):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, body=payload, headers=_headers(token))
        return _answer(connection)
    finally:
        connection.close()


@dataclass(frozen=True)
class Call:
    server: Server
    method: str
    path: str
    token: str
    body: dict


def race(calls: list[Call]) -> list:
    """Send every call from its own thread at the same instant (each connection opened
    beforehand); return (status, JSON body) per call, in order, or the exception raised."""
    answers: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def send(n: int) -> None:
        call = calls[n]
        connection = http.client.HTTPConnection(
            "127.0.0.1", call.server.port, timeout=REQUEST_SECONDS
        )
        try:
            connection.connect()
            barrier.wait(timeout=REQUEST_SECONDS)
            connection.request(
                call.method, call.path, body=json.dumps(call.body), headers=_headers(call.token)
            )
            answers[n] = _answer(connection)
        except Exception as err:  # a failure is an outcome the test must show
            answers[n] = err
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * REQUEST_SECONDS)
    assert not any(t.is_alive() for t in threads), "a client never got its answer"
    return answers


def statuses(answers: list) -> Counter:
    return Counter(a[0] if isinstance(a, tuple) else type(a).__name__ for a in answers)


def custody_through_api(server: Server, token: str, barcode: str) -> list[dict]:
    """The aliquot's chain as the API gives it, checked link by link."""
    status, body = _call(server, "GET", f"/api/v1/aliquots/{barcode}/custody", token)
    assert status == 200, (barcode, status, body)
    events = body["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), events
    previous = GENESIS_HASH
    for event in events:
        assert event["prev_hash"] == previous, (barcode, events)
        previous = event["hash"]
    return events


def tokens(role: str, count: int) -> list[str]:
    return [factories.token(factories.user(role, password=PASSWORD)) for _ in range(count)]


# --- storing into one position -------------------------------------------------------------


@pytest.fixture
def tubes(postgresql, db, sites):
    """A −80 °C freezer with two 9 × 9 boxes and 80 registered tubes; every other group of
    eight already stored in BX-0002 (they race to move, the others to be stored)."""
    factories.freezer({"BX-0001": "Box 1", "BX-0002": "Box 2"})
    codes: list[str] = []
    for n in range(1, CLIENTS + 1):
        factories.participant("LIM", code=f"LIM-{n:03d}")
        codes += [a.barcode for a in factories.visit(f"LIM-{n:03d}", "BL").aliquots]
    groups = [codes[r * CLIENTS : (r + 1) * CLIENTS] for r in range(ROUNDS)]
    storage.store_many(
        [(code, "BX-0002", None) for group in groups[1::2] for code in group], actor=None
    )
    db.session.commit()
    return groups


def where(db, barcodes: list[str]) -> dict[str, tuple | None]:
    """barcode → (box barcode, row, col), or None when not stored."""
    rows = db.session.execute(
        sa.select(Aliquot.barcode, Container.barcode, StoredPosition.row, StoredPosition.col)
        .join(StoredPosition, StoredPosition.aliquot_id == Aliquot.id)
        .join(Container, Container.id == StoredPosition.box_id)
        .where(Aliquot.barcode.in_(barcodes))
    ).all()
    found = {code: (box, row, col) for code, box, row, col in rows}
    return {code: found.get(code) for code in barcodes}


def test_two_servers_storing_into_one_position_store_one_tube(db, database_url, tubes, tmp_path):
    technicians = tokens("technician", CLIENTS // 2)
    db.session.commit()
    box = storage.get_container("BX-0001", actor=None)
    box_id = box.id
    grid = Grid(9, 9)
    db.session.commit()
    with two_servers(database_url, tmp_path) as servers:
        for round_, contenders in enumerate(tubes):
            row, col = round_ // 9 + 1, round_ % 9 + 1
            position = grid.label(row, col)
            db.session.rollback()
            before = where(db, contenders)
            chains_before = {
                code: [e.kind for e in custody.history(samples.find_aliquot(code, actor=None).id)]
                for code in contenders
            }
            db.session.rollback()
            answers = race(
                [
                    Call(
                        servers[n % 2],
                        "PUT",
                        f"/api/v1/aliquots/{code}/position",
                        technicians[n // 2],
                        {"box": "BX-0001", "position": position},
                    )
                    for n, code in enumerate(contenders)
                ]
            )
            assert statuses(answers) == Counter({200: 1, 409: CLIENTS - 1}), (position, answers)
            won = next(n for n, a in enumerate(answers) if a[0] == 200)
            winner = contenders[won]
            stored = answers[won][1]
            assert stored["position"] == position, stored
            assert stored["location"].endswith(f"(BX-0001) › {position}"), stored
            for answer in answers[:won] + answers[won + 1 :]:
                error = answer[1]["error"]
                assert error["code"] == "position.taken", answer
                assert error["fields"]["position"] == position, answer
                assert winner in error["message"], answer  # it names the tube there

            db.session.rollback()
            there = (
                db.session.execute(
                    sa.select(StoredPosition).where(
                        StoredPosition.box_id == box_id,
                        StoredPosition.row == row,
                        StoredPosition.col == col,
                    )
                )
                .scalars()
                .all()
            )
            assert [samples.find_aliquot(winner, actor=None).id] == [p.aliquot_id for p in there]
            after = where(db, contenders)
            for code in contenders:
                if code != winner:
                    assert after[code] == before[code], (code, before[code], after[code])
                    assert samples.find_aliquot(code, actor=None).status == (
                        "registered" if before[code] is None else "in_storage"
                    )
            db.session.rollback()

            for n, code in enumerate(contenders):
                kinds = [
                    e["kind"]
                    for e in custody_through_api(servers[n % 2], technicians[n // 2], code)
                ]
                if code == winner:
                    moved = "STORED" if before[code] is None else "MOVED"
                    assert kinds == [*chains_before[code], moved], (code, kinds)
                else:
                    assert kinds == chains_before[code], (code, kinds)
    db.session.rollback()
    report = custody.verify()
    assert report.intact, report.first_break


# --- reserving one aliquot for several requests --------------------------------------------


@pytest.fixture
def wanted(postgresql, db, sites):
    """Round by round: an aliquot, and one request per client (each of another researcher)
    that it matches. Its participant's baseline keeps two serum aliquots, so that handing
    out one is not handing out the last."""
    factories.freezer({})
    researchers = [factories.user("researcher", password=PASSWORD) for _ in range(CLIENTS)]
    db.session.commit()
    rounds = []
    for round_ in range(ROUNDS):
        code = f"LIM-{round_ + 1:03d}"
        serum = stock(db, participants=(code,), visits=("BL",), first_box=10 + 2 * round_)[
            (code, "BL", "SER")
        ]
        for barcode in serum[2:]:
            storage.destroy(barcode, "kept two", actor=None)
        requests = [
            serum_request(researcher, title=f"Study {round_}.{n}")
            for n, researcher in enumerate(researchers)
        ]
        db.session.flush()
        rounds.append((serum[0], [(r.id, r.code) for r in requests]))
    db.session.commit()
    return rounds


def test_two_servers_approving_requests_for_one_aliquot_reserve_it_once(
    db, database_url, wanted, tmp_path
):
    managers = tokens("manager", CLIENTS // 2)
    db.session.commit()
    with two_servers(database_url, tmp_path) as servers:
        for barcode, requests in wanted:
            chain_before = [
                e.kind for e in custody.history(samples.find_aliquot(barcode, actor=None).id)
            ]
            db.session.rollback()
            answers = race(
                [
                    Call(
                        servers[n % 2],
                        "POST",
                        f"/api/v1/requests/{request_id}/approve",
                        managers[n // 2],
                        {"aliquots": [barcode]},
                    )
                    for n, (request_id, _) in enumerate(requests)
                ]
            )
            assert statuses(answers) == Counter({200: 1, 409: CLIENTS - 1}), (barcode, answers)
            won = next(n for n, a in enumerate(answers) if a[0] == 200)
            winner_id, winner_code = requests[won]
            approval = answers[won][1]
            assert approval["reserved"] == 1 and approval["request"]["status"] == "approved"
            for answer in answers[:won] + answers[won + 1 :]:
                error = answer[1]["error"]
                assert error["code"] == "reservation.unavailable", answer
                assert error["fields"]["aliquots"].split() == [barcode], answer
                assert winner_code in error["message"], answer  # it names who holds it

            db.session.rollback()
            aliquot_id = samples.find_aliquot(barcode, actor=None).id
            held = db.session.execute(
                sa.select(Reservation.request_id).where(
                    Reservation.aliquot_id == aliquot_id, Reservation.closed_at.is_(None)
                )
            ).scalars()
            assert list(held) == [winner_id]
            request_ids = [request_id for request_id, _ in requests]
            decided = dict(
                db.session.execute(
                    sa.select(SampleRequest.id, SampleRequest.status).where(
                        SampleRequest.id.in_(request_ids)
                    )
                ).all()
            )
            assert decided == {
                request_id: "approved" if request_id == winner_id else "submitted"
                for request_id in request_ids
            }
            nothing_else = db.session.execute(
                sa.select(sa.func.count(Reservation.id)).where(
                    Reservation.request_id.in_(request_ids), Reservation.request_id != winner_id
                )
            ).scalar_one()
            assert nothing_else == 0
            db.session.rollback()

            for n, server in enumerate(servers):
                events = custody_through_api(server, managers[n], barcode)
                assert [e["kind"] for e in events] == [*chain_before, "RESERVED"], events
                assert events[-1]["details"]["request"] == winner_code, events[-1]
    db.session.rollback()
    report = custody.verify()
    assert report.intact, report.first_break
