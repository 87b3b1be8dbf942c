import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biobank.samples.barcodes import normalize
from biobank.storage.positions import split_position
from biobank.storage.rackscan import (
    MAX_BYTES,
    NO_READ,
    NO_TUBE,
    TUBE,
    RackRead,
    RackScan,
    RackScanError,
    parse_rack_csv,
)


def tube(line, position, barcode):
    return RackRead(line=line, position=position, barcode=barcode, state=TUBE)


def no_tube(line, position):
    return RackRead(line=line, position=position, barcode=None, state=NO_TUBE)


def no_read(line, position):
    return RackRead(line=line, position=position, barcode=None, state=NO_READ)


# -- realistic files ---------------------------------------------------------
#
# Each is written as the bytes a scanner or a spreadsheet leaves on disk. The first three
# follow published examples (see the module docstring of biobank.storage.rackscan); the
# others combine the variants sites configure: headers, separators, quoting, encodings.

FILES = {
    # sanger/limber: no header, rack, position, tube; "NO READ".
    "three columns, no header": (
        b"TR00012345,A1,FX05653780\nTR00012345,A2,NO READ\nTR00012345,A3,FX05653781\n",
        RackScan(
            rack="TR00012345",
            reads=(
                tube(1, "A1", "FX05653780"),
                no_read(2, "A2"),
                tube(3, "A3", "FX05653781"),
            ),
        ),
    ),
    # sanger/wrangler tests/files/DN_48_no_read.csv: a space after the comma.
    "two columns, space after the comma": (
        b"A1, FR05653780\nA2, FR05653808\nA3, NO READ\nF8, FR05653801\n",
        RackScan(
            rack=None,
            reads=(
                tube(1, "A1", "FR05653780"),
                tube(2, "A2", "FR05653808"),
                no_read(3, "A3"),
                tube(4, "F8", "FR05653801"),
            ),
        ),
    ),
    # helixyte/TheLMA rackscanning.py: metadata lines, ";" with padding, CRLF, "No TrakMate".
    "metadata lines, semicolons, CRLF": (
        b"Date & time of Trace = 23 Aug 2012 01:42:01 PM\r\n"
        b"Rack Base Name: 02498606\r\n"
        b"A01;    1034998087\r\n"
        b"A02;    No TrakMate\r\n"
        b"A03;    1034998088\r\n",
        RackScan(
            rack="02498606",
            reads=(
                tube(3, "A01", "1034998087"),
                no_tube(4, "A02"),
                tube(5, "A03", "1034998088"),
            ),
        ),
    ),
    "header Rack,Position,Tube with a BOM, CRLF and trailing empty lines": (
        b"\xef\xbb\xbfRack,Position,Tube\r\n"
        b"RK-0042,A01,FX00000001\r\n"
        b"RK-0042,A02,NO TUBE\r\n"
        b"RK-0042,A03,NOREAD\r\n"
        b"RK-0042,A04,fx00000004 \r\n"
        b"\r\n\r\n",
        RackScan(
            rack="RK-0042",
            reads=(
                tube(2, "A01", "FX00000001"),
                no_tube(3, "A02"),
                no_read(4, "A03"),
                tube(5, "A04", "FX00000004"),
            ),
        ),
    ),
    "quoted semicolon file with RackID;TubePosition;TubeBarcode": (
        b'"RackID";"TubePosition";"TubeBarcode"\n'
        b'"RK-0042";"A01";"0123456789"\n'
        b'"RK-0042";"A02";"No Read"\n'
        b'"RK-0042";"A03";"No Tube"\n'
        b'"RK-0042";"A04";""\n',
        RackScan(
            rack="RK-0042",
            reads=(
                tube(2, "A01", "0123456789"),
                no_read(3, "A02"),
                no_tube(4, "A03"),
                no_tube(5, "A04"),
            ),
        ),
    ),
    "tab separated, rack on a line of its own": (
        b"Rack: RK-0042\nPosition\tBarcode\nA1\t7KQ3M9XW4\nA2\tEMPTY\nA3\tERROR\nA4\t\n",
        RackScan(
            rack="RK-0042",
            reads=(
                tube(3, "A1", "7KQ3M9XW4"),
                no_tube(4, "A2"),
                no_read(5, "A3"),
                no_tube(6, "A4"),
            ),
        ),
    ),
    "Windows code page export": (
        "Gerät: Perception – Scanner 2\r\nPosition;Barcode\r\nA01;AB12\r\nA02;No Read\r\n".encode(
            "cp1252"
        ),
        RackScan(rack=None, reads=(tube(3, "A01", "AB12"), no_read(4, "A02"))),
    ),
    "saved from a spreadsheet: padding cells and rows": (
        b"Tube Rack Barcode,Tube Position,Tube Barcode,,\nrk1,A1,ab123,,\nRK1,A2,,,\n,,,,\n,,,,\n",
        RackScan(rack="RK1", reads=(tube(2, "A1", "AB123"), no_tube(3, "A2"))),
    ),
    "Excel Unicode text (UTF-16 with BOM, tabs)": (
        "Position\tBarcode\r\nA01\tX1\r\nA02\tNO READ\r\n".encode("utf-16"),
        RackScan(rack=None, reads=(tube(2, "A01", "X1"), no_read(3, "A02"))),
    ),
    "header in another order with an extra column": (
        b"Barcode,Status,Position,Rack\nX1,OK,A01,RK1\nNO READ,Failed,A02,RK1\n",
        RackScan(rack="RK1", reads=(tube(2, "A01", "X1"), no_read(3, "A02"))),
    ),
    "rack label and value in two cells, CR line ends": (
        b"Rack ID,RK-7\rPosition,Barcode\rA1,X1\rA2,No Read\r",
        RackScan(rack="RK-7", reads=(tube(3, "A1", "X1"), no_read(4, "A2"))),
    ),
    "metadata lines of two cells above a table without header": (
        b"Scanner;XTR-96\nScanned;2024-05-01 10:42\nRack ID;RK-3\nA01;X1\nA02;No Tube\n",
        RackScan(rack="RK-3", reads=(tube(4, "A01", "X1"), no_tube(5, "A02"))),
    ),
    "rack unread in the rack column": (
        b"NO READ,A1,X1\nNO READ,A2,X2\n",
        RackScan(rack=None, reads=(tube(1, "A1", "X1"), tube(2, "A2", "X2"))),
    ),
}


