import copy
import dataclasses
import datetime
import hashlib
import json
import math
import pickle
import re
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biobank.study.protocol import (
    ArmSpec,
    ProtocolError,
    ProtocolSpec,
    SamplePlanSpec,
    TubeTypeSpec,
    VisitSpec,
    default_protocol_path,
    load_protocol_file,
    parse_protocol,
)

SHIPPED = default_protocol_path().read_bytes()


# -- a minimal TOML writer, so tests can edit the document as data -------------


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(type(value))


def dumps(document: dict) -> str:
    return "".join(
        f"{json.dumps(key, ensure_ascii=False)} = {toml_value(value)}\n"
        for key, value in document.items()
    )


def shipped_document() -> dict:
    return tomllib.loads(SHIPPED.decode())


def error_for(document: dict) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_protocol(dumps(document))
    return str(info.value)


def without_hash(spec: ProtocolSpec) -> ProtocolSpec:
    return dataclasses.replace(spec, content_hash="")


# -- the shipped protocol ------------------------------------------------------


def test_default_path_is_the_shipped_file():
    path = default_protocol_path()
    assert path.is_absolute()
    assert path.name == "poems-lendex.toml"
    assert path.is_file()


def test_shipped_study():
    spec = load_protocol_file(default_protocol_path())
    assert spec.study_code == "POEMS-LENDEX"
    assert spec.title == (
        "Phase II trial with lenalidomide-dexamethasone combination "
        "in the treatment of POEMS syndrome"
    )
    assert spec.sponsor == "University Hospital, Limoges"
    assert spec.version == "1.0"
    assert spec.content_hash == hashlib.sha256(SHIPPED).hexdigest()


def test_shipped_tube_types_and_arms():
    spec = parse_protocol(SHIPPED)
    assert spec.tube_types == (
        TubeTypeSpec("SST", "Serum separator tube with clot activator", "SST", "SER"),
        TubeTypeSpec("EDTA", "K2/K3-EDTA plasma tube", "PED", "PL1"),
    )
    assert [arm.code for arm in spec.arms] == ["G1", "G2"]
    assert [arm.name for arm in spec.arms] == ["Group 1", "Group 2"]
    assert "2 cycles" in spec.arm("G1").description
    assert "9 cycles" in spec.arm("G2").description
    assert "maintenance" in spec.arm("G2").description


def test_shipped_schedule():
    spec = parse_protocol(SHIPPED)
    schedule = [
        (v.code, v.arms, v.nominal_day, v.window_before_days, v.window_after_days, v.order)
        for v in spec.visits
    ]
    assert schedule == [
        ("BL", ("G1", "G2"), 0, 28, 0, 0),
        ("M2", ("G1", "G2"), 56, 7, 7, 1),
        ("M4", ("G2",), 112, 14, 14, 2),
        ("M6", ("G2",), 168, 14, 14, 3),
        ("EOI", ("G2",), 252, 14, 14, 4),
        ("EOM", ("G2",), 617, 30, 30, 5),
    ]
    for visit in spec.visits:
        assert visit.name
        assert visit.samples == (
            SamplePlanSpec("SST", 5, 500),
            SamplePlanSpec("EDTA", 5, 500),
        )


def test_shipped_schedule_follows_28_day_cycles():
    spec = parse_protocol(SHIPPED)
    assert spec.visit("M2").nominal_day == 2 * 28
    assert spec.visit("EOI").nominal_day == 9 * 28
    assert spec.visit("EOM").nominal_day == 9 * 28 + 365


def test_lookups():
    spec = parse_protocol(SHIPPED)
    assert [v.code for v in spec.visits_for_arm("G1")] == ["BL", "M2"]
    assert [v.code for v in spec.visits_for_arm("G2")] == ["BL", "M2", "M4", "M6", "EOI", "EOM"]
    assert spec.tube_type("EDTA").container == "PED"
    assert spec.visit("BL").earliest_day == -28
    assert spec.visit("BL").latest_day == 0
    assert spec.visit("EOM").latest_day == 647
    for lookup in (spec.visit, spec.arm, spec.tube_type):
        with pytest.raises(KeyError):
            lookup("NOPE")


