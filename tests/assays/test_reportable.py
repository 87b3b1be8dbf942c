"""One reportable value per participant × visit × analyte: the rule, the acceptance that
warns and asks (service, API, page), what the pages, the picture, the export and the
responses make of a visit measured twice, the migration of results accepted before, and
two managers accepting two runs of one visit at the same instant."""

from __future__ import annotations

import csv
import html
import io

import openpyxl
import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from biobank.assays import outcomes, plot, reportable, response, services
from biobank.assays.example import make_plate
from biobank.assays.models import AssayRun, Result
from biobank.db import utcnow
from biobank.errors import Conflict
from biobank.extensions import db as _db
from tests import factories
from tests.assays.conftest import sheet
from tests.assays.conftest import upload_plate as upload
from tests.pages import refused
from tests.races import ROUNDS, race

OPTIONS = services.pipeline.Options(read=450, reference=540)
PREVIOUS_REVISION = "d4b2f1a6c8e3"


def plate_run(values, *, dilutions=None, reassay_reason="", name="vegf.xlsx") -> AssayRun:
    """A VEGF plate kept as a preview: ``values`` are barcode → pg/mL in the well."""
    plate = make_plate(values, dilutions=dilutions)
    return services.preview_plate(
        plate.reader, name, plate.plate_map, "VEGF", OPTIONS,
        reassay_reason=reassay_reason, actor=None,
    ).run  # fmt: skip


def accepted(values, **kwargs) -> AssayRun:
    run = plate_run(values, **kwargs)
    services.accept_run(run.code, actor=None)
    _db.session.commit()
    return run


def results_of(db, barcode: str) -> list[Result]:
    db.session.expire_all()
    aliquot = services.samples.find_aliquot(barcode, actor=None)
    query = sa.select(Result).where(Result.aliquot_id == aliquot.id).order_by(Result.id)
    return list(db.session.execute(query).scalars())


def key(participant: str, visit: str) -> str:
    return f"{participant}/{visit}/VEGF/SER"


# --- the rule, alone ---------------------------------------------------------------------

RULE = reportable.DEFAULT_RULE


def candidate(run_id, value, **kwargs) -> reportable.Candidate:
    return reportable.Candidate(run_id, "SER0001", value, **kwargs)


def test_a_dilution_repeat_supersedes_a_value_above_the_range():
    over = candidate(1, None, flag=">ULOQ", limit=1000.0)
    diluted = candidate(2, 3000.0, dilution=4.0)
    outcome = reportable.decide(over, [diluted], RULE)
    assert outcome.keep is diluted and outcome.reason == reportable.DILUTION
    (loss,) = outcome.losses
    assert (loss.loser, loss.winner) == (over, diluted)
    # Read at the same dilution it is not a dilution repeat: in range beats flagged.
    same = candidate(2, 900.0)
    assert reportable.decide(over, [same], RULE).reason == reportable.IN_RANGE


def test_a_requested_re_assay_supersedes_even_a_value_in_range():
    earlier = candidate(1, 820.0)
    asked = candidate(2, 640.0, requested="control failed on A00001")
    outcome = reportable.decide(earlier, [asked], RULE)
    assert outcome.keep is asked and outcome.reason == reportable.REQUESTED
    # Without the request neither value is better: the manager chooses.
    assert reportable.decide(earlier, [candidate(2, 640.0)], RULE).keep is None
    # A laboratory that never wants to be asked keeps the later run.
    latest = reportable.decide(earlier, [candidate(2, 640.0)], (*RULE, reportable.LATEST))
    assert latest.keep.value == 640.0 and latest.reason == reportable.LATEST


def test_a_value_in_range_beats_a_flagged_one_whichever_came_first():
    measured = candidate(1, 420.0)
    below = candidate(2, None, flag="<LLOQ", limit=15.6)
    outcome = reportable.decide(measured, [below], RULE)
    assert outcome.keep is measured and outcome.reason == reportable.IN_RANGE
    assert outcome.losses[0].loser is below and outcome.losses[0].winner is measured
    assert reportable.decide(below, [measured], RULE).keep is measured


def test_two_aliquots_of_one_visit_on_one_plate_are_not_a_requested_re_assay():
    first = candidate(2, 420.0, requested="diluted repeat")
    second = reportable.Candidate(2, "SER0002", 430.0, requested="diluted repeat")
    assert reportable.decide(None, [first, second], RULE).keep is None


