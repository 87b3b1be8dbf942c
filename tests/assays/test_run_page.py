"""The run page and the curve picture in the scientist's language: whose sample each one
is, what the blank and kit-control wells read, which reads were used, the day the plate
was read, and every number as the page's language writes it."""

from __future__ import annotations

import dataclasses
import html
import io
import re
from datetime import date

import openpyxl
import pytest

from biobank.assays import plot, services
from biobank.assays.curvefit import Fit
from biobank.assays.example import make_plate
from biobank.assays.models import AssayRun
from tests import factories
from tests.assays.conftest import upload_plate
from tests.assays.test_language import in_french
from tests.test_i18n import compiled  # noqa: F401  (the .mo files the pages read)

READ_ON = date(2026, 12, 6)
NOT_A_TUBE = "NOTATUBE01"
KNOWN = 819.94  # pg/mL: "819.9" in English, "819,9" in French
CONTROL_RANGES = {"CTRL-L": (60.0, 100.0), "CTRL-H": (450.0, 750.0)}  # pg/mL


def with_controls(plate_map: bytes) -> bytes:
    """The plate map with the kit's ranges of its two controls (sheet Controls)."""
    book = openpyxl.load_workbook(io.BytesIO(plate_map))
    sheet = book.create_sheet("Controls")
    sheet.append(["Name", "Low", "High"])
    for name, (low, high) in CONTROL_RANGES.items():
        sheet.append([name, low, high])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def imported(client, db, values: dict[str, float], **fields) -> str:
    """A plate of these samples imported through the page (450 nm, 540 nm subtracted),
    read on READ_ON; returns the run page's address."""
    plate = make_plate(values)
    plate = dataclasses.replace(plate, plate_map=with_controls(plate.plate_map))
    answer = upload_plate(client, plate, **fields)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    run = db.session.execute(db.select(AssayRun).order_by(AssayRun.id.desc())).scalar()
    run.measured_on = READ_ON
    db.session.commit()
    return answer.location


@pytest.fixture
def technician(login_as):
    return login_as("technician")


@pytest.fixture
def run_url(serum, technician, db):
    values = {serum[("LIM-003", "M2")]: KNOWN, serum[("LIM-001", "BL")]: 200.0, NOT_A_TUBE: 300.0}
    return imported(technician, db, values)


def page(client, url: str, **headers) -> str:
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200
    return html.unescape(answer.get_data(as_text=True))


def row(text: str, marker: str) -> str:
    """The table row that carries ``marker`` (data-barcode="…", data-well="…")."""
    return text.split(marker, 1)[1].split("</tr>", 1)[0]


def section(text: str, css_class: str) -> str:
    """The table of this class."""
    return text.split(f'<table class="data {css_class}">', 1)[1].split("</table>", 1)[0]


# --- whose samples -------------------------------------------------------------------------


def test_each_sample_is_named_by_its_participant_visit_and_type(run_url, serum, technician):
    text = page(technician, run_url)

    sample = row(text, f'data-barcode="{serum[("LIM-003", "M2")]}"')
    assert "LIM-003 · M2" in sample and "Serum (SER)" in sample
    assert "LIM-001 · BL" in row(text, f'data-barcode="{serum[("LIM-001", "BL")]}"')
    stranger = row(text, f'data-barcode="{NOT_A_TUBE}"')
    assert "not an aliquot" in stranger and "LIM-" not in stranger


def test_a_user_of_another_centre_sees_no_participant_of_a_tube_not_theirs(db, sites, login_as):
    factories.freezer({})
    factories.participant("LIM", code="LIM-051")
    factories.participant("PAR", code="PAR-061")
    limoges = factories.visit("LIM-051", "BL").aliquots[0].barcode
    paris = factories.visit("PAR-061", "BL").aliquots[0].barcode
    db.session.commit()
    run_url = imported(login_as("technician"), db, {limoges: 400.0, paris: 150.0})

    limoges_technician = login_as("technician", site="LIM")
    central = page(login_as("manager"), run_url)
    at_limoges = page(limoges_technician, run_url)

    assert "LIM-051 · BL" in central and "PAR-061 · BL" in central
    assert "LIM-051 · BL" in at_limoges
    assert "PAR-061" not in at_limoges and paris not in at_limoges
    at_limoges_reach = services.sample_origins(
        [limoges, paris, NOT_A_TUBE], actor=limoges_technician.user
    )
    assert at_limoges_reach == {limoges: services.Origin("LIM-051", "BL", "SER")}
    assert services.sample_origins([limoges, paris], actor=None).keys() == {limoges, paris}


# --- what the wells read -------------------------------------------------------------------


def test_the_blanks_show_what_the_file_wrote_and_the_mean_subtracted(run_url, technician):
    text = page(technician, run_url)

    # example.py: a blank reads 0.089 at 450 nm and 0.041 at 540 nm, 0.048 once corrected.
    blanks = section(text, "blanks")
    for well in ("A3", "B3"):
        read, reference, corrected = "0.089", "0.041", "0.048"
        assert (
            f'<tr data-well="{well}"><td>{well}</td><td class="mono">{read}</td>'
            f'<td class="mono">{reference}</td><td>{corrected}</td></tr>'
        ) in blanks, blanks
    assert "Mean of the blanks, subtracted from every well: 0.048" in text
    assert "450 nm − 540 nm" in text


