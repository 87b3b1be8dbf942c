"""The trial summary page, its API and its waterfall plot; the readiness section of the
participant page: who may see them, what they show, in which language, within the
centre."""

from __future__ import annotations

import html
import re

import pytest

from biobank.monitoring import waterfall
from tests.answers import error_of, ok
from tests.monitoring.test_outcome import (
    accepted_sheet,
    collect,
    enrol,
    trial_of,
    vegf,
)

SVG = "/study/outcome/waterfall.svg"
PNG = "/study/outcome/waterfall.png"


@pytest.fixture
def trial(db, sites):
    """Group 1: LIM-001 -60 %, LIM-002 -30 %, LIM-003 0 %; Group 2: LIM-011 -50 %,
    LIM-012 -20 %, LIM-013 +10 %, LIM-014 +40 %; PAR-001 (Paris, Group 1) -90 %."""
    trial_of(
        {
            "LIM-001": ("G1", 2000.0, 800.0),
            "LIM-002": ("G1", 2000.0, 1400.0),
            "LIM-003": ("G1", 2000.0, 2000.0),
            "LIM-011": ("G2", 2000.0, 1000.0),
            "LIM-012": ("G2", 2000.0, 1600.0),
            "LIM-013": ("G2", 2000.0, 2200.0),
            "LIM-014": ("G2", 2000.0, 2800.0),
        }
    )
    enrol("PAR-001", arm="G1", site="PAR")
    paris = collect("PAR-001", "BL"), collect("PAR-001", "M2")
    accepted_sheet([vegf(paris[0], 2000.0), vegf(paris[1], 200.0)], "paris.xlsx")
    db.session.commit()


CODES = ("LIM-001", "LIM-002", "LIM-003", "LIM-011", "LIM-012", "LIM-013", "LIM-014", "PAR-001")