def test_an_unknown_step_of_the_rule_is_named():
    assert reportable.rule_of({}) == ("requested", "in_range")
    with pytest.raises(ValueError, match="ASSAY_REPORTABLE_RULE: unknown step 'newest'"):
        reportable.rule_of({"ASSAY_REPORTABLE_RULE": ("requested", "newest")})


# --- accepting a run that measures a visit again: the service ----------------------------


def test_a_second_run_of_an_aliquot_is_asked_about_and_writes_nothing(serum, db):
    baseline = serum[("LIM-001", "BL")]
    first = accepted({baseline: 820.0})
    second = plate_run({baseline: 640.0}, name="again.xlsx")
    db.session.commit()

    with pytest.raises(Conflict) as asked:
        services.accept_run(second.code, actor=None)
    db.session.rollback()

    assert asked.value.code == "run.remeasures" and second.code in str(asked.value.message)
    (item,) = asked.value.fields["remeasured"]
    assert item["key"] == key("LIM-001", "BL")
    assert (item["participant"], item["visit"], item["analyte"]) == ("LIM-001", "BL", "VEGF")
    assert item["earlier"]["run"] == first.code and item["earlier"]["shown"] == "820"
    assert [c["shown"] for c in item["this_run"]] == ["640"]
    assert item["keeps"] is None and item["choose"] and item["reason"] == "you choose"
    assert item["options"] == [first.code, second.code]
    assert len(results_of(db, baseline)) == 1
    assert db.session.get(AssayRun, second.id).status == "preview"


def test_a_visit_the_rule_cannot_decide_needs_the_managers_choice(serum, db):
    baseline = serum[("LIM-001", "BL")]
    first = accepted({baseline: 820.0})
    second = plate_run({baseline: 640.0}, name="again.xlsx")
    db.session.commit()

    with pytest.raises(reportable.ChoiceMissing) as unchosen:
        services.accept_run(second.code, confirm=True, actor=None)
    db.session.rollback()
    assert unchosen.value.status == 422
    assert "LIM-001 · BL · VEGF (SER)" in str(unchosen.value.message)
    assert f"choices.{key('LIM-001', 'BL')}" in unchosen.value.fields
    with pytest.raises(reportable.ChoiceMissing):
        services.accept_run(
            second.code, confirm=True, choices={key("LIM-001", "BL"): "A09999"}, actor=None
        )
    db.session.rollback()

    services.accept_run(
        second.code, confirm=True, choices={key("LIM-001", "BL"): first.code}, actor=None
    )
    db.session.commit()

    kept, superseded = results_of(db, baseline)
    assert (kept.run_id, kept.reportable, kept.superseded_by_run_id) == (first.id, True, None)
    assert (superseded.run_id, superseded.reportable) == (second.id, False)
    assert superseded.superseded_by_run_id == first.id
    assert superseded.superseded_reason == reportable.CHOSEN


def test_a_dilution_repeat_then_a_requested_re_assay_each_supersede(serum, db):
    baseline = serum[("LIM-001", "BL")]
    over = accepted({baseline: 3000.0})
    repeat = plate_run({baseline: 750.0}, dilutions={baseline: 4.0}, name="x4.xlsx")
    db.session.commit()

    with pytest.raises(Conflict) as asked:  # the rule decides, and still asks to confirm
        services.accept_run(repeat.code, actor=None)
    db.session.rollback()
    (item,) = asked.value.fields["remeasured"]
    assert item["earlier"]["shown"] == "> 1000" and item["keeps"] == repeat.code
    assert item["rule"] == "dilution" and not item["choose"]
    with pytest.raises(reportable.ChoiceMissing):  # no choice where the rule decides
        services.accept_run(
            repeat.code, confirm=True, choices={key("LIM-001", "BL"): over.code}, actor=None
        )
    db.session.rollback()
    services.accept_run(repeat.code, confirm=True, actor=None)
    db.session.commit()

    asked_for = plate_run(
        {baseline: 700.0}, dilutions={baseline: 4.0}, reassay_reason="kit control out of range",
        name="requested.xlsx",
    )  # fmt: skip
    services.accept_run(asked_for.code, confirm=True, actor=None)
    db.session.commit()

    first, second, third = results_of(db, baseline)
    assert [r.reportable for r in (first, second, third)] == [False, False, True]
    assert (first.superseded_by_run_id, first.superseded_reason) == (repeat.id, "dilution")
    assert (second.superseded_by_run_id, second.superseded_reason) == (asked_for.id, "requested")
    assert db.session.get(AssayRun, asked_for.id).reassay_reason == "kit control out of range"


