"""flask protocol … and flask site …"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from biobank.sites import services as sites
from biobank.study import services
from biobank.study.protocol import ProtocolError, default_protocol_path, parse_protocol
from biobank.transaction import unit_of_work

protocol_cli = AppGroup("protocol", help="The trial protocol: arms, visits, sample plan.")
site_cli = AppGroup("site", help="Recruiting centres and the central biobank.")


def shipped_or_configured_protocol() -> Path:
    configured = current_app.config.get("PROTOCOL_FILE")
    return Path(configured) if configured else default_protocol_path()


@protocol_cli.command("load")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@unit_of_work
def load(file):
    """Validate FILE (default: the configured or shipped protocol) and load it."""
    path = Path(file) if file else shipped_or_configured_protocol()
    source = path.read_bytes()
    try:
        spec = parse_protocol(source)
    except ProtocolError as err:
        raise click.ClickException(f"{path}: {err}") from err
    result = services.load_protocol(spec, source.decode("utf-8"))
    state = "loaded" if result.created else "already loaded, nothing changed"
    click.echo(
        f"{spec.study_code} protocol version {spec.version} {state} "
        f"({len(spec.arms)} arms, {len(spec.visits)} visits, sha256 {spec.content_hash[:12]})"
    )


@protocol_cli.command("show")
def show():
    """Print the schedule and sample plan of the current protocol."""
    protocol = services.current_protocol()
    click.echo(f"{protocol.study_code} v{protocol.version}: {protocol.title}")
    for definition in protocol.visit_definitions:
        arms = ",".join(a.code for a in definition.arms)
        plan = "; ".join(
            f"{p.tube_type} {p.aliquots}×{p.volume_ul} µL" for p in definition.sample_plans
        )
        click.echo(
            f"  {definition.code:5} day {definition.nominal_day:4} "
            f"(-{definition.window_before_days}/+{definition.window_after_days}) "
            f"[{arms}] {plan}"
        )


@site_cli.command("create")
@click.argument("code")
@click.argument("name")
@click.option("--timezone", default="Europe/Paris", show_default=True)
@click.option("--central", is_flag=True, help="The central biobank.")
@unit_of_work
def create_site(code, name, timezone, central):
    """Create the site CODE."""
    site = sites.create_site(code, name, timezone=timezone, is_central=central, actor=None)
    click.echo(f"created site {site.code}")


@site_cli.command("list")
def list_sites():
    for site in sites.list_sites():
        click.echo(
            f"{site.code:8} {site.name} ({site.timezone}){' central' if site.is_central else ''}"
        )