def test_specs_are_frozen_and_hashable():
    spec = parse_protocol(SHIPPED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.title = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.visits[0].nominal_day = 3  # type: ignore[misc]
    assert isinstance(spec.visits, tuple)
    assert all(isinstance(v, VisitSpec) for v in spec.visits)
    assert all(isinstance(a, ArmSpec) for a in spec.arms)
    assert hash(spec) == hash(parse_protocol(SHIPPED))


def test_shipped_header_documents_every_key():
    header = "".join(
        line for line in SHIPPED.decode().splitlines(keepends=True) if line.startswith("#")
    )
    for key in (
        "[study]",
        "[tube_types.",
        "[[arms]]",
        "[[visits]]",
        "container",
        "sample_type",
        "description",
        "nominal_day",
        "window_before_days",
        "window_after_days",
        "tube_type",
        "aliquots",
        "volume_ul",
    ):
        assert key in header, key


# -- content hash --------------------------------------------------------------


def test_same_bytes_same_hash():
    assert parse_protocol(SHIPPED).content_hash == parse_protocol(bytes(SHIPPED)).content_hash


def test_str_and_bytes_agree():
    assert parse_protocol(SHIPPED.decode()) == parse_protocol(SHIPPED)


def test_one_changed_byte_changes_the_hash():
    # a byte inside a comment: same protocol, new version
    position = SHIPPED.index(b"# Sampling") + 2
    changed = SHIPPED[:position] + b"s" + SHIPPED[position + 1 :]
    assert changed != SHIPPED and len(changed) == len(SHIPPED)
    before, after = parse_protocol(SHIPPED), parse_protocol(changed)
    assert after.content_hash != before.content_hash
    assert after.content_hash == hashlib.sha256(changed).hexdigest()
    assert without_hash(after) == without_hash(before)


def test_byte_order_mark_is_accepted_and_hashed():
    with_bom = b"\xef\xbb\xbf" + SHIPPED
    spec = parse_protocol(with_bom)
    assert without_hash(spec) == without_hash(parse_protocol(SHIPPED))
    assert spec.content_hash == hashlib.sha256(with_bom).hexdigest()


def test_writer_round_trip():
    # guards the tests below: the writer must not change the meaning
    rewritten = parse_protocol(dumps(shipped_document()))
    assert without_hash(rewritten) == without_hash(parse_protocol(SHIPPED))


def test_load_protocol_file(tmp_path):
    path = tmp_path / "p.toml"
    path.write_bytes(SHIPPED)
    assert load_protocol_file(path) == parse_protocol(SHIPPED)
    assert load_protocol_file(str(path)) == parse_protocol(SHIPPED)
    path.write_bytes(SHIPPED.replace(b'code = "G2"', b'code = "G1"', 1))
    with pytest.raises(ProtocolError, match=r'^arms\[1\]\.code: duplicate arm code "G1"'):
        load_protocol_file(path)
    with pytest.raises(FileNotFoundError):
        load_protocol_file(tmp_path / "missing.toml")


# -- validation messages -------------------------------------------------------


def edit(mutate):
    document = shipped_document()
    mutate(document)
    return error_for(document)


@pytest.mark.parametrize("volume", [0, -500, 10_001, 1.5, 500.0, "500", True, [500]])
def test_volume(volume):
    def mutate(d):
        d["visits"][2]["samples"][0]["volume_ul"] = volume

    assert edit(mutate).startswith(
        "visits[2].samples[0].volume_ul: must be a positive whole number of microlitres"
    )


def test_volume_bounds_are_inclusive():
    document = shipped_document()
    document["visits"][2]["samples"][0]["volume_ul"] = 10_000
    document["visits"][2]["samples"][1]["volume_ul"] = 1
    spec = parse_protocol(dumps(document))
    assert [s.volume_ul for s in spec.visits[2].samples] == [10_000, 1]


@pytest.mark.parametrize("aliquots", [0, -1, 51, 2.0, "5", True, False])
def test_aliquots(aliquots):
    def mutate(d):
        d["visits"][0]["samples"][1]["aliquots"] = aliquots

    assert edit(mutate).startswith("visits[0].samples[1].aliquots: must be a whole number")


def test_aliquot_bounds_are_inclusive():
    document = shipped_document()
    document["visits"][0]["samples"][0]["aliquots"] = 50
    document["visits"][0]["samples"][1]["aliquots"] = 1
    spec = parse_protocol(dumps(document))
    assert [s.aliquots for s in spec.visits[0].samples] == [50, 1]


@pytest.mark.parametrize(
    "line", ["nominal_day = 56", "window_before_days = 7", "window_after_days = 7"]
)
def test_boolean_is_not_a_number(line):
    # the first occurrence of each line is in visit M2, visits[1]
    key = line.split(" = ")[0]
    text = SHIPPED.decode().replace(line + "\n", f"{key} = true\n", 1)
    with pytest.raises(ProtocolError, match=rf"^visits\[1\]\.{key}: must be a whole number"):
        parse_protocol(text)


def test_boolean_is_not_a_count_in_the_text():
    text = SHIPPED.decode().replace("aliquots = 5", "aliquots = true", 1)
    with pytest.raises(ProtocolError, match=r"^visits\[0\]\.samples\[0\]\.aliquots: "):
        parse_protocol(text)


def test_unknown_arm():
    def mutate(d):
        d["visits"][1]["arms"] = ["G1", "G3"]

    assert edit(mutate) == 'visits[1].arms: unknown arm "G3" (declared arms: G1, G2)'


def test_arm_listed_twice():
    def mutate(d):
        d["visits"][1]["arms"] = ["G1", "G1"]

    assert edit(mutate).startswith("visits[1].arms: ")


@pytest.mark.parametrize("arms", [[], "G1", [1], {"G1": True}])
def test_visit_arms_shape(arms):
    def mutate(d):
        d["visits"][4]["arms"] = arms

    assert edit(mutate).startswith("visits[4].arms: ")


def test_visit_with_no_arm():
    def mutate(d):
        d["visits"][4]["arms"] = []

    assert edit(mutate) == "visits[4].arms: must list at least one arm"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("study", "code"),
        ("study", "title"),
        ("study", "sponsor"),
        ("study", "version"),
    ],
)
def test_missing_study_key(section, key):
    def mutate(d):
        del d[section][key]

    assert edit(mutate) == f"{section}.{key}: missing"


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("arms", 1), "code"),
        (("arms", 0), "name"),
        (("visits", 3), "code"),
        (("visits", 3), "nominal_day"),
        (("visits", 3), "window_before_days"),
        (("visits", 3), "samples"),
        (("visits", 5, "samples", 1), "volume_ul"),
        (("tube_types", "EDTA"), "sample_type"),
    ],
)
def test_missing_nested_key(path, key):
    def mutate(d):
        node = d
        for step in path:
            node = node[step]
        del node[key]

    shown = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path).lstrip(".")
    assert edit(mutate) == f"{shown}.{key}: missing"


