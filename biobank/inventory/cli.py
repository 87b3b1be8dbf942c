"""flask --app wsgi inventory template FILE | import FILE [--apply] [--site CODE] [--json].

``import`` without ``--apply`` is a preview that writes nothing; with it, the file is
applied in one transaction (by the command line, "system" in the custody records). Exit
0 when the file has no problem (and, with --apply, was applied), 1 when it has problems
(nothing written) or cannot be read.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup
from flask_babel import force_locale

from biobank.inventory import services, template
from biobank.transaction import unit_of_work

inventory_cli = AppGroup("inventory", help="Import an existing inventory from a spreadsheet.")


@inventory_cli.command("template")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option(
    "--lang",
    type=click.Choice(["en", "fr"]),
    default="en",
    show_default=True,
    help="The language of the headers and of the instructions.",
)
def write_template(file: Path, lang: str):
    """Write the inventory template (an .xlsx with its instructions sheet) to FILE."""
    with force_locale(lang):
        file.write_bytes(template.workbook())
    click.echo(f"template written to {file}")


@inventory_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--apply", "apply_", is_flag=True, help="Write the inventory (else a preview).")
@click.option("--site", "site_code", metavar="CODE", help="Import for this centre only.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@unit_of_work
def import_inventory(file: Path, apply_: bool, site_code: str | None, as_json: bool):
    """Check the inventory FILE (.xlsx or .csv) against the bank and say what it would
    create; with --apply, create it, all or nothing."""
    data = file.read_bytes()
    run = services.apply if apply_ else services.preview
    try:
        report = run(data, file.name, actor=None, site_code=site_code)
    except services.ImportRefused as err:
        _print(err.report, as_json)
        raise
    _print(report, as_json)
    if report.errors:
        raise click.exceptions.Exit(1)


def _print(report: services.Report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    created = ", ".join(f"{count} {name}" for name, count in report.created.items())
    verb = "created" if report.applied else "would create"
    click.echo(f"{report.filename}: {report.rows} rows; {verb}: {created}")
    if report.ignored_columns:
        click.echo(f"ignored columns: {', '.join(report.ignored_columns)}")
    for problem in report.errors:
        click.echo(f"error   row {problem.row}, {problem.column}: {problem.message}")
    for note in report.warnings:
        click.echo(f"warning row {note.row}, {note.column}: {note.message}")
