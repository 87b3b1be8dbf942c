"""The API under load, served as in production: gunicorn, PostgreSQL, concurrent users.

Creates a throw-away PostgreSQL database, migrates it and fills it: the protocol, three
centres, 2,000 participants with 5 visits each and 100,000 aliquots stored in 10 × 10
boxes (each with its REGISTERED and STORED custody events, chains valid: the first
participant is registered and stored through the services, the others are copies of it
shifted in time, with their own barcodes, positions and hashes, written with COPY),
800 participants still to come, accounts of every role with API tokens, researchers'
requests. Then serves it with the shipped configuration (`gunicorn -c gunicorn.conf.py
wsgi:app`, BIOBANK_ENV=production, on a free loopback port) and drives it with Locust
(bench/loadusers.py, headless, in a process of its own) for a fixed time after a short
warm-up:

- mixed (default): 16 users — 12 technicians, 2 managers, 2 researchers — making 60 %
  scan lookups (GET /api/v1/aliquots/<barcode>), 20 % stores and moves (PUT
  /api/v1/aliquots/<barcode>/position, between the technician's own two boxes), 10 %
  visit registrations (POST /api/v1/specimens: 2 tubes, 10 aliquots, 10 custody
  events; the next visit of the technician's own participants) and 10 % reads (a
  manager's chain of custody, GET /api/v1/aliquots/<barcode>/custody; a researcher's
  own request, GET /api/v1/requests/<n>: a researcher sees no chain of custody);
- --scan-only: 16 users doing lookups only.

Each user starts one request every --pacing seconds on average (0.25: about 64 requests a
second in all), each interval drawn between half and one and a half times that and
counted from the previous start (at once when the previous answer came later), so the mix
holds whatever the answer times; users start at random within their first interval and
never fall into step. One more user hits the constant endpoint GET /api/v1/health at the
technicians' pace, under the same load: the baseline. While the load runs, PostgreSQL's
pg_stat_activity is sampled (what the application's connections wait on). Afterwards,
every custody chain the load wrote to is verified.

Prints one JSON line: per operation the count, throughput, p50/p95/p99, errors and 5xx
answers among them, and each p50/p99 over the constant endpoint's; the database's waits;
the targets and whether they were met. Bounded in time and in requests, loopback only;
gunicorn is stopped and the database dropped whatever happens.

    .venv/bin/python bench/load.py [--quick] [--scan-only] [--seconds N] [--pacing S]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import psycopg
import sqlalchemy as sa
from flask_migrate import upgrade
from psycopg import sql

from biobank import create_app
from biobank.auth import services as auth
from biobank.custody.hashing import canonical_json, event_hash
from biobank.custody.models import GENESIS_HASH, CustodyEvent
from biobank.distribution import services as distribution
from biobank.distribution.criteria import Criteria
from biobank.extensions import db
from biobank.samples import barcodes
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.storage import services as storage
from biobank.storage.models import Container, StoredPosition
from biobank.storage.positions import grid_for
from biobank.study import services as study
from biobank.study.models import Participant, Visit
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "BIOBANK_CI_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "bench password 1"
VISITS = ("BL", "M2", "M4", "M6", "EOI")  # registered in the bank, 10 aliquots each
ALL_VISITS = ("BL", "M2", "M4", "M6", "EOI", "EOM")  # arm G2's
BOX = 100  # a 10 × 10 box
BOXES_PER_RACK = 20
TECHNICIANS, MANAGERS, RESEARCHERS = 12, 2, 2
SCANNERS = 16
PARTICIPANTS_TO_COME = 800
OPERATIONS = ("scan", "store", "register", "custody", "request")
TARGETS = {"register_p50_ms": 60, "register_p99_ms": 250, "scan_p99_ms": 80, "errors": 0}


# --- the database -------------------------------------------------------------------------


def admin(statement: sql.Composable) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as connection:
        connection.execute(statement)


def create_database(name: str) -> None:
    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(name: str) -> None:
    # FORCE ends whatever session is left (a worker killed half-way).
    admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_url(name: str, driver: str = "postgresql+psycopg") -> str:
    base = ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1]
    return f"{driver}://{base}/{name}"


# --- filling the bank ---------------------------------------------------------------------


def _row(table, key) -> dict:
    return dict(db.session.execute(sa.select(table).where(table.c.id == key)).one()._mapping)


def _rows(table, column, keys) -> list[dict]:
    query = sa.select(table).where(column.in_(keys)).order_by(table.c.id)
    return [dict(r._mapping) for r in db.session.execute(query)]


def _shifted(original: dict, days: int, **changes) -> dict:
    """A copy of ``original`` moved ``days`` days in time (every date and time in it)."""
    delta = timedelta(days=days)
    copy = {k: (v + delta if isinstance(v, date) else v) for k, v in original.items()}
    copy.update(changes)
    return copy


def _copy(connection, table: str, rows: list[dict]) -> None:
    """COPY ``rows`` (dicts with the same keys) into ``table`` on the driver's connection."""
    if not rows:
        return
    columns = list(rows[0])
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _users() -> dict:
    """Accounts of every role, each with an API token."""
    made: dict[str, list] = {}
    for role, count in (
        ("admin", 1),
        ("manager", MANAGERS),
        ("researcher", RESEARCHERS),
        ("technician", SCANNERS),
    ):
        for n in range(1, count + 1):
            user = auth.create_user(f"{role}{n}", role, PASSWORD)
            made.setdefault(role, []).append(
                {"id": user.id, "name": user.username, "token": auth.issue_token(user.username)}
            )
    return made