def test_description_is_optional():
    document = shipped_document()
    del document["arms"][0]["description"]
    assert parse_protocol(dumps(document)).arms[0].description == ""


@pytest.mark.parametrize("section", ["study", "tube_types", "arms", "visits"])
def test_missing_section(section):
    def mutate(d):
        del d[section]

    assert edit(mutate) == f"{section}: missing"


def test_unknown_keys():
    def typo(d):
        d["visits"][0]["windw_after_days"] = d["visits"][0].pop("window_after_days")

    assert edit(typo) == "visits[0].windw_after_days: unknown key"

    def extra(d):
        d["visits"][2]["samples"][1]["colour"] = "lavender"

    assert edit(extra) == "visits[2].samples[1].colour: unknown key"

    def top(d):
        d["visit"] = []

    assert edit(top) == "visit: unknown key"

    def study(d):
        d["study"]["phase"] = "II"

    assert edit(study) == "study.phase: unknown key"

    def tube(d):
        d["tube_types"]["SST"]["colour"] = "gold"

    assert edit(tube) == "tube_types.SST.colour: unknown key"

    def quoted(d):
        d["arms"][0]["arm name"] = "x"

    assert edit(quoted) == 'arms[0]."arm name": unknown key'


def test_toml_syntax_error_has_line_and_column():
    text = SHIPPED.decode().replace('arms = ["G1", "G2"]', 'arms = ["G1", "G2"', 1)
    with pytest.raises(ProtocolError) as info:
        parse_protocol(text)
    message = str(info.value)
    assert message.startswith("TOML syntax error: ")
    line = text[: text.index('arms = ["G1", "G2"\n')].count("\n") + 1
    assert re.search(r"line (\d+), column \d+", message)
    assert int(re.search(r"line (\d+)", message).group(1)) >= line