def test_a_long_lists_blanks_are_shown_as_it_wrote_them(serum, technician):
    plate = make_plate({serum[("LIM-001", "BL")]: 200.0})  # its long list is a French CSV
    answer = technician.post(
        "/assays/plates",
        data={
            "reader_file": (io.BytesIO(plate.long_list), "plate.csv"),
            "plate_map": (io.BytesIO(plate.plate_map), "map.xlsx"),
            "analyte": "VEGF",
            "long_list": "1",
            "well_column": "Position",
            "sample_column": "Sample ID",
            "value_column": "OD corr",
        },
        content_type="multipart/form-data",
    )
    text = page(technician, answer.location)

    blanks = section(text, "blanks")
    assert '<tr data-well="A3"><td>A3</td><td class="mono">0,0480</td><td>0.048</td>' in blanks
    assert "Reference read" not in blanks
    assert "Mean of the blanks, subtracted from every well: 0.048" in text
    assert "OD corr (plate.csv)" in text  # the read used


def test_the_kit_controls_show_each_well_and_the_value_against_the_range(run_url, technician):
    text = page(technician, run_url)

    controls = section(text, "controls")
    low = controls.split('data-control="CTRL-L"', 1)[1].split('data-control="CTRL-H"', 1)[0]
    assert "<td>C3</td>" in low and "<td>D3</td>" in low
    assert re.search(r'class="control-value">(79\.\d+|80(\.\d+)?) pg/mL</td>', low), low
    assert "60 – 100 pg/mL" in low and "✓" in low
    high = controls.split('data-control="CTRL-H"', 1)[1]
    assert "<td>E3</td>" in high and "450 – 750 pg/mL" in high
    # Each control well: the read and the reference as written, the response it gave.
    assert re.search(r"<td>C3</td><td class=\"mono\">[\d.]+</td><td class=\"mono\">0\.041</td>"
                     r"<td>0\.\d+</td>", low), low  # fmt: skip


# --- numbers and dates in the page's language -------------------------------------------------


def test_the_page_in_english(run_url, serum, technician):
    text = page(technician, run_url, **{"Accept-Language": "en"})

    assert f"{KNOWN:.1f} pg/mL" in row(text, f'data-barcode="{serum[("LIM-003", "M2")]}"')
    assert re.search(r'R² <span class="r2">[01]\.\d{4}</span>', text)
    assert "Dec 6, 2026" in text
    standards = section(text, "standards")
    assert "%" in standards and "," not in standards
    assert "<tr><td>STD8</td><td>0</td>" in standards  # the zero standard: "0", not "0.0"


def test_the_page_in_french_by_the_browsers_language(compiled, run_url, serum, technician):  # noqa: F811
    text = page(technician, run_url, **{"Accept-Language": "fr-FR,fr;q=0.9"})

    assert_french(text, serum)


def test_the_page_in_french_by_the_users_choice(compiled, run_url, serum, technician):  # noqa: F811
    in_french(technician, run_url)

    assert_french(page(technician, run_url), serum)


def assert_french(text: str, serum) -> None:
    assert "Contrôles du kit" in text  # the page is French
    assert "819,9 pg/mL" in row(text, f'data-barcode="{serum[("LIM-003", "M2")]}"')
    assert re.search(r'R² <span class="r2">[01],\d{4}</span>', text)
    assert "6 déc. 2026" in text
    assert "0,048" in section(text, "blanks") and ": 0,048" in text  # the mean subtracted
    assert "60 – 100 pg/mL" in section(text, "controls")
    recoveries = re.findall(r"<td>(\d+,\d) %</td>", section(text, "standards"))
    assert len(recoveries) >= 6, recoveries
    assert "LIM-003 · M2" in text
    assert not re.search(r"\d\.\d+ pg/mL", text)  # no English decimal left beside a unit


# --- the curve picture ---------------------------------------------------------------------


def test_the_curve_is_drawn_in_french_and_named_by_the_form_kept(
    compiled,  # noqa: F811
    serum,
    technician,
    db,
):
    run_url = imported(technician, db, {serum[("LIM-002", "BL")]: 500.0})
    in_french(technician, run_url)

    svg = technician.get(f"{run_url}/curve.svg").get_data(as_text=True)

    assert "Réponse" in svg and "Response" not in svg
    assert "4PL" in svg and "5PL" not in svg
    assert re.search(r"R² = [01],\d{4}", svg), svg
    assert "15,625 pg/mL" in svg  # the LLOQ in the legend
    assert ">0,5</text>" in svg and ">0.5</text>" not in svg  # the response axis


def test_the_fit_is_labelled_by_the_form_it_kept():
    kept_4pl = Fit("5PL", {"a": 0.05, "b": 1.2, "c": 400.0, "d": 3.2, "g": 1.0}, "1/y2", 0.999)
    high = Fit("5PL", {"a": 0.05, "b": 1.6, "c": 900.0, "d": 3.0, "g": 0.45}, "none", 0.9999)
    low = Fit("5PL", {"a": 3.0, "b": -1.6, "c": 900.0, "d": 0.05, "g": 0.45}, "none", 0.9999)

    legends = [
        plot.curve_picture(fit, [], [], unit="pg/mL", fmt="svg").decode()
        for fit in (kept_4pl, high, low)
    ]

    assert "4PL fit" in legends[0] and "5PL" not in legends[0]
    assert "5PL fit, asymmetric at the high end" in legends[1]
    assert "5PL fit, asymmetric at the low end" in legends[2]
