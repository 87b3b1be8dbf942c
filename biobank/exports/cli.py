"""flask --app wsgi export sdtm FOLDER."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from biobank.db import utcnow
from biobank.exports import sdtm
from biobank.transaction import unit_of_work

export_cli = AppGroup("export", help="Export the trial's data (CDISC SDTM).")


@export_cli.command("sdtm")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@unit_of_work
def export_sdtm(folder: Path):
    """Write the SDTM datasets (LB, BE, BS, RELSPEC) of every centre into FOLDER, each as
    a SAS transport file (.xpt) and as CSV, with the define document (define.html).
    Exits 1, writing nothing, when a result's analyte has no SDTM term."""
    package = sdtm.build(actor=None, created=utcnow())
    files = package.files  # every file is made before the first is written
    for path in package.write(folder):
        click.echo(f"{path} ({len(files[path.name])} bytes)")
    for table in package.tables:
        click.echo(f"{table.dataset.name}: {len(table.rows)} records")
