"""Laboratory result sheets (biobank/assays/resultsheet.py): headers, value shapes, units,
every error with its row and cell, CSV variants, and xlsx files read back exactly.

Run as a script, this module times the reading of a 20,000-row workbook instead
(not a timed test: the machines are shared and noisy) and prints one JSON line:

    .venv/bin/python -m tests.assays.test_resultsheet [--rows 20000] [--repeat 5]
"""

from __future__ import annotations

import codecs
import io
import pickle
import re
import zipfile
from datetime import date, datetime

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biobank.assays import units
from biobank.assays.resultsheet import (
    DEFAULT_ANALYTES_PATH,
    AnalyteError,
    AnalyteSpec,
    ResultRow,
    ResultSheetError,
    load_analytes,
    parse_analytes,
    read_results,
)

ANALYTES = load_analytes()
HEADER = ["Barcode", "Analyte", "Value", "Unit", "Method", "Date", "Comment"]


def xlsx(
    rows, *, title: str = "Sheet1", before: tuple[tuple[str, list], ...] = (), write_only=False
) -> bytes:
    """A workbook whose sheet ``title`` holds ``rows``, after the sheets ``before``."""
    workbook = openpyxl.Workbook(write_only=write_only)
    if not write_only:
        workbook.remove(workbook.active)
    for name, content in (*before, (title, rows)):
        sheet = workbook.create_sheet(name)
        for row in content:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def text_file(rows, *, delimiter=",", encoding="utf-8", newline="\n") -> bytes:
    lines = []
    for row in rows:
        cells = []
        for cell in row:
            cell = "" if cell is None else str(cell)
            if delimiter in cell or '"' in cell:
                cell = '"' + cell.replace('"', '""') + '"'
            cells.append(cell)
        lines.append(delimiter.join(cells))
    return (newline.join(lines) + newline).encode(encoding)


def read(data: bytes, filename: str = "results.xlsx", **kwargs) -> list[ResultRow]:
    return read_results(data, filename, analytes=ANALYTES, **kwargs)


def read_rows(*rows, header=HEADER, **kwargs) -> list[ResultRow]:
    return read(xlsx([header, *rows]), **kwargs)


def problems_of(data: bytes, filename: str = "results.xlsx", **kwargs) -> list[str]:
    with pytest.raises(ResultSheetError) as caught:
        read(data, filename, **kwargs)
    return caught.value.problems


def problems_of_rows(*rows, header=HEADER) -> list[str]:
    return problems_of(xlsx([header, *rows]))


def only(rows: list[ResultRow]) -> ResultRow:
    assert len(rows) == 1, rows
    return rows[0]


# --------------------------------------------------------------------------- analytes


def test_the_default_analytes_are_data():
    assert list(ANALYTES) == ["M_SPIKE", "IFE", "FLC_KAPPA", "FLC_LAMBDA", "FLC_RATIO", "VEGF"]
    assert ANALYTES["M_SPIKE"].unit == "g/L"
    assert ANALYTES["FLC_KAPPA"].unit == ANALYTES["FLC_LAMBDA"].unit == "mg/L"
    assert ANALYTES["FLC_RATIO"].unit == ""
    assert ANALYTES["VEGF"].unit == "pg/mL"
    ife = ANALYTES["IFE"]
    assert (ife.kind, ife.unit, ife.values) == ("qualitative", "", ("negative", "positive"))
    assert ("négatif", "negative") in ife.value_aliases
    assert ("positif", "positive") in ife.value_aliases
    for code, alias in [
        ("M_SPIKE", "Pic monoclonal"),
        ("M_SPIKE", "Composant monoclonal"),
        ("IFE", "IF serique"),
        ("FLC_KAPPA", "sFLC kappa"),
        ("FLC_RATIO", "Ratio K/L"),
        ("VEGF", "serum VEGF"),
    ]:
        assert alias in ANALYTES[code].aliases


def test_load_analytes_reads_the_file_next_to_the_module_by_default():
    assert load_analytes(DEFAULT_ANALYTES_PATH) == load_analytes()


def test_an_administrator_declares_an_analyte_in_a_file(tmp_path):
    path = tmp_path / "analytes.toml"
    path.write_text(
        '[[analytes]]\ncode = "B2M"\nname = "Beta-2 microglobulin"\nkind = "numeric"\n'
        'unit = "mg/l"\naliases = ["β2-microglobuline", "B2-MG"]\n',
        encoding="utf-8",
    )
    analytes = load_analytes(path)
    assert analytes == {
        "B2M": AnalyteSpec(
            "B2M", "Beta-2 microglobulin", "numeric", "mg/L", (), ("β2-microglobuline", "B2-MG")
        )
    }
    rows = read_results(
        xlsx([HEADER, ["x1", "b2-mg", "2,5", "mg/dL", "", None, None]]),
        "r.xlsx",
        analytes=analytes,
    )
    assert only(rows).value == 25


