"""Assay speed: a plate's preview, a laboratory's result sheet, the study export.

Prints one JSON line of figures, each a median over repeated runs, next to a baseline
measured in the same run (the machines are shared and noisy):
- plate: services.preview_plate(keep=False) of one 96-well plate, 36 samples in duplicate
  (biobank/assays/example.make_plate: a reader xlsx with 450 + 540 nm blocks under instrument
  metadata, and its plate map), on a bank registered and stored through the services
  (tests/distribution/conftest.stock), with its parts (reader file, plate map, fit and
  checks) and openpyxl alone loading the reader file in read-only mode and iterating its
  rows. Target: ≤ 300 ms; the ratio to openpyxl is reported. The same plate with saturated,
  empty and unread wells (every sample kept, with its status) and as a long list (one row
  per well, 450/540 nm columns, found without a flag) is timed too, each with its ratio to
  the plain plate and the long list's largest gap to the grid's concentrations.
- sheet: a 20,000-row M-protein result sheet (Barcode, Analyte, Value, Unit, Method,
  Date, Comment: M-spike in g/L or g/dL, free light chains kappa and lambda, their ratio,
  immunofixation, for the first serum aliquot of visits BL and M2 of 2,000 participants in
  a bank of 40,000 aliquots; saved as a spreadsheet program saves it, with shared strings)
  imported: preview_results(keep=True) + accept_run, committed (target ≤ 5 s), next to
  openpyxl alone reading the sheet in read-only mode; each run is deleted afterwards
  (not timed) so that the next imports the same file into the same bank. Its memory
  (target ≤ 300 MB) in subprocesses that do only that import: the peak RSS of the whole
  process (interpreter, app, the file's bytes), as getrusage(RUSAGE_CHILDREN).ru_maxrss of
  a small launcher process that ran it and as the child's own VmHWM, with its RSS before
  the import; and, in a second subprocess, the tracemalloc peak of the Python allocations
  made by the import alone.
- export: outcomes.export_xlsx for 60 participants × 8 visits × 5 analytes (2,400 results
  accepted through one result sheet, not timed) (target ≤ 2 s), export_csv, export_rows
  (the query and the responses both files build on), and openpyxl alone writing the same
  two sheets (the reportable results, all measurements).
--quick: a 2,000-row sheet (200 participants), 10 participants exported, fewer repeats.

    .venv/bin/python bench/assays.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openpyxl
import sqlalchemy as sa
from flask_migrate import upgrade

from biobank import create_app
from biobank.assays import (
    example,
    outcomes,
    pipeline,
    platemap,
    platereader,
    response,
    services,
)
from biobank.assays.example import make_plate
from biobank.assays.models import AssayRun, Result
from biobank.custody.hashing import event_hash
from biobank.custody.models import GENESIS_HASH
from biobank.extensions import db
from biobank.samples import barcodes
from biobank.samples.models import Aliquot, Specimen
from biobank.sites.models import Site
from biobank.study import services as study
from biobank.study.models import Participant, Visit
from tests import factories
from tests.distribution.conftest import stock

# Appended, not first: bench/labels.py must not hide the labels package.
sys.path.append(str(Path(__file__).resolve().parent))
from measure import StatementCounter, ms

OPTIONS = pipeline.Options(read=450, reference=540)
HEADER = ["Barcode", "Analyte", "Value", "Unit", "Method", "Date", "Comment"]
# The protocol's visits and their nominal days, and two unscheduled ones, for 8 visits.
VISITS = (
    ("BL", 0), ("M2", 56), ("M4", 112), ("M6", 168),
    ("U1", 210), ("EOI", 252), ("U2", 420), ("EOM", 617),
)  # fmt: skip
TUBES = (("SST", "SST", "SER", "SER-SST-A-B-N-B-D"), ("EDTA", "PED", "PL1", "PL1-PED-A-B-N-B-D"))
ALIQUOTS_PER_TUBE = 5
INCLUDED_ON = date(2026, 1, 5)
BATCH = 20_000


def timed(call, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def app_for(path: Path):
    return create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "bench-" + "k" * 40}
    )


# --- a bank, inserted set-wise ------------------------------------------------------------


def bank(participants: int, visits: int, rng: random.Random) -> list[str]:
    """Participants of LIM in arm G2, each with the first ``visits`` of VISITS, each visit
    an SST (5 serum aliquots) and an EDTA tube (5 plasma aliquots), registered with their
    custody events (not stored: nothing measured here reads storage). Returns the first
    serum aliquot of each visit, participant by participant, visit by visit."""
    factories.protocol()
    factories.sites()
    definitions = {d.code: d.id for d in study.current_protocol().visit_definitions}
    site = db.session.execute(sa.select(Site.id).where(Site.code == "LIM")).scalar_one()
    now = datetime.now(UTC)
    db.session.execute(
        sa.insert(Participant),
        [
            {
                "id": p + 1,
                "study_code": "POEMS-LENDEX",
                "code": f"LIM-{p + 1:04d}",
                "site_id": site,
                "arm_code": "G2",
                "disease_status": "de_novo",
                "included_on": INCLUDED_ON,
                "consent_status": "given",
                "consent_given_on": INCLUDED_ON - timedelta(days=2),
                "created_at": now,
            }
            for p in range(participants)
        ],
    )
    visit_rows, specimen_rows, aliquot_rows, event_rows = [], [], [], []
    firsts: list[str] = []
    seen: set[str] = set()
    for p in range(participants):
        for code, day in VISITS[:visits]:
            visit_id = len(visit_rows) + 1
            visit_rows.append(
                {
                    "id": visit_id,
                    "participant_id": p + 1,
                    "visit_code": code,
                    "visit_definition_id": definitions.get(code, definitions["EOM"]),
                    "collected_on": INCLUDED_ON + timedelta(days=day),
                    "study_day": day,
                    "out_of_window": False,
                    "created_at": now,
                }
            )
            for tube_type, container, sample_type, sprec in TUBES:
                specimen_id = len(specimen_rows) + 1
                specimen_rows.append(
                    {
                        "id": specimen_id,
                        "visit_id": visit_id,
                        "tube_type": tube_type,
                        "container": container,
                        "sample_type": sample_type,
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
                        "sprec_code": sprec,
                        "sprec_others": "{}",
                        "notes": "",
                        "created_at": now,
                    }
                )
                for n in range(1, ALIQUOTS_PER_TUBE + 1):
                    barcode = barcodes.new_aliquot_barcode(rng.randrange)
                    while barcode in seen:
                        barcode = barcodes.new_aliquot_barcode(rng.randrange)
                    seen.add(barcode)
                    if sample_type == "SER" and n == 1:
                        firsts.append(barcode)
                    aliquot_id = len(aliquot_rows) + 1
                    digest = event_hash(
                        barcode=barcode,
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
                            "barcode": barcode,
                            "specimen_id": specimen_id,
                            "sample_type": sample_type,
                            "series_number": n,
                            "series_total": ALIQUOTS_PER_TUBE,
                            "initial_volume_ul": 500,
                            "volume_ul": 500,
                            "status": "registered",
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
                            "at": now.replace(tzinfo=None),
                            "actor_name": "bench",
                            "details": "{}",
                            "prev_hash": GENESIS_HASH,
                            "hash": digest,
                        }
                    )
    for model, rows in ((Visit, visit_rows), (Specimen, specimen_rows), (Aliquot, aliquot_rows)):
        for first in range(0, len(rows), BATCH):
            db.session.execute(sa.insert(model), rows[first : first + BATCH])
    for first in range(0, len(event_rows), BATCH):
        db.session.execute(
            sa.text(
                "INSERT INTO custody_event (aliquot_id, seq, kind, at, actor_name, details, "
                "prev_hash, hash) VALUES (:aliquot_id, :seq, :kind, :at, :actor_name, :details, "
                ":prev_hash, :hash)"
            ),
            event_rows[first : first + BATCH],
        )
    services.ensure_default_analytes()
    db.session.commit()
    return firsts


# --- result sheets ---------------------------------------------------------------------


def workbook(rows: list[list]) -> bytes:
    """The rows in a workbook as a spreadsheet program saves it: the sheet's <dimension>
    recorded (a write-only openpyxl workbook lacks it, and a read-only reader then parses
    the sheet twice) and its text in the shared strings table (openpyxl writes every text
    cell inline, which takes a reader about twice as long)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Results"
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return shared_strings(out.getvalue())


