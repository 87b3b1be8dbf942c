"""The assay pages in the reader's language: the rule of each computed response (on the
participant page and in the study export) and the axis of the time-course picture.

A rule writes its numbers in the page's language, as the percent change beside it does
("-58,33 %" and "-58,3 %" in French, "-58.33 %" and "-58.3 %" in English).
"""

from __future__ import annotations

import csv
import html
import io
import re

import pytest

from biobank.assays import plot
from tests.test_i18n import compiled  # noqa: F401  (the .mo files the pages read)

NBSP = "\u00a0"


def in_french(client, page: str) -> None:
    answer = client.post("/language", data={"lang": "fr", "next": page})
    assert answer.status_code == 303


def responses_table(text: str, title: str) -> str:
    """The table of computed responses under the heading ``title``."""
    after = text.split(f"<h3>{title}</h3>", 1)[1]
    return html.unescape(after.split("</table>", 1)[0])


@pytest.fixture
def manager(measured, login_as):
    return login_as("manager")


def test_the_participant_page_gives_the_rules_in_english_by_default(manager):
    text = manager.get("/participants/LIM-001").get_data(as_text=True)

    haematological = responses_table(text, "Haematological response")
    assert "≥ 50 % fall from baseline 12 g/L: -58.33 %" in haematological
    vegf = responses_table(text, "Serum VEGF response")
    assert "% decrease from baseline" in vegf
    assert "already below the ULN 1000 pg/mL: complete response not applicable" in vegf


def test_the_participant_page_gives_the_rules_in_french(compiled, manager):  # noqa: F811
    in_french(manager, "/participants/LIM-001")
    text = manager.get("/participants/LIM-001").get_data(as_text=True)

    haematological = responses_table(text, "Réponse hématologique")
    assert (
        f"baisse ≥ 50{NBSP}% par rapport à la valeur initiale 12 g/L{NBSP}: -58,33 %"
        in haematological
    )  # the rule keeps its decimal point (biobank/assays/response.py)
    assert "<td>-58,3 %</td>" in haematological  # the column is written in French
    vegf = responses_table(text, "Réponse du VEGF sérique")
    assert re.search(
        rf"baisse ≥ 50{NBSP}% par rapport à la valeur initiale \d+(,\d+)? pg/mL{NBSP}: "
        r"-\d+(,\d+)? %",
        vegf,
    ), vegf
    assert (
        f"déjà sous la LSN de 1000 pg/mL{NBSP}: réponse complète non applicable, catégorie "
        "tirée des seuls pourcentages" in vegf
    )
    for english in ("decrease", "fall from", "baseline", "ULN", "not applicable"):
        assert english not in haematological + vegf


def test_a_note_on_a_result_below_the_lloq_is_in_french(compiled, manager):  # noqa: F811
    in_french(manager, "/participants/LIM-003")
    text = manager.get("/participants/LIM-003").get_data(as_text=True)

    vegf = responses_table(text, "Réponse du VEGF sérique")
    # LIM-003's baseline (10 pg/mL) is below the plate's lowest standard, 15.63 pg/mL.
    assert re.search(
        rf"valeur initiale < LIQ{NBSP}: limite 15,6\d* pg/mL retenue \(règle{NBSP}: limit\)",
        vegf,
    ), vegf
    assert "LLOQ" not in vegf and "used" not in vegf


def export_rules(client) -> dict[tuple[str, str, str], str]:
    answer = client.get("/assays/export.csv")
    assert answer.status_code == 200
    table = csv.DictReader(io.StringIO(answer.get_data(as_text=True)))
    return {
        (row["participant"], row["visit"], row["analyte"]): row["response_rule"]
        for row in table
        if row["response_rule"]
    }


def test_the_study_export_gives_the_rules_in_the_readers_language(
    compiled,  # noqa: F811
    manager,
):
    english = export_rules(manager)
    assert english[("LIM-001", "M2", "M_SPIKE")] == "≥ 50 % fall from baseline 12 g/L: -58.33 %"

    in_french(manager, "/assays")
    french = export_rules(manager)

    assert french.keys() == english.keys()
    assert french[("LIM-001", "M2", "M_SPIKE")] == (
        f"baisse ≥ 50{NBSP}% par rapport à la valeur initiale 12 g/L{NBSP}: -58,33 %"
    )
    assert all(french[key] != english[key] for key in english)


@pytest.fixture
def drawn(monkeypatch):
    """The labels each time-course picture is drawn with."""
    calls = []
    draw = plot.time_course_picture

    def recording(points, **labels):
        calls.append(labels)
        return draw(points, **labels)

    monkeypatch.setattr(plot, "time_course_picture", recording)
    return calls


def test_the_time_course_axis_is_named_in_the_readers_language(
    compiled,  # noqa: F811
    manager,
    drawn,
):
    english = manager.get("/participants/LIM-001/results.png?analyte=VEGF")
    in_french(manager, "/participants/LIM-001")
    french = manager.get("/participants/LIM-001/results.png?analyte=VEGF")

    assert english.data.startswith(b"\x89PNG") and french.data.startswith(b"\x89PNG")
    assert [call["xlabel"] for call in drawn] == ["study day", "jour d’étude"]
    assert [call["ylabel"] for call in drawn] == ["VEGF (pg/mL)"] * 2
    assert english.data != french.data