def test_french_result_words_apply_to_an_analyte_rebuilt_without_them():
    # As the database keeps an analyte: its values, not the words of analytes.toml.
    bare = {
        "IFE": AnalyteSpec(
            "IFE", "Immunofixation", "qualitative", "", ("negative", "positive"), ()
        ),
        "HCV": AnalyteSpec("HCV", "HCV RNA", "qualitative", "", ("detected", "not detected"), ()),
    }
    rows = read_results(
        xlsx(
            [
                HEADER,
                ["b1", "IFE", "Négatif"],
                ["b2", "IFE", "Positif IgG kappa"],
                ["b1", "HCV", "Non détecté"],
                ["b2", "HCV", "Detected, 1.2 log"],
            ]
        ),
        "r.xlsx",
        analytes=bare,
    )
    assert [(row.text, row.detail) for row in rows] == [
        ("negative", ""),
        ("positive", "IgG kappa"),
        ("not detected", ""),
        ("detected", "1.2 log"),
    ]


def test_an_analyte_word_wins_over_a_shared_word():
    analytes = parse_analytes(
        '[value_words]\npositive = ["pos", "present"]\n'
        '[[analytes]]\ncode = "Q"\nname = "Q"\nkind = "qualitative"\n'
        'values = ["positive", "weak"]\n[analytes.value_aliases]\nweak = ["faible", "pos"]\n'
    )
    assert analytes["Q"].value_aliases == (
        ("faible", "weak"),
        ("pos", "weak"),
        ("present", "positive"),
    )
    rows = read_results(xlsx([HEADER, ["b1", "Q", "Pos"]]), "r.xlsx", analytes=analytes)
    assert only(rows).text == "weak"


ENTRY = '[[analytes]]\ncode = "X"\nname = "X"\nkind = "numeric"\nunit = "g/L"\n'


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("analytes = 3", "analytes", "at least one analyte"),
        ("[[analytes]]\ncode = 'x'\n", "analytes[0].code", "uppercase code"),
        ('[[analytes]]\ncode = "X"\nkind = "numeric"\n', "analytes[0].name", "non-empty"),
        (ENTRY.replace('"numeric"', '"number"'), "analytes[0].kind", "numeric"),
        (ENTRY.replace('"g/L"', '"g/cup"'), "analytes[0].unit", 'unknown unit "g/cup"'),
        (ENTRY.replace('unit = "g/L"\n', ""), "analytes[0].unit", "needs its unit"),
        (ENTRY + "values = ['a']\n", "analytes[0].values", "only a qualitative"),
        (ENTRY + "colour = 'red'\n", "analytes[0].colour", "unknown key"),
        (ENTRY + ENTRY, "analytes[1].code", "declared twice"),
        (
            ENTRY + ENTRY.replace('"X"', '"Y"', 1).replace('name = "X"', 'name = "x"'),
            "analytes[1].name",
            "already a name of X",
        ),
        (
            ENTRY
            + 'aliases = ["M-spike"]\n'
            + ENTRY.replace('"X"', '"Y"').replace(
                'unit = "g/L"\n', 'unit = "g/L"\naliases = ["M spike"]\n'
            ),
            "analytes[1].aliases[0]",
            '"M spike" is already a name of X',
        ),
        (
            '[[analytes]]\ncode = "Q"\nname = "Q"\nkind = "qualitative"\nunit = "g/L"\n'
            'values = ["a"]\n',
            "analytes[0].unit",
            "no unit",
        ),
        (
            '[[analytes]]\ncode = "Q"\nname = "Q"\nkind = "qualitative"\n',
            "analytes[0].values",
            "list the values",
        ),
        (
            '[[analytes]]\ncode = "Q"\nname = "Q"\nkind = "qualitative"\nvalues = ["a"]\n'
            '[analytes.value_aliases]\nb = ["bee"]\n',
            "analytes[0].value_aliases.b",
            "not one of the values",
        ),
        ("[[analytes]\n", "", "TOML syntax error"),
        (
            '[value_words]\nnegative = ["neg"]\npositive = ["nég"]\n' + ENTRY,
            "value_words.positive",
            '"nég" already means negative',
        ),
        ("[value_words]\nnegative = 'neg'\n" + ENTRY, "value_words.negative", "list of texts"),
        ("[units]\n" + ENTRY, "units", "unknown key"),
    ],
)
def test_analyte_declarations_are_validated_and_errors_name_the_key(text, key, words):
    with pytest.raises(AnalyteError) as caught:
        parse_analytes(text)
    assert caught.value.key == key
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"{key}: " if key else words)


def test_two_analytes_sharing_a_name_cannot_read_a_sheet():
    twin = AnalyteSpec("TWIN", "M-spike", "numeric", "g/L", (), ())
    with pytest.raises(ValueError, match='"M-spike" names both M_SPIKE and TWIN'):
        read_results(xlsx([HEADER]), "r.xlsx", analytes={**ANALYTES, "TWIN": twin})


# --------------------------------------------------------------------------- headers


def test_a_plain_sheet_is_read_with_every_field():
    rows = read_rows(
        [" ab-0001 ", "M-spike", 12.5, "g/L", " SPEP ", date(2026, 3, 2), "faint band"],
        ["AB-0002", "IFE", "Positive IgA lambda", None, "IFE", "2026-03-02", None],
    )
    assert rows == [
        ResultRow(
            row=2,
            barcode="AB-0001",
            analyte="M_SPIKE",
            value=12.5,
            comparator=None,
            text=None,
            detail="faint band",
            unit="g/L",
            reported_value="12.5",
            reported_unit="g/L",
            method="SPEP",
            measured_on=date(2026, 3, 2),
        ),
        ResultRow(
            row=3,
            barcode="AB-0002",
            analyte="IFE",
            value=None,
            comparator=None,
            text="positive",
            detail="IgA lambda",
            unit="",
            reported_value="Positive IgA lambda",
            reported_unit="",
            method="IFE",
            measured_on=date(2026, 3, 2),
        ),
    ]


