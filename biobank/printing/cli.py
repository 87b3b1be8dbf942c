"""flask printer … and flask label-template …"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from biobank.printing import services
from biobank.transaction import unit_of_work

printer_cli = AppGroup("printer", help="Network label printers (raw ZPL, Zebra port 9100).")
template_cli = AppGroup("label-template", help="Label templates and sheet layouts.")


@printer_cli.command("add")
@click.argument("name")
@click.argument("host")
@click.option("--port", default=9100, show_default=True, type=int)
@click.option("--dpi", default=203, show_default=True, type=click.Choice(["203", "300", "600"]))
@click.option("--location", default="", help="Where it stands, e.g. 'bench 2, room 114'.")
@unit_of_work
def add(name, host, port, dpi, location):
    """Declare the printer NAME at HOST."""
    printer = services.add_printer(
        name, host, port=port, dpi=int(dpi), location=location, actor=None
    )
    click.echo(f"printer {printer.name} at {printer.host}:{printer.port}, {printer.dpi} dpi")


@printer_cli.command("list")
def list_printers():
    for printer in services.list_printers():
        click.echo(
            f"{printer.name:20} {printer.host}:{printer.port} {printer.dpi} dpi {printer.location}"
        )


@template_cli.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@unit_of_work
def load(file):
    """Check the TOML template FILE and save it (replacing one of the same name)."""
    info = services.save_template(Path(file).read_text(encoding="utf-8"), actor=None)
    click.echo(
        f"label template {info.name} saved ({info.kind}, {info.width_mm} × "
        f"{info.height_mm} mm, {', '.join(map(str, info.dpis))} dpi)"
    )


@template_cli.command("list")
def list_templates():
    for info in services.list_templates():
        origin = "shipped" if info.shipped else "added"
        click.echo(f"{info.name:16} {info.kind:6} {origin:8} {info.description}")
