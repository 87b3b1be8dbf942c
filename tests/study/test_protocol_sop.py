"""The SOP limits of the protocol file: the optional [sop.<TUBE_TYPE>] tables."""

from __future__ import annotations

import dataclasses

import pytest

from biobank.study.protocol import SopLimits, SopRange, parse_protocol
from tests.study.test_protocol import SHIPPED, dumps, error_for, shipped_document


def with_sop(sop) -> dict:
    document = shipped_document()
    document["sop"] = sop
    return document


def parsed_sop(sop) -> dict[str, SopLimits]:
    return dict(parse_protocol(dumps(with_sop(sop))).sop)


# -- the shipped limits ----------------------------------------------------------------


def test_shipped_serum_clots_30_min_to_2_h_at_room_temperature():
    serum = parse_protocol(SHIPPED).sop["SST"]
    assert serum.draw_to_centrifugation_minutes == SopRange(30, 120)
    assert serum.temperature_before_centrifugation == ("RT",)
    assert serum.centrifugation_temperature_c == (SopRange(15, 25),)


def test_shipped_plasma_is_spun_within_2_h_and_may_be_spun_cold():
    plasma = parse_protocol(SHIPPED).sop["EDTA"]
    assert plasma.draw_to_centrifugation_minutes == SopRange(None, 120)
    assert plasma.temperature_before_centrifugation is None
    assert SopRange(2, 8) in plasma.centrifugation_temperature_c
    assert SopRange(15, 25) in plasma.centrifugation_temperature_c


@pytest.mark.parametrize("tube_type", ["SST", "EDTA"])
def test_shipped_spin_freezing_and_thaw_limits(tube_type):
    limits = parse_protocol(SHIPPED).sop[tube_type]
    assert limits.centrifugation_g == SopRange(1000, 2500)
    assert limits.centrifugation_minutes == SopRange(10, 15)
    assert limits.draw_to_freezing_minutes == SopRange(None, 240)
    assert limits.freeze_thaw_cycles_max == 2


def test_shipped_header_documents_the_sop_section():
    header = "".join(line for line in SHIPPED.decode().splitlines(True) if line.startswith("#"))
    for key in (
        "[sop.",
        "draw_to_centrifugation_minutes",
        "temperature_before_centrifugation",
        "centrifugation_g",
        "centrifugation_minutes",
        "centrifugation_temperature_c",
        "draw_to_freezing_minutes",
        "freeze_thaw_cycles_max",
    ):
        assert key in header, key


def test_a_range_holds_its_bounds():
    span = SopRange(10, 15)
    assert 10 in span and 15 in span and 12.5 in span
    assert 9 not in span and 16 not in span and 15.01 not in span
    assert 10**9 in SopRange(min=30) and -5 in SopRange(max=8)


# -- optional -------------------------------------------------------------------------


def test_without_a_sop_section_there_are_no_limits():
    document = shipped_document()
    del document["sop"]
    assert dict(parse_protocol(dumps(document)).sop) == {}


def test_a_tube_type_left_out_has_no_limits_and_an_empty_table_sets_none():
    sop = parsed_sop({"SST": {}})
    assert "EDTA" not in sop
    assert sop["SST"] == SopLimits("SST")


def test_every_key_is_optional_and_a_range_may_have_one_bound():
    sop = parsed_sop({"EDTA": {"draw_to_freezing_minutes": {"min": 0}}})
    assert sop["EDTA"] == SopLimits("EDTA", draw_to_freezing_minutes=SopRange(0, None))


def test_temperatures_may_have_decimals():
    sop = parsed_sop({"EDTA": {"centrifugation_temperature_c": [{"min": 3.5, "max": 8.5}]}})
    assert sop["EDTA"].centrifugation_temperature_c == (SopRange(3.5, 8.5),)


