"""An upload cannot exhaust a worker: a workbook that declares a sheet as large as Excel
allows, a zip bomb, a file over the request size, a CSV of too many rows or columns are
each refused at once, with a message naming the limit, and nothing is written.

The attacks go through the API and the pages as a technician (who may import plates);
the memory the reading takes is measured in-process with tracemalloc."""

from __future__ import annotations

import io
import tracemalloc

import pytest
import sqlalchemy as sa

from biobank.assays import platemap, platereader, resultsheet
from biobank.assays.example import make_plate
from biobank.assays.models import AssayRun
from biobank.extensions import db
from biobank.uploads import TooLarge
from tests.attack_files import bomb_xlsx, sparse_xlsx
from tests.pages import refused

PEAK_MB = 50


def wide_csv(columns: int) -> bytes:
    return ("Well;Sample;Value;" + ";".join(f"x{n}" for n in range(columns)) + "\n").encode()


def long_csv(rows: int) -> bytes:
    return b"Well;Sample;Value\n" + b"A1;S1;0.5\n" * rows


def peak_mb(call) -> tuple[BaseException | None, float]:
    """What ``call()`` raised, and the peak of Python memory it took, in MB."""
    tracemalloc.start()
    try:
        call()
    except Exception as err:
        raised = err
    else:
        raised = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak / 2**20


def runs() -> int:
    db.session.expire_all()
    count = db.session.execute(sa.select(sa.func.count()).select_from(AssayRun)).scalar()
    db.session.rollback()
    return count


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return bomb_xlsx()


@pytest.fixture
def plate_map() -> bytes:
    return make_plate({"S1": 100.0}).plate_map


@pytest.fixture
def technician(api_as, sites):
    return api_as("technician")


def post_plate(client, reader: bytes, name: str, plate_map: bytes, **fields):
    return client.post(
        "/api/v1/assay-runs/plates",
        data={
            "reader_file": (io.BytesIO(reader), name),
            "plate_map": (io.BytesIO(plate_map), "map.xlsx"),
            "analyte": "VEGF",
            **fields,
        },
    )


def refusal(response, status=400) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_json()["error"]


# --- the readers alone -------------------------------------------------------------------


def test_a_sheet_spanning_the_whole_grid_is_refused_by_its_rows_in_little_memory():
    data = sparse_xlsx()
    assert len(data) < 10_000
    raised, peak = peak_mb(lambda: platereader.read_reader_file(data, "plate.xlsx"))
    assert isinstance(raised, TooLarge)
    assert str(raised.message) == (
        'plate.xlsx: Sheet "Plate 1" has more than 60,000 rows, the limit for an upload.'
    )
    assert peak < PEAK_MB


def test_a_zip_bomb_is_refused_before_it_is_unpacked(bomb):
    assert len(bomb) < 1_000_000
    for read in (
        lambda: platereader.read_reader_file(bomb, "plate.xlsx"),
        lambda: platemap.read_plate_map(bomb),
        lambda: resultsheet.read_results(bomb, "results.xlsx", analytes={}),
    ):
        raised, peak = peak_mb(read)
        assert isinstance(raised, TooLarge)
        assert "unpacks to more than 64 MB, the limit for an upload" in str(raised.message)
        assert peak < PEAK_MB


def test_a_csv_of_too_many_rows_or_columns_is_refused_in_little_memory():
    raised, peak = peak_mb(lambda: platereader.long_list(long_csv(70_000), "list.csv"))
    assert isinstance(raised, TooLarge) and peak < PEAK_MB
    assert str(raised.message) == (
        "list.csv: The file has more than 60,000 lines, the limit for an upload."
    )
    raised, _peak = peak_mb(lambda: platereader.long_list(wide_csv(300), "list.csv"))
    assert str(raised.message) == (
        "list.csv: Line 1 has more than 200 columns, the limit for an upload."
    )


# --- through the API and the pages -------------------------------------------------------


def test_the_sparse_workbook_is_refused_by_the_api_and_nothing_is_written(technician, plate_map):
    error = refusal(post_plate(technician, sparse_xlsx(), "plate.xlsx", plate_map))
    assert error["code"] == "upload.limit"
    assert error["message"] == (
        'plate.xlsx: Sheet "Plate 1" has more than 60,000 rows, the limit for an upload.'
    )
    assert runs() == 0


