"""Storage speed: auto-allocation, the box map, a rack-scanner import.

Prints one JSON line:
- allocate: propose positions for N registered aliquots in an empty freezer and store
  them (custody events included), for N = 1,000 and 10,000, with the number of SQL
  statements each took: the count per aliquot must fall as N grows (set-based, no query
  per aliquot). Target: 10,000 in ≤ 2 s.
- box map: GET /boxes/<barcode> of a full 10 × 10 box through the test client, median
  (target ≤ 20 ms), next to the constant /api/v1/health for scale.
- rack import: preview + apply of a 96-tube rack file (target ≤ 200 ms).

    .venv/bin/python bench/storage.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from flask_migrate import upgrade

from biobank import create_app
from biobank.auth import services as auth
from biobank.extensions import db
from biobank.samples.models import Aliquot
from biobank.storage import allocating
from biobank.storage import services as storage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import StatementCounter
from scan_lookup import build


def freezer(boxes: int, rows: int = 9, cols: int = 9, name: str = "Bench") -> list[str]:
    storage.create_container_type(f"{name} {rows}x{cols}", "box", rows=rows, cols=cols, actor=None)
    storage.create_container("room", f"{name} room", site="BIO", actor=None)
    room = db.session.execute(
        sa.select(sa.func.max(storage.Container.barcode)).where(storage.Container.kind == "room")
    ).scalar()
    frz = storage.create_container(
        "freezer", f"{name} freezer", parent=room, temperature_class="-80", actor=None
    )
    codes = []
    for r in range(0, boxes, 10):
        rack = storage.create_container("rack", f"Rack {r // 10}", parent=frz.barcode, actor=None)
        for _ in range(min(10, boxes - r)):
            codes.append(
                storage.create_container(
                    "box", "Box", parent=rack.barcode, type_name=f"{name} {rows}x{cols}", actor=None
                ).barcode
            )
    db.session.commit()
    return codes


def allocate(total: int, rng: random.Random) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/s.sqlite3",
                "SECRET_KEY": "bench-" + "k" * 40,
            }
        )
        with app.app_context():
            upgrade()
            build(total, rng, stored=False)
            freezer(boxes=total // 81 + 2)
            ids = list(db.session.execute(sa.select(Aliquot.id)).scalars())
            counter = StatementCounter(db.engine)
            start = time.perf_counter()
            plan = allocating.propose(ids, actor=None)
            proposed = time.perf_counter()
            propose_statements = counter.count
            allocating.store_all(
                [(p.barcode, p.box, p.position) for p in plan.proposals], actor=None
            )
            db.session.commit()
            done = time.perf_counter()
            db.engine.dispose()
        return {
            "aliquots": total,
            "placed": len(plan.proposals),
            "propose_s": round(proposed - start, 3),
            "store_s": round(done - proposed, 3),
            "total_s": round(done - start, 3),
            "statements": counter.count,
            "propose_statements": propose_statements,
            "statements_per_aliquot": round(counter.count / total, 4),
        }


def box_map_and_rack(rng: random.Random, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/b.sqlite3",
                "SECRET_KEY": "bench-" + "k" * 40,
                "WTF_CSRF_ENABLED": False,
            }
        )
        with app.app_context():
            upgrade()
            build(200, rng, stored=False)
            boxes = freezer(boxes=1, rows=10, cols=10, name="Map")
            boxes += freezer(boxes=1, rows=8, cols=12, name="Rack")
            codes = list(
                db.session.execute(sa.select(Aliquot.barcode).order_by(Aliquot.id)).scalars()
            )
            storage.store_many([(code, boxes[0], None) for code in codes[:100]], actor=None)
            auth.create_user("bench", "technician", "bench password 1")
            db.session.commit()
        client = app.test_client()
        client.post("/login", data={"username": "bench", "password": "bench password 1"})

        def timed(url):
            samples = []
            for _ in range(repeat):
                start = time.perf_counter()
                response = client.get(url)
                samples.append(time.perf_counter() - start)
                assert response.status_code == 200, url
            return round(statistics.median(samples) * 1000, 3)

        figures = {
            "box_map_10x10_ms": timed(f"/boxes/{boxes[0]}"),
            "health_ms": timed("/api/v1/health"),
        }
        figures.update(rack_import(app, codes[100:196], boxes[1], repeat))
        return figures


def rack_import(app, codes: list[str], box: str, repeat: int) -> dict:
    """Preview + apply of a 96-tube rack, on a fresh copy of the same situation each time."""
    try:
        from biobank.storage import rack_import as importer
    except ImportError:
        return {}
    rows = "ABCDEFGH"
    lines = ["Rack,Position,Tube"] + [
        f"{box},{rows[i // 12]}{i % 12 + 1:02d},{code}" for i, code in enumerate(codes)
    ]
    data = ("\r\n".join(lines) + "\r\n").encode()
    samples = []
    with app.app_context():
        for _ in range(repeat):
            start = time.perf_counter()
            importer.preview_rack(data, actor=None)
            importer.apply_rack(data, actor=None)
            samples.append(time.perf_counter() - start)
            db.session.rollback()  # the next round imports the same rack again
    return {"rack_import_96_ms": round(statistics.median(samples) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rng = random.Random(20261129)
    small = allocate(1_000, rng)
    large = allocate(2_000 if args.quick else 10_000, rng)
    result = {
        "allocate_small": small,
        "allocate": large,
        "allocate_target_s": 2.0,
        "statements_per_aliquot_falls": large["statements_per_aliquot"]
        < small["statements_per_aliquot"],
        **box_map_and_rack(rng, repeat=20 if args.quick else 100),
        "box_map_target_ms": 20,
        "rack_import_target_ms": 200,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
