"""Monitoring speed: collection completeness and the home page's worklists.

Builds, with bulk inserts, a bank of 1,000 participants (two centres, two arms) under a
protocol of 8 visits × 2 tubes (written below), the visits of the windows passed (most of
them registered, a few missing, a few tubes recorded as not drawn, half of the windows
open today registered), their specimens and 100,000 aliquots with their custody events,
a few temperature excursions, requests, shipments (tubes missing at a receipt among
them), assay runs and notifications. Then measures in the same run and prints one JSON
line:
- completeness: ``monitoring.completeness.completeness(actor=..., as_of=...)`` for the
  1,000 × 8 × 2 = 16,000 items, median (target: ≤ 200 ms), next to a raw SQL count over
  the same tables (participants joined to visits and specimens, grouped by centre, visit
  and tube type) on the driver's connection: ``completeness_ratio``;
- worklists: every count of the home page for a manager (whose worklists hold the
  technician's counts too) and for a technician, median of each (target: ≤ 50 ms), with
  the number of SQL statements, next to raw SQL counts of the same tables:
  ``worklists_ratio``; and the same for a manager bound to a centre.
Ratios, because the machines are shared and noisy.

    .venv/bin/python bench/monitoring.py [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from flask_migrate import upgrade

from biobank import create_app
from biobank.assays.models import AssayRun
from biobank.auth import services as auth
from biobank.auth.models import User
from biobank.distribution.models import SampleRequest, Shipment, ShipmentItem
from biobank.extensions import db
from biobank.monitoring import worklists
from biobank.monitoring.completeness import completeness
from biobank.notifications.models import OutboxMessage
from biobank.samples.deviations import DRAW_TO_CENTRIFUGATION
from biobank.samples.models import Aliquot, Specimen, UncollectedTube
from biobank.sites.models import Site
from biobank.study import services as study
from biobank.study.models import Participant, Visit
from biobank.study.protocol import parse_protocol

# Last: bench/labels.py must not hide the labels package.
sys.path.append(str(Path(__file__).resolve().parent))
from measure import StatementCounter, ms

AS_OF = date(2026, 6, 1)
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
PARTICIPANTS = 1_000
ALIQUOTS = 100_000
PASSWORD = "bench password 1"
BATCH = 20_000
ZERO_HASH = "0" * 64
# Clotted 5 h before it was spun, for an SOP of 30 min to 2 h.
LATE_SPIN = json.dumps(
    [{"code": DRAW_TO_CENTRIFUGATION, "minutes": 300, "min": 30, "max": 120, "clotting": True}]
)

# 8 visits × 2 tubes, every visit in both arms: 16 items per participant.
VISITS = (  # code, nominal day, days allowed before, after
    ("V0", 0, 28, 0),
    ("V1", 28, 7, 7),
    ("V2", 56, 7, 7),
    ("V3", 84, 7, 7),
    ("V4", 112, 14, 14),
    ("V5", 168, 14, 14),
    ("V6", 252, 14, 14),
    ("V7", 364, 30, 30),
)


def protocol_toml() -> str:
    visits = "\n".join(
        f"""
[[visits]]
code = "{code}"
name = "Visit {code}"
arms = ["A", "B"]
nominal_day = {nominal}
window_before_days = {before}
window_after_days = {after}
samples = [
  {{ tube_type = "SST", aliquots = 5, volume_ul = 500 }},
  {{ tube_type = "EDTA", aliquots = 5, volume_ul = 500 }},
]"""
        for code, nominal, before, after in VISITS
    )
    return f"""[study]
code = "BENCH-8"
title = "Monitoring benchmark: 8 visits, 2 tubes"
sponsor = "Bench"
version = "1"

[tube_types.SST]
label = "Serum separator tube"
container = "SST"
sample_type = "SER"

[tube_types.EDTA]
label = "EDTA plasma tube"
container = "PED"
sample_type = "PL1"

