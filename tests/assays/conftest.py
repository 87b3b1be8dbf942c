"""Stored aliquots to measure, and plates made for them."""

from __future__ import annotations

import io

import openpyxl
import pytest

from biobank.assays import pipeline, services
from biobank.assays.example import make_plate
from tests import factories
from tests.distribution.conftest import stock


@pytest.fixture
def bank(db, sites):
    factories.freezer({})
    return stock(db)


# API clients of the bank's technician and manager.
@pytest.fixture
def technician(api_as, bank):
    return api_as("technician")


@pytest.fixture
def manager(api_as, bank):
    return api_as("manager")


@pytest.fixture
def serum(bank):
    """Serum aliquots: baseline and month 2 of LIM-001..003 (one each)."""
    return {
        (p, v): bank[(p, v, "SER")][0]
        for p in ("LIM-001", "LIM-002", "LIM-003")
        for v in ("BL", "M2")
    }


def sheet(rows) -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["Barcode", "Analyte", "Value", "Unit", "Method", "Date", "Comment"])
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def measured(serum, db):
    """VEGF of LIM-001..003 at BL and M2 from an accepted plate; M-spike and
    immunofixation of LIM-001 from a laboratory's sheet (M-spike in g/dL)."""
    vegf = {
        serum[("LIM-001", "BL")]: 900.0, serum[("LIM-001", "M2")]: 300.0,
        serum[("LIM-002", "BL")]: 600.0, serum[("LIM-002", "M2")]: 500.0,
        serum[("LIM-003", "BL")]: 10.0, serum[("LIM-003", "M2")]: 80.0,
    }  # fmt: skip
    plate = make_plate(vegf)
    run = services.preview_plate(
        plate.reader, "vegf.xlsx", plate.plate_map, "VEGF",
        pipeline.Options(read=450, reference=540), actor=None,
    ).run  # fmt: skip
    services.accept_run(run.code, actor=None)
    rows = [
        [serum[("LIM-001", "BL")], "M-spike", "1,2", "g/dL", "SPE", "02/03/2026", ""],
        [serum[("LIM-001", "M2")], "M-spike", "0.5", "g/dL", "SPE", "04/05/2026", ""],
        [serum[("LIM-001", "M2")], "Immunofixation", "Positive IgA lambda", "", "IFE",
         "04/05/2026", ""],
    ]  # fmt: skip
    preview = services.preview_results(sheet(rows), "mprotein.xlsx", actor=None)
    services.accept_run(preview.run.code, actor=None)
    db.session.commit()
    return vegf


def upload_plate(client, plate, **fields):
    """Post a reader file and its plate map through the import page (450 nm, 540 nm
    subtracted, VEGF unless ``fields`` say otherwise)."""
    return client.post(
        "/assays/plates",
        data={
            "reader_file": (io.BytesIO(plate.reader), "plate.xlsx"),
            "plate_map": (io.BytesIO(plate.plate_map), "map.xlsx"),
            "analyte": "VEGF",
            "read": "450",
            "reference": "540",
            **fields,
        },
        content_type="multipart/form-data",
    )
