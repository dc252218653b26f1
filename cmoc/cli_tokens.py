"""`cmoc tokens`: create, list and revoke API tokens."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

tokens_cli = AppGroup("tokens", help="Manage API bearer tokens.")


@tokens_cli.command("create")
@click.argument("username")
@click.option("--name", default="api", show_default=True, help="A label for the token.")
def create_command(username: str, name: str) -> None:
    """Create a token for USERNAME; it is printed once, alone on the last line."""
    from cmoc.services import ValidationError
    from cmoc.services.tokens import create_token
    from cmoc.timeutil import utcnow

    try:
        row, token = create_token(username=username, name=name, now=utcnow())
    except ValidationError as exc:
        for message in exc.errors.values():
            click.echo(f"error: {message}", err=True)
        sys.exit(1)
    click.echo(f"token #{row.id} {row.name!r} for {row.user.username} ({row.user.role}); "
               "store it now, it is not shown again:")
    click.echo(token)


@tokens_cli.command("list")
def list_command() -> None:
    """List tokens (prefix, owner, state); never the tokens themselves."""
    from cmoc.services.tokens import list_tokens
    from cmoc.timeutil import fmt_utc

    for row in list_tokens():
        state = f"revoked {fmt_utc(row.revoked_at)}" if row.revoked_at else "active"
        click.echo(f"#{row.id}\t{row.prefix}…\t{row.user.username}\t{row.name}\t{state}\t"
                   f"last used {fmt_utc(row.last_used_at)}")


@tokens_cli.command("revoke")
@click.argument("token_id", type=int)
def revoke_command(token_id: int) -> None:
    """Revoke token #TOKEN_ID."""
    from cmoc.services import ValidationError
    from cmoc.services.tokens import revoke_token
    from cmoc.timeutil import utcnow

    try:
        row = revoke_token(token_id=token_id, now=utcnow())
    except ValidationError as exc:
        click.echo(f"error: {exc.errors['token']}", err=True)
        sys.exit(1)
    click.echo(f"revoked #{row.id} ({row.prefix}…)")