[[arms]]
code = "A"
name = "Arm A"

[[arms]]
code = "B"
name = "Arm B"
{visits}
"""


# --- the bank -------------------------------------------------------------------------------


def _naive(at: datetime) -> datetime:
    """Raw inserts bypass the UTC column type on SQLite, which stores naive UTC."""
    return at.replace(tzinfo=None) if db.engine.dialect.name == "sqlite" else at


def _insert(model, rows: list[dict]) -> None:
    for first in range(0, len(rows), BATCH):
        db.session.execute(sa.insert(model), rows[first : first + BATCH])


def build(rng: random.Random, participants: int, aliquots: int) -> dict:
    source = protocol_toml()
    study.load_protocol(parse_protocol(source), source)
    sites = {
        "BIO": Site(code="BIO", name="Central biobank", is_central=True),
        "LIM": Site(code="LIM", name="CHU de Limoges"),
        "PAR": Site(code="PAR", name="Hôpital Saint-Louis"),
    }
    db.session.add_all(sites.values())
    db.session.flush()
    protocol = study.current_protocol()
    definitions = {d.code: d.id for d in protocol.visit_definitions}
    now = NOW

    people, visits, specimens, uncollected = [], [], [], []
    for n in range(1, participants + 1):
        site = "LIM" if n % 2 else "PAR"
        included = AS_OF - timedelta(days=rng.randrange(0, 450))
        people.append(
            {
                "id": n,
                "study_code": "BENCH-8",
                "code": f"{site}-{n:04d}",
                "site_id": sites[site].id,
                "arm_code": "A" if n % 3 else "B",
                "disease_status": "de_novo",
                "included_on": included,
                "consent_status": "given",
                "consent_given_on": included,
                "created_at": now,
            }
        )
        for code, nominal, before, after in VISITS:
            opens = included + timedelta(days=nominal - before)
            closes = included + timedelta(days=nominal + after)
            if opens > AS_OF:
                continue  # upcoming
            chance = 0.95 if closes < AS_OF else 0.5  # passed, or open today
            if rng.random() > chance:
                continue  # missing, or due
            visit_id = len(visits) + 1
            on = min(included + timedelta(days=nominal), AS_OF)
            visits.append(
                {
                    "id": visit_id,
                    "participant_id": n,
                    "visit_code": code,
                    "visit_definition_id": definitions[code],
                    "collected_on": on,
                    "study_day": (on - included).days,
                    "out_of_window": False,
                    "created_at": now,
                }
            )
            for tube, sample_type, container in (("SST", "SER", "SST"), ("EDTA", "PL1", "PED")):
                if rng.random() < 0.02:
                    uncollected.append(
                        {
                            "visit_id": visit_id,
                            "tube_type": tube,
                            "reason": "failed_draw",
                            "note": "",
                            "recorded_at": now,
                        }
                    )
                    continue
                drawn = datetime(on.year, on.month, on.day, 8, 30, tzinfo=UTC)
                specimens.append(
                    {
                        "id": len(specimens) + 1,
                        "visit_id": visit_id,
                        "tube_type": tube,
                        "container": container,
                        "sample_type": sample_type,
                        "collected_at": drawn,
                        "precentrifugation_temperature": "RT",
                        "spun_at": drawn + timedelta(hours=1),
                        "spin_temperature_c": 20.0,
                        "spin_force_g": 2000,
                        "spin_minutes": 10,
                        "spin_braking": True,
                        "postcentrifugation_temperature": "RT",
                        "frozen_at": drawn + timedelta(hours=2),
                        "storage_temperature_c": -80,
                        "sprec_code": f"{sample_type}-{container}-A-B-N-B-D",
                        "sprec_others": "{}",
                        "notes": "",
                        # One specimen in twenty broke an SOP limit.
                        "deviations": LATE_SPIN if rng.random() < 0.05 else "[]",
                        "created_at": now,
                    }
                )
                specimens[-1]["deviates"] = specimens[-1]["deviations"] != "[]"
    _insert(Participant, people)
    _insert(Visit, visits)
    _insert(Specimen, specimens)
    _insert(UncollectedTube, uncollected)

    # The aliquots, spread evenly over the specimens, and their REGISTERED events.
    per, extra = divmod(aliquots, len(specimens))
    rows, events, aliquot_id = [], [], 0
    for index, specimen in enumerate(specimens):
        total = per + (1 if index < extra else 0)
        for number in range(1, total + 1):
            aliquot_id += 1
            draw = rng.random()
            status = "registered" if draw < 0.02 else "missing" if draw < 0.023 else "in_storage"
            rows.append(
                {
                    "id": aliquot_id,
                    "barcode": f"B{aliquot_id:08d}",
                    "specimen_id": specimen["id"],
                    "sample_type": specimen["sample_type"],
                    "series_number": number,
                    "series_total": total,
                    "initial_volume_ul": 500,
                    "volume_ul": 500,
                    "status": status,
                    "freeze_thaw_count": 0,
                    "registered_at": now,
                    "custody_head": ZERO_HASH,
                    "custody_count": 1,
                }
            )
            events.append(
                {
                    "aliquot_id": aliquot_id,
                    "seq": 1,
                    "kind": "REGISTERED",
                    "at": _naive(now),
                    "actor_name": "bench",
                    "details": "{}",
                    "prev_hash": ZERO_HASH,
                    "hash": ZERO_HASH,
                }
            )
    _insert(Aliquot, rows)
    # Four freezer excursions in the last 30 days (and two older), on 300 tubes each.
    for n in range(6):
        ended = now - timedelta(days=5 + 8 * n)
        details = json.dumps(
            {
                "container": f"FR-{n:04d}",
                "started_at": (ended - timedelta(hours=3)).isoformat(),
                "ended_at": ended.isoformat(),
                "highest_c": -52.5,
            },
            sort_keys=True,
        )
        for a in range(1 + n * 300, 1 + (n + 1) * 300):
            events.append(
                {
                    "aliquot_id": a,
                    "seq": 2,
                    "kind": "TEMPERATURE_EXCURSION",
                    "at": _naive(ended),
                    "actor_name": "bench",
                    "details": details,
                    "prev_hash": ZERO_HASH,
                    "hash": ZERO_HASH,
                }
            )
    statement = sa.text(
        "INSERT INTO custody_event (aliquot_id, seq, kind, at, actor_name, details, "
        "prev_hash, hash) VALUES (:aliquot_id, :seq, :kind, :at, :actor_name, :details, "
        ":prev_hash, :hash)"
    )
    for first in range(0, len(events), BATCH):
        db.session.execute(statement, events[first : first + BATCH])

    users = {
        role: auth.create_user(role, role, PASSWORD, email=f"{role}@chu.example")
        for role in ("researcher", "manager", "technician")
    }
    users["lim_manager"] = auth.create_user(
        "lim_manager", "manager", PASSWORD, site_code="LIM", email="lim.manager@chu.example"
    )
    users["lim_technician"] = auth.create_user(
        "lim_technician", "technician", PASSWORD, site_code="LIM"
    )
    _distribution(rng, users, sites, rows, now)
    db.session.commit()
    return {
        "participants": len(people),
        "visits": len(visits),
        "specimens": len(specimens),
        "uncollected": len(uncollected),
        "aliquots": len(rows),
        "custody_events": len(events),
    }


def _distribution(rng, users, sites, aliquots, now) -> None:
    """Requests in every status, transfers on their way and received with tubes missing,
    assay runs, and the outbox with some failed messages."""
    statuses = ("submitted", "under_review", "approved", "being_prepared", "shipped", "received")
    _insert(
        SampleRequest,
        [
            {
                "title": f"Request {n}",
                "aim": "VEGF",
                "receiving_lab": "VEGF laboratory",
                "contact_name": "Dr Lab",
                "contact_email": "lab@chu.example",
                "criteria": "{}",
                "researcher_id": users["researcher"].id,
                "status": statuses[n % len(statuses)],
                "created_at": now,
                "updated_at": now,
            }
            for n in range(60)
        ],
    )
    missing = [a["id"] for a in aliquots if a["status"] == "missing"]
    shipments, items = [], []
    for n in range(1, 41):
        status = "dispatched" if n % 4 == 0 else "received"
        shipments.append(
            {
                "id": n,
                "origin_site_id": sites["LIM"].id,
                "destination_site_id": sites["BIO"].id,
                "recipient": "Central biobank (BIO)",
                "status": status,
                "created_at": now,
                "dispatched_at": now,
            }
        )
    for index, aliquot_id in enumerate(missing):
        items.append(
            {
                "shipment_id": 1 + index % 40,
                "aliquot_id": aliquot_id,
                "box_number": 1,
                "row": 1 + (index // 40) // 9 % 9,
                "col": 1 + (index // 40) % 9,
                "outcome": "missing",
            }
        )
    _insert(Shipment, shipments)
    _insert(ShipmentItem, items)
    limoges = [a["barcode"] for a in aliquots[:2000:2]]
    _insert(
        AssayRun,
        [
            {
                "kind": "sheet",
                "file_name": f"results-{n}.xlsx",
                "file_sha256": f"{n:064d}",
                "content": b"",
                "preview": json.dumps({"rows": [{"barcode": b} for b in limoges[n::10][:40]]}),
                "status": ("preview", "accepted", "rejected")[n % 3],
                "reason": "control out of range" if n % 3 == 2 else "",
                "created_at": now,
            }
            for n in range(30)
        ],
    )
    _insert(
        OutboxMessage,
        [
            {
                "event": "request.approved",
                "recipients": ("lim.manager@chu.example", "manager@chu.example")[n % 2],
                "subject": f"Message {n}",
                "body": "…",
                "created_at": now,
                "sent_at": now if n % 5 else None,
                "attempts": 1,
                "last_error": "SMTP refused" if n % 10 == 0 else "",
            }
            for n in range(500)
        ],
    )


# --- measures -------------------------------------------------------------------------------


def timed(call, repeat: int) -> list[float]:
    call()  # warm mappers, caches and the page cache
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
        db.session.rollback()  # a fresh transaction per repeat, as a new request has
    return samples


def raw_ms(statements: list[str], repeat: int) -> float:
    """Median time of running every statement once, on the driver's connection (no ORM)."""
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()

        def run():
            for sql in statements:
                cursor.execute(sql)
                cursor.fetchall()

        run()
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)
        return ms(samples)
    finally:
        connection.close()