INLINE = re.compile(r'<c r="([A-Z]+[0-9]+)" t="inlineStr"><is><t(?: [^>]*)?>(.*?)</t></is></c>')
SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
SST_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def shared_strings(data: bytes) -> bytes:
    """An openpyxl workbook with its inline strings moved to xl/sharedStrings.xml."""
    source = zipfile.ZipFile(io.BytesIO(data))
    strings: dict[str, int] = {}

    def shared(match: re.Match) -> str:
        index = strings.setdefault(match.group(2), len(strings))  # already XML-escaped
        return f'<c r="{match.group(1)}" t="s"><v>{index}</v></c>'

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename.startswith("xl/worksheets/sheet"):
                body = INLINE.sub(shared, body.decode()).encode()
            elif info.filename == "[Content_Types].xml":
                part = f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SST_TYPE}"/>'
                body = body.replace(b"</Types>", part.encode() + b"</Types>")
            elif info.filename == "xl/_rels/workbook.xml.rels":
                rel = f'<Relationship Id="rIdSST" Type="{SST_REL}" Target="sharedStrings.xml"/>'
                body = body.replace(b"</Relationships>", rel.encode() + b"</Relationships>")
            target.writestr(info, body)
        items = "".join(f'<si><t xml:space="preserve">{text}</t></si>' for text in strings)
        target.writestr(
            "xl/sharedStrings.xml",
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="{MAIN_NS}" '
            f'count="{len(strings)}" uniqueCount="{len(strings)}">{items}</sst>',
        )
    return out.getvalue()


