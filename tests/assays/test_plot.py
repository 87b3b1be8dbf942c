"""biobank.assays.plot: the standard-curve picture and a participant's time course."""

from __future__ import annotations

import struct
import threading

import pytest

from biobank.assays import pictures
from biobank.assays.curvefit import (
    Fit,
    check_standards,
    fit_curve,
    interpolate_samples,
    run_qc,
)
from biobank.assays.plot import Point, curve_picture, time_course_picture

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

FIT = Fit("4PL", {"a": 0.05, "b": 1.2, "c": 400.0, "d": 3.2}, "1/y2", 0.999)
LEVELS = (0.0, 15.6, 31.3, 62.5, 125.0, 250.0, 500.0, 1000.0)


def run(fit=FIT):
    standards = [
        (f"S{i}", level, [fit.predict(level) * 0.99, fit.predict(level) * 1.01])
        for i, level in enumerate(LEVELS)
    ]
    standards[3] = ("S3", 62.5, [fit.predict(90.0)] * 2)  # recovers at 144 %: fails
    checks = check_standards(fit, standards)
    qc = run_qc(fit, checks)
    samples = [
        ("in range", ("A1", "A2"), [fit.predict(200.0)] * 2, 2.0),
        ("low", ("B1", "B2"), [fit.predict(5.0)] * 2, 1.0),
        ("high", ("C1", "C2"), [fit.predict(3000.0)] * 2, 10.0),
        ("beyond d", ("D1",), [3.5], 1.0),
        ("beyond a", ("E1",), [0.01], 1.0),
        ("noisy", ("F1", "F2"), [1.0, 1.6], 1.0),
        ("empty", (), [], 1.0),
    ]
    results = interpolate_samples(fit, samples, lloq=qc.lloq, uloq=qc.uloq)
    assert {r.flag for r in results} == {None, "<LLOQ", ">ULOQ"}
    assert any(not c.passed for c in checks)
    return checks, results


def png_size(data: bytes) -> tuple[int, int]:
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_png_has_the_signature_and_the_size_at_110_dpi():
    checks, results = run()
    data = curve_picture(FIT, checks, results, unit="pg/mL", title="VEGF plate 1")
    assert data.startswith(PNG_SIGNATURE)
    assert png_size(data) == (770, 528)  # 7 × 4.8 in at 110 dpi


def test_svg_is_reproducible_and_carries_the_title_and_unit():
    checks, results = run()
    first = curve_picture(FIT, checks, results, unit="pg/mL", title="VEGF plate 1", fmt="svg")
    second = curve_picture(FIT, checks, results, unit="pg/mL", title="VEGF plate 1", fmt="svg")
    assert first == second
    assert first.lstrip().startswith(b"<?xml")
    assert b"<svg" in first
    assert b"VEGF plate 1" in first
    assert b"Concentration (pg/mL)" in first
    assert b"<dc:date>" not in first  # no timestamp


def test_svg_escapes_the_title():
    checks, results = run()
    data = curve_picture(FIT, checks, results, unit="pg/mL", title="Serum <A&B>", fmt="svg")
    assert b"Serum &lt;A&amp;B&gt;" in data


def test_pictures_from_threads_are_identical():
    checks, results = run()
    outputs: list[bytes] = []

    def draw():
        outputs.append(curve_picture(FIT, checks, results, unit="pg/mL", fmt="svg"))

    threads = [threading.Thread(target=draw) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outputs) == 3 and len(set(outputs)) == 1


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_edge_cases_do_not_raise(fmt):
    """Flagged samples only, no zero standard, a 5PL, no samples, no title, no unit."""
    x = [15.6, 31.3, 62.5, 125.0, 250.0, 500.0, 1000.0] * 2
    five = Fit("5PL", {"a": 0.05, "b": 1.6, "c": 900.0, "d": 3.0, "g": 0.45}, "none", 1.0)
    fit = fit_curve(x, five.predict(x).tolist(), model="5PL")
    checks = check_standards(fit, [(f"S{i}", c, [fit.predict(c)]) for i, c in enumerate(x[:7])])
    flagged = interpolate_samples(
        fit,
        [("low", ("A1",), [0.02], 4.0), ("high", ("B1",), [2.99], 4.0)],
        lloq=15.6,
        uloq=1000.0,
    )
    assert [r.flag for r in flagged] == ["<LLOQ", ">ULOQ"]
    assert curve_picture(fit, checks, flagged, unit="pg/mL", fmt=fmt)
    assert curve_picture(fit, checks, [], unit="", fmt=fmt)
    assert curve_picture(fit, [], [], unit="ng/mL", fmt=fmt)


def test_nothing_passing_draws_without_limits():
    checks, results = run()
    failed = [c.__class__(**{**c.__dict__, "passed": False}) for c in checks]
    assert curve_picture(FIT, failed, results, unit="pg/mL").startswith(PNG_SIGNATURE)


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown picture format"):
        curve_picture(FIT, [], [], unit="pg/mL", fmt="jpeg")


COURSE = [
    Point(0, 2400.0, "BL", False),
    Point(60, 900.0, "M2", False),
    Point(120, 15.6, "M4", True),
]


def test_the_time_course_is_drawn_with_the_axis_labels_it_is_given():
    svg = time_course_picture(
        COURSE, title="LIM-001 · VEGF", ylabel="VEGF (pg/mL)", xlabel="jour d’étude", fmt="svg"
    )

    assert "jour d’étude".encode() in svg and b"VEGF (pg/mL)" in svg
    assert b"study day" not in svg
    assert svg == time_course_picture(
        COURSE, title="LIM-001 · VEGF", ylabel="VEGF (pg/mL)", xlabel="jour d’étude", fmt="svg"
    )
    png = time_course_picture(COURSE, title="t", ylabel="VEGF (pg/mL)", xlabel="study day")
    assert png.startswith(PNG_SIGNATURE)


def test_a_ratio_is_labelled_without_an_empty_unit():
    ylabel = pictures.with_unit("FLC_RATIO", "")
    svg = time_course_picture(COURSE, title="t", ylabel=ylabel, xlabel="study day", fmt="svg")

    assert ylabel == "FLC_RATIO" and pictures.with_unit("VEGF", "pg/mL") == "VEGF (pg/mL)"
    assert b"FLC_RATIO" in svg and b"()" not in svg