def test_french_headers_and_aliases_are_recognised():
    header = [
        "Échantillon",
        "Paramètre",
        "Résultat",
        "Unité",
        "Méthode",
        "Date de mesure",
        "Commentaire",
    ]
    rows = read_rows(
        ["ab1", "Pic monoclonal", "3,2", "g/l", "EPS capillaire", "02/03/2026", ""],
        ["ab2", "Composant monoclonal", "3", "g/L", "", "", ""],
        ["ab2", "IF sérique", "Négatif", "", "", "", ""],
        header=header,
    )
    assert [(row.barcode, row.analyte) for row in rows] == [
        ("AB1", "M_SPIKE"),
        ("AB2", "M_SPIKE"),
        ("AB2", "IFE"),
    ]
    assert rows[0].value == 3.2
    assert rows[0].measured_on == date(2026, 3, 2)
    assert rows[0].method == "EPS capillaire"


def test_a_barcode_and_analyte_given_twice_under_two_aliases_is_a_duplicate():
    problems = problems_of_rows(
        ["ab1", "Pic monoclonal", "3,2", "g/l", "", None, None],
        ["AB1", "Composant monoclonal", "3", "g/L", "", None, None],
    )
    assert problems == [
        'row 3, cell A3 ("Barcode"): AB1 has a second M_SPIKE result (the first is on row 2): '
        "keep one of rows 2 and 3"
    ]


@pytest.mark.parametrize(
    "names",
    [
        ["Sample ID", "Test", "Result", "Units"],
        ["Code-barres", "Analyse", "Résultat", "Unité"],
        ["  BARCODE ", "analyte", "VALUE", "unit"],
        ["Code barre", "Examen", "Valeur", "Unités"],
        ["echantillon", "parametre", "resultat", "unite"],
    ],
)
def test_header_synonyms_in_any_case_and_accent(names):
    row = only(read_rows(["b1", "Free kappa", "18.2", "mg/L"], header=names))
    assert (row.barcode, row.analyte, row.value) == ("B1", "FLC_KAPPA", 18.2)


def test_columns_may_come_in_any_order_among_others():
    header = ["Patient", "Unité", "Comment", "Résultat", "Code-barres", "Test", "Extra"]
    row = only(
        read_rows(["P-01", "mg/L", "", "7,5", "b1", "sFLC lambda", "ignored"], header=header)
    )
    assert (row.barcode, row.analyte, row.value, row.unit) == ("B1", "FLC_LAMBDA", 7.5, "mg/L")


def test_the_header_may_sit_below_title_rows_and_rows_keep_their_numbers():
    data = xlsx(
        [
            ["CHU Laboratoire de biochimie"],
            ["Rapport du 2026-03-05", None, "page 1"],
            [],
            HEADER,
            ["b1", "VEGF", 1920, "pg/mL"],
            [],
            ["b2", "VEGF", "abc", "pg/mL"],
        ]
    )
    assert problems_of(data) == [
        'row 7, cell C7 ("Value"): "abc" is not a number: write a number such as 12.5, 12,5 or '
        "< 0.5 (the unit in its own column)"
    ]


def test_configured_column_names_are_used():
    columns = {"barcode": "Tube", "analyte": "Quoi", "value": "Combien", "unit": "En"}
    header = ["Quoi", "Combien", "En", "Tube"]
    row = only(read_rows(["VEGF", "1,5", "ng/mL", "t1"], header=header, columns=columns))
    assert (row.barcode, row.value) == ("T1", 1500)


def test_a_configured_name_wins_over_a_synonym():
    header = ["Sample ID", "Barcode", "Analyte", "Value", "Unit"]
    row = only(read_rows(["LAB-77", "b1", "VEGF", 100, "pg/mL"], header=header))
    assert row.barcode == "B1"


def test_two_synonyms_for_one_column_are_an_error_naming_both_cells():
    header = ["Sample ID", "Code-barres", "Analyte", "Value", "Unit"]
    problems = problems_of_rows(["LAB-77", "b1", "VEGF", 100, "pg/mL"], header=header)
    assert problems == [
        'row 1: cells A1 ("Sample ID") and B1 ("Code-barres") could both be the barcode '
        "column: rename one, or set the barcode column name to the one to read"
    ]


def test_no_header_in_the_first_twenty_rows_is_an_error():
    data = xlsx([*[["title"]] * 20, HEADER, ["b1", "VEGF", 1, "pg/mL"]])
    (problem,) = problems_of(data)
    assert problem.startswith("no header row in the first 20 rows")
    assert '"Barcode"' in problem and '"Analyte"' in problem and '"Value"' in problem


def test_a_header_row_without_the_value_column_is_named():
    (problem,) = problems_of_rows(["b1", "VEGF", "1", "pg/mL"], header=["Barcode", "Analyte"])
    assert problem.startswith(
        'row 1 looks like the header but names no value column: name it "Value"'
    )


