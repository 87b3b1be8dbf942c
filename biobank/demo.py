"""The demo data set: sites, accounts and a few participants with banked visits.

`flask demo setup` is what `make run` calls: on a new database it loads the trial
protocol, the demo accounts (passwords printed once) and the demo data; on a database
that already has users it does nothing.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask.cli import AppGroup

from biobank.assays import example, pipeline
from biobank.assays import services as assays
from biobank.auth import services as auth
from biobank.auth.models import User
from biobank.distribution import criteria
from biobank.distribution import services as requests
from biobank.extensions import db
from biobank.samples import services as samples
from biobank.samples.services import NotCollected, SpinEntry, TubeEntry
from biobank.sites import services as sites
from biobank.storage import services as storage
from biobank.study import services as study
from biobank.study.cli import shipped_or_configured_protocol
from biobank.study.protocol import parse_protocol
from biobank.transaction import unit_of_work

demo_cli = AppGroup("demo", help="Demonstration data.")

SITES = [
    ("BIO", "Central biobank, CHU de Limoges", True),
    ("LIM", "CHU de Limoges, Haematology", False),
    ("PAR", "Hôpital Saint-Louis, Paris", False),
]
ACCOUNTS = [  # (name, role, site)
    ("technician", "technician", None),
    ("researcher", "researcher", None),
    ("manager", "manager", None),
    ("admin", "admin", None),
    ("tech.paris", "technician", "PAR"),
]


@dataclass(frozen=True)
class DemoParticipant:
    code: str
    site: str
    arm: str
    disease: str
    included: date
    visits: tuple[str, ...]
    # Hours the tubes waited before centrifugation: one late tube shows a different code.
    delay_hours: float = 1.0


PARTICIPANTS = [
    DemoParticipant("LIM-001", "LIM", "G1", "de_novo", date(2026, 3, 2), ("BL", "M2")),
    DemoParticipant(
        "LIM-002", "LIM", "G2", "relapsed", date(2026, 3, 16), ("BL", "M2", "M4", "M6")
    ),
    DemoParticipant("LIM-003", "LIM", "G2", "de_novo", date(2026, 5, 4), ("BL", "M2", "M4"), 3.0),
    DemoParticipant("PAR-001", "PAR", "G1", "de_novo", date(2026, 4, 6), ("BL", "M2")),
    DemoParticipant("PAR-002", "PAR", "G2", "refractory", date(2026, 4, 20), ("BL", "M2", "M4")),
    DemoParticipant("PAR-003", "PAR", "G1", "relapsed", date(2026, 6, 1), ("BL",)),
]
# A tube the nurse could not draw, so that the visit page shows one.
DEMO_NOT_COLLECTED = {
    ("PAR-002", "M4"): NotCollected("EDTA", "failed_draw", "Two attempts, poor venous access."),
}
# A participant who left the study after their last visit (samples stay usable).
DEMO_LEAVING = ("LIM-003", date(2026, 9, 21), "progression", "")


def load_protocol_if_missing(path: Path) -> None:
    source = path.read_bytes()
    study.load_protocol(parse_protocol(source), source.decode("utf-8"))


def ensure_demo_sites(actor) -> None:
    existing = {site.code for site in sites.list_sites()}
    for code, name, central in SITES:
        if code not in existing:
            sites.create_site(code, name, is_central=central, actor=actor)


def load_demo_data(actor) -> int:
    """Create the demo sites (when missing), participants and their registered visits.
    Returns the number of aliquots created."""
    ensure_demo_sites(actor)
    protocol = study.current_protocol()
    nominal = {d.code: d.nominal_day for d in protocol.visit_definitions}
    count = 0
    for p in PARTICIPANTS:
        study.register_participant(
            p.code,
            p.site,
            p.arm,
            p.disease,
            p.included,
            p.included - timedelta(days=3),
            actor=actor,
        )
        for visit_code in p.visits:
            day = p.included + timedelta(days=nominal[visit_code])
            missing = DEMO_NOT_COLLECTED.get((p.code, visit_code))
            not_collected = [missing] if missing else []
            tubes = [
                tube
                for tube in _demo_tubes(day, p.delay_hours)
                if missing is None or tube.tube_type != missing.tube_type
            ]
            registration = samples.register_collection(
                p.code, visit_code, tubes, actor=actor, not_collected=not_collected
            )
            count += len(registration.aliquots)
    code, left_on, reason, note = DEMO_LEAVING
    study.record_leaving(code, left_on, reason, note, actor=actor)
    return count


DEMO_STORED = 100
BOX_TYPES = [  # (name, rows, cols)
    ("81-place 2-inch cryobox (9 × 9)", 9, 9),
    ("100-place 2-inch cryobox (10 × 10)", 10, 10),
    ("96-tube 2D rack (8 × 12)", 8, 12),
]


def load_demo_storage(actor) -> int:
    """Room 114 of the central biobank: two −80 °C freezers, each with 2 shelves × 2 racks
    × 3 boxes, and the first demo aliquots stored in them, part-filling the first box of
    each freezer. Returns the number of aliquots stored."""
    for name, rows, cols in BOX_TYPES:
        storage.create_container_type(name, "box", rows=rows, cols=cols, actor=actor)
    storage.create_container("room", "Room 114", site="BIO", barcode="RM-0114", actor=actor)
    boxes: list[str] = []
    for f in (1, 2):
        freezer = storage.create_container(
            "freezer",
            f"Freezer −80 °C n°{f}",
            parent="RM-0114",
            barcode=f"FR-000{f}",
            temperature_class="-80",
            set_point_c=-80,
            actor=actor,
        )
        for s in (1, 2):
            shelf = storage.create_container(
                "shelf", f"Shelf {s}", parent=freezer.barcode, barcode=f"SH-{f}{s}", actor=actor
            )
            for r in (1, 2):
                rack = storage.create_container(
                    "rack",
                    f"Rack {s}{'AB'[r - 1]}",
                    parent=shelf.barcode,
                    barcode=f"RK-{f}{s}{r}",
                    actor=actor,
                )
                for b in (1, 2, 3):
                    box = storage.create_container(
                        "box",
                        f"POEMS box {f}{s}{r}{b}",
                        parent=rack.barcode,
                        barcode=f"BX-{f}{s}{r}{b}",
                        type_name=BOX_TYPES[0][0],
                        actor=actor,
                    )
                    boxes.append(box.barcode)
    # Each specimen's aliquots split between the two freezers (a failure of one never
    # takes a whole time point): 1st, 3rd, 5th in freezer 1; 2nd and 4th in freezer 2.
    # The last visits stay registered, waiting to be stored.
    stored = 0
    for aliquot in samples.list_aliquots(actor=actor, limit=DEMO_STORED).items:
        box = "BX-1111" if aliquot.series_number % 2 else "BX-2111"
        storage.store(aliquot.barcode, box, actor=actor)
        stored += 1
    return stored


def _demo_tubes(day: date, delay_hours: float) -> list[TubeEntry]:
    tz = ZoneInfo("Europe/Paris")
    collected = datetime(day.year, day.month, day.day, 8, 30, tzinfo=tz)
    spun = collected + timedelta(hours=delay_hours)
    frozen = spun + timedelta(minutes=40)
    spin = SpinEntry(temperature_c=20.0, force_g=2000, minutes=10)
    return [
        TubeEntry(
            "SST", collected, spun, spin, frozen, received_at=collected + timedelta(minutes=30)
        ),
        TubeEntry(
            "EDTA", collected, spun, spin, frozen, received_at=collected + timedelta(minutes=30)
        ),
    ]


def submit_demo_request() -> None:
    """A researcher's request waiting for review, so that the manager's side has work."""
    researcher = db.session.execute(db.select(User).where(User.role == "researcher")).scalar()
    if researcher is None:
        return
    requests.submit_request(
        title="Serum VEGF before and after two cycles",
        aim="ELISA of serum VEGF at baseline and month 2 (primary biological outcome).",
        receiving_lab="Immunology laboratory, CHU de Limoges",
        contact_name="VEGF laboratory",
        contact_email="vegf.lab@biobank.example",
        criteria=criteria.parse({"visits": ["BL", "M2"], "sample_types": ["SER"]}),
        actor=researcher,
    )


# Serum VEGF (pg/mL) of the demo participants: high at baseline, as in POEMS, falling
# under treatment; the plate reads them diluted 1:4.
DEMO_VEGF = {
    ("LIM-001", "BL"): 2480.0, ("LIM-001", "M2"): 1150.0,
    ("LIM-002", "BL"): 3100.0, ("LIM-002", "M2"): 2050.0, ("LIM-002", "M4"): 1300.0,
    ("LIM-002", "M6"): 820.0,
    ("LIM-003", "BL"): 1960.0, ("LIM-003", "M2"): 2900.0, ("LIM-003", "M4"): 1700.0,
    ("PAR-001", "BL"): 2250.0, ("PAR-001", "M2"): 900.0,
}  # fmt: skip
DEMO_DILUTION = 4.0


def demo_plate(noise=None):
    """A reader file and plate map for the demo's first serum aliquot of each visit."""
    chosen = {}
    for (code, visit), vegf in DEMO_VEGF.items():
        registration = samples.visit_aliquots(code, visit, actor=None)
        serum = next(a for a in registration.aliquots if a.sample_type == "SER")
        chosen[serum.barcode] = vegf / DEMO_DILUTION
    return example.make_plate(chosen, dilutions=dict.fromkeys(chosen, DEMO_DILUTION), noise=noise)