COMPLETENESS_SQL = (
    "SELECT p.site_id, v.visit_code, s.tube_type, s.deviates, count(*) FROM participant p "
    "JOIN visit v ON v.participant_id = p.id JOIN specimen s ON s.visit_id = v.id "
    "GROUP BY p.site_id, v.visit_code, s.tube_type, s.deviates"
)
WORKLIST_SQL = [
    "SELECT count(*) FROM participant",
    "SELECT count(*) FROM visit",
    "SELECT count(*) FROM aliquot WHERE status = 'registered'",
    "SELECT count(*) FROM aliquot WHERE status = 'missing'",
    "SELECT status, count(*) FROM sample_request GROUP BY status",
    "SELECT count(*) FROM shipment WHERE status = 'dispatched'",
    "SELECT count(*) FROM assay_run WHERE status = 'preview'",
    "SELECT count(*) FROM custody_event WHERE kind = 'TEMPERATURE_EXCURSION'",
    "SELECT count(*) FROM outbox_message WHERE sent_at IS NULL AND last_error <> ''",
]


def user(name: str):
    """The signed-in user as a request has it (auth's Principal: one flat row)."""
    account = db.session.execute(sa.select(User.id).where(User.username == name)).scalar_one()
    return auth.principal(account)


def measure_completeness(repeat: int, profile: bool) -> dict:
    manager = user("manager")
    answer = completeness(actor=manager, as_of=AS_OF)
    samples = timed(lambda: completeness(actor=manager, as_of=AS_OF), repeat)
    figures = {
        "completeness_ms": ms(samples),
        "completeness_sql_ms": raw_ms([COMPLETENESS_SQL], repeat),
        "items": len(answer.items),
        "summary": answer.summary,
    }
    figures["completeness_ratio"] = round(
        figures["completeness_ms"] / figures["completeness_sql_ms"], 2
    )
    if profile:
        figures["completeness_profile"] = _profile(lambda: completeness(actor=manager, as_of=AS_OF))
    return figures


