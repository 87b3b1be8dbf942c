"""Scan lookup and visit registration speed.

Builds a database of 100,000 aliquots (and, with --million, a second one of 1,000,000),
then measures in the same run:
- GET /api/v1/aliquots/<barcode> through the Flask test client, with a bearer token, every
  aliquot stored in a box (so the answer includes where it is);
- GET /api/v1/health, a constant JSON answer, through the same client (the framework's
  own cost);
- the raw indexed SQL lookup of one barcode on the driver's connection (the database's);
- registering one visit (2 tubes, 10 aliquots, their custody events), committed.
Prints one JSON line. The figure that matters is the ratio
lookup median / (trivial median + raw SQL median): a ratio, not a time, because the
machines are shared and noisy. Target: ≤ 3, and not growing from 100k to 1M.

    .venv/bin/python bench/scan_lookup.py [--million] [--database-url URL | --postgresql]

--postgresql measures on PostgreSQL: each size in a throw-away database created on the
server of BIOBANK_CI_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/test, as
.ci/pg_database.py), bulk-loaded with COPY and analysed, dropped at the end whatever
happens. With --million the two sizes are measured one after the other, each against
its own baseline, so that "ratio_growth" compares like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from flask_migrate import upgrade

from biobank import create_app
from biobank.auth import services as auth
from biobank.custody.hashing import event_hash
from biobank.custody.models import GENESIS_HASH
from biobank.db import utcnow
from biobank.extensions import db
from biobank.samples import barcodes
from biobank.samples.models import Aliquot, Specimen
from biobank.storage import services as storage
from biobank.storage.models import Container, StoredPosition
from biobank.study import services as study
from biobank.study.models import Visit
from tests import factories

ALIQUOTS_PER_VISIT = 10
VISITS_PER_PARTICIPANT = 5
SAMPLES = 2000
BATCH = 20_000
PG_ADMIN_URL = os.environ.get(
    "BIOBANK_CI_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def progress(message: str) -> None:
    """A line on standard error while a large database is built (minutes)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load(table: str, rows: list[dict]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``: with COPY on PostgreSQL,
    with one executemany INSERT elsewhere. Columns left out take their database default
    (their Python default when it is a constant)."""
    if not rows:
        return
    columns = db.metadata.tables[table].columns
    fixed = {
        column.name: column.default.arg
        for column in columns
        if column.name not in rows[0] and column.default is not None and column.default.is_scalar
    }
    if db.engine.dialect.name != "postgresql":
        db.session.execute(sa.insert(db.metadata.tables[table]), [fixed | row for row in rows])
        return
    from psycopg import sql

    names = [*rows[0], *fixed]
    constants = list(fixed.values())
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    # The driver's connection of the session's transaction: committed with it.
    connection = db.session.connection().connection.driver_connection
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([*row.values(), *constants])


def milliseconds(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"median": round(statistics.median(ordered) * 1000, 4), "p99": round(p99 * 1000, 4)}


def timed(call, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def build(total: int, rng: random.Random, *, stored: bool = True) -> list[str]:
    """Insert ``total`` aliquots set-wise (participants, visits, specimens, events), and
    with ``stored`` put them all in boxes."""
    factories.protocol()
    factories.sites()
    definition = study.current_protocol().visit_definitions[0]
    now = datetime.now(UTC)
    visits_needed = total // ALIQUOTS_PER_VISIT
    participants = visits_needed // VISITS_PER_PARTICIPANT + 1
    load(
        "participant",
        [
            {
                "study_code": "POEMS-LENDEX",
                "code": f"LIM-{n}",
                "site_id": 2,
                "arm_code": "G2",
                "disease_status": "de_novo",
                "included_on": date(2026, 1, 1),
                "consent_status": "given",
                "consent_given_on": date(2026, 1, 1),
                "created_at": now,
            }
            for n in range(1, participants + 1)
        ],
    )
    codes: list[str] = []
    seen: set[str] = set()
    aliquot_id = 0
    for first_visit in range(0, visits_needed, BATCH // ALIQUOTS_PER_VISIT):
        visit_rows, specimen_rows, aliquot_rows, event_rows = [], [], [], []
        for v in range(first_visit, min(visits_needed, first_visit + BATCH // ALIQUOTS_PER_VISIT)):
            visit_rows.append(
                {
                    "id": v + 1,
                    "participant_id": v // VISITS_PER_PARTICIPANT + 1,
                    "visit_code": f"V{v % VISITS_PER_PARTICIPANT}",
                    "visit_definition_id": definition.id,
                    "collected_on": date(2026, 1, 1),
                    "study_day": 0,
                    "out_of_window": False,
                    "created_at": now,
                }
            )
            specimen_rows.append(
                {
                    "id": v + 1,
                    "visit_id": v + 1,
                    "tube_type": "SST",
                    "container": "SST",
                    "sample_type": "SER",
                    "collected_at": now,
                    "precentrifugation_temperature": "RT",
                    "spun_at": now,
                    "spin_temperature_c": 20.0,
                    "spin_force_g": 2000,
                    "spin_minutes": 10,
                    "spin_braking": True,
                    "postcentrifugation_temperature": "RT",
                    "frozen_at": now,
                    "storage_temperature_c": -80,
                    "sprec_code": "SER-SST-A-B-N-B-D",
                    "sprec_others": "{}",
                    "notes": "",
                    "created_at": now,
                }
            )
            for n in range(1, ALIQUOTS_PER_VISIT + 1):
                code = barcodes.new_aliquot_barcode(rng.randrange)
                while code in seen:
                    code = barcodes.new_aliquot_barcode(rng.randrange)
                seen.add(code)
                codes.append(code)
                aliquot_id += 1
                digest = event_hash(
                    barcode=code,
                    seq=1,
                    kind="REGISTERED",
                    at=now,
                    actor="bench",
                    from_location=None,
                    to_location=None,
                    reason=None,
                    details="{}",
                    prev_hash=GENESIS_HASH,
                )
                aliquot_rows.append(
                    {
                        "id": aliquot_id,
                        "barcode": code,
                        "specimen_id": v + 1,
                        "sample_type": "SER",
                        "series_number": n,
                        "series_total": ALIQUOTS_PER_VISIT,
                        "initial_volume_ul": 500,
                        "volume_ul": 500,
                        "status": "in_storage" if stored else "registered",
                        "freeze_thaw_count": 0,
                        "registered_at": now,
                        "custody_head": digest,
                        "custody_count": 1,
                    }
                )
                event_rows.append(
                    {
                        "aliquot_id": aliquot_id,
                        "seq": 1,
                        "kind": "REGISTERED",
                        "at": now,
                        "actor_name": "bench",
                        "details": "{}",
                        "prev_hash": GENESIS_HASH,
                        "hash": digest,
                    }
                )
        if db.engine.dialect.name == "postgresql":
            load("visit", visit_rows)
            load("specimen", specimen_rows)
            load("aliquot", aliquot_rows)
            load("custody_event", event_rows)
        else:
            db.session.execute(sa.insert(Visit), visit_rows)
            db.session.execute(sa.insert(Specimen), specimen_rows)
            db.session.execute(sa.insert(Aliquot), aliquot_rows)
            db.session.execute(
                sa.text(
                    "INSERT INTO custody_event (aliquot_id, seq, kind, at, actor_name, "
                    "details, prev_hash, hash) VALUES (:aliquot_id, :seq, :kind, :at, "
                    ":actor_name, :details, :prev_hash, :hash)"
                ),
                [{**row, "at": row["at"].replace(tzinfo=None)} for row in event_rows],
            )
        db.session.commit()
        if aliquot_id % 100_000 == 0:
            progress(f"{aliquot_id:,} of {total:,} aliquots loaded")
    if stored:
        _store_all(aliquot_id)
    if db.engine.dialect.name == "postgresql":
        for table in ("visit", "specimen", "aliquot", "container"):
            db.session.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
        # Fresh statistics, as autovacuum would give a database that grew over years.
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
    return codes


def _store_all(count: int) -> None:
    """Put every aliquot in a 10 × 10 box of one freezer, as a bank's tubes mostly are, so
    that each lookup also says where the tube is (``build`` marked them in storage)."""
    kind = storage.create_container_type("Bench 10 × 10 box", "box", rows=10, cols=10, actor=None)
    room = storage.create_container("room", "Bench room", site="BIO", actor=None)
    freezer = storage.create_container(
        "freezer", "Bench freezer", parent=room.barcode, temperature_class="-80", actor=None
    )
    base = db.session.execute(sa.select(sa.func.max(Container.id))).scalar() + 1
    boxes = (count + 99) // 100
    load(
        "container",
        [
            {
                "id": base + n,
                "barcode": f"BENCH-{n:06d}",
                "name": f"Box {n}",
                "kind": "box",
                "type_id": kind.id,
                "parent_id": freezer.id,
                "site_id": freezer.site_id,
                "slot": n,
                "path": f"{freezer.path} › Box {n} (BENCH-{n:06d})",
                "created_at": utcnow(),
            }
            for n in range(boxes)
        ],
    )
    for first in range(0, count, BATCH):
        load(
            StoredPosition.__tablename__,
            [
                {
                    "aliquot_id": i + 1,
                    "box_id": base + i // 100,
                    "row": i % 100 // 10 + 1,
                    "col": i % 10 + 1,
                    "stored_at": utcnow(),
                }
                for i in range(first, min(count, first + BATCH))
            ],
        )
    db.session.commit()


def raw_lookup(app, codes, rng) -> list[float]:
    """The database alone: an indexed SELECT on the driver connection, no ORM."""
    with app.app_context():
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            marker = "?" if db.engine.dialect.name == "sqlite" else "%s"
            sql = f"SELECT id, barcode, status, volume_ul FROM aliquot WHERE barcode = {marker}"
            picks = [rng.choice(codes) for _ in range(SAMPLES)]
            samples = []
            for code in picks:
                start = time.perf_counter()
                cursor.execute(sql, (code,))
                cursor.fetchall()
                samples.append(time.perf_counter() - start)
            return samples
        finally:
            connection.close()


def measure(app, codes: list[str], rng: random.Random) -> dict:
    with app.app_context():
        user = auth.create_user("bench", "technician", "bench password 1")
        token = auth.issue_token(user.username)
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def get(url):
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.status_code)

    picks = [rng.choice(codes) for _ in range(SAMPLES)]
    for code in picks[:200]:  # warm caches and pools
        get(f"/api/v1/aliquots/{code}")
    lookup = []
    for code in picks:
        start = time.perf_counter()
        get(f"/api/v1/aliquots/{code}")
        lookup.append(time.perf_counter() - start)
    trivial = timed(lambda: get("/api/v1/health"), SAMPLES)
    raw = raw_lookup(app, codes, rng)
    figures = {
        "aliquots": len(codes),
        "lookup_ms": milliseconds(lookup),
        "trivial_endpoint_ms": milliseconds(trivial),
        "raw_sql_ms": milliseconds(raw),
    }
    figures["ratio"] = round(
        statistics.median(lookup) / (statistics.median(trivial) + statistics.median(raw)), 3
    )
    return figures


def registration(app) -> dict:
    """Median time to register one visit (2 tubes, 10 aliquots, 10 events) and commit."""
    with app.app_context():
        codes = [factories.participant("PAR", code=f"PAR-{n}").code for n in range(1, 61)]
        db.session.commit()
        on = datetime(2026, 1, 5, 8, tzinfo=UTC)
        samples = []
        for code in codes:
            start = time.perf_counter()
            factories.visit(code, "BL", on=on + timedelta(minutes=1))
            db.session.commit()
            samples.append(time.perf_counter() - start)
            db.session.expunge_all()
    return milliseconds(samples[10:])  # the first ones warm the mappers and caches


def run(total: int, url: str | None, rng: random.Random) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory() as folder:
        database = url or f"sqlite:///{folder}/bench.sqlite3"
        app = create_app({"SQLALCHEMY_DATABASE_URI": database, "SECRET_KEY": "bench-" + "k" * 40})
        with app.app_context():
            upgrade()
            progress(f"building {total:,} aliquots on {db.engine.dialect.name}")
            start = time.perf_counter()
            codes = build(total, rng)
            built = time.perf_counter() - start
        progress(f"built in {built:.0f} s; measuring")
        figures = measure(app, codes, rng)
        figures["build_s"] = round(built, 1)
        visit = registration(app)
        with app.app_context():
            db.engine.dispose()
        return figures, visit


@contextmanager
def throwaway_database(admin_url: str, total: int) -> Iterator[str]:
    """A new, empty PostgreSQL database for one size (its SQLAlchemy URL), dropped on the
    way out whatever happened (sessions left open included)."""
    import psycopg
    from psycopg import sql

    name = f"bench_scan_{total}_{os.getpid()}"
    url = sa.engine.make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        progress(f"dropped database {name}")


def measured(total: int, args, rng: random.Random) -> tuple[dict, dict]:
    if args.postgresql:
        with throwaway_database(args.pg_admin_url, total) as url:
            return run(total, url, rng)
    return run(total, args.database_url, rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--million", action="store_true", help="also measure 1,000,000 aliquots")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    where.add_argument(
        "--postgresql",
        action="store_true",
        help="on PostgreSQL, in throw-away databases (one per size) loaded with COPY",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=PG_ADMIN_URL,
        help="with --postgresql: a database of the server to create them from "
        "(default: BIOBANK_CI_PG_ADMIN_URL or postgresql://postgres@127.0.0.1:5432/test)",
    )
    parser.add_argument("--aliquots", type=int, default=100_000)
    args = parser.parse_args()
    if args.database_url and args.million:
        parser.error("--million builds two databases: use --postgresql, or SQLite")
    rng = random.Random(20261129)
    small, visit = measured(args.aliquots, args, rng)
    postgresql = args.postgresql or bool(args.database_url)
    result = {
        "database": "postgresql" if postgresql else "sqlite",
        **small,
        "target_ratio": 3.0,
        "register_visit_ms": visit,
        "register_visit_target_ms": 50,
    }
    if args.million:
        large, large_visit = measured(1_000_000, args, rng)
        result["million"] = {**large, "register_visit_ms": large_visit}
        result["ratio_growth"] = round(large["ratio"] / small["ratio"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
