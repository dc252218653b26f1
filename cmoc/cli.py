"""The `cmoc` command: Flask's CLI on the app factory, plus cmoc's own commands."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask
from flask.cli import AppGroup, FlaskGroup

from cmoc.enums import Role


def register_commands(app: Flask) -> None:
    app.cli.add_command(users_cli)


users_cli = AppGroup("users", help="Manage local accounts.")


@users_cli.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(name: str, role: str, password_stdin: bool) -> None:
    """Create a local account NAME with ROLE."""
    from cmoc.services import ValidationError
    from cmoc.services.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(username=name, password=password, role=role)
    except ValidationError as exc:
        for message in exc.errors.values():
            click.echo(f"error: {message}", err=True)
        sys.exit(1)
    click.echo(f"created {user.username} ({user.role})")


def _create_app() -> Flask:
    from cmoc import create_app

    app = create_app()
    # SQLite lives in the instance folder; make sure it exists before anything opens it.
    os.makedirs(app.instance_path, exist_ok=True)
    return app


main = FlaskGroup(create_app=_create_app, help="cmoc: draft, remind and publish incident updates.")
