"""Distribution speed: the catalogue, matching and reserving a request, the paperwork.

Builds a database of 100,000 stored aliquots with scan_lookup.build() (10 serum aliquots
per visit, visits V0–V4 of 2,000 participants, all in arm G2, every aliquot in a box), then
measures in the same run and prints one JSON line:
- catalogue: services.catalogue(Criteria()), median, with the number of SQL
  statements one call issues (target: ≤ 100 ms, one aggregate query), next to the raw
  SQL count of available aliquots on the driver's connection and the catalogue's own
  compiled SQL run there (the database's share); measured on the fresh bank and again at
  the end, with 2,000 open reservations and thousands of closed ones;
- reserve: a researcher's request whose criteria select 2,000 aliquots (visit V0, serum,
  one per participant and visit at 100,000; visits V0–V4, two per participant and visit
  with --quick), then propose() + approve() (2,000 reservations, 2,000 RESERVED custody
  events) flushed and committed, median over fresh requests, each cancelled afterwards so
  that the next finds the same aliquots available (target: ≤ 1 s);
- paperwork for those 2,000 aliquots: the pick list (shipping.pick_list +
  paperwork.pick_list_pdf, which builds it) and the xlsx manifest of a shipment packed
  with the 2,000 tubes by scan through shipping.add_to_shipment (setup, not timed), each
  a median, and their sum (target: ≤ 1 s), next to openpyxl alone writing the same
  2,000 rows.
The ratios put the times next to their baselines, as the machines are shared and noisy.

    .venv/bin/python bench/distribution.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from flask_migrate import upgrade
from openpyxl import Workbook

from biobank import create_app
from biobank.auth import services as auth
from biobank.auth.models import User
from biobank.distribution import paperwork, shipping
from biobank.distribution import services as requests
from biobank.distribution.criteria import Criteria
from biobank.distribution.models import Reservation
from biobank.extensions import db

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import StatementCounter, ms
from scan_lookup import ALIQUOTS_PER_VISIT, VISITS_PER_PARTICIPANT, build

WANTED = 2_000
PASSWORD = "bench password 1"


def shape(total: int) -> Criteria:
    """Criteria selecting WANTED aliquots of the bank build() makes: participants × visits
    × per participant and visit, with at least one aliquot of each group left behind."""
    participants = total // (ALIQUOTS_PER_VISIT * VISITS_PER_PARTICIPANT)
    best = min(
        (abs(participants * visits * per - WANTED), per, visits)
        for visits in range(1, VISITS_PER_PARTICIPANT + 1)
        for per in range(1, ALIQUOTS_PER_VISIT)
    )
    _, per, visits = best
    return Criteria(
        visits=tuple(f"V{n}" for n in range(visits)),
        sample_types=("SER",),
        per_participant_visit=per,
    )


def raw_ms(sql: str, params, repeat: int) -> float:
    """Median time of one statement on the driver's connection, no ORM."""
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(sql, params)  # warm the page cache
        cursor.fetchall()
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            samples.append(time.perf_counter() - start)
        return ms(samples)
    finally:
        connection.close()


def catalogue(repeat: int) -> dict:
    requests.catalogue(Criteria())  # warm mappers and caches
    counter = StatementCounter(db.engine)
    rows = requests.catalogue(Criteria())
    statements = counter.count
    counter.close()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        requests.catalogue(Criteria())
        samples.append(time.perf_counter() - start)
    db.session.rollback()
    # The catalogue's own query, compiled once, run on the driver's connection.
    captured: list[tuple] = []

    def capture(_conn, _cursor, statement, parameters, *_rest):
        captured.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    requests.catalogue(Criteria())
    sa.event.remove(db.engine, "before_cursor_execute", capture)
    db.session.rollback()
    sql, params = captured[-1]
    count_sql = "SELECT count(*) FROM aliquot WHERE status = 'in_storage' AND volume_ul > 0"
    figures = {
        "ms": ms(samples),
        "statements": statements,
        "cells": len(rows),
        "aliquots": sum(r.aliquots for r in rows),
        "raw_count_ms": raw_ms(count_sql, (), repeat),
        "raw_catalogue_sql_ms": raw_ms(sql, params, repeat),
    }
    figures["ratio_to_raw_count"] = round(figures["ms"] / figures["raw_count_ms"], 2)
    figures["ratio_to_raw_catalogue_sql"] = round(
        figures["ms"] / figures["raw_catalogue_sql_ms"], 2
    )
    return figures


def user(name: str) -> User:
    return db.session.execute(sa.select(User).where(User.username == name)).scalar_one()


def submit(criteria: Criteria) -> int:
    request = requests.submit_request(
        title="VEGF kinetics",
        aim="Serum VEGF of every participant",
        receiving_lab="VEGF laboratory, Limoges",
        contact_name="Dr Lab",
        contact_email="lab@chu.example",
        criteria=criteria,
        actor=user("researcher"),
    )
    db.session.commit()
    return request.id


