"""`flask assay ...`: import plate-reader files and result sheets."""

from __future__ import annotations

from flask.cli import AppGroup

assay_cli = AppGroup("assay", help="Assay runs and results.")