def _worklists_of(name: str):
    actor = user(name)

    def call():
        return worklists.worklists(actor=actor, today=AS_OF, now=NOW)

    return call


def measure_worklists(repeat: int) -> dict:
    figures = {}
    for name, key in (
        ("manager", "worklists"),
        ("technician", "worklists_technician"),
        ("lim_manager", "worklists_centre_manager"),
    ):
        call = _worklists_of(name)
        found = call()
        db.session.rollback()
        counter = StatementCounter(db.engine)
        call()
        figures[f"{key}_statements"] = counter.count
        counter.close()
        db.session.rollback()
        figures[f"{key}_ms"] = ms(timed(call, repeat))
        if name == "manager":
            figures["worklists_counts"] = _plain(found)
    figures["worklists_sql_ms"] = raw_ms(WORKLIST_SQL, repeat)
    figures["worklists_ratio"] = round(figures["worklists_ms"] / figures["worklists_sql_ms"], 2)
    return figures


def _plain(found: worklists.Worklists) -> dict:
    bench, decisions = found.bench, found.decisions
    return {
        "visits_due_this_week": bench.visits.due_this_week,
        "visits_overdue": bench.visits.overdue,
        "tubes_to_store": bench.tubes_to_store,
        "requests_to_pick": bench.requests_to_pick,
        "shipments_to_receive": bench.shipments_to_receive,
        "requests_to_review": decisions.requests_to_review,
        "runs_to_accept": decisions.runs_to_accept,
        "excursions": decisions.excursions,
        "tubes_missing": decisions.tubes_missing.tubes,
        "shipments_with_tubes_missing": decisions.tubes_missing.shipments,
        "failed_notifications": decisions.failed_notifications,
    }


def _profile(call) -> list[str]:
    """The ten functions where the time goes (cumulative), for the report."""
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    db.session.rollback()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(12)
    lines = [line.strip() for line in out.getvalue().splitlines() if "(" in line]
    return lines[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 participants, a smoke run")
    parser.add_argument("--profile", action="store_true", help="where completeness spends")
    args = parser.parse_args()
    participants = 100 if args.quick else PARTICIPANTS
    aliquots = 10_000 if args.quick else ALIQUOTS
    repeat = 5 if args.quick else 21
    rng = random.Random(20260601)
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/m.sqlite3",
                "SECRET_KEY": "bench-" + "k" * 40,
            }
        )
        with app.app_context():
            upgrade()
            start = time.perf_counter()
            built = build(rng, participants, aliquots)
            built["build_s"] = round(time.perf_counter() - start, 1)
            with app.test_request_context():  # the messages in the user's language
                result = {
                    "database": "sqlite",
                    **measure_completeness(repeat, args.profile),
                    "completeness_target_ms": 200,
                    **measure_worklists(repeat),
                    "worklists_target_ms": 50,
                    "bank": built,
                }
            db.engine.dispose()
    result["aliquots"] = built["aliquots"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
