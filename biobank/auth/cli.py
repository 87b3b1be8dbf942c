"""flask user …: accounts and API tokens from the command line.

The command line acts as the system (``actor=None``): whoever runs it administers the
server, so it reaches every account, creates the first administrator and issues tokens to
any account. The audit records its changes with no actor.
"""

from __future__ import annotations

import secrets

import click
from flask.cli import AppGroup

from biobank.auth import services
from biobank.auth.roles import Role
from biobank.transaction import unit_of_work

user_cli = AppGroup("user", help="Accounts and API tokens.")


@user_cli.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--password", help="Omit to have a random one generated and printed once.")
@click.option("--site", "site_code", help="Bind the user to this centre's participants only.")
@click.option("--email", help="Where the account's notifications are sent.")
@unit_of_work
def create(name, role, password, site_code, email):
    """Create the account NAME."""
    shown = password is None
    password = password or secrets.token_urlsafe(12)
    user = services.create_user(name, role, password, site_code=site_code, email=email, actor=None)
    click.echo(f"created {user.username} ({user.role}{', site ' + site_code if site_code else ''})")
    if shown:
        click.echo(f"password: {password}")


@user_cli.command("password")
@click.argument("name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--revoke-tokens", is_flag=True, help="Revoke NAME's API tokens as well.")
@unit_of_work
def set_password(name, password, revoke_tokens):
    """Set NAME's password; every session of NAME ends."""
    services.set_password(name, password, revoke_tokens=revoke_tokens, actor=None)
    click.echo(f"password of {name} changed; their sessions have ended")


@user_cli.command("token")
@click.argument("name")
@unit_of_work
def token(name):
    """Issue a new API token for NAME. It is printed once, as the last line."""
    secret = services.issue_token(name, actor=None)
    click.echo(f"API token for {name} (shown once; send it as 'Authorization: Bearer …'):")
    click.echo(secret)


@user_cli.command("revoke-tokens")
@click.argument("name")
@unit_of_work
def revoke(name):
    """Revoke every API token of NAME."""
    click.echo(f"{services.revoke_tokens(name, actor=None)} token(s) revoked")


@user_cli.command("list")
def list_users():
    """List the accounts."""
    for user in services.list_users(actor=None):
        site = user.site.code if user.site else "-"
        state = "active" if user.active else "off"
        click.echo(f"{user.username:24} {user.role:12} {site:8} {state:6} {user.email or '-'}")