def measured_on(n: int):
    """Half the dates as date cells, half as day-first text, as laboratories send them."""
    day = date(2026, 3, 2) + timedelta(days=n % 300)
    return datetime.combine(day, datetime.min.time()) if n % 2 else day.strftime("%d/%m/%Y")


def m_protein_rows(codes: list[str], rng: random.Random) -> list[list]:
    """Five results per serum aliquot, written as a laboratory would: M-spike in g/L as a
    number or in g/dL as text with a decimal comma, the free light chains in mg/L, their
    ratio, the immunofixation with its isotype, now and then a comment."""
    rows = []
    for n, code in enumerate(codes):
        spike = rng.uniform(0.5, 30.0)
        kappa, lam = rng.uniform(5, 40), rng.uniform(10, 400)
        if n % 2:
            spike_cell, spike_unit = f"{spike / 10:.2f}".replace(".", ","), "g/dL"
        else:
            spike_cell, spike_unit = round(spike, 1), "g/L"
        # English words, so that the figures do not depend on the French words
        # analytes.toml may give.
        fixation = rng.choice(["Positive IgA lambda", "positive (IgG kappa)", "Negative"])
        when = measured_on(n)
        comment = "hémolysé" if n % 97 == 0 else None
        rows += [
            [code, "M-spike", spike_cell, spike_unit, "SPE", when, None],
            [code, "Kappa libres", round(kappa, 1), "mg/L", "Freelite", when, None],
            [code, "Lambda libres", round(lam, 1), "mg/L", "Freelite", when, None],
            [code, "Ratio K/L", round(kappa / lam, 3), None, "Freelite", when, None],
            [code, "Immunofixation", fixation, None, "IFE", when, comment],
        ]  # fmt: skip
    return rows


def course_rows(codes: list[str], visits: int, rng: random.Random) -> list[list]:
    """Serum VEGF, M-spike, immunofixation and free light chains of each participant's
    visits, falling under treatment, so that responses are computed for the export."""
    rows = []
    for n, code in enumerate(codes):
        step = n % visits
        fall = 0.75**step
        when = (INCLUDED_ON + timedelta(days=VISITS[step][1])).isoformat()
        rows += [
            [code, "VEGF", round(rng.uniform(1500, 4000) * fall, 1), "pg/mL", "ELISA", when, None],
            [code, "M-spike", round(rng.uniform(5, 20) * fall, 1), "g/L", "SPE", when, None],
            [code, "Immunofixation", "Positive IgA lambda" if step < visits - 1 else "Negative",
             None, "IFE", when, None],
            [code, "Kappa libres", round(rng.uniform(5, 40), 1), "mg/L", "Freelite", when, None],
            [code, "Lambda libres", round(rng.uniform(10, 400) * fall, 1), "mg/L", "Freelite",
             when, None],
        ]  # fmt: skip
    return rows


