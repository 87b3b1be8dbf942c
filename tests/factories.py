"""Build test data through the services, the way the application does."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from biobank.auth import services as auth
from biobank.demo import load_protocol_if_missing
from biobank.extensions import db
from biobank.samples import services as samples
from biobank.samples.services import SpinEntry, TubeEntry
from biobank.sites import services as site_services
from biobank.study import services as study
from biobank.study.protocol import default_protocol_path

_names = itertools.count(1)
_participants = itertools.count(1)


def protocol():
    load_protocol_if_missing(default_protocol_path())
    db.session.flush()
    return study.current_protocol()


def sites():
    created = [
        site_services.create_site("BIO", "Central biobank", is_central=True, actor=None),
        site_services.create_site("LIM", "CHU de Limoges", actor=None),
        site_services.create_site("PAR", "Hôpital Saint-Louis", actor=None),
    ]
    db.session.flush()
    return created


def user(role: str, *, site: str | None = None, name: str | None = None, password: str):
    return auth.create_user(name or f"{role}{next(_names)}", role, password, site_code=site)


def token(user) -> str:
    return auth.issue_token(user.username)


def participant(
    site: str = "LIM",
    arm: str = "G2",
    *,
    code: str | None = None,
    included_on: date = date(2026, 1, 5),
    actor=None,
):
    code = code or f"{site}-{next(_participants):03d}"
    return study.register_participant(
        code, site, arm, "de_novo", included_on, included_on - timedelta(days=2), actor=actor
    )


def tube(
    tube_type: str = "SST", *, collected_at: datetime | None = None, delay_hours=1.0, **changes
) -> TubeEntry:
    collected = collected_at or datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    spun = collected + timedelta(hours=delay_hours)
    return TubeEntry(
        **{
            "tube_type": tube_type,
            "collected_at": collected,
            "received_at": collected + timedelta(minutes=20),
            "spun_at": spun,
            "spin": SpinEntry(temperature_c=20.0, force_g=2000, minutes=10),
            "frozen_at": spun + timedelta(minutes=30),
            **changes,
        }
    )


def visit(
    participant_code: str,
    visit_code: str = "BL",
    *,
    on: datetime | None = None,
    tube_types=("SST", "EDTA"),
    actor=None,
):
    """Register a visit with its planned tubes, drawn on its nominal day unless ``on``
    says when; returns the Registration."""
    if on is None:
        participant = study.get_participant(participant_code, actor=None)
        definition = study.visit_definition(
            study.current_protocol(participant.study_code), participant.arm_code, visit_code
        )
        day = participant.included_on + timedelta(days=definition.nominal_day)
        on = datetime(day.year, day.month, day.day, 8, 30, tzinfo=UTC)
    tubes = [tube(t, collected_at=on) for t in tube_types]
    return samples.register_collection(participant_code, visit_code, tubes, actor=actor)


def freezer(
    boxes: dict[str, str],
    *,
    box_type: str = "81-place 2-inch cryobox",
    rows: int = 9,
    cols: int = 9,
    parent_kind: str = "shelf",
) -> None:
    """Room RM-114 of the central biobank, a −80 °C freezer FR-0001 and, in a shelf
    SH-0001 (or a rack RK-0001), the boxes named {barcode: name} of one type."""
    from biobank.storage import services as storage

    storage.create_container_type(box_type, "box", rows=rows, cols=cols, actor=None)
    storage.create_container("room", "Room 114", site="BIO", barcode="RM-114", actor=None)
    storage.create_container(
        "freezer",
        "Freezer −80 n°1",
        parent="RM-114",
        barcode="FR-0001",
        temperature_class="-80",
        set_point_c=-80,
        actor=None,
    )
    storage.create_container("shelf", "Shelf 1", parent="FR-0001", barcode="SH-0001", actor=None)
    parent = "SH-0001"
    if parent_kind == "rack":
        storage.create_container("rack", "Rack A", parent="SH-0001", barcode="RK-0001", actor=None)
        parent = "RK-0001"
    for code, name in boxes.items():
        storage.create_container(
            "box", name, parent=parent, barcode=code, type_name=box_type, actor=None
        )
