"""Fonts shipped with the package, text measurement and ellipsis truncation.

Fonts are loaded by path from ``labels/fonts`` (DejaVu, Bitstream Vera licence in
``labels/fonts/LICENSE``) so output never depends on what a server has installed.
Pillow's BASIC layout engine is used on purpose: it is always available (no
libraqm) and gives the same glyph positions everywhere.
"""

import math
import unicodedata
from functools import cache, lru_cache
from pathlib import Path

from PIL import ImageFont

FONT_DIR = Path(__file__).with_name("fonts")
FONT_FILES = {
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "condensed": "DejaVuSansCondensed.ttf",
    "condensed-bold": "DejaVuSansCondensed-Bold.ttf",
}
ELLIPSIS = "\u2026"

# One dot of slack absorbs sub-pixel rounding of glyph positions and kerning.
_SLACK_DOTS = 1


@lru_cache(maxsize=64)
def load_font(name: str, size_px: int) -> ImageFont.FreeTypeFont:
    """The shipped font ``name`` (a key of FONT_FILES) at ``size_px`` pixels per em."""
    path = FONT_DIR / FONT_FILES[name]
    return ImageFont.truetype(str(path), size_px, layout_engine=ImageFont.Layout.BASIC)


@cache
def line_height_em(name: str) -> float:
    """Ascent + descent of a font as a fraction of its em size."""
    ascent, descent = load_font(name, 1000).getmetrics()
    return (ascent + descent) / 1000


def clean_text(text: str) -> str:
    """One printable line: control characters (tabs, newlines, ...) become spaces."""
    if text.isprintable():
        return text.strip()
    return "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text).strip()


class _GlyphTable:
    """Per-character advance and ink extents of one font size, filled lazily.

    Summing cached per-character values is ~10x faster than asking FreeType to
    lay out each candidate string, which matters when printing thousands of ZPL
    labels; the dot of slack covers the small kerning BASIC layout applies.
    """

    def __init__(self, font: ImageFont.FreeTypeFont):
        self._font = font
        self._glyphs: dict[str, tuple[float, int, int]] = {}

    def _glyph(self, char: str) -> tuple[float, int, int]:
        glyph = self._glyphs.get(char)
        if glyph is None:
            left, _, right, _ = self._font.getbbox(char, anchor="ls")
            glyph = (self._font.getlength(char), left, right)
            self._glyphs[char] = glyph
        return glyph

    def extent(self, text: str) -> tuple[int, int]:
        """Leftmost and rightmost dot (relative to the pen origin) the text covers."""
        if not text:
            return 0, 0
        known = self._glyphs
        glyphs = [known.get(c) or self._glyph(c) for c in text]
        pen = 0.0
        for advance, _, _ in glyphs[:-1]:
            pen += advance
        last_advance, _, last_ink_right = glyphs[-1]
        right = pen + max(last_advance, last_ink_right)
        return min(0, glyphs[0][1]), math.ceil(right) + _SLACK_DOTS

    def width(self, text: str) -> int:
        left, right = self.extent(text)
        return right - left


@lru_cache(maxsize=64)
def glyph_table(font_name: str, size_px: int) -> _GlyphTable:
    """Cached measuring table for a font at a pixel size."""
    return _GlyphTable(load_font(font_name, size_px))


def fit_text(text: str, font_name: str, size_px: int, max_width: int, side: str = "end") -> str:
    """Return ``text`` if it fits in ``max_width`` dots, else a truncated copy.

    Truncation keeps as many characters as fit and marks the cut with "…" at
    the end (``side="end"``) or at the start (``side="start"``, which keeps the
    tail). Returns "" when not even the ellipsis fits.
    """
    return fit_and_measure(text, font_name, size_px, max_width, side)[0]


def fit_and_measure(
    text: str, font_name: str, size_px: int, max_width: int, side: str = "end"
) -> tuple[str, int, int]:
    """``fit_text`` plus the fitted text's extent (left, right) from its pen origin."""
    text = clean_text(text)
    table = glyph_table(font_name, size_px)
    left, right = table.extent(text)
    if right - left <= max_width:
        return text, left, right
    for keep in range(len(text) - 1, 0, -1):
        if side == "start":
            candidate = ELLIPSIS + text[len(text) - keep :].lstrip()
        else:
            candidate = text[:keep].rstrip() + ELLIPSIS
        left, right = table.extent(candidate)
        if right - left <= max_width:
            return candidate, left, right
    left, right = table.extent(ELLIPSIS)
    return (ELLIPSIS, left, right) if right - left <= max_width else ("", 0, 0)