def test_unknown_column_roles_are_a_programming_error():
    with pytest.raises(ValueError, match="unknown column role 'tube'"):
        read(xlsx([HEADER]), columns={"tube": "Tube"})


# --------------------------------------------------------------------------- workbooks


def test_the_sheet_named_results_is_read_when_there_is_one():
    data = xlsx(
        [HEADER, ["b2", "VEGF", 2, "pg/mL"]],
        title=" results ",
        before=(("Summary", [["nothing here"]]),),
    )
    assert only(read(data)).barcode == "B2"


def test_otherwise_the_first_sheet_is_read():
    data = xlsx(
        [["not read"]],
        title="Other",
        before=(("Labo", [HEADER, ["b1", "VEGF", 1, "pg/mL"]]),),
    )
    assert only(read(data)).barcode == "B1"


def test_a_wrong_dimension_recorded_in_the_workbook_does_not_cut_rows():
    data = xlsx([HEADER, ["b1", "VEGF", 1, "pg/mL", "ELISA", None, "kept"]])
    source, target = io.BytesIO(data), io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            content = old.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                content, count = re.subn(
                    rb'<dimension ref="[^"]*"', b'<dimension ref="A1:B1"', content
                )
                assert count == 1
            new.writestr(item, content)
    row = only(read(target.getvalue()))
    assert (row.value, row.unit, row.method, row.detail) == (1, "pg/mL", "ELISA", "kept")


def test_a_workbook_without_a_recorded_dimension_is_read():
    data = xlsx([HEADER, ["b1", "VEGF", 1, "pg/mL"]], write_only=True)
    assert only(read(data)).value == 1


def test_empty_rows_are_skipped_but_a_row_with_anything_is_read():
    rows = read_rows(
        [None, None, None, None],
        ["  ", "", None, " "],
        ["b1", "VEGF", 1, "pg/mL"],
        [None] * 7,
    )
    assert [row.row for row in rows] == [4]
    assert problems_of_rows(["", "", "", "", "", "", "see page 2"]) == [
        'row 2, cell A2 ("Barcode"): no barcode: write the aliquot\'s barcode',
        'row 2, cell B2 ("Analyte"): no analyte: write one of M_SPIKE, IFE, FLC_KAPPA, '
        "FLC_LAMBDA, FLC_RATIO, VEGF",
        'row 2, cell C2 ("Value"): no result: write the result, or delete the row',
    ]


def test_a_numeric_barcode_cell_reads_without_a_decimal_point():
    assert only(read_rows([123456, "VEGF", 1, "pg/mL"])).barcode == "123456"
    assert only(read_rows([123456.0, "VEGF", 1, "pg/mL"])).barcode == "123456"


@pytest.mark.parametrize(
    ("data", "filename", "words"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "old.xls", "Excel 97-2003"),
        (b"PK\x03\x04 broken", "broken.xlsx", "not a readable .xlsx workbook"),
        (b"not a zip", "fake.xlsx", "not a readable .xlsx workbook"),
        (b"%PDF-1.7", "report.pdf", "expected an .xlsx or .csv file"),
    ],
)
def test_a_file_that_is_no_sheet_is_refused_with_what_to_do(data, filename, words):
    (problem,) = problems_of(data, filename)
    assert words in problem


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("written", "comparator", "value"),
    [
        (12.5, None, 12.5),
        (12, None, 12.0),
        ("12.5", None, 12.5),
        ("12,5", None, 12.5),
        (" 0,125 ", None, 0.125),
        ("< 0.5", "<", 0.5),
        ("<0,5", "<", 0.5),
        ("> 70", ">", 70.0),
        (">70", ">", 70.0),
        ("1 920", None, 1920.0),
        ("1\u00a0920,5", None, 1920.5),
        ("12\u202f345", None, 12345.0),
        ("1920", None, 1920.0),
        ("1.2E3", None, 1200.0),
        (".5", None, 0.5),
        ("0", None, 0.0),
    ],
)
def test_every_value_shape(written, comparator, value):
    row = only(read_rows(["b1", "VEGF", written, "pg/mL"]))
    assert (row.comparator, row.value) == (comparator, value)
    expected = written.strip() if isinstance(written, str) else str(written)
    assert row.reported_value == expected


@pytest.mark.parametrize(
    ("analyte", "written", "unit", "value", "canonical"),
    [
        ("M-spike", "1,5", "g/dL", 15.0, "g/L"),
        ("M spike", 1500, "mg/dL", 15.0, "g/L"),
        ("M_SPIKE", "12", "G/L", 12.0, "g/L"),
        ("Kappa libres", "1,82", "mg/dL", 18.2, "mg/L"),
        ("Free lambda", 20, "µg/mL", 20.0, "mg/L"),
        ("sFLC kappa", 3, "mcg/mL", 3.0, "mg/L"),
        ("VEGF", "1,92", "ng/mL", 1920.0, "pg/mL"),
        ("VEGF-A", 250, "ng/L", 250.0, "pg/mL"),
        ("serum VEGF", 2, "\u03bcg/L", 2000.0, "pg/mL"),
        ("Ratio K/L", "0,85", None, 0.85, ""),
        ("kappa/lambda ratio", 12.4, "ratio", 12.4, ""),
    ],
)
def test_values_are_converted_into_the_canonical_unit(analyte, written, unit, value, canonical):
    row = only(read_rows(["b1", analyte, written, unit]))
    assert (row.value, row.unit) == (value, canonical)
    assert row.reported_unit == (unit or "")


