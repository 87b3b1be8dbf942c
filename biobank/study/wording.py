"""The protocol's own words (its title, arm, visit and tube names, descriptions) are in the
trial's language (``PROTOCOL_LANGUAGE``: English), whatever the page's: a French page marks
them ``lang="en"``, so that a screen reader speaks them as English and a browser translates
or hyphenates them as English, while the catalogue's words around them stay French."""

from __future__ import annotations

from flask import current_app
from markupsafe import Markup, escape

from biobank.dates import page_language


def protocol_lang() -> str | None:
    """The protocol's language where it differs from the page's; None where it does not."""
    language = current_app.config["PROTOCOL_LANGUAGE"]
    return None if language == page_language() else language


def from_protocol(text) -> Markup:
    """``text`` of the protocol, marked with its language where the page's differs."""
    lang = protocol_lang()
    if lang is None:
        return escape(text)
    return Markup('<span lang="{}">{}</span>').format(lang, text)
