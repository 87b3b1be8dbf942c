"""The SDTM download: linked from the assay page, a zip of the datasets and their define
document, within the user's centre, for those who see participant-level data only."""

from __future__ import annotations

import html
import io
import zipfile

import pyreadstat

from biobank.assays import services
from biobank.exports.datasets import DATASETS
from tests.exports.conftest import accept_sheet

FILES = sorted(
    [f"{d.file_stem}.{ext}" for d in DATASETS for ext in ("xpt", "csv")] + ["define.html"]
)


def unzipped(response) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_assay_page_links_the_sdtm_download(trial, login_as):
    page = login_as("technician").get("/assays").get_data(as_text=True)

    assert 'href="/exports/sdtm.zip"' in page
    assert "CDISC SDTM export (zip)" in page


def test_the_download_is_a_zip_of_the_datasets_and_their_define_document(trial, login_as, tmp_path):
    response = login_as("manager").get("/exports/sdtm.zip")

    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="sdtm-export.zip"'
    files = unzipped(response)
    assert sorted(files) == FILES
    (tmp_path / "lb.xpt").write_bytes(files["lb.xpt"])
    frame, meta = pyreadstat.read_xport(str(tmp_path / "lb.xpt"))
    assert meta.table_name == "LB" and len(frame) == 8
    assert set(frame["USUBJID"]) == {"POEMS-LENDEX-LIM-001", "POEMS-LENDEX-PAR-001"}


def test_a_centre_technician_downloads_only_their_centre(trial, login_as):
    files = unzipped(login_as("technician", site="PAR").get("/exports/sdtm.zip"))

    text = b"".join(files.values()).decode("latin-1")
    assert "PAR-001" in text and trial.aliquot("PAR-001", "M2") in text
    assert "LIM-001" not in text
    assert not [barcode for barcode in trial.of("LIM-001") if barcode in text]


def test_a_researcher_sees_no_participant_level_download(trial, login_as):
    researcher = login_as("researcher")

    assert researcher.get("/exports/sdtm.zip").status_code == 403
    assert "/exports/sdtm.zip" not in researcher.get("/").get_data(as_text=True)


def test_an_analyte_without_a_term_is_refused_with_a_message(trial, db, login_as):
    services.declare_analyte("IL6", "Interleukin 6", "numeric", "pg/mL", actor=None)
    il6 = [[trial.aliquot("LIM-001", "BL", n=4), "IL6", "12", "pg/mL", "ELISA", "", ""]]
    accept_sheet(il6, "il6.xlsx")
    db.session.commit()

    response = login_as("manager").get("/exports/sdtm.zip")

    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert "The analyte IL6 has no SDTM test code" in page