def test_duplicate_toml_key_is_a_syntax_error():
    text = SHIPPED.decode().replace('version = "1.0"', 'version = "1.0"\nversion = "1.1"', 1)
    with pytest.raises(ProtocolError, match=r"^TOML syntax error: .*line \d+, column \d+"):
        parse_protocol(text)


def test_invalid_utf8():
    with pytest.raises(ProtocolError, match=r"not valid UTF-8"):
        parse_protocol(SHIPPED.replace(b"Baseline", b"Base\xfftline", 1))


def test_lone_surrogate_in_str():
    with pytest.raises(ProtocolError):
        parse_protocol(SHIPPED.decode().replace("Baseline", "Base\ud800line", 1))


def test_duplicate_visit_code():
    def mutate(d):
        d["visits"][3]["code"] = "M2"

    assert edit(mutate) == 'visits[3].code: duplicate visit code "M2" (also visits[1])'


def test_duplicate_arm_code():
    def mutate(d):
        d["arms"][1]["code"] = "G1"

    assert edit(mutate) == 'arms[1].code: duplicate arm code "G1" (also arms[0])'


def test_duplicate_tube_type_in_one_visit():
    def mutate(d):
        d["visits"][0]["samples"][1]["tube_type"] = "SST"

    assert edit(mutate).startswith('visits[0].samples[1].tube_type: tube type "SST" is already')


def test_unknown_tube_type():
    def mutate(d):
        d["visits"][5]["samples"][0]["tube_type"] = "CIT"

    assert edit(mutate) == (
        'visits[5].samples[0].tube_type: unknown tube type "CIT" (declared tube types: SST, EDTA)'
    )


def test_visit_without_samples():
    def mutate(d):
        d["visits"][1]["samples"] = []

    assert edit(mutate) == "visits[1].samples: must list at least one tube"


BAD_CODES = ["", "g1", "G 1", "-G1", "G1.", "É1", "A" * 17, 1, True, ["G1"]]


@pytest.mark.parametrize("code", BAD_CODES)
def test_codes_must_be_short_uppercase_identifiers(code):
    def study(d):
        d["study"]["code"] = code

    def arm(d):
        d["arms"][0]["code"] = code

    def visit(d):
        d["visits"][2]["code"] = code

    assert edit(study).startswith("study.code: must be a short uppercase code")
    assert edit(arm).startswith("arms[0].code: must be a short uppercase code")
    assert edit(visit).startswith("visits[2].code: must be a short uppercase code")


def test_longest_code_is_accepted():
    document = shipped_document()
    document["study"]["code"] = "A" * 16
    document["visits"][0]["code"] = "V_1-2"
    spec = parse_protocol(dumps(document))
    assert spec.study_code == "A" * 16
    assert spec.visits[0].code == "V_1-2"