def test_the_limits_are_read_only_and_the_spec_stays_hashable():
    spec = parse_protocol(SHIPPED)
    with pytest.raises(TypeError):
        spec.sop["SST"] = SopLimits("SST")  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.sop["SST"].freeze_thaw_cycles_max = 9  # type: ignore[misc]
    assert hash(spec) == hash(parse_protocol(SHIPPED))
    assert spec == parse_protocol(SHIPPED)


def test_specs_differing_only_by_their_limits_are_not_equal():
    document = shipped_document()
    document["sop"]["SST"]["freeze_thaw_cycles_max"] = 3
    changed = dataclasses.replace(parse_protocol(dumps(document)), content_hash="")
    assert changed != dataclasses.replace(parse_protocol(SHIPPED), content_hash="")


# -- refused, naming the key ------------------------------------------------------------


def test_the_exact_limits_are_accepted():
    sop = parsed_sop(
        {
            "SST": {
                "draw_to_centrifugation_minutes": {"min": 0, "max": 10080},
                "centrifugation_g": {"min": 1, "max": 100_000},
                "centrifugation_minutes": {"min": 1, "max": 240},
                "centrifugation_temperature_c": [{"min": -20, "max": 45}],
                "freeze_thaw_cycles_max": 0,
            }
        }
    )
    assert sop["SST"].freeze_thaw_cycles_max == 0
    assert sop["SST"].centrifugation_g == SopRange(1, 100_000)


@pytest.mark.parametrize(
    ("sop", "message"),
    [
        (
            {"SST": {"centrifugation_g": {"min": 0}}},
            "sop.SST.centrifugation_g.min: must be a whole number of g from 1 to 100000",
        ),
        (
            {"SST": {"centrifugation_g": {"min": 1000, "max": 100_001}}},
            "sop.SST.centrifugation_g.max: must be a whole number of g from 1 to 100000",
        ),
        (
            {"SST": {"centrifugation_minutes": {"max": 241}}},
            "sop.SST.centrifugation_minutes.max: must be a whole number of minutes from 1 to 240",
        ),
        (
            {"SST": {"draw_to_centrifugation_minutes": {"min": -1}}},
            "sop.SST.draw_to_centrifugation_minutes.min: must be a whole number of minutes "
            "from 0 to 10080",
        ),
        (
            {"EDTA": {"draw_to_freezing_minutes": {"max": 10081}}},
            "sop.EDTA.draw_to_freezing_minutes.max: must be a whole number of minutes "
            "from 0 to 10080",
        ),
        (
            {"SST": {"draw_to_freezing_minutes": {"max": 240.5}}},
            "sop.SST.draw_to_freezing_minutes.max: must be a whole number of minutes "
            "from 0 to 10080",
        ),
        (
            {"SST": {"centrifugation_g": {"max": True}}},
            "sop.SST.centrifugation_g.max: must be a whole number of g from 1 to 100000",
        ),
        (
            {"SST": {"freeze_thaw_cycles_max": 51}},
            "sop.SST.freeze_thaw_cycles_max: must be a whole number of cycles from 0 to 50",
        ),
        (
            {"SST": {"freeze_thaw_cycles_max": -1}},
            "sop.SST.freeze_thaw_cycles_max: must be a whole number of cycles from 0 to 50",
        ),
        (
            {"EDTA": {"centrifugation_temperature_c": [{"min": 15, "max": 25}, {"max": 46}]}},
            "sop.EDTA.centrifugation_temperature_c[1].max: must be a temperature in °C "
            "from -20 to 45",
        ),
        (
            {"EDTA": {"centrifugation_temperature_c": [{"min": float("nan")}]}},
            "sop.EDTA.centrifugation_temperature_c[0].min: must be a temperature in °C "
            "from -20 to 45",
        ),
    ],
)
def test_a_bound_out_of_its_range_is_refused_naming_its_key(sop, message):
    assert error_for(with_sop(sop)) == message