def _storage(racks: int):
    """Two −80 °C freezers and their racks (through the services); the first box."""
    storage.create_container_type("Cryobox 10 × 10", "box", rows=10, cols=10, actor=None)
    storage.create_container("room", "Room 114", site="BIO", barcode="RM-114", actor=None)
    freezers = [
        storage.create_container(
            "freezer", f"Freezer −80 n°{n}", parent="RM-114", temperature_class="-80", actor=None
        )
        for n in (1, 2)
    ]
    made = [
        storage.create_container(
            "rack",
            f"Rack {chr(65 + r % 26)}{r // 26 + 1}",
            parent=freezers[r % 2].barcode,
            actor=None,
        )
        for r in range(racks)
    ]
    first = storage.create_container(
        "box", "Box 1", parent=made[0].barcode, type_name="Cryobox 10 × 10", actor=None
    )
    return made, first


def _template(technician, manager, box, included_on: date):
    """The first participant, through the services: enrolled, its 5 visits registered
    (2 tubes, 10 aliquots each) and every aliquot stored in the first box."""
    participant = study.register_participant(
        "LIM-00001",
        "LIM",
        "G2",
        "de_novo",
        included_on,
        included_on - timedelta(days=2),
        actor=manager,
    )
    codes = []
    for visit in VISITS:
        definition = study.visit_definition(study.current_protocol(), "G2", visit)
        day = included_on + timedelta(days=definition.nominal_day)
        drawn = datetime(day.year, day.month, day.day, 8, 30, tzinfo=UTC)
        registration = samples.register_collection(
            participant.code,
            visit,
            [factories.tube(t, collected_at=drawn) for t in ("SST", "EDTA")],
            actor=technician,
        )
        codes += [a.barcode for a in registration.aliquots]
    grid = grid_for(10, 10)
    for n, code in enumerate(codes):
        storage.store(code, box.barcode, grid.label(*grid.fill_order()[n]), actor=technician)
    db.session.flush()
    return participant


