"""A bank ready to take an inventory: the protocol, the centres, and a −80 °C freezer of
Limoges with a rack and a 9 × 9 box in it."""

from __future__ import annotations

import pytest

from biobank.storage import services as storage
from tests.inventory import BOX

BOX_TYPE = "81-place 2-inch cryobox"


def lim_freezer(temperature_class: str = "-80", number: int = 1) -> dict[str, str]:
    """A Limoges room, a freezer of ``temperature_class``, a shelf, rack RK-000n and box
    BX-000n (9 × 9) in it; their barcodes by kind."""
    codes = {
        kind: f"{prefix}-{number:04d}"
        for kind, prefix in (
            ("room", "RM"),
            ("freezer", "FR"),
            ("shelf", "SH"),
            ("rack", "RK"),
            ("box", "BX"),
        )
    }
    storage.create_container("room", "Room", site="LIM", barcode=codes["room"], actor=None)
    storage.create_container(
        "freezer",
        f"Freezer {temperature_class}",
        parent=codes["room"],
        barcode=codes["freezer"],
        temperature_class=temperature_class,
        actor=None,
    )
    storage.create_container(
        "shelf", "Shelf", parent=codes["freezer"], barcode=codes["shelf"], actor=None
    )
    storage.create_container(
        "rack", "Rack", parent=codes["shelf"], barcode=codes["rack"], actor=None
    )
    storage.create_container(
        "box", "Box", parent=codes["rack"], barcode=codes["box"], type_name=BOX_TYPE, actor=None
    )
    return codes


@pytest.fixture
def bank(db, sites):
    """The protocol, BIO/LIM/PAR, and Limoges's freezer holding rack RK-0001 and box
    BX-0001."""
    storage.create_container_type(BOX_TYPE, "box", rows=9, cols=9, actor=None)
    codes = lim_freezer()
    assert codes["box"] == BOX
    db.session.commit()
    return codes


@pytest.fixture(autouse=True)
def kept_uploads(app, tmp_path):
    """Uploads kept between preview and apply go to the test's folder, not the instance."""
    app.config["INVENTORY_UPLOAD_FOLDER"] = str(tmp_path / "kept")
    return tmp_path / "kept"
