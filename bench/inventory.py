"""Inventory import speed and memory: a centre's 50,000-row spreadsheet previewed, applied.

Prints one JSON line of figures, each a median over repeated runs, next to a baseline
measured in the same run (the machines are shared and noisy): openpyxl alone opening the
same file read-only and reading every row's values.

The file: Limoges's participants of arm G2 (all new to the bank, enrolled by the file),
each with the six visits of the arm, an SST and an EDTA tube per visit and the protocol's
five 500 µL aliquots per tube, one row per aliquot (50,000 rows, 834 participants, 5,000
visits, 10,000 tubes), stored in 500 boxes of 100 places already set up in a −80 °C
freezer; dates and times as a spreadsheet program keeps them (Excel date cells, no time
zone: read in Limoges's), saved by openpyxl as a spreadsheet program saves it (shared
strings, a recorded dimension).

- preview: services.preview (read, check every row, count what would be created).
  Target ≤ 10 s.
- apply: services.apply and the commit, on a fresh copy of the bank each run. Target
  ≤ 20 s.
- memory: in a subprocess that does only the preview then the apply, the peak RSS of the
  whole process (interpreter, app, file): its VmHWM and RUSAGE_CHILDREN of a small
  launcher that ran it, with its RSS before. Target ≤ 400 MB.
--quick: 5,000 rows, fewer repeats.

    .venv/bin/python bench/inventory.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openpyxl
import sqlalchemy as sa
from flask_migrate import upgrade

from biobank import create_app
from biobank.extensions import db
from biobank.inventory import services
from biobank.samples.models import Aliquot
from biobank.storage import services as storage
from tests import factories

# Appended, not first: bench/labels.py must not hide the labels package.
sys.path.append(str(Path(__file__).resolve().parent))
from assays import LAUNCHER, high_water_kb

HEADER = [
    "participant", "site", "arm", "included_on", "consent_given_on", "disease_status",
    "visit", "tube_type", "collected_at", "spun_at", "frozen_at", "volume_ul",
    "legacy_barcode", "box", "position",
]  # fmt: skip
VISITS = (("BL", 0), ("M2", 56), ("M4", 112), ("M6", 168), ("EOI", 252), ("EOM", 617))
TUBES = ("SST", "EDTA")
ALIQUOTS_PER_TUBE = 5
INCLUDED_ON = date(2025, 1, 6)
BOX_TYPE = "100-place cryobox"
BOX_SIDE = 10


def app_for(path: Path):
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SECRET_KEY": "bench-" + "k" * 40,
        }
    )


def timed(call, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


# --- the bank and the file -----------------------------------------------------------------


def bank(boxes: int) -> None:
    """The protocol, the centres, and Limoges's −80 °C freezer with ``boxes`` boxes of
    10 × 10, ten racks of them per shelf."""
    factories.protocol()
    factories.sites()
    storage.create_container_type(BOX_TYPE, "box", rows=BOX_SIDE, cols=BOX_SIDE, actor=None)
    storage.create_container("room", "Room", site="LIM", barcode="RM-0001", actor=None)
    storage.create_container(
        "freezer", "Freezer", parent="RM-0001", barcode="FR-0001", temperature_class="-80",
        actor=None,
    )  # fmt: skip
    storage.create_container("shelf", "Shelf", parent="FR-0001", barcode="SH-0001", actor=None)
    for number in range(1, boxes + 1):
        rack = f"RK-{(number - 1) // 10 + 1:04d}"
        if (number - 1) % 10 == 0:
            storage.create_container("rack", rack, parent="SH-0001", barcode=rack, actor=None)
        storage.create_container(
            "box", f"Box {number}", parent=rack, barcode=f"BX-{number:04d}", type_name=BOX_TYPE,
            actor=None,
        )  # fmt: skip
    db.session.commit()


def rows(count: int) -> list[list]:
    """``count`` aliquot rows, participant by participant, visit by visit, tube by tube."""
    out = []
    place = 0
    participant = 0
    while len(out) < count:
        participant += 1
        code = f"LIM-{participant:04d}"
        for visit, day in VISITS:
            drawn = datetime.combine(INCLUDED_ON + timedelta(days=day), datetime.min.time())
            drawn += timedelta(hours=8, minutes=30)
            for tube in TUBES:
                for n in range(1, ALIQUOTS_PER_TUBE + 1):
                    box, cell = divmod(place, BOX_SIDE * BOX_SIDE)
                    row, col = divmod(cell, BOX_SIDE)
                    out.append(
                        [
                            code, "LIM", "G2", INCLUDED_ON, INCLUDED_ON - timedelta(days=2),
                            "de_novo", visit, tube, drawn, drawn + timedelta(hours=1),
                            drawn + timedelta(hours=1, minutes=30), 500,
                            f"{code}-{visit}-{tube}-{n}", f"BX-{box + 1:04d}",
                            f"{'ABCDEFGHIJ'[row]}{col + 1}",
                        ]
                    )  # fmt: skip
                    place += 1
    return out[:count]


def workbook(data_rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Inventory"
    sheet.append(HEADER)
    for row in data_rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def openpyxl_read_only(data: bytes) -> int:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    count = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
    book.close()
    return count


# --- the runs ------------------------------------------------------------------------------


def preview_once(data: bytes) -> dict:
    report = services.preview(data, "inventory.xlsx", actor=None)
    db.session.rollback()
    if report.errors:
        raise RuntimeError(f"the bench file has problems: {report.errors[:3]}")
    return report.created


def apply_once(base: Path, folder: Path, data: bytes, count: int, run: int) -> float:
    """Apply the file to a fresh copy of the bank, committed; the seconds it took."""
    copy = folder / f"apply-{run}.sqlite3"
    shutil.copyfile(base, copy)
    app = app_for(copy)
    with app.app_context():
        start = time.perf_counter()
        services.apply(data, "inventory.xlsx", actor=None)
        db.session.commit()
        took = time.perf_counter() - start
        imported = db.session.execute(sa.select(sa.func.count(Aliquot.id))).scalar()
        db.session.remove()
        db.engine.dispose()
    copy.unlink()
    if imported != count:
        raise RuntimeError(f"{imported} aliquots imported, not {count}")
    return took


def child(database: str, sheet: str) -> None:
    """In a subprocess: the preview then the apply alone, and the memory they took."""
    app = app_for(Path(database))
    data = Path(sheet).read_bytes()
    with app.app_context():
        db.session.execute(sa.select(1))  # connected, mappers loaded: the app's own cost
        before = high_water_kb()
        services.preview(data, Path(sheet).name, actor=None)
        db.session.rollback()
        after_preview = high_water_kb()
        services.apply(data, Path(sheet).name, actor=None)
        db.session.commit()
        peak = high_water_kb()
        db.session.remove()
        db.engine.dispose()
    print(
        json.dumps({"hwm_before_kb": before, "hwm_preview_kb": after_preview, "hwm_peak_kb": peak})
    )


def memory(base: Path, folder: Path, data: bytes) -> dict:
    copy = folder / "memory.sqlite3"
    shutil.copyfile(base, copy)
    sheet = folder / "inventory.xlsx"
    sheet.write_bytes(data)
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    command = [sys.executable, __file__, "--child", str(copy), str(sheet)]
    launcher.stdin.write(json.dumps(command) + "\n")
    launcher.stdin.flush()
    code, out, err, peak = json.loads(launcher.stdout.readline())
    launcher.stdin.close()
    launcher.wait()
    if code:
        raise RuntimeError(f"the memory subprocess failed:\n{err}")
    figures = json.loads(out.strip().splitlines()[-1])
    mb = 1 / 1024  # KiB on Linux
    return {
        "child_peak_rss_mb": round(peak * mb, 1),
        "child_vmhwm_mb": round(figures["hwm_peak_kb"] * mb, 1),
        "child_vmhwm_after_preview_mb": round(figures["hwm_preview_kb"] * mb, 1),
        "child_rss_before_mb": round(figures["hwm_before_kb"] * mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("DATABASE", "SHEET"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    count = 5_000 if args.quick else 50_000
    repeat = 2 if args.quick else 3
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        base = folder / "bank.sqlite3"
        app = app_for(base)
        with app.app_context():
            upgrade()
            start = time.perf_counter()
            bank(boxes=-(-count // (BOX_SIDE * BOX_SIDE)))
            built = time.perf_counter() - start
            start = time.perf_counter()
            data = workbook(rows(count))
            written = time.perf_counter() - start
            baseline = timed(lambda: openpyxl_read_only(data), repeat)
            created = preview_once(data)
            previews = timed(lambda: preview_once(data), repeat)
            db.session.remove()
            db.engine.dispose()
        applies = [apply_once(base, folder, data, count, run) for run in range(max(1, repeat - 1))]
        rss = memory(base, folder, data)
    figures = {
        "rows": count,
        "created": created,
        "file_kb": round(len(data) / 1024, 1),
        "openpyxl_read_only_s": round(statistics.median(baseline), 2),
        "preview_s": round(statistics.median(previews), 2),
        "apply_s": round(statistics.median(applies), 2),
        **rss,
        "bank_build_s": round(built, 1),
        "file_write_s": round(written, 1),
    }
    figures["preview_ratio_to_openpyxl"] = round(
        figures["preview_s"] / figures["openpyxl_read_only_s"], 2
    )
    figures["apply_ratio_to_openpyxl"] = round(
        figures["apply_s"] / figures["openpyxl_read_only_s"], 2
    )
    if not args.quick:
        figures["targets_met"] = {
            "preview_10s": figures["preview_s"] <= 10,
            "apply_20s": figures["apply_s"] <= 20,
            "peak_rss_400mb": figures["child_vmhwm_mb"] <= 400,
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
