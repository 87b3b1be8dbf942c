"""A small trial for the SDTM export: two centres, their visits, assay results of every
kind (a value, one below and one above the calibrated range, a sample the plate gave no
result for, a laboratory's M-spike, immunofixation and ratio, a re-assay that superseded
a value) and aliquots that were stored, thawed and destroyed."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import openpyxl
import pytest

from biobank.assays import pipeline, services
from biobank.assays.example import ROWS, make_plate
from biobank.storage import services as storage
from tests import factories
from tests.assays.conftest import sheet

INCLUDED = date(2026, 1, 5)


@dataclass(frozen=True)
class Trial:
    tubes: dict[tuple[str, str, str], list[str]]  # (participant, visit, sample type) → barcodes

    def aliquot(self, participant: str, visit: str, sample_type: str = "SER", n: int = 0) -> str:
        return self.tubes[(participant, visit, sample_type)][n]

    def of(self, participant: str) -> set[str]:
        return {b for (p, _, _), codes in self.tubes.items() if p == participant for b in codes}


def without_reading(plate, barcode: str) -> bytes:
    """The plate's reader file with the 450 nm wells of ``barcode`` left empty: the plate
    gives that sample no result."""
    book = openpyxl.load_workbook(io.BytesIO(plate.reader))
    block = book.active
    for well, content in plate.layout.items():
        if content == barcode:
            # The 450 nm block's A1 is at row 10, column 3 (example.reader_xlsx).
            block.cell(row=10 + ROWS.index(well[0]), column=int(well[1:]) + 2).value = None
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def accept_sheet(rows, name: str, *, reassay_reason: str = "") -> None:
    run = services.preview_results(sheet(rows), name, reassay_reason=reassay_reason, actor=None).run
    services.accept_run(run.code, confirm=True, actor=None)


@pytest.fixture
def trial(db, sites) -> Trial:
    factories.freezer({"BX-0001": "Box 1"})
    tubes: dict[tuple[str, str, str], list[str]] = {}
    for code in ("LIM-001", "PAR-001"):
        factories.participant(code[:3], code=code, included_on=INCLUDED)
        for visit in ("BL", "M2"):
            for aliquot in factories.visit(code, visit).aliquots:
                tubes.setdefault((code, visit, aliquot.sample_type), []).append(aliquot.barcode)
    trial = Trial(tubes)

    unread = trial.aliquot("PAR-001", "BL")
    plate = make_plate(
        {
            trial.aliquot("LIM-001", "BL"): 900.0,
            trial.aliquot("LIM-001", "M2"): 10.0,  # below the lowest calibrator
            trial.aliquot("LIM-001", "BL", "PL1"): 3000.0,  # above the highest
            unread: 300.0,
            trial.aliquot("PAR-001", "M2"): 120.0,
        }
    )
    run = services.preview_plate(
        without_reading(plate, unread), "vegf.xlsx", plate.plate_map, "VEGF",
        pipeline.Options(read=450, reference=540), actor=None,
    ).run  # fmt: skip
    services.accept_run(run.code, actor=None)
    lab = [
        [trial.aliquot("LIM-001", "BL"), "M-spike", "1,2", "g/dL", "SPE", "02/03/2026", ""],
        [trial.aliquot("LIM-001", "M2"), "Immunofixation", "Positive IgA lambda", "", "IFE",
         "04/05/2026", ""],
        [trial.aliquot("LIM-001", "M2"), "Ratio K/L", "0,05", "", "Freelite", "04/05/2026", ""],
    ]  # fmt: skip
    accept_sheet(lab, "mprotein.xlsx")
    # Baseline serum VEGF measured again on another aliquot, on request: it supersedes 900.
    repeat = [[trial.aliquot("LIM-001", "BL", n=1), "VEGF", "850", "pg/mL", "ELISA", "", ""]]
    accept_sheet(repeat, "vegf-repeat.xlsx", reassay_reason="control failed")

    thawed, destroyed = trial.aliquot("LIM-001", "BL", n=2), trial.aliquot("LIM-001", "BL", n=3)
    storage.store_many([(thawed, "BX-0001", None), (destroyed, "BX-0001", None)], actor=None)
    storage.check_out(thawed, "IL-6 assay", actor=None)
    storage.return_aliquot(thawed, 400, thawed=True, actor=None)
    storage.destroy(destroyed, "tube cracked", actor=None)
    db.session.commit()
    return trial