def test_a_zip_bomb_is_refused_by_the_api_as_reader_file_and_as_plate_map(
    technician, plate_map, bomb
):
    as_reader = refusal(post_plate(technician, bomb, "plate.xlsx", plate_map))
    assert as_reader["code"] == "upload.limit"
    assert "unpacks to more than 64 MB, the limit for an upload" in as_reader["message"]
    as_map = refusal(post_plate(technician, sparse_xlsx(), "plate.xlsx", bomb))
    assert "unpacks to more than 64 MB" in as_map["message"]
    assert runs() == 0


def test_a_zip_bomb_within_the_unpacked_size_is_refused_by_its_cells(app, technician, plate_map):
    app.config.update(UPLOAD_MAX_ZIP_RATIO=1_000_000, UPLOAD_MAX_CELLS=100_000)
    bomb = bomb_xlsx(200_000, width=2)  # 100,000 rows
    error = refusal(post_plate(technician, bomb, "plate.xlsx", plate_map))
    assert error["message"] == (
        'plate.xlsx: The workbook has more than 100,000 cells (counted up to sheet "Plate 1"), '
        "the limit for an upload."
    )
    app.config.update(UPLOAD_MAX_CELLS=1_000_000)
    error = refusal(post_plate(technician, bomb, "plate.xlsx", plate_map))
    assert error["message"] == (
        'plate.xlsx: Sheet "Plate 1" has more than 60,000 rows, the limit for an upload.'
    )
    assert runs() == 0


def test_a_long_list_over_the_rows_set_for_this_server_is_refused(app, technician, plate_map):
    app.config["UPLOAD_MAX_ROWS"] = 500
    response = post_plate(technician, long_csv(600), "list.csv", plate_map, long_list="true")
    error = refusal(response)
    assert error["code"] == "upload.limit"
    assert error["message"] == (
        "list.csv: The file has more than 500 lines, the limit for an upload."
    )
    assert runs() == 0


def test_a_result_sheet_of_too_many_columns_is_refused(technician):
    response = technician.post(
        "/api/v1/assay-runs/sheets",
        data={"file": (io.BytesIO(wide_csv(300)), "results.csv")},
    )
    error = refusal(response)
    assert error["message"] == (
        "results.csv: Line 1 has more than 200 columns, the limit for an upload."
    )
    assert runs() == 0


def test_a_rack_scan_of_too_many_lines_is_refused(app, technician):
    app.config["UPLOAD_MAX_ROWS"] = 1_000
    response = technician.post(
        "/api/v1/rack-scans", data=b"A1,FX05653780\n" * 2_000, content_type="text/csv"
    )
    error = refusal(response)
    assert error["message"] == "The file has more than 1,000 lines, the limit for an upload."


def test_a_body_over_the_request_size_is_refused_unread_by_the_api(app, technician, plate_map):
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    big = b"Well;Sample;Value\n" + b"A1;S1;0.5\n" * 10_000  # 100 KB
    raised, peak = peak_mb(lambda: post_plate(technician, big, "list.csv", plate_map))
    assert raised is None and peak < PEAK_MB
    error = refusal(post_plate(technician, big, "list.csv", plate_map), 413)
    assert error == {
        "code": "upload.too_large",
        "message": "The file is larger than the 64 KB this server accepts: nothing was saved. "
        "Send a smaller file, or split it.",
        "fields": {},
    }
    assert runs() == 0


def test_the_request_size_is_16_mb_unless_set(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024


def test_a_page_upload_over_the_request_size_comes_back_to_its_form(
    app, login_as, sites, plate_map
):
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    technician = login_as("technician")
    big = b"Well;Sample;Value\n" + b"A1;S1;0.5\n" * 10_000
    answer = technician.post(
        "/assays/plates",
        data={
            "reader_file": (io.BytesIO(big), "list.csv"),
            "plate_map": (io.BytesIO(plate_map), "map.xlsx"),
            "analyte": "VEGF",
        },
        content_type="multipart/form-data",
        headers={"Referer": "http://localhost/assays?status=preview"},
    )
    assert answer.location == "/assays?status=preview"
    page = refused(technician, answer)
    assert "The file is larger than the 64 KB this server accepts: nothing was saved." in page
    assert runs() == 0


def test_a_page_upload_of_a_sparse_workbook_comes_back_with_the_limit(login_as, sites, plate_map):
    technician = login_as("technician")
    answer = technician.post(
        "/assays/plates",
        data={
            "reader_file": (io.BytesIO(sparse_xlsx()), "plate.xlsx"),
            "plate_map": (io.BytesIO(plate_map), "map.xlsx"),
            "analyte": "VEGF",
        },
        content_type="multipart/form-data",
    )
    page = refused(technician, answer)
    assert 'plate.xlsx: Sheet "Plate 1" has more than 60,000 rows, the limit for an upload.' in page
    assert runs() == 0