def test_tube_type_key_must_be_a_code():
    def mutate(d):
        d["tube_types"]["serum tube"] = d["tube_types"].pop("SST")

    assert edit(mutate).startswith('tube_types."serum tube": must be a short uppercase code')


@pytest.mark.parametrize(
    ("key", "value"),
    [("container", "ED"), ("container", "edt"), ("sample_type", 1), ("sample_type", "SERUM")],
)
def test_sprec_codes(key, value):
    def mutate(d):
        d["tube_types"]["EDTA"][key] = value

    assert edit(mutate).startswith(f"tube_types.EDTA.{key}: must be a three-character SPREC")


@pytest.mark.parametrize("key", ["window_before_days", "window_after_days"])
def test_negative_windows(key):
    def mutate(d):
        d["visits"][1][key] = -1

    assert edit(mutate).startswith(f"visits[1].{key}: must be a whole number of days")


@pytest.mark.parametrize("day", [-1, 36_501, 5.5, "56", datetime.date(2024, 1, 1)])
def test_nominal_day(day):
    def mutate(d):
        d["visits"][0]["nominal_day"] = day

    assert edit(mutate).startswith("visits[0].nominal_day: must be a whole number of days")


def test_visits_must_be_in_schedule_order():
    def mutate(d):
        d["visits"][3]["nominal_day"] = 100

    assert edit(mutate).startswith("visits[3].nominal_day: day 100 comes before the previous visit")


def test_version_must_be_a_string():
    text = SHIPPED.decode().replace('version = "1.0"', "version = 1.0", 1)
    with pytest.raises(ProtocolError, match=r"^study\.version: must be a string \(in quotes"):
        parse_protocol(text)


@pytest.mark.parametrize(("key", "value"), [("title", "  "), ("sponsor", 3), ("title", [])])
def test_study_texts(key, value):
    def mutate(d):
        d["study"][key] = value

    assert edit(mutate).startswith(f"study.{key}: must")


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ("study", "POEMS", "study: must be a table"),
        ("tube_types", [], "tube_types: must be a table"),
        ("tube_types", {}, "tube_types: must declare at least one tube type"),
        ("arms", {"code": "G1"}, "arms: must be an array of arms"),
        ("arms", [], "arms: must list at least one arm"),
        ("visits", [], "visits: must list at least one visit"),
        ("visits", ["BL"], "visits[0]: must be a table"),
    ],
)
def test_section_shapes(section, value, message):
    def mutate(d):
        d[section] = value

    assert edit(mutate) == message


def test_samples_entry_must_be_a_table():
    def mutate(d):
        d["visits"][0]["samples"] = ["SST"]

    assert edit(mutate) == "visits[0].samples[0]: must be a table"


def test_error_is_a_value_error_with_parts():
    def mutate(d):
        d["visits"][1]["arms"] = ["G3"]

    document = shipped_document()
    mutate(document)
    with pytest.raises(ValueError) as info:
        parse_protocol(dumps(document))
    assert isinstance(info.value, ProtocolError)
    assert info.value.key == "visits[1].arms"
    assert info.value.problem.startswith('unknown arm "G3"')
    copied = pickle.loads(pickle.dumps(info.value))
    assert (copied.key, copied.problem, str(copied)) == (
        info.value.key,
        info.value.problem,
        str(info.value),
    )


def test_python_limits_become_protocol_errors():
    huge = SHIPPED.decode().replace("nominal_day = 56", "nominal_day = " + "9" * 5000, 1)
    with pytest.raises(ProtocolError):
        parse_protocol(huge)
    deep = SHIPPED.decode() + "extra = " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ProtocolError):
        parse_protocol(deep)


# -- robustness ----------------------------------------------------------------