def test_a_comparator_survives_the_conversion():
    row = only(read_rows(["b1", "M-spike", "< 0,1", "g/dL"]))
    assert (row.comparator, row.value, row.unit) == ("<", 1.0, "g/L")


@pytest.mark.parametrize(
    ("written", "comment", "text", "detail"),
    [
        ("Negative", None, "negative", ""),
        ("négatif", None, "negative", ""),
        ("NEGATIVE", "no band", "negative", "no band"),
        ("Positive IgA lambda", None, "positive", "IgA lambda"),
        ("positif IgG kappa", None, "positive", "IgG kappa"),
        (
            "Positif : chaînes légères lambda seules",
            None,
            "positive",
            "chaînes légères lambda seules",
        ),
        ("Positive - lambda light chain only", None, "positive", "lambda light chain only"),
        ("POS (IgA lambda)", "biclonal?", "positive", "IgA lambda; biclonal?"),
        ("positive", "IgA lambda", "positive", "IgA lambda"),
        ("Nég.", None, "negative", ""),
    ],
)
def test_immunofixation_keeps_its_result_and_isotype(written, comment, text, detail):
    row = only(read_rows(["b1", "Immunofixation", written, None, "", None, comment]))
    assert (row.text, row.detail, row.value, row.unit) == (text, detail, None, "")
    assert row.reported_value == written


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (date(2026, 3, 2), date(2026, 3, 2)),
        (datetime(2026, 3, 2, 14, 30), date(2026, 3, 2)),
        ("2026-03-02", date(2026, 3, 2)),
        ("2026-3-2", date(2026, 3, 2)),
        ("2026-03-02 14:30", date(2026, 3, 2)),
        ("2026-03-02T14:30:00", date(2026, 3, 2)),
        ("02/03/2026", date(2026, 3, 2)),
        ("2/3/2026", date(2026, 3, 2)),
        ("02.03.2026", date(2026, 3, 2)),
        ("13/01/2026", date(2026, 1, 13)),
        ("02/03/2026 08:15", date(2026, 3, 2)),
        (None, None),
        ("  ", None),
    ],
)
def test_dates_are_real_cells_iso_or_day_first(written, expected):
    row = only(read_rows(["b1", "VEGF", 1, "pg/mL", "", written]))
    assert row.measured_on == expected


# --------------------------------------------------------------------------- errors


