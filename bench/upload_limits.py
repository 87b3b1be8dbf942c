"""Upload limits: what the attack files of a plate import cost a worker now that they are
refused.

Three files, each posted as the reader file of ``POST /api/v1/assay-runs/plates`` (with a
valid plate map, by a technician holding an API token) through the application's test
client, in a fresh subprocess per case so that its peak memory is that case's alone:
- sparse_xlsx: a 5 KB workbook whose only cells are A1 and XFD1048576;
- zip_bomb_xlsx: about 300 KB packing 5,000,000 cells (a 75 MB sheet);
- csv_200mb: a 200 MB CSV (generated to a temporary file, sent from it), over the
  default MAX_CONTENT_LENGTH;
and, for comparison, plate_ok: a real 96-well plate (dry run), which is accepted.

For each: the answer's status and error code, the seconds the request took, and the peak
RSS of the whole subprocess (interpreter, Flask app, SQLAlchemy, openpyxl, the request):
RUSAGE_CHILDREN of a small launcher that ran only that subprocess, the subprocess's own
VmHWM, and its RSS before the request. Prints one JSON line; "all_refused" says whether
every attack was refused.

    .venv/bin/python bench/upload_limits.py
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade

from biobank import create_app
from biobank.assays.example import make_plate
from biobank.config import Defaults
from biobank.extensions import db
from tests import factories
from tests.attack_files import bomb_xlsx, sparse_xlsx

# Appended, not first: bench/labels.py must not hide the labels package.
sys.path.append(str(Path(__file__).resolve().parent))
from assays import LAUNCHER, high_water_kb

PASSWORD = "correct horse battery"
CSV_MB = 200
BOMB_CELLS = 5_000_000


def app_for(path: Path):
    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "b" * 64})


# --- the files -----------------------------------------------------------------------------


def big_csv(path: Path, megabytes: int) -> None:
    line = b"A1;LIM-001-BL-SER-01;0.523\n"
    block = line * (1024 * 1024 // len(line))
    with path.open("wb") as out:
        while out.tell() < megabytes * 1024 * 1024:
            out.write(block)


def database(folder: Path) -> str:
    """A migrated database with a technician; returns the technician's API token."""
    app = app_for(folder / "bench.sqlite3")
    with app.app_context():
        upgrade()
        factories.protocol()
        factories.sites()
        user = factories.user("technician", site="BIO", password=PASSWORD)
        token = factories.token(user)
        db.session.commit()
        db.engine.dispose()
    return token


# --- one case, in its own subprocess -------------------------------------------------------


def child(folder: str, case: str, reader: str, token: str) -> None:
    """Post the reader file as a plate import; print the answer and what it took."""
    folder_path = Path(folder)
    app = app_for(folder_path / "bench.sqlite3")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    plate_map = (folder_path / "map.xlsx").read_bytes()
    before = high_water_kb()
    start = time.perf_counter()
    with open(reader, "rb") as stream:
        response = client.post(
            "/api/v1/assay-runs/plates",
            data={
                "reader_file": (stream, Path(reader).name),
                "plate_map": (io.BytesIO(plate_map), "map.xlsx"),
                "analyte": "VEGF",
                "read": "450",
                "reference": "540",
                "dry_run": "true",
            },
        )
    took = time.perf_counter() - start
    body = response.get_json(silent=True) or {}
    error = body.get("error") or {}
    print(
        json.dumps(
            {
                "case": case,
                "status": response.status_code,
                "code": error.get("code"),
                "message": error.get("message"),
                "s": took,
                "hwm_before_kb": before,
                "hwm_peak_kb": high_water_kb(),
            }
        )
    )


def run_case(folder: Path, case: str, reader: Path, token: str) -> dict:
    """The case in a subprocess of a fresh launcher: the launcher's RUSAGE_CHILDREN is then
    that subprocess's peak RSS alone."""
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    command = [sys.executable, __file__, "--child", str(folder), case, str(reader), token]
    out, _ = launcher.communicate(json.dumps(command) + "\n")
    code, stdout, stderr, peak_kb = json.loads(out.strip().splitlines()[-1])
    if code:
        raise RuntimeError(f"the {case} subprocess failed:\n{stderr}")
    figures = json.loads(stdout.strip().splitlines()[-1])
    mb = 1 / 1024  # KiB on Linux
    return {
        "file_kb": round(reader.stat().st_size / 1024, 1),
        "status": figures["status"],
        "code": figures["code"],
        "message": figures["message"],
        "s": round(figures["s"], 3),
        "peak_rss_mb": round(peak_kb * mb, 1),
        "vmhwm_mb": round(figures["hwm_peak_kb"] * mb, 1),
        "rss_before_request_mb": round(figures["hwm_before_kb"] * mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        token = database(folder)
        plate = make_plate({"LIM-001-BL-SER-01": 200.0})
        (folder / "map.xlsx").write_bytes(plate.plate_map)
        files = {
            "plate_ok": folder / "plate.xlsx",
            "sparse_xlsx": folder / "sparse.xlsx",
            "zip_bomb_xlsx": folder / "bomb.xlsx",
            "csv_200mb": folder / "big.csv",
        }
        files["plate_ok"].write_bytes(plate.reader)
        files["sparse_xlsx"].write_bytes(sparse_xlsx())
        files["zip_bomb_xlsx"].write_bytes(bomb_xlsx(BOMB_CELLS))
        big_csv(files["csv_200mb"], CSV_MB)
        cases = {case: run_case(folder, case, path, token) for case, path in files.items()}
    expected = {
        "sparse_xlsx": (400, "upload.limit"),
        "zip_bomb_xlsx": (400, "upload.limit"),
        "csv_200mb": (413, "upload.too_large"),
    }
    result = {
        "database": "sqlite",
        "max_content_length_mb": Defaults.MAX_CONTENT_LENGTH / 2**20,
        "bomb_cells": BOMB_CELLS,
        "cases": cases,
        "all_refused": all(
            (cases[case]["status"], cases[case]["code"]) == answer
            for case, answer in expected.items()
        ),
        "plate_ok_accepted": cases["plate_ok"]["status"] == 201,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