def test_min_above_max_is_refused():
    message = error_for(with_sop({"SST": {"centrifugation_g": {"min": 2501, "max": 2500}}}))
    assert message == "sop.SST.centrifugation_g.min: must not be above max (2501 > 2500)"
    message = error_for(
        with_sop({"EDTA": {"centrifugation_temperature_c": [{"min": 8.5, "max": 8}]}})
    )
    assert message == (
        "sop.EDTA.centrifugation_temperature_c[0].min: must not be above max (8.5 > 8)"
    )


def test_min_equal_to_max_is_one_allowed_value():
    assert parsed_sop({"SST": {"centrifugation_minutes": {"min": 10, "max": 10}}})[
        "SST"
    ].centrifugation_minutes == SopRange(10, 10)


def test_an_unknown_tube_type_is_refused():
    message = error_for(with_sop({"SERUM": {"freeze_thaw_cycles_max": 2}}))
    assert message == 'sop.SERUM: unknown tube type "SERUM" (declared tube types: SST, EDTA)'


@pytest.mark.parametrize(
    ("sop", "message"),
    [
        ({"SST": {"freeze_thaw_max": 2}}, "sop.SST.freeze_thaw_max: unknown key"),
        (
            {"SST": {"centrifugation_g": {"min": 1000, "maximum": 2500}}},
            "sop.SST.centrifugation_g.maximum: unknown key",
        ),
        (
            {"EDTA": {"centrifugation_temperature_c": [{"min": 2, "mx": 8}]}},
            "sop.EDTA.centrifugation_temperature_c[0].mx: unknown key",
        ),
    ],
)
def test_unknown_keys_are_refused(sop, message):
    assert error_for(with_sop(sop)) == message


@pytest.mark.parametrize(
    ("sop", "message"),
    [
        ([], "sop: must be a table"),
        ({"SST": 2}, "sop.SST: must be a table"),
        (
            {"SST": {"centrifugation_g": 2000}},
            "sop.SST.centrifugation_g: must be a table of bounds, e.g. { min = 10, max = 15 }",
        ),
        ({"SST": {"centrifugation_g": {}}}, "sop.SST.centrifugation_g: must give min, max or both"),
        (
            {"SST": {"centrifugation_temperature_c": {"min": 15, "max": 25}}},
            "sop.SST.centrifugation_temperature_c: must be an array of ranges, "
            "e.g. [{ min = 15, max = 25 }, { min = 2, max = 8 }]",
        ),
        (
            {"SST": {"centrifugation_temperature_c": []}},
            "sop.SST.centrifugation_temperature_c: must list at least one range",
        ),
        (
            {"SST": {"centrifugation_temperature_c": [20]}},
            "sop.SST.centrifugation_temperature_c[0]: must be a table of bounds, "
            "e.g. { min = 10, max = 15 }",
        ),
    ],
)
def test_shapes_are_checked(sop, message):
    assert error_for(with_sop(sop)) == message


@pytest.mark.parametrize(
    ("classes", "problem"),
    [
        ("RT", 'must be an array of temperature classes among "RT", "2-10", e.g. ["RT"]'),
        ([], 'must be an array of temperature classes among "RT", "2-10", e.g. ["RT"]'),
        ([4], 'must be an array of temperature classes among "RT", "2-10", e.g. ["RT"]'),
        (["4C"], 'unknown temperature class "4C" (classes: "RT", "2-10")'),
        (["RT", "RT"], 'temperature class "RT" is listed twice'),
    ],
)
def test_temperature_classes_are_checked(classes, problem):
    message = error_for(with_sop({"SST": {"temperature_before_centrifugation": classes}}))
    assert message == f"sop.SST.temperature_before_centrifugation: {problem}"


def test_both_temperature_classes_may_be_allowed():
    sop = parsed_sop({"EDTA": {"temperature_before_centrifugation": ["RT", "2-10"]}})
    assert sop["EDTA"].temperature_before_centrifugation == ("RT", "2-10")
