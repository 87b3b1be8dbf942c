"""A small freezer for the storage tests."""

from __future__ import annotations

import pytest

from biobank.storage import services as storage
from tests import factories


@pytest.fixture
def freezer(db, sites):
    """Room → −80 °C freezer → shelf → rack → two 9 × 9 boxes; a −20 °C freezer with a box."""
    factories.freezer({"BX-0001": "Box 1", "BX-0002": "Box 2"}, parent_kind="rack")
    storage.create_container(
        "freezer",
        "Freezer −20",
        parent="RM-114",
        barcode="FR-0020",
        temperature_class="-20",
        actor=None,
    )
    storage.create_container(
        "box",
        "Warm box",
        parent="FR-0020",
        barcode="BX-0020",
        type_name="81-place 2-inch cryobox",
        actor=None,
    )
    db.session.commit()


@pytest.fixture
def tubes(freezer, db):
    """The ten aliquots of LIM-001's baseline visit, registered and not yet stored."""
    factories.participant("LIM", code="LIM-001")
    codes = [a.barcode for a in factories.visit("LIM-001", "BL").aliquots]
    db.session.commit()
    return codes


@pytest.fixture
def reserve(db, make_user):
    """``reserve(*barcodes)`` reserves these stored serum aliquots of LIM-001's baseline for a
    researcher's request approved by a manager; returns the request's code."""
    from biobank.distribution import services as requests
    from tests.distribution.conftest import serum_request

    def reserving(*barcodes: str) -> str:
        researcher, manager = make_user("researcher"), make_user("manager")
        request = serum_request(researcher)
        requests.approve(request.id, list(barcodes), actor=manager)
        db.session.commit()
        return request.code

    return reserving
