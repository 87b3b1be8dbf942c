"""Command-line entry points: each domain's command group, run as one unit of work."""

from __future__ import annotations

from functools import wraps

import click
from flask import Flask

from biobank.errors import DomainError
from biobank.extensions import db


def unit_of_work(command):
    """Commit once when the command succeeds; on a refused rule, write nothing and exit 1."""

    @wraps(command)
    def run(*args, **kwargs):
        try:
            result = command(*args, **kwargs)
        except DomainError as err:
            db.session.rollback()
            raise click.ClickException(str(err.message)) from err
        except Exception:
            db.session.rollback()
            raise
        db.session.commit()
        return result

    return run


def register_commands(app: Flask) -> None:
    from biobank.assays.cli import assay_cli
    from biobank.auth.cli import user_cli
    from biobank.custody.cli import custody_cli
    from biobank.demo import demo_cli
    from biobank.notifications.cli import notifications_cli
    from biobank.printing.cli import printer_cli, template_cli
    from biobank.storage.cli import storage_cli
    from biobank.study.cli import protocol_cli, site_cli

    groups = (
        user_cli,
        protocol_cli,
        site_cli,
        custody_cli,
        storage_cli,
        printer_cli,
        template_cli,
        notifications_cli,
        assay_cli,
        demo_cli,
    )
    for group in groups:
        app.cli.add_command(group)