def cell_problem(cell: str, column: str, problem: str) -> str:
    return f'row {cell[1:]}, cell {cell} ("{column}"): {problem}'


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            ["b1", "VEGF", None, "pg/mL"],
            cell_problem("C2", "Value", "no result: write the result, or delete the row"),
        ),
        (
            ["b1", "VEGF", "  ", "pg/mL"],
            cell_problem("C2", "Value", "no result: write the result, or delete the row"),
        ),
        (
            ["b1", "Ferritin", 1, "pg/mL"],
            cell_problem(
                "B2",
                "Analyte",
                'unknown analyte "Ferritin": the known analytes are M_SPIKE, IFE, FLC_KAPPA, '
                "FLC_LAMBDA, FLC_RATIO, VEGF",
            ),
        ),
        (
            [None, "VEGF", 1, "pg/mL"],
            cell_problem("A2", "Barcode", "no barcode: write the aliquot's barcode"),
        ),
        (
            ["b1", "M-spike", 12, None],
            cell_problem(
                "D2", "Unit", "no unit: write the unit of the M_SPIKE result (it is kept in g/L)"
            ),
        ),
        (
            ["b1", "M-spike", 12, "IU/mL"],
            cell_problem(
                "D2",
                "Unit",
                "M_SPIKE cannot be in IU/mL: M_SPIKE is kept in g/L; write it in one of g/L, "
                "g/dL, mg/mL, mg/dL, mg/L, µg/mL, µg/dL, µg/L, ng/mL, ng/dL, ng/L, pg/mL",
            ),
        ),
        (
            ["b1", "Ratio K/L", 1.2, "mg/L"],
            cell_problem(
                "D2",
                "Unit",
                "FLC_RATIO cannot be in mg/L: FLC_RATIO is a ratio: leave the unit empty or "
                'write "ratio"',
            ),
        ),
        (
            ["b1", "M-spike", 12, "gr/L"],
            cell_problem(
                "D2",
                "Unit",
                'unknown unit "gr/L": M_SPIKE is kept in g/L; write it in one of g/L, g/dL, '
                "mg/mL, mg/dL, mg/L, µg/mL, µg/dL, µg/L, ng/mL, ng/dL, ng/L, pg/mL",
            ),
        ),
        (
            ["b1", "IFE", "douteux", None],
            cell_problem(
                "C2",
                "Value",
                '"douteux" is not a result of IFE: write "negative" or "positive", then any detail',
            ),
        ),
        (
            ["b1", "IFE", "IgA lambda", None],
            cell_problem(
                "C2",
                "Value",
                '"IgA lambda" is not a result of IFE: write "negative" or "positive", then any '
                "detail",
            ),
        ),
        (
            ["b1", "IFE", 1, None],
            cell_problem(
                "C2",
                "Value",
                '"1" is not a result of IFE: write "negative" or "positive", then any detail',
            ),
        ),
        (
            ["b1", "IFE", "positive", "g/L"],
            cell_problem(
                "D2",
                "Unit",
                'IFE is qualitative: it has no unit (leave the cell empty, not "g/L")',
            ),
        ),
        (
            ["b1", "VEGF", "1.5 ng/mL", "pg/mL"],
            cell_problem(
                "C2",
                "Value",
                '"1.5 ng/mL" is not a number: write a number such as 12.5, 12,5 or < 0.5 '
                "(the unit in its own column)",
            ),
        ),
        (
            ["b1", "VEGF", "NaN", "pg/mL"],
            cell_problem(
                "C2",
                "Value",
                '"NaN" is not a number: write a number such as 12.5, 12,5 or < 0.5 '
                "(the unit in its own column)",
            ),
        ),
        (
            ["b1", "VEGF", "≤ 5", "pg/mL"],
            cell_problem(
                "C2",
                "Value",
                '"≤ 5" is not a number: write a number such as 12.5, 12,5 or < 0.5 '
                "(the unit in its own column)",
            ),
        ),
        (
            ["b1", "VEGF", "-3", "pg/mL"],
            cell_problem("C2", "Value", "-3 is negative: a result cannot be"),
        ),
        (
            ["b1", "VEGF", -3.5, "pg/mL"],
            cell_problem("C2", "Value", "-3.5 is negative: a result cannot be"),
        ),
        (
            ["b1", "VEGF", "1,920", "pg/mL"],
            cell_problem(
                "C2",
                "Value",
                '"1,920" is ambiguous (a thousands separator or a decimal comma?): write 1920 '
                "or 1.920",
            ),
        ),
        (
            ["b1", "VEGF", "1,920.5", "pg/mL"],
            cell_problem(
                "C2",
                "Value",
                'cannot read "1,920.5" as a number: write it without a thousands separator, '
                "with one decimal point or comma (1234.5 or 1234,5)",
            ),
        ),
        (
            ["b1", "VEGF", datetime(2026, 3, 2), "pg/mL"],
            cell_problem(
                "C2",
                "Value",
                "2026-03-02 is not a number (the cell is formatted as a date): format it as a "
                "number",
            ),
        ),
        (
            ["b1", "VEGF", True, "pg/mL"],
            cell_problem(
                "C2",
                "Value",
                "TRUE is not a number (the cell is formatted as a true/false value): format it "
                "as a number",
            ),
        ),
        (
            ["b1", "VEGF", 1, "pg/mL", "", "31/02/2026"],
            cell_problem("F2", "Date", '"31/02/2026" is not a date of the calendar'),
        ),
        (
            ["b1", "VEGF", 1, "pg/mL", "", "02/03/26"],
            cell_problem("F2", "Date", '"02/03/26": write the year with four digits (02/03/2026)'),
        ),
        (
            ["b1", "VEGF", 1, "pg/mL", "", "hier"],
            cell_problem(
                "F2", "Date", '"hier" is not a date: write 2026-03-02 or 02/03/2026 (day first)'
            ),
        ),
        (
            ["b1", "VEGF", 1, "pg/mL", "", 46083],
            cell_problem(
                "F2", "Date", "46083 is not a date: format the cell as a date, or write 2026-03-02"
            ),
        ),
    ],
)
def test_every_error_names_its_row_and_cell(row, expected):
    assert problems_of_rows(row) == [expected]


def test_a_sheet_without_a_unit_column_says_so():
    (problem,) = problems_of_rows(["b1", "M-spike", 12], header=["Barcode", "Analyte", "Value"])
    assert problem == (
        "row 2: no unit (the sheet has no Unit column): write the unit of the M_SPIKE result "
        "(it is kept in g/L)"
    )
    rows = read_rows(["b1", "IFE", "negative"], ["b1", "Ratio K/L", 1.1], header=HEADER[:3])
    assert [row.analyte for row in rows] == ["IFE", "FLC_RATIO"]


def test_all_errors_of_the_file_are_collected_and_nothing_is_returned():
    data = xlsx(
        [
            HEADER,
            ["b1", "VEGF", 1, "pg/mL"],  # fine, but not returned
            ["b2", "VEGF", "", "pg/mL"],
            ["b3", "Kappa", 1, "mg/L"],
            ["b4", "M-spike", "x", "furlong", "", "yesterday"],
            ["b1", "VEGF", 2, "pg/mL"],
        ]
    )
    with pytest.raises(ResultSheetError) as caught:
        read(data)
    problems = caught.value.problems
    assert [re.match(r"row \d+, cell [A-Z]+\d+", p).group() for p in problems] == [
        "row 3, cell C3",
        "row 4, cell B4",
        "row 5, cell C5",
        "row 5, cell D5",
        "row 5, cell F5",
        "row 6, cell A6",
    ]
    assert "keep one of rows 2 and 6" in problems[-1]
    message = str(caught.value)
    assert message.startswith(problems[0] + "; " + problems[1])
    assert message.endswith("(and 1 more problem)")


