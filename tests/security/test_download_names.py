"""Content-Disposition injection: a download's name is built from what people typed (an
analyte, a participant's code, a label template), so it must never carry a quote, a ";",
a line break or a second ``filename`` into the header (RFC 6266 / RFC 5987)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biobank import web
from tests import factories

SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[a-z0-9]{1,10})?")
FILENAME = re.compile(r'(?:^|;)\s*filename="([^"]*)"')
FILENAME_STAR = re.compile(r"(?:^|;)\s*filename\*=UTF-8''([A-Za-z0-9%._~!$&+^`|#-]+)$")


def parameters(header: str) -> list[str]:
    """The header's parameter names, in order."""
    return [part.split("=", 1)[0].strip() for part in header.split(";")[1:]]


def check(header: str, extension: str) -> tuple[str, str]:
    """The header is well formed: one disposition, exactly one ``filename`` with only safe
    characters and the expected extension, at most one ``filename*``; nothing injected.
    Returns (ASCII name, full name)."""
    assert "\r" not in header and "\n" not in header and "\x00" not in header
    assert header.split(";")[0] in ("inline", "attachment")
    names = parameters(header)
    assert names.count("filename") == 1, header
    assert set(names) <= {"filename", "filename*"} and names.count("filename*") <= 1, header
    plain = FILENAME.search(header)[1]
    assert SAFE_NAME.fullmatch(plain), header
    assert plain.endswith(extension), header
    full = plain
    if "filename*" in names:
        full = unquote(FILENAME_STAR.search(header)[1], errors="strict")
        assert full.endswith(extension)
        assert not re.search(r"[\"\\;/\x00-\x1f\x7f]", full), header
    return plain, full


@pytest.fixture
def viewer(db, sites, login_as):
    factories.participant("PAR", code="PAR-001")
    db.session.commit()
    return login_as("admin")


ATTACKS = [
    'x";%20filename="evil.html',
    "x%22;%20filename=%22evil.html",
    "x;%20filename*=UTF-8''evil.html",
    "x%0D%0ASet-Cookie:%20a=b",
    "x%0D%0A%0D%0A<script>",
    "..%2F..%2Fetc%2Fpasswd",
    'x"%20inline;%20filename="a.exe',
    "%E2%80%AEgnp.exe",  # right-to-left override: "evil.exe" shown as "exe.png"
]


def test_the_reported_attack_gives_one_safe_filename(viewer):
    response = viewer.get('/participants/PAR-001/results.png?analyte=x";%20filename="evil.html')
    assert response.status_code == 200
    header = response.headers["Content-Disposition"]
    plain, _ = check(header, ".png")
    assert header.startswith("inline;")
    assert "evil.html" not in plain and '"evil' not in header


@pytest.mark.parametrize("analyte", ATTACKS)
def test_odd_analytes_give_one_safe_filename(viewer, analyte):
    response = viewer.get(f"/participants/PAR-001/results.png?analyte={analyte}")
    assert response.status_code == 200
    check(response.headers["Content-Disposition"], ".png")


def test_a_name_in_another_language_keeps_its_letters_in_filename_star(viewer):
    response = viewer.get(f"/participants/PAR-001/results.png?analyte={quote('résultats')}")
    header = response.headers["Content-Disposition"]
    plain, full = check(header, ".png")
    assert plain == "PAR-001-resultats.png"
    assert full == "PAR-001-résultats.png"
    assert "filename*=UTF-8''PAR-001-r%C3%A9sultats.png" in header


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ('LIM-001-x"; filename="evil.html.png', "LIM-001-x-filename-evil-html.png"),
        ("a\r\nSet-Cookie: x.png", "a-Set-Cookie-x.png"),
        ("..\\..\\etc/passwd", "etc-passwd"),
        ("日本.png", "download.png"),
        ("", "download"),
        ("study-results.csv", "study-results.csv"),
        ("manifest-S00003.XLSX", "manifest-S00003.xlsx"),
    ],
)
def test_download_name_reduces_the_stem_to_a_slug(given, expected):
    assert web.download_name(given)[0] == expected


@settings(max_examples=300)
@given(st.text(max_size=60), st.sampled_from([".png", ".pdf", ".csv", ".xlsx", ".zpl"]))
def test_any_name_gives_a_well_formed_header(stem, extension):
    for inline in (True, False):
        check(web.content_disposition(stem + extension, inline=inline), extension)


def test_every_content_disposition_is_built_by_the_one_helper():
    root = Path(__file__).resolve().parents[2] / "biobank"
    built_by_hand = [
        f"{path.relative_to(root)}:{number}"
        for path in root.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"[\"']Content-Disposition[\"']", line) and "content_disposition(" not in line
    ]
    assert not built_by_hand, built_by_hand
