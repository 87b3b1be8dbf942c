"""The package stays a pure rendering library with a small public API."""

import subprocess
import sys
from pathlib import Path

import pytest

import labels

ROOT = Path(labels.__file__).resolve().parent.parent


def test_public_api_is_small_and_documented():
    assert sorted(labels.__all__) == [
        "LabelData",
        "LabelError",
        "Sheet",
        "Template",
        "contact_sheet_size",
        "load_template",
        "load_template_file",
        "parse_template",
        "render_contact_sheet",
        "render_pages",
        "render_pdf",
        "render_png",
        "render_zpl",
        "template_names",
    ]
    for name in labels.__all__:
        assert getattr(labels, name).__doc__, name
        assert name in labels.__doc__ or name in ("Sheet", "Template")


def test_importing_labels_pulls_in_no_application_code():
    code = (
        "import sys, labels; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'biobank', 'flask', 'sqlalchemy', 'tests'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_label_error_is_a_value_error():
    assert issubclass(labels.LabelError, ValueError)


def test_label_outputs_refuse_a_sheet():
    sheet = labels.load_template("sheet-a4")
    data = labels.LabelData("ABC")
    with pytest.raises(TypeError, match="Template"):
        labels.render_png(sheet, data, 300)
    with pytest.raises(TypeError, match="Template"):
        labels.render_zpl(sheet, [data], 300)