def test_the_message_shows_the_first_problems_and_counts_the_rest():
    data = xlsx([HEADER, *[[f"b{i}", "VEGF", None, "pg/mL"] for i in range(12)]])
    with pytest.raises(ResultSheetError) as caught:
        read(data)
    assert len(caught.value.problems) == 12
    assert str(caught.value).count("no result") == 5
    assert str(caught.value).endswith("(and 7 more problems)")


def test_a_result_sheet_error_survives_pickling_with_its_problems():
    error = ResultSheetError(["row 2: a", "row 3: b"])
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.problems, str(copy)) == (error.problems, str(error))
    assert isinstance(error, ValueError)


# --------------------------------------------------------------------------- CSV


CSV_ROWS = [
    ["Code-barres", "Analyse", "Résultat", "Unité", "Méthode", "Date", "Commentaire"],
    ["ab1", "Pic monoclonal", "1,5", "g/dL", "EPS", "02/03/2026", "Positif, à surveiller"],
    ["ab1", "IF sérique", "Positif IgA lambda", "", "IF", "2026-03-02", ""],
    ["ab1", "Ratio K/L", "<0,5", "", "Freelite", "", ""],
]


def check_csv_rows(rows: list[ResultRow]) -> None:
    assert [
        (r.row, r.barcode, r.analyte, r.value, r.comparator, r.text, r.detail) for r in rows
    ] == [
        (2, "AB1", "M_SPIKE", 15.0, None, None, "Positif, à surveiller"),
        (3, "AB1", "IFE", None, None, "positive", "IgA lambda"),
        (4, "AB1", "FLC_RATIO", 0.5, "<", None, ""),
    ]
    assert rows[0].measured_on == rows[1].measured_on == date(2026, 3, 2)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),
        ("cp1252", b""),
        ("utf-16-le", codecs.BOM_UTF16_LE),
    ],
)
def test_csv_delimiters_and_encodings(delimiter, encoding, prefix):
    data = prefix + text_file(CSV_ROWS, delimiter=delimiter, encoding=encoding)
    check_csv_rows(read(data, "export.csv"))


def test_csv_with_crlf_a_title_line_and_a_txt_name():
    data = text_file([["Export LIS"], *CSV_ROWS], delimiter=";", newline="\r\n")
    rows = read(data, "EXPORT.TXT")
    assert [row.row for row in rows] == [3, 4, 5]


def test_csv_semicolons_win_over_the_commas_of_decimal_numbers():
    rows = [["Barcode;Analyte;Value;Unit"], ["b1;VEGF;1,5;ng/mL"], ["b2;VEGF;2,5;ng/mL"]]
    data = "\n".join(row[0] for row in rows).encode()
    assert [row.value for row in read(data, "r.csv")] == [1500.0, 2500.0]


def test_csv_errors_name_row_and_cell_like_a_spreadsheet():
    data = text_file([HEADER, ["b1", "VEGF", "", "pg/mL"]], delimiter=";")
    assert problems_of(data, "r.csv") == [
        cell_problem("C2", "Value", "no result: write the result, or delete the row")
    ]


def test_a_csv_with_nul_bytes_is_not_text():
    (problem,) = problems_of(b"Barcode,Analyte\x00,Value\n", "r.csv")
    assert "NUL" in problem


# --------------------------------------------------------------------------- round trip

ISOTYPES = ["IgA lambda", "IgG kappa", "lambda light chain only", "IgM kappa", "IgG lambda"]
SAFE_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789 -", max_size=12)


def unit_spellings(unit: str) -> st.SearchStrategy[str]:
    compatible = [u for u in units.UNITS if units.is_convertible(u, unit)]
    return st.sampled_from(compatible).flatmap(
        lambda u: st.sampled_from([u, u.lower(), u.upper(), u.replace("µ", "u").upper(), f" {u} "])
    )


def number_cell(value: float, style: str, comparator: str | None):
    if style == "cell" and comparator is None:
        return value
    text = repr(value)
    if style == "comma" and not re.fullmatch(r"0*[1-9]\d{0,2}\.\d{3}", text):
        text = text.replace(".", ",")
    return f"{comparator} {text}" if comparator else text


