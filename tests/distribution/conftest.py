"""A small stocked bank for the distribution tests."""

from __future__ import annotations

import pytest

from biobank.distribution import services as requests
from biobank.distribution.criteria import parse
from biobank.storage import services as storage
from tests import factories


def serum_request(researcher, *, title="VEGF", visits="BL", **criteria):
    """A researcher's request for the serum of these visits (baseline by default), as the
    request form submits it; ``criteria`` adds to the selection (per_participant_visit…)."""
    return requests.submit_request(
        title=title,
        aim="Serum VEGF",
        receiving_lab="VEGF laboratory, Limoges",
        contact_name="Dr Lab",
        contact_email="lab@chu.example",
        criteria=parse({"visits": visits, "sample_types": "SER", **criteria}),
        actor=researcher,
    )


def stock(db, participants=("LIM-001", "LIM-002", "LIM-003"), visits=("BL", "M2"), first_box=1):
    """Each participant's visits registered (5 serum + 5 plasma aliquots per visit) and
    stored in boxes of the central freezer, in registration order. Returns
    {(participant, visit, sample type): [barcodes]}."""
    stored: dict[tuple[str, str, str], list[str]] = {}
    placements = []
    for code in participants:
        factories.participant("LIM", code=code)
        for visit in visits:
            for aliquot in factories.visit(code, visit).aliquots:
                stored.setdefault((code, visit, aliquot.sample_type), []).append(aliquot.barcode)
                placements.append(aliquot.barcode)
    boxes = [f"BX-{n:04d}" for n in range(first_box, first_box + len(placements) // 81 + 1)]
    for box in boxes:
        storage.create_container(
            "box",
            f"Box {box[-2:]}",
            parent="SH-0001",
            barcode=box,
            type_name="81-place 2-inch cryobox",
            actor=None,
        )
    storage.store_many(
        [(code, boxes[i // 81], None) for i, code in enumerate(placements)], actor=None
    )
    db.session.commit()
    return stored


@pytest.fixture
def bank(db, sites):
    factories.freezer({})
    return stock(db)
