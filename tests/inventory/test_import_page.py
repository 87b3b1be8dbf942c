"""The import page: upload, preview (problems by row and column, what would be created),
apply, summary; reload-safe, and each user's file their own."""

from __future__ import annotations

import html
import io

import openpyxl
import sqlalchemy as sa

from biobank.extensions import db as _db
from biobank.inventory import services
from biobank.samples.models import Aliquot, InventoryImport
from tests.inventory import aliquot, tube, xlsx
from tests.pages import refused


def upload(client, data: bytes, name: str = "inventory.xlsx", **form):
    return client.post(
        "/inventory/import",
        data={"file": (io.BytesIO(data), name), **form},
        content_type="multipart/form-data",
    )


def text(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return html.unescape(response.get_data(as_text=True))


def aliquots() -> int:
    return _db.session.execute(sa.select(sa.func.count(Aliquot.id))).scalar()


def test_an_upload_leads_to_its_preview_which_writes_nothing(bank, login_as):
    client = login_as("technician", site="LIM")
    data = xlsx(tube(3))

    sent = upload(client, data)

    assert sent.status_code == 303
    assert sent.location.startswith("/inventory/import/preview?file=")
    page = text(client.get(sent.location))
    assert 'data-count="aliquots">3<' in page and 'data-count="participants">1<' in page
    assert "Apply: import 3 aliquots" in page
    assert services.sha256_of(data) in page
    assert aliquots() == 0
    again = text(client.get(sent.location))  # a reload shows the same preview
    assert "Apply: import 3 aliquots" in again


def test_the_preview_lists_each_problem_by_row_and_column_and_offers_no_apply(bank, login_as):
    client = login_as("technician", site="LIM")
    rows = [aliquot(1), aliquot(2, volume_ul=0), aliquot(3, position="Z1")]
    header = (*aliquot(1).keys(), "Remarque")

    page = text(client.get(upload(client, xlsx(rows, header)).location))

    assert '<tr data-row="3"><td>3</td><td class="mono">volume_ul</td>' in page
    assert '<tr data-row="4"><td>4</td><td class="mono">position</td>' in page
    assert "2 problems: nothing can be imported" in page
    assert "Remarque" in page  # the column left out is listed
    assert "Apply:" not in page


def test_apply_imports_and_leads_to_the_summary_with_its_labels(bank, login_as):
    client = login_as("technician", site="LIM")
    preview = upload(client, xlsx(tube(3))).location
    sha = preview.split("file=")[1]

    applied = client.post("/inventory/import/apply", data={"file": sha})

    assert applied.status_code == 303 and applied.location.startswith("/inventory/import/done")
    assert aliquots() == 3
    page = text(client.get(applied.location))
    assert "inventory.xlsx imported: 3 aliquots registered with new barcodes." in page
    assert 'data-count="aliquots">3<' in page and 'data-count="positions">3<' in page
    assert "/participants/LIM-101/visits/BL/labels" in page
    assert "/boxes/BX-0001" in page


def test_applying_twice_is_refused_with_when_and_by_whom(bank, login_as):
    client = login_as("technician", site="LIM")
    preview = upload(client, xlsx(tube(2))).location
    sha = preview.split("file=")[1]
    client.post("/inventory/import/apply", data={"file": sha})

    again = client.post("/inventory/import/apply", data={"file": sha})

    page = refused(client, again)
    assert f"by {client.user.username}: a file is never applied twice" in page
    assert "See what it imported" in page
    assert aliquots() == 2
    assert _db.session.execute(sa.select(sa.func.count(InventoryImport.id))).scalar() == 1


def test_a_refused_apply_writes_nothing(bank, login_as, db):
    client = login_as("technician", site="LIM")
    preview = upload(client, xlsx(tube(2))).location
    sha = preview.split("file=")[1]
    # Between the preview and the apply, someone stores a tube where the file puts one.
    from biobank.storage import services as storage
    from tests import factories

    factories.participant("LIM", code="LIM-050")
    storage.store(factories.visit("LIM-050", "BL").aliquots[0].barcode, "BX-0001", "A2", actor=None)
    db.session.commit()
    before = aliquots()

    page = refused(client, client.post("/inventory/import/apply", data={"file": sha}))

    assert "Nothing was imported" in page and "row 3, position" in page
    assert aliquots() == before


def test_a_file_kept_for_one_user_is_not_found_by_another(bank, login_as):
    owner = login_as("technician", site="LIM")
    preview = upload(owner, xlsx(tube(1))).location
    other = login_as("technician", site="LIM")

    shown = other.get(preview)

    assert shown.status_code == 302 and shown.location.endswith("/inventory/import")
    sha = preview.split("file=")[1]
    page = refused(other, other.post("/inventory/import/apply", data={"file": sha}))
    assert "upload it again" in page
    assert aliquots() == 0


def test_an_upload_without_a_file_is_refused(bank, login_as):
    client = login_as("technician")
    page = refused(client, client.post("/inventory/import", data={}))
    assert "Choose the inventory file" in page


def test_an_unreadable_file_is_named_on_the_upload_page(bank, login_as):
    client = login_as("technician")
    sent = upload(client, b"not a spreadsheet at all", name="notes.pdf")
    shown = client.get(sent.location)
    assert shown.status_code == 302
    assert "notes.pdf is not an .xlsx workbook nor a .csv file" in text(client.get(shown.location))


def test_a_centre_user_is_told_which_rows_are_of_another_centre(bank, login_as):
    client = login_as("technician", site="PAR")
    rows = [aliquot(1, box=None, position=None)]
    page = text(client.get(upload(client, xlsx(rows)).location))
    assert "This row is of centre LIM: you can import your own centre's inventory only." in page


def test_a_central_user_may_import_for_one_centre(bank, login_as):
    client = login_as("manager")
    rows = [aliquot(1), aliquot(2, participant="PAR-001", site="PAR", box=None, position=None)]
    sent = upload(client, xlsx(rows), site="LIM")
    assert "site=LIM" in sent.location
    page = text(client.get(sent.location))
    assert "this import is for LIM only" in page


def test_the_template_is_downloaded_as_an_xlsx(bank, login_as):
    client = login_as("technician")
    response = client.get("/inventory/template.xlsx")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert "Instructions" in book.sheetnames


def test_the_template_is_in_french_for_a_french_page(bank, login_as):
    client = login_as("technician")
    client.post("/language", data={"lang": "fr", "next": "/"})
    response = client.get("/inventory/template.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert book.sheetnames[0] == "Inventaire"
    assert book["Inventaire"]["I1"].value == "prélevé le"


def test_a_researcher_cannot_reach_the_import(bank, login_as):
    client = login_as("researcher")
    assert client.get("/inventory/import").status_code == 403
    assert upload(client, xlsx(tube(1))).status_code == 403


def test_the_home_page_offers_the_import_to_technicians_only(bank, login_as):
    assert "/inventory/import" in text(login_as("technician").get("/"))
    assert "/inventory/import" not in text(login_as("researcher").get("/"))


def test_an_import_summary_is_not_found_by_another_centre(bank, login_as):
    owner = login_as("technician", site="LIM")
    sha = upload(owner, xlsx(tube(1))).location.split("file=")[1]
    done = owner.post("/inventory/import/apply", data={"file": sha}).location

    assert login_as("technician", site="PAR").get(done).status_code == 404
    assert login_as("technician").get(done).status_code == 200  # the central biobank
    assert login_as("technician").get("/inventory/import/done?id=99999999999").status_code == 404


def test_an_imported_tubes_history_says_in_words_where_it_came_from(bank, login_as):
    client = login_as("technician", site="LIM")
    sha = upload(client, xlsx(tube(1))).location.split("file=")[1]
    client.post("/inventory/import/apply", data={"file": sha})
    barcode = _db.session.execute(sa.select(Aliquot.barcode)).scalar_one()

    page = text(client.get(f"/aliquots/{barcode}"))
    assert "imported from an inventory" in page
    assert "file (SHA-256)" in page and sha[:12] in page
    assert "IMPORTED" not in page and "sha256" not in page
    assert "force, duration and temperature not recorded" in page
    assert "None" not in page
