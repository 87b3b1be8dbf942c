"""`flask notifications ...`: deliver the outbox."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from biobank.notifications import services
from biobank.transaction import unit_of_work

notifications_cli = AppGroup("notifications", help="The notification outbox.")


@notifications_cli.command("deliver")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(min=1))
@unit_of_work
def deliver(limit):
    """Send the pending messages, oldest first, through the configured notifier."""
    notifier = services.notifier_from_config(current_app.config)
    report = services.deliver_pending(notifier, limit=limit)
    line = f"{report.sent} sent, {report.failed} failed, {report.held} held"
    if report.gave_up:
        line += f" ({report.gave_up} given up: no more attempts)"
    if not notifier.delivers:
        line += " (e-mail delivery is not configured: NOTIFIER is outbox)"
    click.echo(line)


@notifications_cli.command("list")
@click.option("--pending", is_flag=True, help="Only the messages not sent yet.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
def list_messages(pending, limit):
    """List the outbox, newest first."""
    page = services.list_outbox(limit=limit, pending_only=pending)
    for m in page.items:
        if m.sent_at:
            state = "sent"
        elif m.gave_up_at:
            state = f"gave up×{m.attempts}"
        elif m.last_error:
            state = f"failed×{m.attempts}"
        else:
            state = "pending"
        written = m.created_at.isoformat(timespec="seconds")
        click.echo(
            f"{m.id:6} {written} {state:10} {m.event:22} {m.recipients or '-'} | {m.subject}"
        )
        if m.last_error and not m.sent_at:
            click.echo(f"{'':6} {m.last_error}")
    if page.total > len(page.items):
        click.echo(f"({len(page.items)} of {page.total} shown)")