def parses_or_protocol_error(data: bytes | str) -> None:
    try:
        spec = parse_protocol(data)
    except ProtocolError as err:
        assert str(err)
        return
    assert isinstance(spec, ProtocolSpec)
    assert spec.visits and spec.arms and spec.tube_types
    arm_codes = {arm.code for arm in spec.arms}
    tube_codes = {tube.code for tube in spec.tube_types}
    for visit in spec.visits:
        assert set(visit.arms) <= arm_codes
        assert {s.tube_type for s in visit.samples} <= tube_codes
        assert all(type(s.aliquots) is int and 1 <= s.aliquots <= 50 for s in visit.samples)
        assert all(type(s.volume_ul) is int and 1 <= s.volume_ul <= 10_000 for s in visit.samples)
        assert visit.window_before_days >= 0 and visit.window_after_days >= 0


@st.composite
def byte_mutations(draw) -> bytes:
    data = bytearray(SHIPPED)
    for _ in range(draw(st.integers(1, 5))):
        position = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["replace", "insert", "delete"]))
        if kind == "replace":
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[position : position + draw(st.integers(1, 8))]
    return bytes(data)


@given(byte_mutations())
@settings(max_examples=300)
def test_random_byte_mutations(data):
    parses_or_protocol_error(data)


@given(
    st.sampled_from(["# ", " ", "\n", "=", "[", "]", '"', "{", ",", "0", "true", "G3"]), st.data()
)
@settings(max_examples=200)
def test_random_token_insertions(token, data):
    text = SHIPPED.decode()
    position = data.draw(st.integers(0, len(text)))
    parses_or_protocol_error(text[:position] + token + text[position:])


scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, 5, 50, 51, 500, 10_000, 10_001, -1, 56, 36_500]),
    st.floats(),
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["G1", "G2", "G3", "SST", "EDTA", "BL", "M2", "", "SER", "PED", "x"]),
    st.dates(),
    st.datetimes(),
    st.times(),
)
toml_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=8), children, max_size=3),
    ),
    max_leaves=6,
)
known_keys = st.sampled_from(
    [
        "code",
        "name",
        "arms",
        "visits",
        "samples",
        "tube_type",
        "aliquots",
        "volume_ul",
        "nominal_day",
        "window_before_days",
        "window_after_days",
        "label",
        "container",
        "sample_type",
        "description",
        "study",
        "tube_types",
        "title",
        "sponsor",
        "version",
    ]
)


def nodes(value, path=()):
    """Every (path, container) pair inside the document, the document itself included."""
    if isinstance(value, dict | list):
        yield path, value
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            yield from nodes(child, (*path, key))


@given(st.data())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_random_structural_mutations(data):
    document = shipped_document()
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        containers = list(nodes(document))
        _, node = data.draw(st.sampled_from(containers), label="container")
        operation = data.draw(
            st.sampled_from(["replace", "delete", "add", "rename", "duplicate"]), label="op"
        )
        if isinstance(node, dict):
            keys = list(node)
            if operation == "add" or not keys:
                key = data.draw(st.one_of(known_keys, st.text(max_size=6)), label="new key")
                node[key] = data.draw(toml_values, label="value")
                continue
            key = data.draw(st.sampled_from(keys), label="key")
            if operation == "replace":
                node[key] = data.draw(toml_values, label="value")
            elif operation == "delete":
                del node[key]
            elif operation == "rename":
                new_key = data.draw(known_keys, label="renamed to")
                node[new_key] = node.pop(key)
            else:
                node[data.draw(known_keys, label="copy to")] = copy.deepcopy(node[key])
        else:
            if operation == "add" or not node:
                node.insert(
                    data.draw(st.integers(0, len(node)), label="at"),
                    data.draw(toml_values, label="value"),
                )
                continue
            index = data.draw(st.integers(0, len(node) - 1), label="index")
            if operation in ("replace", "rename"):
                node[index] = data.draw(toml_values, label="value")
            elif operation == "delete":
                del node[index]
            else:
                node.append(copy.deepcopy(node[index]))
    text = dumps(document)
    parses_or_protocol_error(text)
    parses_or_protocol_error(text.encode("utf-8"))
