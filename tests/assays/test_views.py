"""The run pages as a technician and a manager see them."""

from __future__ import annotations

import io

from biobank.assays.example import make_plate


def upload(client, plate):
    return client.post(
        "/assays/plates",
        data={
            "reader_file": (io.BytesIO(plate.reader), "plate.xlsx"),
            "plate_map": (io.BytesIO(plate.plate_map), "map.xlsx"),
            "analyte": "VEGF",
            "read": "450",
            "reference": "540",
        },
        content_type="multipart/form-data",
    )


def test_a_technician_imports_and_only_a_manager_accepts(serum, login_as):
    technician, manager = login_as("technician"), login_as("manager")
    answer = upload(technician, make_plate({next(iter(serum.values())): 200.0}))
    assert answer.status_code == 303
    run_url = answer.headers["Location"]
    page = technician.get(run_url).get_data(as_text=True)
    assert "A manager accepts or rejects this run." in page
    assert technician.post(f"{run_url}/accept").status_code == 403
    assert manager.get(f"{run_url}/curve.svg").data.startswith(b"<?xml")
    assert manager.post(f"{run_url}/accept").status_code == 303
    assert "accepted" in manager.get(run_url).get_data(as_text=True)


def test_a_curve_that_fails_its_acceptance_is_shown_with_its_problems(serum, login_as):
    technician = login_as("technician")
    wobble = make_plate({next(iter(serum.values())): 200.0}, noise=lambda n: 0.35 * (-1) ** n)
    run_url = upload(technician, wobble).headers["Location"]
    page = technician.get(run_url)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "curve fails" in text and "outside" in text


def test_the_same_file_twice_points_to_its_run(serum, login_as):
    technician = login_as("technician")
    plate = make_plate({next(iter(serum.values())): 200.0})
    upload(technician, plate)
    again = upload(technician, plate)
    assert again.status_code == 303
    assert "already imported: run A00001" in technician.get("/assays").get_data(as_text=True)
