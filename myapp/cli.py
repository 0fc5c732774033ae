"""Commands for operators: `flask --app myapp users create-admin EMAIL`."""

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from myapp.db import commit
from myapp.errors import ApiError
from myapp.users.models import UserModel

users_cli = AppGroup("users", help="Manage user accounts.")


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--name", default="Administrator", show_default=True)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)
def create_admin(email: str, name: str, password_stdin: bool) -> None:
    """Create an admin account (the first one, typically)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = UserModel.create(
            {"email": email, "name": name, "password": password}, role="admin"
        )
        commit()
    except ApiError as error:
        problems = "; ".join(f"{d['field']} {d['problem']}" for d in error.details)
        raise click.ClickException(
            f"{error.message}{': ' + problems if problems else ''}"
        )
    click.echo(f"Created admin {user.email} (id {user.id}).")


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