def text_of(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return html.unescape(response.get_data(as_text=True))


def arm_row(page: str, arm: str) -> str:
    """The arm's row of the per-arm table, its figures as text, each after its name."""
    row = page.split(f'<tr data-arm="{arm}">', 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r'data-figure="(\w+)">(.*?)</td>', row, flags=re.S)
    return " | ".join(f"{name}: {re.sub(r'<[^>]+>', '', text)}" for name, text in cells)


def test_the_summary_page_gives_each_arms_figures_and_each_participants_readiness(trial, login_as):
    page = text_of(login_as("manager").get("/study/outcome"))

    group_2 = arm_row(page, "G2")
    assert "included: 4 |" in group_2 and "paired_vegf: 4 |" in group_2
    assert "-5.0 % (IQR -27.5 % to +17.5 %), n = 4" in group_2
    assert "partial: 1" in group_2 and "stable: 3" in group_2
    group_1 = arm_row(page, "G1")
    # -90, -60, -30, 0: median -45, q1 -90 + 0.75·30, q3 -30 + 0.25·30.
    assert "-45.0 % (IQR -67.5 % to -22.5 %), n = 4" in group_1
    for code in CODES:
        assert f'data-participant="{code}"' in page
    assert 'data-state="reportable"' in page and "not in the arm's schedule" in page
    assert f'src="{SVG}"' in page and f'href="{PNG}"' in page


def test_the_summary_page_writes_numbers_in_french(trial, login_as):
    manager = login_as("manager")
    assert manager.post("/language", data={"lang": "fr", "next": "/"}).status_code == 303
    group_2 = arm_row(text_of(manager.get("/study/outcome")), "G2")
    assert "-27,5" in group_2 and "+17,5" in group_2 and "-27.5" not in group_2


def test_the_api_gives_the_same_figures_and_the_method(trial, api_as):
    answer = ok(api_as("technician").get("/api/v1/study/outcome"))
    arms = {arm["code"]: arm for arm in answer["arms"]}
    assert arms["G2"]["vegf_change"] == {"n": 4, "median": -5.0, "q1": -27.5, "q3": 17.5}
    assert arms["G2"]["vegf_responses"] == [
        {"category": "partial", "count": 1},
        {"category": "stable", "count": 3},
    ]
    assert arms["G1"]["paired_vegf"] == 4 and arms["G1"]["m_spike_change"] is None
    assert answer["quartile_method"] == "linear" and answer["visit"] == "M2"
    first = next(p for p in answer["participants"] if p["code"] == "LIM-001")
    assert first["vegf_change"] == -60.0 and first["vegf"]["category"] == "complete"
    baseline = next(r for r in first["readiness"] if (r["visit"], r["analyte"]) == ("BL", "VEGF"))
    assert baseline["state"] == "reportable" and baseline["value"] == 2000.0
    m_spike = next(r for r in first["readiness"] if (r["visit"], r["analyte"]) == ("BL", "M_SPIKE"))
    assert (m_spike["state"], m_spike["reason"]) == ("not_assayed", "no_result")
    assert m_spike["explanation"]


def test_a_centres_user_sees_that_centre_only_on_the_page_the_api_and_the_plot(
    trial, login_as, api_as
):
    paris = login_as("technician", site="PAR")
    page = text_of(paris.get("/study/outcome"))
    assert 'data-participant="PAR-001"' in page and "LIM-001" not in page
    assert "-90.0 % (IQR -90.0 % to -90.0 %), n = 1" in arm_row(page, "G1")
    picture = paris.get(SVG).get_data(as_text=True)
    assert "PAR-001" in picture and "LIM-001" not in picture
    answer = ok(api_as("manager", site="LIM").get("/api/v1/study/outcome"))
    assert "PAR-001" not in {p["code"] for p in answer["participants"]}


def test_researchers_see_neither_the_page_nor_the_api_nor_the_plot(trial, login_as, api_as):
    researcher = login_as("researcher")
    for url in ("/study/outcome", SVG, PNG):
        assert researcher.get(url).status_code == 403, url
    assert "/study/outcome" not in researcher.get("/").get_data(as_text=True)
    assert error_of(api_as("researcher").get("/api/v1/study/outcome"), 403)["code"] == "forbidden"
    assert 'href="/study/outcome"' in login_as("technician").get("/").get_data(as_text=True)


def test_the_waterfall_svg_is_the_same_bytes_twice_and_names_every_participant(trial, login_as):
    manager = login_as("manager")
    first, second = manager.get(SVG), manager.get(SVG)
    assert first.status_code == 200 and first.mimetype == "image/svg+xml"
    assert first.data == second.data
    picture = first.get_data(as_text=True)
    for code in CODES:
        assert code in picture
    # Sorted from the largest rise to the deepest fall; no date that would change the bytes.
    drawn = sorted(CODES, key=lambda code: picture.index(f">{code}</text>"))
    assert drawn == [
        "LIM-014", "LIM-013", "LIM-003", "LIM-012", "LIM-002", "LIM-011", "LIM-001", "PAR-001",
    ]  # fmt: skip
    assert "<dc:date>" not in picture


def test_the_waterfall_png_is_a_png_and_reproducible(trial, login_as):
    manager = login_as("manager")
    first, second = manager.get(PNG), manager.get(PNG)
    assert first.status_code == 200 and first.mimetype == "image/png"
    assert first.data.startswith(b"\x89PNG\r\n\x1a\n") and first.data == second.data
    assert "inline" in first.headers["Content-Disposition"]


def test_an_empty_trial_still_draws_a_picture_that_says_so(db, sites, login_as):
    manager = login_as("manager")
    picture = manager.get(SVG)
    assert picture.status_code == 200
    assert "No participant has serum VEGF values" in picture.get_data(as_text=True)
    assert text_of(manager.get("/study/outcome")).count('data-figure="included">0<') == 2


def test_arms_are_told_apart_by_hatching_as_well_as_colour():
    styles = waterfall.arm_styles([("G1", "Group 1"), ("G2", "Group 2")])
    assert styles["G1"].colour != styles["G2"].colour
    assert styles["G1"].hatch != styles["G2"].hatch
    bars = [waterfall.Bar("B", "G1", -10.0), waterfall.Bar("A", "G2", -10.0),
            waterfall.Bar("C", "G2", 30.0)]  # fmt: skip
    assert [b.participant for b in waterfall.ordered(bars)] == ["C", "A", "B"]


def test_the_participant_page_shows_the_readiness_of_each_outcome_visit(trial, login_as):
    page = text_of(login_as("technician").get("/participants/LIM-011"))
    section = page.split("Primary outcome readiness", 1)[1]
    rows = re.findall(r'<tr data-visit="(\w+)">', section)
    assert rows == ["BL", "M2", "M4", "M6"]
    month_2 = section.split('<tr data-visit="M2">', 1)[1].split("</tr>", 1)[0]
    assert "reportable" in month_2 and "1000" in month_2
    month_4 = section.split('<tr data-visit="M4">', 1)[1].split("</tr>", 1)[0]
    assert "not collected" in month_4 and "visit not registered" in month_4
    assert "serum VEGF -50.0 %" in section