@pytest.mark.parametrize("name", FILES)
def test_realistic_files(name):
    data, expected = FILES[name]
    assert parse_rack_csv(data) == expected


@pytest.mark.parametrize(
    ("written", "state"),
    [
        ("NO READ", NO_READ),
        ("NOREAD", NO_READ),
        ("No Read", NO_READ),
        ("no_read", NO_READ),
        ("ERROR", NO_READ),
        ("Error", NO_READ),
        ("NO TUBE", NO_TUBE),
        ("NOTUBE", NO_TUBE),
        ("No Tube", NO_TUBE),
        ("EMPTY", NO_TUBE),
        ("No TrakMate", NO_TUBE),
        ("", NO_TUBE),
        ("   ", NO_TUBE),
    ],
)
def test_markers_map_to_states(written, state):
    (read,) = parse_rack_csv(f"A1,{written}\n".encode()).reads
    assert read.state == state
    assert read.barcode is None


def test_barcodes_and_positions_are_not_validated_here():
    # The service layer checks them against the box and the check character, per position.
    scan = parse_rack_csv(b"Position,Barcode\nZ99, not-a-barcode! \nScan date,7kq3m9xw5\n")
    assert scan.reads == (
        tube(2, "Z99", "NOT-A-BARCODE!"),
        tube(3, "Scan date", "7KQ3M9XW5"),
    )


def test_position_is_kept_as_written():
    scan = parse_rack_csv(b"a01,X1\n b2 ,X2\n")
    assert [read.position for read in scan.reads] == ["a01", "b2"]


def test_rack_column_and_rack_line_must_agree():
    scan = parse_rack_csv(b"Rack: rk1\nRack,Position,Barcode\nRK1,A1,X\n")
    assert scan.rack == "RK1"


def test_an_empty_rack_cell_names_no_rack():
    scan = parse_rack_csv(b"Rack,Position,Barcode\nRK1,A1,X\n,A2,Y\nRK1,A3,Z\n")
    assert scan.rack == "RK1"
    assert len(scan.reads) == 3


