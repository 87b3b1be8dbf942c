"""Command-line entry points: each domain's command group (each command is one unit of
work, see biobank/transaction.py)."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    from biobank.assays.cli import assay_cli
    from biobank.auth.cli import user_cli
    from biobank.backup.cli import backup_cli
    from biobank.custody.cli import custody_cli
    from biobank.demo import demo_cli
    from biobank.exports.cli import export_cli
    from biobank.inventory.cli import inventory_cli
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
        inventory_cli,
        export_cli,
        backup_cli,
        demo_cli,
    )
    for group in groups:
        app.cli.add_command(group)