def reserve(criteria: Criteria, runs: int) -> tuple[dict, int]:
    """propose() + approve() + commit of fresh requests; each is cancelled afterwards (not
    timed) so that the next finds the same aliquots. The last one stays approved."""
    proposed, approved, committed, total = [], [], [], []
    counter = StatementCounter(db.engine)
    statements = []
    chosen = 0
    for run in range(runs + 1):  # the first run warms mappers and caches
        request_id = submit(criteria)
        db.session.remove()  # a fresh session, as a new web request would have
        manager = user("manager")
        counter.count = 0
        start = time.perf_counter()
        proposal = requests.propose(request_id, actor=manager)
        middle = time.perf_counter()
        codes = [c.barcode for c in proposal.selection.chosen]
        requests.approve(request_id, codes, actor=manager)
        db.session.flush()
        flushed = time.perf_counter()
        db.session.commit()
        end = time.perf_counter()
        statements.append(counter.count)
        chosen = len(codes)
        if run:
            proposed.append(middle - start)
            approved.append(flushed - middle)
            committed.append(end - flushed)
            total.append(end - start)
        if run < runs:
            requests.cancel(request_id, "bench: the next run reserves them again", actor=manager)
            db.session.commit()
    counter.close()
    db.session.remove()
    figures = {
        "aliquots": chosen,
        "runs": runs,
        "ms": ms(total),
        "propose_ms": ms(proposed),
        "approve_ms": ms(approved),
        "commit_ms": ms(committed),
        "statements": statements[-1],
    }
    return figures, request_id


def openpyxl_alone(lines, repeat: int) -> float:
    """The same tube rows written by openpyxl with nothing around them."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("Manifest")
        for line in lines:
            ws.append(
                [
                    line.box_number,
                    line.position,
                    line.barcode,
                    line.sample_type,
                    line.volume_ul,
                    line.visit,
                    line.participant,
                ]
            )
        buffer = io.BytesIO()
        wb.save(buffer)
        samples.append(time.perf_counter() - start)
    return ms(samples)


def paperwork_figures(app, request_id: int, repeat: int) -> dict:
    technician = user("technician")
    with app.test_request_context():
        paperwork.pick_list_pdf(request_id, actor=technician)  # warm fonts and caches
        db.session.rollback()
        query, pdf = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            found = shipping.pick_list(request_id, actor=technician)
            middle = time.perf_counter()
            paper = paperwork.pick_list_pdf(request_id, actor=technician)
            end = time.perf_counter()
            query.append(middle - start)
            pdf.append(end - middle)
            db.session.rollback()
        pages = len(re.findall(rb"/Type\s*/Page(?!s)", paper.content))
        tubes = [i.barcode for i in found.items]

    start = time.perf_counter()
    shipment = shipping.create_shipment(request_id=request_id, actor=technician)
    code = shipment.code
    for barcode in tubes:
        shipping.add_to_shipment(code, barcode, actor=technician)
    db.session.commit()
    packed = time.perf_counter() - start
    db.session.remove()
    technician = user("technician")

    with app.test_request_context():
        paperwork.manifest(code, "xlsx", actor=technician)  # warm
        db.session.rollback()
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            xlsx = paperwork.manifest(code, "xlsx", actor=technician)
            samples.append(time.perf_counter() - start)
            db.session.rollback()
        shipment = shipping.get_shipment(code, actor=technician)
        lines = paperwork.manifest_lines(shipment, actor=technician)
        db.session.rollback()
    figures = {
        "tubes": len(tubes),
        "pick_list_query_ms": ms(query),
        "pick_list_pdf_ms": ms(pdf),  # builds the pick list again, then draws it
        "pick_list_pdf_pages": pages,
        "manifest_xlsx_ms": ms(samples),
        "manifest_xlsx_kb": round(len(xlsx.content) / 1024, 1),
        "manifest_rows": len(lines),
        "openpyxl_alone_ms": openpyxl_alone(lines, repeat),
        "pack_by_scan_setup_s": round(packed, 1),
    }
    figures["pick_list_and_manifest_ms"] = round(
        figures["pick_list_pdf_ms"] + figures["manifest_xlsx_ms"], 2
    )
    figures["manifest_ratio_to_openpyxl"] = round(
        figures["manifest_xlsx_ms"] / figures["openpyxl_alone_ms"], 2
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 aliquots, a smoke run")
    args = parser.parse_args()
    total = 10_000 if args.quick else 100_000
    repeat = 5 if args.quick else 20
    runs = 3 if args.quick else 5
    rng = random.Random(20261129)
    criteria = shape(total)
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/d.sqlite3",
                "SECRET_KEY": "bench-" + "k" * 40,
            }
        )
        with app.app_context():
            upgrade()
            start = time.perf_counter()
            build(total, rng)
            built = time.perf_counter() - start
            for role in ("researcher", "manager", "technician"):
                auth.create_user(role, role, PASSWORD, email=f"{role}@chu.example")
            db.session.commit()
            fresh = catalogue(repeat)
            reserved, request_id = reserve(criteria, runs)
            papers = paperwork_figures(app, request_id, max(3, repeat // 4))
            held = db.session.execute(
                sa.select(sa.func.count(Reservation.id)).where(Reservation.closed_at.is_(None))
            ).scalar()
            later = catalogue(repeat)
            later["open_reservations"] = held
            db.engine.dispose()
    result = {
        "database": "sqlite",
        "aliquots": total,
        "build_s": round(built, 1),
        "criteria": json.loads(criteria.to_json()),
        "catalogue": fresh,
        "catalogue_after_requests": later,
        "catalogue_target_ms": 100,
        "reserve": reserved,
        "reserve_target_ms": 1000,
        "paperwork": papers,
        "paperwork_target_ms": 1000,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