def test_a_barcode_that_looks_like_a_header_word_is_a_barcode():
    scan = parse_rack_csv(b"A1,TUBE\nA2,Barcode\n")
    assert scan.reads == (tube(1, "A1", "TUBE"), tube(2, "A2", "BARCODE"))


def test_trailing_separator_without_header():
    scan = parse_rack_csv(b"A01,FX1,\nA02,,\n")
    assert scan == RackScan(rack=None, reads=(tube(1, "A01", "FX1"), no_tube(2, "A02")))


def test_three_columns_with_an_empty_first_barcode_keep_the_rack():
    scan = parse_rack_csv(b"RK1,A01,\nRK1,A02,FX2\n")
    assert scan == RackScan(rack="RK1", reads=(no_tube(1, "A01"), tube(2, "A02", "FX2")))


def test_rows_without_any_position_are_not_a_scan():
    with pytest.raises(RackScanError, match="no tube positions"):
        parse_rack_csv(b"a,b,c,d\ne,f,g,h\n")


def test_a_long_metadata_block_above_the_header():
    metadata = b"".join(b"Setting %d: value\r\n" % n for n in range(40))
    scan = parse_rack_csv(metadata + b"Rack ID;RK9\r\nPosition;Barcode\r\nA1;X\r\n")
    assert scan == RackScan(rack="RK9", reads=(tube(43, "A1", "X"),))


def test_a_full_96_rack():
    wells = [f"{row}{col:02d}" for row in "ABCDEFGH" for col in range(1, 13)]
    rows = [f"RK-0042,{well},FX{index:08d}" for index, well in enumerate(wells, start=1)]
    scan = parse_rack_csv(("\r\n".join(["Rack,Position,Tube", *rows]) + "\r\n").encode())
    assert scan.rack == "RK-0042"
    assert len(scan.reads) == 96
    assert scan.reads[-1] == tube(97, "H12", "FX00000096")


# -- errors ------------------------------------------------------------------

ERRORS = {
    "duplicate position, written differently": (
        b"Position,Barcode\nA1,X1\nB1,X2\nA01,X3\n",
        4,
        "Position",
        'position "A01" is already on line 2 ("A1")',
    ),
    "duplicate position without header": (
        b"A1,X1\na1,X2\n",
        2,
        "Position",
        "already on line 1",
    ),
    "two rack ids in the column": (
        b"RackID;TubePosition;TubeBarcode\nRK1;A1;X1\nRK1;A2;X2\nRK2;A3;X3\n",
        4,
        "RackID",
        'rack "RK2" differs from rack "RK1" on line 2',
    ),
    "rack line and rack column disagree": (
        b"Rack: RK1\nRack,Position,Barcode\nRK2,A1,X\n",
        3,
        "Rack",
        'rack "RK2" differs from rack "RK1" on line 1',
    ),
    "two rack lines disagree": (
        b"Rack: RK1\nRack ID: RK2\nA1,X\n",
        2,
        None,
        'rack "RK2" differs',
    ),
    "too few cells under a header": (
        b"Position,Barcode\nA1,X1\nA2\n",
        3,
        None,
        "1 cell, expected 2 (Position, Barcode) as in the header on line 1",
    ),
    "too many cells under a header": (
        b"Position,Barcode\nA1,X1,extra\n",
        2,
        None,
        "3 cells, expected 2",
    ),
    "too many cells without header": (
        b"A1,X1\nA2,X2,RK1\n",
        2,
        None,
        "3 cells, expected 2 (Position, Barcode)",
    ),
    "first row of four cells without header": (
        b"RK1,A1,X1,extra\n",
        1,
        None,
        "4 cells, expected 3 (Rack, Position, Barcode)",
    ),
    "first row of four cells, the first empty": (
        b",A1,X1,extra\n",
        1,
        None,
        "4 cells and no header line",
    ),
    "position only, no barcode": (
        b"A01\nA02\n",
        1,
        None,
        "1 cell, expected 2",
    ),
    "empty position": (
        b"Position,Barcode\nA1,X1\n,X2\n",
        3,
        "Position",
        "empty",
    ),
    "empty position under a named header": (
        b"TubePosition;TubeBarcode\n  ;X2\n",
        2,
        "TubePosition",
        "empty",
    ),
    "header without a barcode column": (
        b"Position,Sample\nA1,X1\n",
        1,
        None,
        "no barcode column",
    ),
    "header without a position column": (
        b"Rack,Barcode\nRK1,X1\n",
        1,
        None,
        "no position column",
    ),
    "two barcode columns": (
        b"Position,Tube,Tube Barcode\nA1,X,Y\n",
        1,
        None,
        'two barcode columns, "Tube" and "Tube Barcode"',
    ),
    "tube rows above the header": (
        b"A1,X1\nPosition,Barcode\nA2,X2\n",
        1,
        None,
        "above the header line 2",
    ),
    "two scans in one file": (
        b"Position,Barcode\nA1,X1\nPosition,Barcode\nA2,X2\n",
        3,
        None,
        "a second header line (the first is line 1)",
    ),
    "tube rows far above the header": (
        b"".join(b"A%d,X%d\n" % (n, n) for n in range(1, 31)) + b"Position,Barcode\nB1,Y\n",
        1,
        None,
        "above the header line 31",
    ),
    "a spreadsheet instead of a CSV": (
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",
        1,
        None,
        "not a text file",
    ),
    "a NUL byte further down": (
        b"Position,Barcode\nA1,X1\nA2,X\x002\n",
        3,
        None,
        "control character U+0000",
    ),
}


