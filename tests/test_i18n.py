"""Translations: the catalogues are complete and sound, and pages follow the language.

The extraction is the project's own (babel.cfg and the keywords of `make extract-messages`),
so a string marked in a template or in Python code and not yet translated fails here with
its msgid. After changing strings: `make extract-messages`, translate the new entries in
biobank/translations/fr/LC_MESSAGES/messages.po, then `make translations`.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from datetime import date
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from tests import factories
from tests.pages import refused

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "biobank" / "translations"
LANGUAGES = ("en", "fr")
NBSP = "\u00a0"

# A %-conversion as Python formats it: %(name)s, %d, %%... A "%" matching none of these
# (as in "50 % des") is kept whole, so that it shows up as a difference.
CONVERSION = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[hlL]?[diouxXeEfFgGcrsa%]|%"
)


def po_path(lang: str) -> Path:
    return TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"


def read_catalogue(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def extraction_keywords() -> list[str]:
    """The -k keywords of `make extract-messages`, added to Babel's defaults (_, gettext,
    ngettext...)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nextract-messages:", 1)[1].split("\n\n", 1)[0]
    keywords = re.findall(r"-k\s+(\S+)", recipe)
    assert keywords, "no -k keyword found in the extract-messages rule of the Makefile"
    return keywords


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """The messages marked in the code today, with their locations."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    argv = ["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-o", str(pot)]
    for keyword in extraction_keywords():
        argv += ["-k", keyword]
    CommandLineInterface().run([*argv, str(ROOT)])
    catalogue = read_catalogue(pot)
    assert len(catalogue) > 0, "the extraction found no message at all"
    return catalogue


@pytest.fixture(scope="module")
def compiled():
    """Compile the catalogues when their .mo is missing or stale, as `make translations`
    does (the .mo files are build products, ignored by git), so that the pages rendered
    below use the translations of the .po files."""
    for lang in LANGUAGES:
        buffer = io.BytesIO()
        write_mo(buffer, read_catalogue(po_path(lang)))
        mo = po_path(lang).with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != buffer.getvalue():
            fd, tmp = tempfile.mkstemp(dir=mo.parent, suffix=".mo.tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(buffer.getvalue())
            os.replace(tmp, mo)


def msgid_text(message) -> str:
    return message.id[0] if isinstance(message.id, tuple | list) else message.id


def translations_of(message) -> list[str]:
    strings = message.string
    return list(strings) if isinstance(strings, tuple | list) else [strings]


def placeholders(text: str) -> set[str]:
    return {m.group(0) for m in CONVERSION.finditer(text)}


# --- the extraction ----------------------------------------------------------------------


def test_extraction_covers_templates_and_python_code(extracted):
    found = {Path(filename).as_posix() for m in extracted for filename, _line in m.locations}
    # Not after ")": a regular expression such as r"(label|title)_(..)" is no call.
    marked = re.compile(r"(?<![\w.)])(?:_|_l|gettext|ngettext|lazy_gettext)\(")
    sources = sorted(ROOT.glob("biobank/**/templates/**/*.html")) + sorted(
        ROOT.glob("biobank/**/*.py")
    )
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in sources
        if marked.search(p.read_text(encoding="utf-8"))
    }
    assert any(name.endswith(".html") for name in expected)
    assert any(name.endswith(".py") for name in expected)
    missed = {name for name in expected if not any(f.endswith(name) for f in found)}
    assert not missed, f"files with marked strings that the extraction skipped: {sorted(missed)}"
    ids = {msgid_text(m) for m in extracted if m.id}
    assert "Log in" in ids  # gettext in a template
    assert "User name" in ids  # lazy_gettext imported as _l, in a form
    assert "Unknown user name or wrong password." in ids  # gettext imported as _, in a view
    plural = extracted.get(("%(num)d participant", "%(num)d participants"))
    assert plural is not None and plural.pluralizable  # ngettext in a template


# --- the catalogues ----------------------------------------------------------------------


def test_french_catalogue_translates_every_extracted_message(extracted):
    french = read_catalogue(po_path("fr"))
    problems = []
    for message in extracted:
        if not message.id:
            continue
        entry = french.get(message.id, context=message.context)
        if entry is None:
            problems.append(f"missing:    {message.id!r}")
        elif entry.fuzzy:
            problems.append(f"fuzzy:      {message.id!r}")
        elif message.pluralizable and (
            not entry.pluralizable or len(translations_of(entry)) != french.num_plurals
        ):
            problems.append(f"plural:     {message.id!r} needs {french.num_plurals} forms")
        elif not all(s.strip() for s in translations_of(entry)):
            problems.append(f"empty:      {message.id!r}")
    assert not problems, (
        f"{len(problems)} message(s) of the code lack a French translation in "
        f"{po_path('fr').relative_to(ROOT)} (run `make extract-messages`, translate them, "
        "then `make translations`):\n" + "\n".join(problems)
    )


def test_english_catalogue_holds_every_extracted_message(extracted):
    # Empty msgstr are fine in English (gettext falls back to the msgid), but the entry
    # must exist and must not be fuzzy, or `pybabel compile` drops what it does hold.
    english = read_catalogue(po_path("en"))
    problems = [
        repr(m.id)
        for m in extracted
        if m.id and ((entry := english.get(m.id, context=m.context)) is None or entry.fuzzy)
    ]
    assert not problems, "missing or fuzzy in the English catalogue:\n" + "\n".join(problems)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_the_placeholders_of_their_msgid(lang):
    catalogue = read_catalogue(po_path(lang))
    problems = []
    for message in catalogue:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        expected = placeholders(ids[-1])
        for form, text in enumerate(translations_of(message)):
            if text and placeholders(text) != expected:
                problems.append(
                    f"{ids[0]!r} [{form}]: {sorted(placeholders(text))} "
                    f"instead of {sorted(expected)}"
                )
    assert not problems, f"{lang}: placeholders changed by the translation:\n" + "\n".join(problems)


def test_french_translations_follow_french_typography():
    french = read_catalogue(po_path("fr"))
    problems = [
        f"{msgid_text(m)!r}: {text!r}"
        for m in french
        if m.id
        for text in translations_of(m)
        if re.search(r" [:;!?»]|« ", text)
    ]
    assert not problems, (
        "a no-break space (U+00A0 or U+202F), not a plain space, goes before : ; ! ? » "
        "and after «:\n" + "\n".join(problems)
    )


# --- the pages ---------------------------------------------------------------------------


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_pages_are_in_english_by_default(compiled, client):
    html = page(client.get("/login"))
    assert '<html lang="en">' in html
    assert "<title>Log in · Biobank</title>" in html


def test_the_language_form_switches_pages_to_french(compiled, client):
    response = client.post("/language", data={"lang": "fr", "next": "/login"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/login")
    html = page(client.get("/login"))
    assert '<html lang="fr">' in html
    assert "<title>Connexion · Biobanque</title>" in html
    assert "Nom d’utilisateur" in html  # a lazy_gettext form label
    assert "Log in" not in html


def test_the_browser_language_is_followed(compiled, client):
    html = page(client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}))
    assert "<title>Connexion · Biobanque</title>" in html


def test_flashed_messages_are_translated(compiled, client):
    client.post("/language", data={"lang": "fr", "next": "/login"})
    response = client.post("/login", data={"username": "nobody", "password": "wrong password"})
    assert "Nom d’utilisateur inconnu ou mot de passe incorrect." in refused(client, response)


@pytest.fixture
def participant(db, sites):
    found = factories.participant("LIM", "G2", code="LIM-001", included_on=date(2026, 1, 5))
    db.session.commit()
    return found


def test_plural_forms_follow_the_language(compiled, participant, login_as):
    client = login_as("technician")
    assert "1 participant<" in page(client.get("/participants"))
    client.post("/language", data={"lang": "fr", "next": "/participants"})
    assert f"1{NBSP}participant<" in page(client.get("/participants"))


def facts(html: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", html))


def test_dates_follow_the_language(compiled, participant, login_as):
    client = login_as("technician")
    english = page(client.get("/participants/LIM-001"))
    assert facts(english)["Included on"] == "Jan 5, 2026"

    response = client.post("/language", data={"lang": "fr", "next": "/participants/LIM-001"})
    assert response.status_code == 303
    french = page(client.get("/participants/LIM-001"))
    assert facts(french)["Date d’inclusion"] == "5 janv. 2026"
    assert "Calendrier des visites" in french
    assert "Jan 5, 2026" not in french