def fill(app, rng: random.Random, aliquots: int) -> dict:
    """The bank described at the top; returns what the users need to work on it."""
    per_participant = len(VISITS) * 10
    built = aliquots // per_participant
    boxes_full = -(-built * per_participant // BOX)
    boxes = boxes_full + SCANNERS  # each technician's spare box
    racks = -(-boxes // BOXES_PER_RACK)
    today = date.today()
    # The latest inclusion: every visit of the protocol is in the past (EOM: day 617 + 30).
    latest = today - timedelta(days=700)
    with app.app_context():
        upgrade()
        factories.protocol()
        factories.sites()
        users = _users()
        technician = auth.principal(users["technician"][0]["id"])
        manager = auth.principal(users["manager"][0]["id"])
        rack_rows, first_box = _storage(racks)
        template = _template(technician, manager, first_box, latest)
        for researcher in users["researcher"]:
            actor = auth.principal(researcher["id"])
            researcher["requests"] = [
                distribution.submit_request(
                    title=f"VEGF kinetics {n}",
                    aim="Serum VEGF at baseline and month 2",
                    receiving_lab="VEGF laboratory, Limoges",
                    contact_name="Dr Lab",
                    contact_email="lab@chu.example",
                    criteria=Criteria(visits=("BL", "M2"), sample_types=("SER",)),
                    actor=actor,
                ).id
                for n in range(3)
            ]
        db.session.commit()
        tables = _copies(rng, template.id, first_box.id, [r.id for r in rack_rows], built, boxes)
        connection = db.session.connection().connection.driver_connection
        for table in ("participant", "container", "visit", "specimen", "aliquot"):
            _copy(connection, table, tables[table])
        _copy(connection, "custody_event", tables["custody_event"])
        _copy(connection, "stored_position", tables["stored_position"])
        for table in ("participant", "container", "visit", "specimen", "aliquot"):
            db.session.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
        db.session.commit()
        _check_copies(tables)
        db.session.commit()
        db.session.connection().exec_driver_sql("ANALYZE")
        db.session.commit()
        codes = list(db.session.execute(sa.select(Aliquot.barcode).order_by(Aliquot.id)).scalars())
        box_codes = list(
            db.session.execute(
                sa.select(Container.barcode).where(Container.kind == "box").order_by(Container.id)
            ).scalars()
        )
        people = db.session.execute(
            sa.select(Participant.code, Participant.included_on).order_by(Participant.id)
        ).all()
        db.engine.dispose()
    return {
        "users": users,
        "codes": codes,
        "boxes": box_codes,
        "full_boxes": boxes_full,
        "participants": [(code, on.isoformat()) for code, on in people],
        "built": built,
    }


def _copies(rng, template_id: int, box_id: int, rack_ids: list[int], built: int, boxes: int):
    """Rows for the other participants: copies of the first one's, shifted back in time,
    with their own ids, codes, barcodes, positions and custody hashes."""
    tables = {name: [] for name in ("participant", "container", "visit", "specimen")}
    tables |= {"aliquot": [], "custody_event": [], "stored_position": []}
    person = _row(Participant.__table__, template_id)
    visits = _rows(Visit.__table__, Visit.participant_id, [template_id])
    specimens = _rows(Specimen.__table__, Specimen.visit_id, [v["id"] for v in visits])
    tubes = _rows(Aliquot.__table__, Aliquot.specimen_id, [s["id"] for s in specimens])
    events = {}
    for event in _rows(CustodyEvent.__table__, CustodyEvent.aliquot_id, [t["id"] for t in tubes]):
        events.setdefault(event["aliquot_id"], []).append(event)
    places = {
        p["aliquot_id"]: p
        for p in _rows(
            StoredPosition.__table__, StoredPosition.aliquot_id, [t["id"] for t in tubes]
        )
    }
    box = _row(Container.__table__, box_id)
    racks = {r["id"]: r for r in _rows(Container.__table__, Container.id, rack_ids)}
    grid = grid_for(10, 10)
    fill = grid.fill_order()
    separator = storage.SEPARATOR
    # The first box's path and each first tube's STORED place, as the services wrote them,
    # are what the copies are built like: checked here.
    assert box["path"] == racks[box["parent_id"]]["path"] + separator + "Box 1 (BX-0001)"
    for n, tube in enumerate(tubes):
        stored = events[tube["id"]][-1]
        label = grid.label(*fill[n])
        assert (
            stored["kind"] == "STORED" and stored["to_location"] == box["path"] + separator + label
        )

    ids = {
        name: db.session.execute(sa.select(sa.func.max(model.id))).scalar()
        for name, model in (
            ("participant", Participant),
            ("container", Container),
            ("visit", Visit),
            ("specimen", Specimen),
            ("aliquot", Aliquot),
        )
    }
    box_paths = {box_id: box["path"]}
    box_ids = [box_id]
    for n in range(1, boxes):
        ids["container"] += 1
        rack = racks[rack_ids[n // BOXES_PER_RACK]]
        code, name = f"BX-{n + 1:04d}", f"Box {n + 1}"
        path = rack["path"] + separator + f"{name} ({code})"
        tables["container"].append(
            dict(
                box,
                id=ids["container"],
                barcode=code,
                name=name,
                parent_id=rack["id"],
                slot=n % BOXES_PER_RACK + 1,
                path=path,
            )
        )
        box_paths[ids["container"]] = path
        box_ids.append(ids["container"])

    taken = {t["barcode"] for t in tubes}
    position = len(tubes)
    sites = {"LIM": person["site_id"]}
    sites["PAR"] = db.session.execute(sa.text("SELECT id FROM site WHERE code = 'PAR'")).scalar()
    total = built + PARTICIPANTS_TO_COME
    for p in range(1, total):
        back = rng.randrange(200)
        centre = "LIM" if p % 2 == 0 else "PAR"
        ids["participant"] += 1
        participant_id = ids["participant"]
        tables["participant"].append(
            _shifted(
                person,
                -back,
                id=participant_id,
                code=f"{centre}-{p + 1:05d}",
                site_id=sites[centre],
            )
        )
        if p >= built:
            continue  # to come: no visit yet
        specimen_of, visit_of = {}, {}
        for visit in visits:
            ids["visit"] += 1
            visit_of[visit["id"]] = ids["visit"]
            tables["visit"].append(
                _shifted(visit, -back, id=ids["visit"], participant_id=participant_id)
            )
        for specimen in specimens:
            ids["specimen"] += 1
            specimen_of[specimen["id"]] = ids["specimen"]
            tables["specimen"].append(
                _shifted(
                    specimen, -back, id=ids["specimen"], visit_id=visit_of[specimen["visit_id"]]
                )
            )
        for tube in tubes:
            ids["aliquot"] += 1
            code = barcodes.new_aliquot_barcode(rng.randrange)
            while code in taken:
                code = barcodes.new_aliquot_barcode(rng.randrange)
            taken.add(code)
            box_n, cell = divmod(position, BOX)
            position += 1
            row, col = fill[cell]
            place_id = box_ids[box_n]
            head, chain = GENESIS_HASH, []
            for event in events[tube["id"]]:
                details = json.loads(event["details"])
                if "specimen" in details:
                    details["specimen"] = specimen_of[tube["specimen_id"]]
                copy = _shifted(
                    event,
                    -back,
                    aliquot_id=ids["aliquot"],
                    details=canonical_json(details),
                    prev_hash=head,
                    to_location=(
                        box_paths[place_id] + separator + grid.label(row, col)
                        if event["to_location"]
                        else None
                    ),
                )
                del copy["id"]
                copy["hash"] = head = event_hash(
                    barcode=code,
                    seq=copy["seq"],
                    kind=copy["kind"],
                    at=copy["at"],
                    actor=copy["actor_name"],
                    from_location=copy["from_location"],
                    to_location=copy["to_location"],
                    reason=copy["reason"],
                    details=copy["details"],
                    prev_hash=copy["prev_hash"],
                )
                chain.append(copy)
            tables["custody_event"] += chain
            tables["aliquot"].append(
                _shifted(
                    tube,
                    -back,
                    id=ids["aliquot"],
                    barcode=code,
                    specimen_id=specimen_of[tube["specimen_id"]],
                    custody_head=head,
                )
            )
            place = _shifted(
                places[tube["id"]],
                -back,
                aliquot_id=ids["aliquot"],
                box_id=place_id,
                row=row,
                col=col,
            )
            del place["id"]
            tables["stored_position"].append(place)
    return tables


def _check_copies(tables: dict) -> None:
    """The copies read back as the services read them: the place of a few tubes as the
    scan says it, and their chains recomputed from the log."""
    sample = random.Random(7).sample(tables["aliquot"], 20)
    for tube in sample:
        where = storage.locations([tube["id"]])[tube["id"]]
        log = (
            db.session.execute(
                sa.select(CustodyEvent)
                .where(CustodyEvent.aliquot_id == tube["id"])
                .order_by(CustodyEvent.seq)
            )
            .scalars()
            .all()
        )
        assert log[-1].to_location == where, (log[-1].to_location, where)
        assert (
            _chain_problem(tube["barcode"], tube["custody_head"], tube["custody_count"], log)
            is None
        )


def _chain_problem(barcode: str, head: str, count: int, log) -> str | None:
    running = GENESIS_HASH
    for seq, event in enumerate(log, start=1):
        if event.seq != seq or event.prev_hash != running:
            return f"{barcode}: event {event.seq} out of the chain"
        digest = event_hash(
            barcode=barcode,
            seq=event.seq,
            kind=event.kind,
            at=event.at,
            actor=event.actor_name,
            from_location=event.from_location,
            to_location=event.to_location,
            reason=event.reason,
            details=event.details,
            prev_hash=event.prev_hash,
        )
        if digest != event.hash:
            return f"{barcode}: event {event.seq} does not match its hash"
        running = event.hash
    if running != head or len(log) != count:
        return f"{barcode}: the aliquot's head is not its log's"
    return None


# --- what each user works on --------------------------------------------------------------


def plan(bank: dict, args, codes_file: str) -> dict:
    """The users' work (bench/loadusers.py reads it): tokens, tubes, boxes, visits to come."""
    technicians = bank["users"]["technician"][:TECHNICIANS]
    spare = bank["boxes"][bank["full_boxes"] :]
    work = [
        {
            "token": t["token"],
            # Its own full box, and its own empty one: the tubes go back and forth.
            "boxes": [bank["boxes"][n], spare[n]],
            "tubes": bank["codes"][n * BOX : (n + 1) * BOX],
            "slots": [],
        }
        for n, t in enumerate(technicians)
    ]
    protocol_days = {"BL": 0, "M2": 56, "M4": 112, "M6": 168, "EOI": 252, "EOM": 617}
    people = bank["participants"]
    # The next visit of the participants in the bank (EOM), then those of the participants
    # to come, visit after visit; a participant is always the same technician's.
    order = [(p, "EOM") for p in range(bank["built"])]
    order += [(p, v) for v in ALL_VISITS for p in range(bank["built"], len(people))]
    for p, visit in order:
        code, included = people[p]
        day = date.fromisoformat(included) + timedelta(days=protocol_days[visit])
        work[p % TECHNICIANS]["slots"].append((code, visit, day.isoformat()))
    readers = MANAGERS + RESEARCHERS
    return {
        "host": args.host,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "mode": "scan-only" if args.scan_only else "mixed",
        "seed": args.seed,
        "max_requests": args.max_requests,
        "codes_file": codes_file,
        # Technicians make 90 % of the requests, readers 10 %: their pace follows.
        "pacing": {"technician": args.pacing, "reader": args.pacing * 9 * readers / TECHNICIANS},
        "technicians": work,
        "managers": [{"token": m["token"]} for m in bank["users"]["manager"]],
        "researchers": [
            {"token": r["token"], "requests": r["requests"]} for r in bank["users"]["researcher"]
        ],
        "scanners": [{"token": t["token"]} for t in bank["users"]["technician"][:SCANNERS]],
    }


# --- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(url: str, port: int, log, *, keep_workers: bool = False) -> subprocess.Popen:
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        # Production: HTTPS marks cookies Secure and adds HSTS; bearer tokens over
        # loopback HTTP are unaffected.
        "BIOBANK_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
    }
    for name in ("PROMETHEUS_MULTIPROC_DIR", "GUNICORN_WORKERS", "GUNICORN_THREADS"):
        environment.pop(name, None)
    if keep_workers:  # a profiler stays on the workers it was attached to
        environment["GUNICORN_MAX_REQUESTS"] = "1000000"
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped with its workers
    )


def wait_ready(host: str, server: subprocess.Popen, seconds: float = 90) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({server.returncode}) before answering")
        try:
            with urllib.request.urlopen(f"{host}/api/v1/health/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not answer /api/v1/health/ready within {seconds} s")


def stop(server: subprocess.Popen | None) -> None:
    if server is None or server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)  # the arbiter stops its workers
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def cpu_seconds(process: psutil.Process) -> dict[int, float]:
    """CPU time of a process and of each of its children, in seconds, by process id."""
    seen = {}
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seen[p.pid] = times.user + times.system
    return seen


def profile(gunicorn: psutil.Process, args) -> list[subprocess.Popen]:
    """py-spy on every worker for the whole load: collapsed stacks, one file per worker."""
    os.makedirs(args.profile, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    return [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(worker.pid),
                "--duration",
                str(int(args.warmup + args.seconds)),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                "--idle",
                "--threads",
                "--output",
                os.path.join(args.profile, f"worker-{worker.pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for worker in gunicorn.children()
    ]


# --- what PostgreSQL's sessions wait on ---------------------------------------------------


class Watcher(threading.Thread):
    """Samples pg_stat_activity of the bench database every 50 ms: how many of the
    application's sessions are running a statement, idle inside a transaction, and what
    those running wait on (Lock:transactionid, LWLock:WALWrite, IO:DataFileRead...; none:
    working)."""

    def __init__(self, url: str, name: str, server: psutil.Process):
        super().__init__(daemon=True)
        self.url, self.name, self.server = url, name, server
        # CPU seconds of gunicorn's processes, at the start and as last seen (workers are
        # replaced during the run: each one's time is kept when it is gone).
        self.cpu_start = cpu_seconds(server)
        self.cpu_seen = dict(self.cpu_start)
        self.halt = threading.Event()
        self.samples = 0
        self.states: Counter = Counter()
        self.waits: Counter = Counter()
        self.lock_waits: Counter = Counter()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while not self.halt.wait(0.05):
                rows = connection.execute(
                    "SELECT state, wait_event_type, wait_event, left(query, 70) "
                    "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'",
                    (self.name,),
                ).fetchall()
                self.samples += 1
                if self.samples % 10 == 0:
                    self.cpu_seen.update(cpu_seconds(self.server))
                for state, kind, event, query in rows:
                    self.states[state or "?"] += 1
                    if state == "active":
                        self.waits[f"{kind}:{event}" if kind else "none"] += 1
                        if kind == "Lock":
                            self.lock_waits[" ".join(query.split())] += 1

    def server_cpu(self) -> float:
        return sum(self.cpu_seen.values()) - sum(self.cpu_start.values())

    def report(self) -> dict:
        n = max(1, self.samples)
        return {
            "samples": self.samples,
            "mean_sessions": {s: round(c / n, 3) for s, c in self.states.most_common()},
            "mean_active_by_wait": {w: round(c / n, 3) for w, c in self.waits.most_common(8)},
            "lock_waits_by_statement": dict(self.lock_waits.most_common(5)),
        }


# --- figures ------------------------------------------------------------------------------


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def figures(requests: list, seconds: float) -> dict:
    by: dict[str, list] = {}
    for name, ms, status, _ in requests:
        by.setdefault(name, []).append((ms, status))
    base = sorted(ms for ms, _ in by.get("health", [])) or [float("nan")]
    base_p50, base_p99 = statistics.median(base), percentile(base, 0.99)
    result = {}
    for name in ("health", *OPERATIONS):
        seen = by.get(name)
        if not seen:
            continue
        ordered = sorted(ms for ms, _ in seen)
        expected = 201 if name == "register" else 200
        p50, p99 = statistics.median(ordered), percentile(ordered, 0.99)
        result[name] = {
            "count": len(seen),
            "per_s": round(len(seen) / seconds, 2),
            "p50_ms": round(p50, 1),
            "p95_ms": round(percentile(ordered, 0.95), 1),
            "p99_ms": round(p99, 1),
            "max_ms": round(ordered[-1], 1),
            "errors": sum(1 for _, status in seen if status != expected),
            "errors_5xx": sum(1 for _, status in seen if status >= 500),
            "no_answer": sum(1 for _, status in seen if status == 0),
            "p50_ratio": round(p50 / base_p50, 2),
            "p99_ratio": round(p99 / base_p99, 2),
        }
    return result


def verify_written(url: str, first_event_id: int) -> dict:
    """Every chain the load appended to (stores, moves, new aliquots), recomputed."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_urlsafe(48)})
    with app.app_context():
        touched = sa.select(CustodyEvent.aliquot_id).where(CustodyEvent.id > first_event_id)
        rows = db.session.execute(
            sa.select(Aliquot.id, Aliquot.barcode, Aliquot.custody_head, Aliquot.custody_count)
            .where(Aliquot.id.in_(touched))
            .order_by(Aliquot.id)
        ).all()
        log: dict[int, list] = {}
        events = db.session.execute(
            sa.select(CustodyEvent)
            .where(CustodyEvent.aliquot_id.in_(touched))
            .order_by(CustodyEvent.aliquot_id, CustodyEvent.seq)
        ).scalars()
        for event in events:
            log.setdefault(event.aliquot_id, []).append(event)
        problems = [
            problem
            for key, code, head, count in rows
            if (problem := _chain_problem(code, head, count, log.get(key, [])))
        ]
        new_events = db.session.execute(
            sa.select(sa.func.count()).where(CustodyEvent.id > first_event_id)
        ).scalar()
        db.engine.dispose()
    return {
        "chains_checked": len(rows),
        "events_written": new_events,
        "broken": len(problems),
        "first_broken": problems[0] if problems else None,
    }


# --- the run ------------------------------------------------------------------------------


def run(args) -> dict:
    name = f"bench_load_{os.getpid()}_{secrets.token_hex(3)}"
    url = database_url(name)
    rng = random.Random(args.seed)
    server = watcher = None
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as folder:
        create_database(name)
        try:
            start = time.perf_counter()
            bank = fill(
                create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "b" * 48}),
                rng,
                args.aliquots,
            )
            built = time.perf_counter() - start
            with psycopg.connect(database_url(name, "postgresql"), autocommit=True) as connection:
                first_event = connection.execute("SELECT max(id) FROM custody_event").fetchone()[0]
            codes_file = os.path.join(folder, "codes.txt")
            Path(codes_file).write_text("\n".join(bank["codes"]), encoding="utf-8")
            port = free_port()
            args.host = f"http://127.0.0.1:{port}"
            work = plan(bank, args, codes_file)
            plan_file = os.path.join(folder, "plan.json")
            Path(plan_file).write_text(json.dumps(work), encoding="utf-8")
            log_path = os.path.join(folder, "gunicorn.log")
            with open(log_path, "wb") as log:
                server = start_gunicorn(url, port, log, keep_workers=bool(args.profile))
                wait_ready(args.host, server)
                gunicorn = psutil.Process(server.pid)
                watcher = Watcher(database_url(name, "postgresql"), name, gunicorn)
                psutil.cpu_percent()
                watcher.start()
                profilers = profile(gunicorn, args) if args.profile else []
                driver = subprocess.run(
                    [sys.executable, str(Path(__file__).with_name("loadusers.py")), plan_file],
                    capture_output=True,
                    text=True,
                    timeout=args.warmup + args.seconds + 120,
                )
                watcher.halt.set()
                machine_cpu = psutil.cpu_percent()
                watcher.join(5)
                for profiler in profilers:
                    profiler.wait(timeout=60)
            if driver.returncode != 0:
                raise RuntimeError(f"the load's users failed:\n{driver.stderr[-3000:]}")
            seen = json.loads(driver.stdout.strip().splitlines()[-1])
            stop(server)
            served = Path(log_path).read_text(errors="replace")
            result = {
                "database": "postgresql",
                "mode": work["mode"],
                "users": seen["users"],
                "seconds": seen["measured_s"],
                "warmup_s": args.warmup,
                "pacing_s": work["pacing"],
                "aliquots": len(bank["codes"]),
                "build_s": round(built, 1),
                "server": {
                    "config": "gunicorn.conf.py",
                    "workers_booted": served.count("Booting worker"),
                    "cpu_s": round(watcher.server_cpu(), 1),
                },
                "machine_cpu_percent": machine_cpu,
                # The machines are shared: what else ran shows here (1, 5, 15 minutes).
                "load_average_before": [round(n, 2) for n in load_before],
                "operations": figures(seen["requests"], seen["measured_s"]),
                "requests": len(seen["requests"]),
                "registration_slots_exhausted": seen["registration_slots_exhausted"],
                "stopped_by_request_cap": seen["stopped_by_request_cap"],
                "database_waits": watcher.report(),
                "in_server_ms": in_server(served),
                "custody": verify_written(url, first_event),
            }
            result["targets"] = targets(result)
            return result
        finally:
            if watcher is not None:
                watcher.halt.set()
                watcher.join(5)
            stop(server)
            drop_database(name)


# gunicorn's access line (gunicorn.conf.py): "<method> <path> <status> <bytes> bytes <ms>ms".
ACCESS_LINE = re.compile(r"\] (GET|PUT|POST) (\S+) \d{3} \S+ bytes (\d+)ms ")
OPERATION_OF = (
    ("POST", re.compile(r"/api/v1/specimens"), "register"),
    ("PUT", re.compile(r"/api/v1/aliquots/[^/]+/position"), "store"),
    ("GET", re.compile(r"/api/v1/aliquots/[^/]+/custody"), "custody"),
    ("GET", re.compile(r"/api/v1/aliquots/[^/]+"), "scan"),
    ("GET", re.compile(r"/api/v1/requests/\d+"), "request"),
    ("GET", re.compile(r"/api/v1/health"), "health"),
)


def in_server(access_log: str) -> dict:
    """Per operation, the time gunicorn's access log gives (whole milliseconds, from the
    request read to the answer sent, warm-up included): what the client measured less the
    time spent queued for a worker thread or a core before gunicorn read the request, and
    in the client itself. A tail seen by the client and not here is not the
    application's."""
    times: dict[str, list[float]] = {}
    for method, path, ms in ACCESS_LINE.findall(access_log):
        for wanted, pattern, operation in OPERATION_OF:
            if method == wanted and pattern.fullmatch(path):
                times.setdefault(operation, []).append(float(ms))
                break
    return {
        operation: {
            "count": len(values),
            "p50_ms": percentile(sorted(values), 0.50),
            "p99_ms": percentile(sorted(values), 0.99),
        }
        for operation, values in sorted(times.items())
    }


def targets(result: dict) -> dict:
    ops = result["operations"]
    errors = sum(op["errors"] for op in ops.values())
    checks = {"errors": errors == TARGETS["errors"]}
    if "scan" in ops:
        checks["scan_p99_ms"] = ops["scan"]["p99_ms"] <= TARGETS["scan_p99_ms"]
    if "register" in ops:
        checks["register_p50_ms"] = ops["register"]["p50_ms"] <= TARGETS["register_p50_ms"]
        checks["register_p99_ms"] = ops["register"]["p99_ms"] <= TARGETS["register_p99_ms"]
    return {**TARGETS, "met": checks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15 s of load, 3 s of warm-up")
    parser.add_argument("--scan-only", action="store_true", help="16 users doing lookups only")
    parser.add_argument("--seconds", type=float, help="measured seconds (default 60)")
    parser.add_argument("--warmup", type=float, help="seconds before measuring (default 5)")
    parser.add_argument(
        "--pacing", type=float, default=0.25, help="seconds between one user's requests"
    )
    parser.add_argument("--aliquots", type=int, default=100_000)
    parser.add_argument(
        "--max-requests", type=int, default=200_000, help="stop the load after this many"
    )
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="py-spy every worker during the load (collapsed stacks in DIR); workers are "
        "then not replaced during the run (GUNICORN_MAX_REQUESTS)",
    )
    args = parser.parse_args()
    args.seconds = args.seconds or (15.0 if args.quick else 60.0)
    args.warmup = args.warmup if args.warmup is not None else (3.0 if args.quick else 5.0)
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