@pytest.mark.parametrize("name", ERRORS)
def test_errors_name_the_line_and_the_column(name):
    data, line, column, fragment = ERRORS[name]
    with pytest.raises(RackScanError) as caught:
        parse_rack_csv(data)
    err = caught.value
    assert (err.line, err.column) == (line, column)
    assert fragment in str(err)
    assert str(err).startswith(f"line {line}")
    if column is not None:
        assert str(err).startswith(f'line {line}, column "{column}": ')


def test_error_message_format():
    with pytest.raises(RackScanError) as caught:
        parse_rack_csv(b"Position,Barcode\nA1,X1\n,X2\n")
    assert str(caught.value) == 'line 3, column "Position": empty'
    assert caught.value.problem == "empty"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n\n\r\n",
        b"\xef\xbb\xbf",
        b"   \n\t\n",
        b"Position,Barcode\n",
        b"Rack,Position,Tube\r\n\r\n",
        b"Rack: RK-0042\n",
        b"Date & time of Trace = 23 Aug 2012 01:42:01 PM\nRack Base Name: 02498606\n",
        b",,,\n,,,\n",
    ],
)
def test_a_file_without_data_row_is_an_error(data):
    with pytest.raises(RackScanError) as caught:
        parse_rack_csv(data)
    assert str(caught.value) == "no tube positions in the file"
    assert caught.value.line is None


def test_a_file_too_large_is_refused_before_reading():
    with pytest.raises(RackScanError, match="bytes") as caught:
        parse_rack_csv(b"A1,X\n" * (MAX_BYTES // 5 + 1))
    assert caught.value.line is None


def test_broken_utf16_is_an_error():
    with pytest.raises(RackScanError, match="UTF-16"):
        parse_rack_csv(b"\xff\xfeA")


def test_a_field_over_the_csv_limit_is_an_error_naming_its_line():
    with pytest.raises(RackScanError) as caught:
        parse_rack_csv(b"A1,X1\nA2," + b"X" * 200_000 + b"\n")
    assert caught.value.line == 2


# -- properties --------------------------------------------------------------


@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_raise_rack_scan_error(data):
    try:
        parse_rack_csv(data)
    except RackScanError as err:
        assert str(err)


# Fragments real files are made of, so that generated text reaches the header, rack and
# layout logic rather than stopping at the first control character.
FRAGMENTS = [
    ",", ";", "\t", " ", "\n", "\r\n", "\r", '"', ":", "=", "A1", "a01", "B12", "H12", "Z0",
    "Rack", "RackID", "Rack:", "Position", "Pos", "Well", "Barcode", "Tube", "TubeID",
    "NO READ", "No Tube", "EMPTY", "ERROR", "RK-1", "RK-2", "FX123", "7KQ3M9XW4", "é", "\ufeff",
]  # fmt: skip


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60), st.sampled_from(["utf-8", "cp1252"]))
def test_csv_like_text_parses_or_raises_rack_scan_error(fragments, encoding):
    text = "".join(fragments)
    try:
        scan = parse_rack_csv(text.encode(encoding, errors="replace"))
    except RackScanError as err:
        assert str(err)
    else:
        assert scan.reads
        keys = [split_position(read.position) or normalize(read.position) for read in scan.reads]
        assert len(keys) == len(set(keys))
        for read in scan.reads:
            assert read.state in (TUBE, NO_TUBE, NO_READ)
            assert (read.barcode is None) == (read.state != TUBE)