def test_a_re_assay_reason_longer_than_allowed_is_refused_naming_the_field(serum, db):
    with pytest.raises(services.Invalid) as refused_reason:
        plate_run({serum[("LIM-001", "BL")]: 500.0}, reassay_reason="x" * 501)
    assert "reassay_reason" in refused_reason.value.fields
    assert db.session.execute(sa.select(sa.func.count(AssayRun.id))).scalar() == 0


# --- the API -----------------------------------------------------------------------------


def api_plate(client, plate, name, **fields):
    form = {
        "reader_file": (io.BytesIO(plate.reader), name),
        "plate_map": (io.BytesIO(plate.plate_map), "map.xlsx"),
        "analyte": "VEGF",
        "read": "450",
        "reference": "540",
        **fields,
    }
    answer = client.post("/api/v1/assay-runs/plates", data=form)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["run"]


def test_the_api_answers_409_with_the_visits_then_422_then_accepts(serum, api_as, db):
    technician, manager = api_as("technician"), api_as("manager")
    baseline, month2 = serum[("LIM-001", "BL")], serum[("LIM-001", "M2")]
    first = api_plate(technician, make_plate({baseline: 820.0, month2: 300.0}), "one.xlsx")
    assert manager.post(f"/api/v1/assay-runs/{first}/accept").status_code == 200
    second = api_plate(
        technician,
        make_plate({baseline: 640.0, month2: 310.0}),
        "two.xlsx",
        reassay_reason="",
    )

    asked = manager.post(f"/api/v1/assay-runs/{second}/accept")
    assert asked.status_code == 409
    error = asked.get_json()["error"]
    assert error["code"] == "run.remeasures"
    listed = {item["key"]: item for item in error["fields"]["remeasured"]}
    assert set(listed) == {key("LIM-001", "BL"), key("LIM-001", "M2")}
    assert listed[key("LIM-001", "BL")]["earlier"]["run"] == first
    assert len(results_of(db, baseline)) == 1

    partly = manager.post(
        f"/api/v1/assay-runs/{second}/accept",
        json={"confirm": True, "choices": {key("LIM-001", "BL"): second}},
    )
    assert partly.status_code == 422
    assert partly.get_json()["error"]["code"] == "run.choice"
    assert "LIM-001 · M2 · VEGF (SER)" in partly.get_json()["error"]["message"]
    bad = manager.post(f"/api/v1/assay-runs/{second}/accept", json={"confirm": "maybe"})
    assert bad.status_code == 400 and "confirm" in bad.get_json()["error"]["fields"]

    done = manager.post(
        f"/api/v1/assay-runs/{second}/accept",
        json={
            "confirm": True,
            "choices": {key("LIM-001", "BL"): second, key("LIM-001", "M2"): first},
        },
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "accepted"

    course = technician.get("/api/v1/participants/LIM-001/results").get_json()
    rows = {(r["visit"], r["run"]): r for r in course["analytes"]["VEGF"]}
    assert len(rows) == 4
    assert rows[("BL", second)]["reportable"] and rows[("BL", second)]["superseded_by"] is None
    assert not rows[("BL", first)]["reportable"]
    assert rows[("BL", first)]["superseded_by"] == second
    assert rows[("BL", first)]["superseded_rule"] == "chosen"
    assert rows[("BL", first)]["superseded_reason"] == "chosen by the manager who accepted the run"
    assert rows[("M2", second)]["superseded_by"] == first and rows[("M2", first)]["reportable"]
    # The response reads the reportable values: 640 at baseline, 300 at month 2.
    (at_m2,) = course["responses"]["vegf"]
    assert at_m2["percent_change"] == pytest.approx(-53.1, abs=0.3)


def test_a_re_assay_reason_is_an_api_field_of_both_imports(serum, api_as, db):
    technician = api_as("technician")
    code = api_plate(
        technician,
        make_plate({serum[("LIM-001", "BL")]: 500.0}),
        "p.xlsx",
        reassay_reason="diluted repeat of A00001",
    )
    rows = [[serum[("LIM-001", "BL")], "M-spike", "12", "g/L", "SPE", "02/03/2026", ""]]
    upload_sheet = {
        "file": (io.BytesIO(sheet(rows)), "m.xlsx"),
        "reassay_reason": "haemolysed first sample",
    }
    answer = technician.post("/api/v1/assay-runs/sheets", data=upload_sheet)
    assert answer.status_code == 201, answer.get_json()
    db.session.expire_all()
    reasons = dict(db.session.execute(sa.select(AssayRun.id, AssayRun.reassay_reason)).all())
    assert reasons == {int(code[1:]): "diluted repeat of A00001", 2: "haemolysed first sample"}
    too_long = technician.post(
        "/api/v1/assay-runs/sheets",
        data={"file": (io.BytesIO(sheet(rows)), "n.xlsx"), "reassay_reason": "x" * 501},
    )
    assert too_long.status_code == 400
    assert "reassay_reason" in too_long.get_json()["error"]["fields"]


# --- the pages ---------------------------------------------------------------------------


@pytest.fixture
def twice(serum, login_as, db):
    """LIM-001's BL and M2 measured by an accepted plate (A00001) and again, in range, by
    a second plate awaiting a decision (A00002)."""
    technician, manager = login_as("technician"), login_as("manager")
    baseline, month2 = serum[("LIM-001", "BL")], serum[("LIM-001", "M2")]
    first = upload(technician, make_plate({baseline: 819.94, month2: 310.0}))
    assert manager.post(f"{first.location}/accept").status_code == 303
    second = upload(technician, make_plate({baseline: 640.0, month2: 300.0}))
    return {"manager": manager, "url": second.location, "baseline": baseline}


def test_the_run_page_lists_what_is_measured_again_and_enter_accepts_nothing(twice, db):
    manager, url = twice["manager"], twice["url"]
    page = html.unescape(manager.get(url).get_data(as_text=True))

    assert "Measured before" in page and "Accept the run and record its results" not in page
    form = page.split('class="confirm-remeasures"', 1)[1].split("</form>", 1)[0]
    # The first submit button, the one Enter presses, sends the choices unconfirmed.
    first_button = form.split("<button", 2)[1]
    assert 'class="visually-hidden"' in first_button and "confirm" not in first_button
    assert '<button type="submit" name="confirm" value="1"' in form
    assert form.count('type="radio"') == 4 and form.count(" required ") == 4
    assert 'name="choices.LIM-001/BL/VEGF/SER" value="A00001"' in form
    assert "Confirm and accept the run" in form

    first_step = manager.post(f"{url}/accept")
    text = refused(manager, first_step)
    assert "Run A00002 measures again 2 visits already measured" in text
    assert len(results_of(db, twice["baseline"])) == 1


def test_a_partial_confirmation_keeps_the_choices_and_writes_nothing(twice, db):
    manager, url = twice["manager"], twice["url"]
    partial = {
        "confirm": "1",  # the confirm button
        "listed": [key("LIM-001", "BL"), key("LIM-001", "M2")],
        "choices.LIM-001/BL/VEGF/SER": "A00002",
    }
    text = refused(manager, manager.post(f"{url}/accept", data=partial))

    assert "Choose the value kept for LIM-001 · M2 · VEGF (SER)" in text
    assert 'name="choices.LIM-001/BL/VEGF/SER" value="A00002" required checked' in text
    assert (  # unticked, and tied to the message asking for a choice
        'name="choices.LIM-001/M2/VEGF/SER" value="A00001" aria-invalid="true" '
        'aria-describedby="choices.LIM-001/M2/VEGF/SER-error-1" required >' in text
    )
    assert len(results_of(db, twice["baseline"])) == 1

    # Enter sends the form by its first button, without the confirmation: the list
    # comes back with the choices made, and nothing is accepted.
    entered = {name: value for name, value in partial.items() if name != "confirm"}
    entered["choices.LIM-001/M2/VEGF/SER"] = "A00001"
    text = refused(manager, manager.post(f"{url}/accept", data=entered))
    assert "Run A00002 measures again 2 visits already measured" in text
    assert 'name="choices.LIM-001/M2/VEGF/SER" value="A00001" required checked' in text
    assert len(results_of(db, twice["baseline"])) == 1

    # A visit measured again that the page did not list is asked about again.
    unseen = {**partial, "listed": [key("LIM-001", "BL")], "choices.LIM-001/M2/VEGF/SER": "A00001"}
    again = refused(manager, manager.post(f"{url}/accept", data=unseen))
    assert "Since the page was shown, another run measured visits of run A00002" in again
    assert len(results_of(db, twice["baseline"])) == 1


def test_the_participant_page_marks_the_superseded_value_and_plots_one_per_visit(
    twice, db, monkeypatch
):
    manager, url = twice["manager"], twice["url"]
    confirmed = {
        "confirm": "1",
        "listed": [key("LIM-001", "BL"), key("LIM-001", "M2")],
        "choices.LIM-001/BL/VEGF/SER": "A00002",
        "choices.LIM-001/M2/VEGF/SER": "A00001",
    }
    answer = manager.post(f"{url}/accept", data=confirmed)
    assert answer.status_code == 303 and answer.location.endswith(url)
    assert "accepted" in manager.get(url).get_data(as_text=True)

    page = html.unescape(manager.get("/participants/LIM-001").get_data(as_text=True))
    vegf = page.split("<h3>VEGF</h3>", 1)[1].split("</table>", 1)[0]
    assert '<a href="/assays/runs/A00001">A00001</a>' in vegf
    assert '<a href="/assays/runs/A00002">A00002</a>' in vegf
    assert vegf.count('data-reportable="no"') == 2
    assert "superseded by A00002 — chosen by the manager who accepted the run" in vegf
    assert "superseded by A00001 — chosen by the manager who accepted the run" in vegf
    assert "<td><s>819.9</s></td>" in vegf  # four significant digits

    drawn = []
    monkeypatch.setattr(
        plot, "time_course_picture", lambda points, **kw: drawn.append(points) or b"\x89PNG"
    )
    manager.get("/participants/LIM-001/results.png?analyte=VEGF")
    ((baseline, month2),) = drawn
    assert (baseline.label, baseline.value) == ("BL", pytest.approx(640.0, rel=0.01))
    assert (month2.label, month2.value) == ("M2", pytest.approx(310.0, rel=0.01))


def test_the_participant_page_writes_values_and_changes_in_french(measured, serum, login_as):
    rows = [[serum[("LIM-002", "BL")], "M-spike", "1,23456", "g/dL", "SPE", "02/03/2026", ""]]
    services.accept_run(
        services.preview_results(sheet(rows), "m.xlsx", actor=None).run.code, actor=None
    )
    manager = login_as("manager")
    assert manager.post("/language", data={"lang": "fr", "next": "/"}).status_code == 303

    page = html.unescape(manager.get("/participants/LIM-002").get_data(as_text=True))
    m_spike = page.split("<h3>M_SPIKE</h3>", 1)[1].split("</table>", 1)[0]
    assert "<td>12,3</td>" in m_spike  # 12.3456 g/L to the M-spike's three digits
    page = html.unescape(manager.get("/participants/LIM-001").get_data(as_text=True))
    responses = page.split('class="data responses"', 1)[1]
    assert "<td>-66,7 %</td>" in responses and "<td>-58,3 %</td>" in responses


def test_a_re_assay_reason_is_a_field_of_the_import_forms(serum, login_as, db):
    technician = login_as("technician")
    page = technician.get("/assays").get_data(as_text=True)
    assert page.count('name="reassay_reason"') == 2
    answer = upload(
        technician,
        make_plate({serum[("LIM-001", "BL")]: 500.0}),
        reassay_reason="diluted repeat",
    )
    assert answer.status_code == 303
    rows = [[serum[("LIM-001", "BL")], "M-spike", "12", "g/L", "SPE", "02/03/2026", ""]]
    sent = technician.post(
        "/assays/sheets",
        data={
            "result_file": (io.BytesIO(sheet(rows)), "m.xlsx"),
            "reassay_reason": "haemolysed",
        },
        content_type="multipart/form-data",
    )
    assert sent.status_code == 303
    db.session.expire_all()
    reasons = db.session.execute(sa.select(AssayRun.reassay_reason).order_by(AssayRun.id))
    assert list(reasons.scalars()) == ["diluted repeat", "haemolysed"]


def test_the_command_line_asks_to_confirm_and_takes_choices(app, serum, db, tmp_path):
    baseline = serum[("LIM-001", "BL")]
    first = accepted({baseline: 820.0})
    plate = make_plate({baseline: 640.0})
    reader, plate_map = tmp_path / "reader.xlsx", tmp_path / "map.xlsx"
    reader.write_bytes(plate.reader)
    plate_map.write_bytes(plate.plate_map)
    command = [
        "assay", "import-plate", str(reader), "--plate-map", str(plate_map),
        "--analyte", "VEGF", "--read", "450", "--reference", "540", "--accept",
        "--reassay-reason", "",
    ]  # fmt: skip
    runner = app.test_cli_runner()

    asked = runner.invoke(args=command)
    assert asked.exit_code == 1 and "measures again 1 visit" in asked.output
    assert f"LIM-001/BL/VEGF/SER: {first.code} 820 -> 640; keeps choose" in asked.output
    unchosen = runner.invoke(args=[*command, "--confirm"])
    assert unchosen.exit_code == 1 and "Choose the value kept" in unchosen.output
    chosen = runner.invoke(
        args=[*command, "--confirm", "--choose", f"{key('LIM-001', 'BL')}=A00001"]
    )
    assert chosen.exit_code == 0, chosen.output
    assert [r.reportable for r in results_of(db, baseline)] == [True, False]


# --- the export and the responses --------------------------------------------------------


def test_the_export_writes_the_reportable_value_and_lists_every_measurement(serum, db):
    baseline = serum[("LIM-001", "BL")]
    over = accepted({baseline: 3000.0, serum[("LIM-001", "M2")]: 300.0})
    repeat = plate_run({baseline: 620.3}, dilutions={baseline: 4.0}, name="x4.xlsx")
    services.accept_run(repeat.code, confirm=True, actor=None)
    rows = [[baseline, "M-spike", "1,2345", "g/dL", "SPE", "02/03/2026", ""]]
    services.accept_run(
        services.preview_results(sheet(rows), "m.xlsx", actor=None).run.code, actor=None
    )
    db.session.commit()
    criteria = response.load_criteria()

    table = list(csv.DictReader(io.StringIO(outcomes.export_csv(criteria).decode())))
    vegf = [r for r in table if r["participant"] == "LIM-001" and r["analyte"] == "VEGF"]
    assert [(r["visit"], r["run"], r["flag"]) for r in vegf] == [
        ("BL", repeat.code, ""),
        ("M2", over.code, ""),
    ]
    value = float(vegf[0]["value"])
    assert value == pytest.approx(2481.2, rel=0.01) and value == float(f"{value:.4g}")
    (m_spike,) = [r for r in table if r["analyte"] == "M_SPIKE"]
    assert m_spike["value"] == "12.3"  # three significant digits

    book = openpyxl.load_workbook(io.BytesIO(outcomes.export_xlsx(criteria, created=utcnow())))
    assert book.sheetnames == ["Results", "All measurements", "About"]
    results = list(book["Results"].values)
    assert len(results) == 1 + 3
    every = list(book["All measurements"].values)
    header = every[0]
    measurements = [dict(zip(header, row, strict=True)) for row in every[1:]]
    at_baseline = [m for m in measurements if m["visit"] == "BL" and m["analyte"] == "VEGF"]
    assert [(m["run"], m["reportable"]) for m in at_baseline] == [
        (over.code, "no"),
        (repeat.code, "yes"),
    ]
    assert at_baseline[0]["flag"] == ">ULOQ" and at_baseline[0]["limit"] == 1000
    assert at_baseline[0]["superseded_by"] == repeat.code
    assert at_baseline[0]["superseded_reason"] == "diluted repeat of a value above the range"
    assert at_baseline[1]["superseded_by"] is None
    assert isinstance(at_baseline[1]["value"], int | float)  # a number, not a text
    assert at_baseline[1]["value"] == float(f"{at_baseline[1]['value']:.4g}")


def test_the_responses_use_the_requested_re_assay(measured, serum, db):
    before = outcomes.responses_of(
        outcomes.time_course("LIM-001", actor=None), response.load_criteria()
    )
    assert before.vegf[0].percent_change == pytest.approx(-66.7, abs=0.3)
    baseline = serum[("LIM-001", "BL")]
    again = plate_run({baseline: 600.0}, reassay_reason="baseline tube thawed twice")
    services.accept_run(again.code, confirm=True, actor=None)
    db.session.commit()

    course = outcomes.time_course("LIM-001", actor=None)
    assert [(r.visit, r.reportable) for r in course["VEGF"]] == [
        ("BL", False), ("BL", True), ("M2", True),
    ]  # fmt: skip
    after = outcomes.responses_of(course, response.load_criteria())
    (at_m2,) = after.vegf
    assert at_m2.percent_change == pytest.approx(-50.0, abs=0.5)


# --- results accepted before the rule --------------------------------------------------


def test_the_migration_settles_results_accepted_before(app, serum, db):
    baseline, month2 = serum[("LIM-001", "BL")], serum[("LIM-001", "M2")]
    over = accepted({baseline: 3000.0, month2: 300.0})
    repeat = plate_run({baseline: 750.0, month2: 310.0}, dilutions={baseline: 4.0}, name="b.xlsx")
    # The manager kept the first M2: before the rule the later one was used.
    services.accept_run(
        repeat.code, confirm=True, choices={key("LIM-001", "M2"): over.code}, actor=None
    )
    db.session.commit()
    over_id, repeat_id = over.id, repeat.id
    db.session.remove()

    downgrade(revision=PREVIOUS_REVISION)
    upgrade()

    settled = {
        (r.run_id, r.aliquot.barcode): r for r in db.session.execute(sa.select(Result)).scalars()
    }
    assert settled[(repeat_id, baseline)].reportable
    old = settled[(over_id, baseline)]
    assert (old.reportable, old.superseded_by_run_id, old.superseded_reason) == (
        False, repeat_id, "dilution",
    )  # fmt: skip
    assert settled[(repeat_id, month2)].reportable
    assert settled[(over_id, month2)].superseded_reason == "latest"
    assert settled[(over_id, month2)].superseded_by_run_id == repeat_id


# --- two managers at once ----------------------------------------------------------------


@pytest.mark.slow
def test_two_runs_of_one_visit_accepted_at_once_leave_one_reportable_value(app, sites, db):
    app.config["ASSAY_REPORTABLE_RULE"] = ("requested", "in_range", "latest")
    for round_ in range(ROUNDS):
        code = f"LIM-{round_ + 301:03d}"
        factories.participant("LIM", code=code)
        serum = [a.barcode for a in factories.visit(code, "BL").aliquots if a.sample_type == "SER"]
        runs = [
            plate_run({serum[0]: 400.0 + round_}, name=f"a{round_}.xlsx").code,
            plate_run({serum[1]: 500.0 + round_}, name=f"b{round_}.xlsx").code,
        ]

        def accept(n, runs=runs):
            services.accept_run(runs[n], confirm=True, actor=None)

        outcome = race(app, accept, threads=2)

        assert outcome == {"ok": 2}, outcome
        db.session.expire_all()
        found = _results(serum[0]) + _results(serum[1])
        assert len(found) == 2
        (winner,) = [r for r in found if r.reportable]
        (loser,) = [r for r in found if not r.reportable]
        assert loser.superseded_by_run_id == winner.run_id
        assert loser.superseded_reason == reportable.LATEST


def test_two_fresh_runs_of_one_visit_at_once_ask_the_second_to_confirm(app, sites, db):
    for round_ in range(3):
        code = f"LIM-{round_ + 401:03d}"
        factories.participant("LIM", code=code)
        serum = [a.barcode for a in factories.visit(code, "BL").aliquots if a.sample_type == "SER"]
        runs = [
            plate_run({serum[0]: 400.0 + round_}, name=f"c{round_}.xlsx").code,
            plate_run({serum[0]: 410.0 + round_}, name=f"d{round_}.xlsx").code,
        ]

        def accept(n, runs=runs):
            services.accept_run(runs[n], actor=None)

        assert race(app, accept, threads=2) == {"ok": 1, "Conflict": 1}
        db.session.expire_all()
        assert [r.reportable for r in _results(serum[0])] == [True]


def _results(barcode) -> list[Result]:
    aliquot = services.samples.find_aliquot(barcode, actor=None)
    return list(
        _db.session.execute(sa.select(Result).where(Result.aliquot_id == aliquot.id)).scalars()
    )