def load_demo_results() -> None:
    """An accepted VEGF plate, so that results and responses show on the pages."""
    plate = demo_plate()
    preview = assays.preview_plate(
        plate.reader, "demo-vegf-plate.xlsx", plate.plate_map, "VEGF",
        pipeline.Options(read=450, reference=540), instrument="Demo reader", actor=None,
    )  # fmt: skip
    assays.accept_run(preview.run.id, actor=None)


def create_demo_accounts() -> list[tuple[str, str, str]]:
    created = []
    for name, role, site in ACCOUNTS:
        password = secrets.token_urlsafe(9)
        auth.create_user(name, role, password, site_code=site, email=f"{name}@biobank.example")
        created.append((name, role, password))
    return created


@demo_cli.command("load")
@unit_of_work
def load():
    """Add the demo sites, participants, visits and aliquots."""
    load_protocol_if_missing(shipped_or_configured_protocol())
    count = load_demo_data(actor=None)
    stored = load_demo_storage(actor=None)
    click.echo(
        f"demo data loaded: {len(PARTICIPANTS)} participants, {count} aliquots, {stored} stored"
    )


@demo_cli.command("setup")
@unit_of_work
def setup():
    """On a new database: protocol, demo accounts and demo data. Otherwise nothing."""
    if db.session.execute(db.select(User.id).limit(1)).first():
        click.echo(
            "Database already set up; demo accounts were printed when it was created "
            "(reset a password with: flask --app wsgi user password NAME)."
        )
        return
    load_protocol_if_missing(shipped_or_configured_protocol())
    ensure_demo_sites(actor=None)  # before the accounts: one is bound to a centre
    accounts = create_demo_accounts()
    count = load_demo_data(actor=None)
    stored = load_demo_storage(actor=None)
    submit_demo_request()
    load_demo_results()
    click.echo(
        f"Demo data: {len(PARTICIPANTS)} participants, {count} aliquots "
        f"({stored} stored in the central biobank's freezers), a request awaiting review, "
        "an accepted serum VEGF plate."
    )
    click.echo("Demo logins (shown once, write them down):")
    for name, role, password in accounts:
        click.echo(f"  {name:12} {role:11} password: {password}")


@demo_cli.command("plate")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@unit_of_work
def plate(folder):
    """Write an example reader file and its plate map (the demo's serum aliquots) to try
    the import page or `flask assay import-plate` with."""
    # A second reading of the demo plate (another file: the first is already imported).
    made = demo_plate(noise=lambda n: 0.015 * math.sin(n))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vegf-reader.xlsx").write_bytes(made.reader)
    (folder / "vegf-plate-map.xlsx").write_bytes(made.plate_map)
    click.echo(f"written: {folder / 'vegf-reader.xlsx'} and {folder / 'vegf-plate-map.xlsx'}")