MARKERS = {"NOREAD", "ERROR", "NOTUBE", "EMPTY", "NOTRAKMATE"}
NO_TUBE_WRITTEN = ["NO TUBE", "NOTUBE", "No Tube", "no_tube", "EMPTY", "No TrakMate", ""]
NO_READ_WRITTEN = ["NO READ", "NOREAD", "No Read", "no-read", "ERROR"]
HEADER_NAMES = {
    "position": ["Position", "POSITION", "TubePosition", "Tube Position", "Pos", "Well"],
    "barcode": ["Barcode", "Tube", "TubeBarcode", "Tube Barcode", "TubeID", "tube_id"],
    "rack": ["Rack", "RackID", "Rack Barcode", "Tube Rack Barcode", "rack_id"],
    "extra": ["Status", "Date"],
}
RACK_LINES = ["Rack: {}", "Rack Base Name: {}", "RackID = {}", "Rack ID{delimiter}{}"]

barcodes = st.text(string.ascii_letters + string.digits, min_size=1, max_size=12).filter(
    lambda code: code.upper() not in MARKERS
)
racks = st.from_regex(r"[A-Z]{2}-?[0-9]{3,6}", fullmatch=True)


@st.composite
def scan_files(draw):
    """A well-formed scan file, and the RackScan it must parse to."""
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    header = draw(st.booleans())
    rack = draw(st.none() | racks)
    rack_in_column = rack is not None and draw(st.booleans())
    rack_line = rack is not None and (not rack_in_column or draw(st.booleans()))
    cells = draw(
        st.lists(
            st.tuples(st.integers(1, 26), st.integers(1, 99)), min_size=1, max_size=40, unique=True
        )
    )
    padded = draw(st.booleans())
    quoted = draw(st.booleans())
    spaced = draw(st.booleans())

    def cell(value):
        value = f'"{value}"' if quoted else value
        return f" {value} " if spaced else value

    lines = []
    if draw(st.booleans()):
        lines.append("Date & time of Trace = 23 Aug 2012 01:42:01 PM")
    if rack_line:
        written = rack if draw(st.booleans()) else rack.lower()
        template = draw(st.sampled_from(RACK_LINES))
        lines.append(template.format(written, delimiter=delimiter))
    if header:
        roles = ["position", "barcode"] + (["rack"] if rack_in_column else [])
        if draw(st.booleans()):
            roles.append("extra")
        roles = draw(st.permutations(roles))
        lines.append(delimiter.join(cell(draw(st.sampled_from(HEADER_NAMES[r]))) for r in roles))
    else:
        roles = ["rack", "position", "barcode"] if rack_in_column else ["position", "barcode"]
    # A separator after the last cell is only unambiguous where a header gives the width.
    trailing = delimiter if header and draw(st.booleans()) else ""

    reads = []
    for row, col in cells:
        letter = string.ascii_uppercase[row - 1]
        position = f"{letter}{col:02d}" if padded else f"{letter}{col}"
        if draw(st.booleans()):
            position = position.lower()
        state = draw(st.sampled_from([TUBE, NO_TUBE, NO_READ]))
        if state == TUBE:
            written = draw(barcodes)
            barcode = written.upper()
        else:
            written = draw(
                st.sampled_from(NO_TUBE_WRITTEN if state == NO_TUBE else NO_READ_WRITTEN)
            )
            barcode = None
        values = {"position": position, "barcode": written, "rack": rack, "extra": "OK"}
        lines.append(delimiter.join(cell(values[r]) for r in roles) + trailing)
        reads.append(RackRead(line=len(lines), position=position, barcode=barcode, state=state))

    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    text += draw(st.sampled_from(["", "\n", "\r\n", "\n\n\n", "\r\n\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    return text.encode(encoding), RackScan(rack=rack, reads=tuple(reads))


@given(scan_files())
def test_generated_files_round_trip(case):
    data, expected = case
    assert parse_rack_csv(data) == expected