@st.composite
def result_rows(draw):
    spec = draw(st.sampled_from(list(ANALYTES.values())))
    name = draw(st.sampled_from([spec.code, spec.name, *spec.aliases]))
    barcode = draw(st.from_regex(r"[A-Z][A-Z0-9]{3,10}", fullmatch=True))
    method = draw(SAFE_TEXT)
    measured = draw(st.none() | st.dates(date(1990, 1, 1), date(2099, 12, 31)))
    date_style = draw(st.sampled_from(["cell", "iso", "day-first"]))
    date_cell = (
        measured
        if measured is None or date_style == "cell"
        else measured.isoformat()
        if date_style == "iso"
        else measured.strftime("%d/%m/%Y")
    )
    comment = draw(st.sampled_from(["", "haemolysed", "repeat on new aliquot"]))
    if spec.kind == "numeric":
        # At most 15 significant digits, as laboratories report and Excel keeps (openpyxl
        # writes 16); every such value is written and read back to the same float.
        value = draw(st.integers(0, 10**15 - 1)) / 10 ** draw(st.integers(0, 9))
        comparator = draw(st.sampled_from([None, None, "<", ">"]))
        style = draw(st.sampled_from(["cell", "dot", "comma"]))
        unit = (
            draw(unit_spellings(spec.unit)) if spec.unit else draw(st.sampled_from(["", "ratio"]))
        )
        cells = [barcode.lower(), name, number_cell(value, style, comparator), unit]
        expected = {
            "value": units.convert(value, unit, spec.unit),
            "comparator": comparator,
            "text": None,
            "detail": comment,
        }
    else:
        word, text = draw(st.sampled_from([(v, v) for v in spec.values] + list(spec.value_aliases)))
        isotype = draw(st.sampled_from(["", *ISOTYPES]))
        unit = ""
        cells = [barcode, name, f"{word.capitalize()} {isotype}".strip(), unit]
        expected = {
            "value": None,
            "comparator": None,
            "text": text,
            "detail": "; ".join(part for part in (isotype, comment) if part),
        }
    cells += [method, date_cell, comment]
    expected.update(
        barcode=barcode,
        analyte=spec.code,
        unit=spec.unit,
        method=method.strip(),
        measured_on=measured,
        reported_unit=unit.strip(),
    )
    return cells, expected


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        result_rows(), max_size=25, unique_by=lambda r: (r[1]["barcode"], r[1]["analyte"])
    ),
    title_rows=st.integers(0, 4),
    order=st.permutations(range(7)),
    sheet=st.sampled_from(["Sheet1", "Results", "Résultats labo"]),
)
def test_random_valid_rows_written_to_xlsx_are_read_back_exactly(rows, title_rows, order, sheet):
    table = [["Rapport"]] * title_rows + [
        [HEADER[i] for i in order],
        *([cells[i] for i in order] for cells, _ in rows),
    ]
    read_back = read(xlsx(table, title=sheet))
    assert len(read_back) == len(rows)
    for number, (result, (_, expected)) in enumerate(zip(read_back, rows, strict=True)):
        assert result.row == title_rows + 2 + number
        assert {key: getattr(result, key) for key in expected} == expected


# --------------------------------------------------------------------------- size


ROW_KINDS = [
    ("M-spike", "g/dL", lambda i: round(0.1 + (i % 97) / 10, 1)),
    ("VEGF", "pg/mL", lambda i: 100 + (i * 37) % 3000),
    ("Kappa libres", "mg/L", lambda i: f"{(i % 500) / 10 + 1:.1f}".replace(".", ",")),
    ("Free lambda", "mg/L", lambda i: f"< {1 + i % 3}"),
    ("IFE", "", lambda i: "Positive IgA lambda" if i % 2 else "Négatif"),
]


def big_workbook(rows: int, *, write_only: bool = False) -> bytes:
    """A result sheet of ``rows`` results, as a laboratory would send one.

    Written the way Excel writes (a recorded sheet dimension), unless ``write_only``.
    """
    table = [HEADER]
    for i in range(rows):
        analyte, unit, value = ROW_KINDS[i % len(ROW_KINDS)]
        barcode = f"PO{i // len(ROW_KINDS):07d}"
        table.append([barcode, analyte, value(i), unit, "Lab A", date(2026, 3, 2), None])
    return xlsx(table, title="Results", write_only=write_only)


def test_a_twenty_thousand_row_workbook_is_read_whole():
    rows = read(big_workbook(20_000, write_only=True))
    assert len(rows) == 20_000
    assert rows[0].value == 1.0 and rows[0].unit == "g/L"
    assert rows[-1].row == 20_001 and rows[-1].text == "positive"
    assert rows[-1].detail == "IgA lambda"


def main() -> None:
    """Time read_results on a 20,000-row workbook; print one JSON line.

    Wall-clock and CPU time of read_results, next to openpyxl alone streaming the same
    workbook (read_only, values_only) on the same run, and the peak of Python memory
    (tracemalloc) while reading. "excel_like" records the sheet's dimension as Excel and
    LibreOffice do; "no_dimension" is openpyxl's write-only output, which openpyxl parses
    twice on loading to find the size.
    """
    import argparse
    import json
    import statistics
    import time
    import tracemalloc

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, object] = {"rows": args.rows}
    for label, write_only in (("excel_like", False), ("no_dimension", True)):
        data = big_workbook(args.rows, write_only=write_only)
        ours, cpu, baseline = [], [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            results = read(data)
            ours.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            assert len(results) == args.rows
            start = time.perf_counter()
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            for _ in workbook.worksheets[0].iter_rows(values_only=True):
                pass
            workbook.close()
            baseline.append(time.perf_counter() - start)
        tracemalloc.start()
        read(data)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        figures[label] = {
            "bytes": len(data),
            "read_s_median": round(statistics.median(ours), 3),
            "read_s_min": round(min(ours), 3),
            "read_cpu_s_median": round(statistics.median(cpu), 3),
            "openpyxl_alone_s_median": round(statistics.median(baseline), 3),
            "ratio_to_openpyxl": round(statistics.median(ours) / statistics.median(baseline), 2),
            "peak_python_mib": round(peak / 2**20, 1),
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
