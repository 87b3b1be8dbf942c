"""A dataset as a SAS transport file, version 5 (the format regulators accept), written
by pyreadstat.

ReadStat stamps the file's header with the clock of the moment it writes; the export's
own creation time is written there instead, so that the same database exported with the
same creation time gives the same bytes.
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from biobank.exports.datasets import MAX_LABEL, MAX_NAME, Table

if TYPE_CHECKING:
    import pandas as pd

# The header's created and modified stamps: "07DEC26:03:01:25" (ddMMMyy:hh:mm:ss).
_STAMP = re.compile(rb"\d\d[A-Z]{3}\d\d:\d\d:\d\d:\d\d")
# The header ends where the variables' descriptions start.
_END_OF_HEADER = b"HEADER RECORD*******NAMESTR"
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def xpt_bytes(table: Table, created: datetime) -> bytes:
    """The table as an XPT v5 file: one variable per column, with its label; text of the
    longest value's length; the header dated ``created``."""
    # Imported here: pandas and pyreadstat take some 70 MB, which no web worker that
    # never writes an export should carry.
    import pandas as pd
    import pyreadstat

    dataset = table.dataset
    for name in (dataset.name, *dataset.names):
        if len(name) > MAX_NAME:
            raise ValueError(f"{name}: a transport file's names have at most {MAX_NAME} characters")
    frame = pd.DataFrame(
        {
            variable.name: _column(table.column(variable.name), variable.numeric)
            for variable in dataset.variables
        }
    )
    labels = [variable.label[:MAX_LABEL] for variable in dataset.variables]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{dataset.file_stem}.xpt"
        pyreadstat.write_xport(
            frame,
            str(path),
            file_label=dataset.label[:MAX_LABEL],
            column_labels=labels,
            table_name=dataset.name,
            file_format_version=5,
        )
        content = path.read_bytes()
    return _dated(content, created)


def _column(values: list, numeric: bool) -> pd.Series:
    import pandas as pd

    if numeric:
        return pd.Series([float("nan") if v is None else float(v) for v in values], dtype="float64")
    return pd.Series(values, dtype=object)


def stamp(moment: datetime) -> bytes:
    """A transport file's date stamp, in English whatever the machine's locale."""
    return (
        f"{moment.day:02d}{_MONTHS[moment.month - 1]}{moment.year % 100:02d}:"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    ).encode("ascii")


def _dated(content: bytes, created: datetime) -> bytes:
    end = content.find(_END_OF_HEADER)
    if end < 0:
        raise ValueError("not a transport file: no variable descriptions")
    header = _STAMP.sub(stamp(created), content[:end])
    return header + content[end:]