def import_sheet(data: bytes, name: str) -> tuple[dict[str, float], int]:
    """preview_results(keep=True) + accept_run + commit; seconds of each step."""
    start = time.perf_counter()
    preview = services.preview_results(data, name, keep=True, actor=None)
    previewed = time.perf_counter()
    run = services.accept_run(preview.run.code, actor=None)
    accepted = time.perf_counter()
    db.session.commit()
    end = time.perf_counter()
    steps = {
        "preview": previewed - start,
        "accept": accepted - previewed,
        "commit": end - accepted,
        "total": end - start,
    }
    return steps, run.id


def forget(run_id: int) -> int:
    """Delete a run and its results (not timed), so that the same file imports again."""
    db.session.remove()
    count = db.session.execute(
        sa.delete(Result)
        .where(Result.run_id == run_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.execute(sa.delete(AssayRun).where(AssayRun.id == run_id))
    db.session.commit()
    db.session.remove()
    return count


def openpyxl_read_only(data: bytes) -> int:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        return sum(1 for sheet in book.worksheets for _ in sheet.iter_rows(values_only=True))
    finally:
        book.close()


# --- 1. one plate -------------------------------------------------------------------------


def plate_figures(folder: Path, repeat: int) -> dict:
    app = app_for(folder / "plate.sqlite3")
    with app.app_context():
        upgrade()
        factories.protocol()
        factories.sites()
        factories.freezer({})
        participants = tuple(f"LIM-{n:03d}" for n in range(1, 19))
        stored = stock(db, participants=participants, visits=("BL", "M2"))
        services.ensure_default_analytes()
        db.session.commit()
        codes = [stored[(p, v, "SER")][0] for p in participants for v in ("BL", "M2")]
        # From 20 to 900 pg/mL, evenly on a log scale, with 3 % noise on the responses.
        truth = {
            code: round(20 * (900 / 20) ** (n / (len(codes) - 1)), 1)
            for n, code in enumerate(codes)
        }
        noise_rng = random.Random(450)
        jitter = [noise_rng.gauss(0, 0.03) for _ in range(96)]
        plate = make_plate(truth, noise=lambda n: jitter[n])

        def preview():
            return services.preview_plate(
                plate.reader, "vegf.xlsx", plate.plate_map, "VEGF", OPTIONS, keep=False, actor=None
            )

        data = preview().data  # warm mappers, caches, the fit's imports
        db.session.rollback()
        counter = StatementCounter(db.engine)
        preview()
        statements = counter.count
        counter.close()
        db.session.rollback()
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            preview()
            samples.append(time.perf_counter() - start)
            db.session.rollback()
        blocks = platereader.read_reader_file(plate.reader, "vegf.xlsx")
        layout = platemap.read_plate_map(plate.plate_map)
        figures = {
            "samples": len(data["samples"]),
            "wells": len(data["wells"]),
            "known": sum(s["known"] for s in data["samples"]),
            "problems": len(data["problems"]),
            "fit_r2": round(data["fit"]["r2"], 5),
            "reader_kb": round(len(plate.reader) / 1024, 1),
            "ms": ms(samples),
            "statements": statements,
            "read_reader_file_ms": ms(
                timed(lambda: platereader.read_reader_file(plate.reader, "vegf.xlsx"), repeat)
            ),
            "read_plate_map_ms": ms(
                timed(lambda: platemap.read_plate_map(plate.plate_map), repeat)
            ),
            "evaluate_ms": ms(timed(lambda: pipeline.evaluate(blocks, layout, OPTIONS), repeat)),
            "openpyxl_read_only_ms": ms(timed(lambda: openpyxl_read_only(plate.reader), repeat)),
            "openpyxl_full_load_ms": ms(
                timed(
                    lambda: openpyxl.load_workbook(io.BytesIO(plate.reader), data_only=True),
                    repeat,
                )
            ),
        }
        figures["ratio_to_openpyxl_read_only"] = round(
            figures["ms"] / figures["openpyxl_read_only_ms"], 2
        )
        figures.update(other_shapes(plate, data, blocks, repeat))
        db.engine.dispose()
    return figures


def other_shapes(plate, data: dict, blocks, repeat: int) -> dict:
    """The same plate with saturated and empty wells, and as a long list (one row per well,
    450 and 540 nm columns, a French CSV) found without being told: the preview's time,
    its ratio to the plain plate's, whether every sample is kept, and how far the long
    list's concentrations are from the grid's (the same readings: they should agree)."""
    od450 = {w: r.value for w, r in blocks[0].wells.items()}
    od540 = {w: r.value for w, r in blocks[1].wells.items()}
    samples = sorted({c for c in plate.layout.values() if c in plate.truth})
    wells_of = {s: sorted(w for w, c in plate.layout.items() if c == s) for s in samples}
    odd = dict(od450)
    for sample in samples[-3:]:  # the highest concentrations saturate the reader
        odd.update(dict.fromkeys(wells_of[sample], "OVER"))
    odd[wells_of[samples[0]][0]] = None  # a well left empty
    odd[wells_of[samples[1]][0]] = "N/A"  # and one the reader could not read
    odd[next(w for w, c in plate.layout.items() if c == "STD1")] = "OVRFLW"
    awkward = example.reader_xlsx(odd, od540)
    lines = ["Well;Sample;OD450;OD540"] + [
        f"{w};{c};{od450[w]:.4f};{od540[w]:.4f}".replace(".", ",")
        for w, c in sorted(plate.layout.items())
    ]
    listed = ("\n".join(lines) + "\n").encode()

    def preview(content: bytes, name: str, options=OPTIONS) -> dict:
        found = services.preview_plate(
            content, name, plate.plate_map, "VEGF", options, keep=False, actor=None
        ).data
        db.session.rollback()
        return found

    odd_data = preview(awkward, "odd.xlsx")
    list_data = preview(listed, "list.csv", pipeline.Options())
    grid = {s["barcode"]: s["concentration"] for s in data["samples"]}
    gaps = [
        abs(s["concentration"] / grid[s["barcode"]] - 1) * 100
        for s in list_data["samples"]
        if s["concentration"] and grid.get(s["barcode"])
    ]
    plain_ms = ms(timed(lambda: preview(plate.reader, "vegf.xlsx"), repeat))
    odd_ms = ms(timed(lambda: preview(awkward, "odd.xlsx"), repeat))
    list_ms = ms(timed(lambda: preview(listed, "list.csv", pipeline.Options()), repeat))
    statuses = [s["status"] for s in odd_data["samples"]]
    return {
        "saturated_ms": odd_ms,
        "saturated_ratio_to_plain": round(odd_ms / plain_ms, 2),
        "saturated_samples_kept": f"{len(statuses)}/{len(samples)}",
        "saturated_statuses": {k: statuses.count(k) for k in sorted(set(statuses))},
        "long_list_ms": list_ms,
        "long_list_ratio_to_plain": round(list_ms / plain_ms, 2),
        "long_list_samples": len(list_data["samples"]),
        "long_list_reads": list_data["reads"],
        "long_list_max_gap_to_grid_pct": round(max(gaps), 4) if gaps else None,
    }


# --- 2. a 20,000-row result sheet ------------------------------------------------------


def high_water_kb() -> int:
    """This process's peak RSS in KiB: VmHWM, its own memory's high-water mark since exec.
    (Linux keeps in ru_maxrss the high-water mark of the memory a process had before exec:
    a child spawned by a large parent reports at least the parent's peak.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_import(database: str, sheet: str, trace: bool) -> None:
    """In a subprocess: the import alone, and what it took."""
    app = app_for(Path(database))
    data = Path(sheet).read_bytes()
    with app.app_context():
        services.ensure_default_analytes()  # present already: loads the mappers
        db.session.rollback()
        before = high_water_kb()
        if trace:
            tracemalloc.start()
        steps, run_id = import_sheet(data, Path(sheet).name)
        traced = tracemalloc.get_traced_memory()[1] if trace else None
        if trace:
            tracemalloc.stop()
        peak = high_water_kb()
        db.engine.dispose()
    print(
        json.dumps(
            {
                "run_id": run_id,
                "s": steps["total"],
                "hwm_before_kb": before,
                "hwm_peak_kb": peak,
                "tracemalloc_peak_b": traced,
            }
        )
    )


# Started before this process grows: its children's ru_maxrss then owes nothing to this
# process's (see high_water_kb), and RUSAGE_CHILDREN in it is the peak RSS of the
# children it ran, read after each one.
LAUNCHER = """
import json, resource, subprocess, sys
for line in sys.stdin:
    done = subprocess.run(json.loads(line), capture_output=True, text=True, check=False)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps([done.returncode, done.stdout, done.stderr[-3000:], peak]), flush=True)
"""


class Launcher:
    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, database: Path, sheet: Path, trace: bool) -> dict:
        """The child's figures, with children_peak_kb: RUSAGE_CHILDREN of the launcher, the
        peak RSS of the largest child it has run so far."""
        command = [sys.executable, __file__, "--child-import", str(database), str(sheet)]
        if trace:
            command.append("--trace")
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        code, out, err, peak = json.loads(self.process.stdout.readline())
        if code:
            raise RuntimeError(f"the import subprocess failed:\n{err}")
        return {**json.loads(out.strip().splitlines()[-1]), "children_peak_kb": peak}

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def sheet_figures(
    folder: Path, participants: int, runs: int, rng: random.Random, launcher: Launcher
) -> dict:
    database = folder / "sheet.sqlite3"
    app = app_for(database)
    with app.app_context():
        upgrade()
        start = time.perf_counter()
        codes = bank(participants, 2, rng)
        built = time.perf_counter() - start
        aliquots = db.session.execute(sa.select(sa.func.count(Aliquot.id))).scalar()
        start = time.perf_counter()
        data = workbook(m_protein_rows(codes, rng))
        written = time.perf_counter() - start
        sheet = folder / "m-protein.xlsx"
        sheet.write_bytes(data)
        db.session.remove()

        # The launcher's first child: its RUSAGE_CHILDREN is then this child's peak alone.
        rss = launcher.run(database, sheet, trace=False)
        forget(rss["run_id"])
        traced = launcher.run(database, sheet, trace=True)
        forget(traced["run_id"])

        counter = StatementCounter(db.engine)
        steps, imported, statements = [], 0, 0
        for _ in range(runs):
            counter.count = 0
            step, run_id = import_sheet(data, sheet.name)
            statements = counter.count
            steps.append(step)
            imported = forget(run_id)
        counter.close()
        baseline = timed(lambda: openpyxl_read_only(data), max(3, runs))
        db.engine.dispose()
    mb = 1 / 1024  # ru_maxrss is in KiB on Linux
    figures = {
        "rows": len(codes) * 5,
        "results": imported,
        "aliquots_in_bank": aliquots,
        "sheet_kb": round(len(data) / 1024, 1),
        "runs": runs,
        "s": round(statistics.median(s["total"] for s in steps), 3),
        "preview_s": round(statistics.median(s["preview"] for s in steps), 3),
        "accept_s": round(statistics.median(s["accept"] for s in steps), 3),
        "commit_s": round(statistics.median(s["commit"] for s in steps), 3),
        "statements": statements,
        "openpyxl_read_only_s": round(statistics.median(baseline), 3),
        "child_s": round(rss["s"], 3),
        # The whole subprocess (interpreter, Flask app, SQLAlchemy, openpyxl, the file):
        # RUSAGE_CHILDREN of the process that ran it, and the child's own VmHWM.
        "child_peak_rss_mb": round(rss["children_peak_kb"] * mb, 1),
        "child_vmhwm_mb": round(rss["hwm_peak_kb"] * mb, 1),
        "child_rss_before_import_mb": round(rss["hwm_before_kb"] * mb, 1),
        "import_rss_increase_mb": round((rss["hwm_peak_kb"] - rss["hwm_before_kb"]) * mb, 1),
        # Python allocations made during the import alone (a second subprocess).
        "tracemalloc_peak_mb": round(traced["tracemalloc_peak_b"] / 2**20, 1),
        "bank_build_s": round(built, 1),
        "sheet_write_s": round(written, 1),
    }
    figures["ratio_to_openpyxl_read_only"] = round(
        figures["s"] / figures["openpyxl_read_only_s"], 2
    )
    return figures


# --- 3. the study export -------------------------------------------------------------------


def openpyxl_alone(tables: list[tuple[tuple, list[list]]], repeat: int) -> float:
    """The same sheets (the results, all measurements) written by openpyxl with nothing
    around it: the floor of what writing those cells costs."""

    def write():
        book = openpyxl.Workbook(write_only=True)
        for columns, rows in tables:
            sheet = book.create_sheet()
            sheet.append(columns)
            for row in rows:
                sheet.append(row)
        book.save(io.BytesIO())

    return ms(timed(write, repeat))


def export_figures(folder: Path, participants: int, repeat: int, rng: random.Random) -> dict:
    app = app_for(folder / "export.sqlite3")
    with app.app_context():
        upgrade()
        codes = bank(participants, len(VISITS), rng)
        start = time.perf_counter()
        _, run_id = import_sheet(workbook(course_rows(codes, len(VISITS), rng)), "course.xlsx")
        accepted = db.session.execute(
            sa.select(sa.func.count(Result.id)).where(Result.run_id == run_id)
        ).scalar()
        setup = time.perf_counter() - start
        db.session.remove()
        criteria = response.load_criteria()
        created = datetime(2026, 11, 29, tzinfo=UTC)
        table = outcomes.export_rows(criteria)  # warm
        xlsx = outcomes.export_xlsx(criteria, created=created)
        csv = outcomes.export_csv(criteria)
        db.session.rollback()
        figures = {
            "participants": participants,
            "visits": len(VISITS),
            "results": accepted,
            "rows": len(table),
            "responses": sum(1 for row in table if row[-3] is not None),
            "xlsx_ms": ms(timed(lambda: outcomes.export_xlsx(criteria, created=created), repeat)),
            "csv_ms": ms(timed(lambda: outcomes.export_csv(criteria), repeat)),
            "export_rows_ms": ms(timed(lambda: outcomes.export_rows(criteria), repeat)),
            "openpyxl_alone_ms": openpyxl_alone(
                [
                    (outcomes.EXPORT_COLUMNS, table),
                    (outcomes.MEASUREMENT_COLUMNS, outcomes.measurement_rows()),
                ],
                repeat,
            ),
            "xlsx_kb": round(len(xlsx) / 1024, 1),
            "csv_kb": round(len(csv) / 1024, 1),
            "setup_import_s": round(setup, 2),
        }
        figures["xlsx_ratio_to_openpyxl"] = round(
            figures["xlsx_ms"] / figures["openpyxl_alone_ms"], 2
        )
        db.session.rollback()
        db.engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2,000-row sheet, a smoke run")
    parser.add_argument("--child-import", nargs=2, metavar=("DB", "SHEET"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        child_import(*args.child_import, trace=args.trace)
        return
    rng = random.Random(20261129)
    repeat = 5 if args.quick else 20
    started = time.perf_counter()
    launcher = Launcher()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        participants, runs = (200, 2) if args.quick else (2_000, 5)
        try:
            sheet = sheet_figures(folder, participants, runs, rng, launcher)
        finally:
            launcher.close()
        plate = plate_figures(folder, repeat)
        export = export_figures(folder, 10 if args.quick else 60, repeat, rng)
    result = {
        "database": "sqlite",
        "quick": args.quick,
        "plate": plate,
        "plate_target_ms": 300,
        "sheet": sheet,
        "sheet_target_s": 5,
        "sheet_memory_target_mb": 300,
        "export": export,
        "export_target_ms": 2000,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
