"""`flask accounts …`, `flask users …` and `flask demo`: JSON out, one-line errors, exit status 1."""

import json
import sys
from typing import NoReturn

import click
from flask.cli import AppGroup

from app.accounts import services
from app.accounts.errors import AccountError
from app.accounts.models import ROLES, Account, User
from app.clock import now
from app.extensions import db

accounts_cli = AppGroup("accounts", help="Manage accounts.")
users_cli = AppGroup("users", help="Manage users.")


def _emit(data: dict) -> None:
    click.echo(json.dumps(data, indent=2))


def _fail(message: str) -> NoReturn:
    db.session.rollback()
    raise click.ClickException(message)


def _committed(action, *args):
    """Run one service call and commit it; its AccountError is the command's one-line error."""
    try:
        result = action(*args)
    except AccountError as exc:
        _fail(str(exc))
    db.session.commit()
    return result


@accounts_cli.command("create")
@click.option("--name", required=True, help="The account (organization) name.")
def create_account(name: str) -> None:
    account = _committed(services.create_account, name, now())
    _emit({"account": {"id": account.id, "name": account.name}})


@users_cli.command("create")
@click.option("--account", "account_name", required=True, help="Name of an existing account.")
@click.option("--email", required=True)
@click.option("--name", required=True, help="Display name.")
@click.option("--role", required=True, help=f"One of: {', '.join(ROLES)}.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (required).")
def create_user(account_name: str, email: str, name: str, role: str, password_stdin: bool) -> None:
    if not password_stdin:
        _fail("pass --password-stdin and type the password on standard input (never on the command line)")
    account = Account.by_name(account_name)
    if account is None:
        _fail(f"no account named {account_name!r}")
    password = sys.stdin.readline().rstrip("\r\n")
    user = _committed(services.create_user, account, email, name, role, password, now())
    _emit({"user": {"id": user.id, "email": user.email, "name": user.name, "role": user.role, "account": account.name}})


def _user(email: str) -> User:
    user = User.by_email(email)
    if user is None:
        _fail(f"no user with e-mail {email}")
    return user


def _shown(user: User) -> dict:
    disabled = user.disabled_at.isoformat() if user.disabled_at else None
    return {"id": user.id, "email": user.email, "account": user.account.name, "disabled_at": disabled}


@users_cli.command("disable")
@click.option("--email", required=True)
def disable_user(email: str) -> None:
    """No more sign-ins; every session ends now, with its apps' grants (client apps are told)."""
    user = _user(email)
    ended = _committed(services.disable_user, user, now())
    _emit({"user": _shown(user), "sessions_ended": ended})


@users_cli.command("enable")
@click.option("--email", required=True)
def enable_user(email: str) -> None:
    """Sign-ins work again (ended sessions stay ended)."""
    user = _user(email)
    _committed(services.enable_user, user)
    _emit({"user": _shown(user)})


@users_cli.command("delete")
@click.option("--email", required=True)
@click.option("--yes", is_flag=True, help="Confirm: the user, their sessions and grants are deleted for good.")
def delete_user(email: str, yes: bool) -> None:
    """Delete the user: sessions end and client apps are told first; audit events stay, without the user."""
    if not yes:
        _fail("pass --yes to delete the user for good")
    user = _user(email)
    shown = _shown(user)
    ended = _committed(services.delete_user, user, now())
    _emit({"deleted": shown, "sessions_ended": ended})


def init_cli(app) -> None:
    app.cli.add_command(accounts_cli)
    app.cli.add_command(users_cli)
