"""What every symbology shares: allowed code characters, minimum module, quiet zone.

Code 128 lives in ``code128``, DataMatrix in ``datamatrix``; both give one entry
per *module*, ``sizing`` decides how many printer dots a module gets, and
``raster``/``zpl`` draw or describe it.
"""

from labels.errors import LabelError

# Smallest module (X-dimension) we accept, per symbology, in millimetres. Code 128
# at 0.125 mm (5 mil) is the usual high-density limit of tube scanners and one
# dot of a 203 dpi head; DataMatrix at 0.25 mm is what 2D rack/tube readers read
# reliably on thermal-transfer cryo labels.
MIN_MODULE_MM = {"code128": 0.125, "datamatrix": 0.25}
# Quiet zone in modules on each side, per the symbology specifications.
QUIET_ZONE_MODULES = {"code128": 10, "datamatrix": 1}

# Codes are identifiers: printable ASCII without space. ^ and ~ are ZPL command
# prefixes and > is ZPL's Code 128 escape, so they are refused rather than risk a
# printer encoding something other than what the PNG/PDF shows.
CODE_CHARACTERS = frozenset(chr(c) for c in range(0x21, 0x7F)) - set("^~>")


def check_code(code: str) -> None:
    """Raise LabelError unless ``code`` only uses characters every output can encode."""
    if not code:
        raise LabelError("the code to encode is empty")
    bad = sorted(set(code) - CODE_CHARACTERS)
    if bad:
        raise LabelError(
            f"code {code!r} contains {''.join(bad)!r}; codes may use printable ASCII "
            "except space, ^, ~ and >"
        )
