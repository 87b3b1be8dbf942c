"""flask backup dump FILE | check DUMP [--digest FILE] [--server URL] [--keep].

``dump`` writes a PostgreSQL custom-format dump and its digest (FILE.digest.json): exit 0
when the dump is written and every custody chain is intact, 1 otherwise. ``check`` is the
restore drill: one line per check (OK, FAILED or SKIPPED), then the figures as one JSON
line; exit 0 only when every check holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from biobank.backup import services

backup_cli = AppGroup(
    "backup", help="PostgreSQL dumps filed with their custody digest, and the restore drill."
)


@backup_cli.command("dump")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def dump(file: Path):
    """pg_dump -Fc of the application's database into FILE, the custody chains verified
    and their digest written to FILE.digest.json (with the dump's SHA-256 and the alembic
    revision), all from one snapshot. File the digest away from the dump."""
    try:
        result = services.dump(current_app.config["SQLALCHEMY_DATABASE_URI"], file)
    except services.BackupError as err:
        raise click.ClickException(str(err)) from err
    filed, report = result.filed, result.report
    click.echo(f"dump written to {result.path} ({filed['dump_bytes']} bytes)")
    click.echo(f"checked {report.aliquots} aliquots, {report.events} events")
    click.echo(f"digest {filed['root']} written to {result.digest_path}")
    if not report.intact:
        click.echo(
            f"BROKEN: {report.broken_chains} chain(s); first: {report.first_break}", err=True
        )
        raise SystemExit(1)
    click.echo("every chain is intact")


@backup_cli.command("check")
@click.argument("dump_file", metavar="DUMP", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--digest",
    "digest_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The digest filed when the dump was made (default: DUMP.digest.json).",
)
@click.option(
    "--server",
    metavar="URL",
    help="Restore on this PostgreSQL server, as a role that may create databases "
    "(default: the application's database server and role).",
)
@click.option("--keep", is_flag=True, help="Keep the scratch database for inspection.")
def check(dump_file: Path, digest_file: Path | None, server: str | None, keep: bool):
    """The restore drill: restore DUMP into a scratch database, check its migrations,
    schema, custody chains and digest, then drop it. Exit 0 only if everything holds."""
    try:
        drill = services.check(
            dump_file,
            server_url=server or current_app.config["SQLALCHEMY_DATABASE_URI"],
            migrations=Path(current_app.extensions["migrate"].directory),
            digest_path=digest_file,
            keep=keep,
            on_step=lambda step: click.echo(str(step)),
        )
    except services.BackupError as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps(drill.figures()))
    if not drill.ok:
        raise SystemExit(1)
