"""`flask demo`: the account, people and client app that `make run` starts with."""

import json
import os
import secrets
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.accounts import services as accounts
from app.accounts.models import ROLE_MEMBER, ROLE_OWNER, Account
from app.clock import now
from app.extensions import db
from app.oauth.clients import register_client
from app.oauth.models import OAuthClient

DEMO_ACCOUNT = "Demo"
CREDENTIALS_FILE = "demo-credentials.json"
DEMO_USERS = (
    ("ada@demo.test", "Ada Lovelace", ROLE_OWNER),
    ("grace@demo.test", "Grace Hopper", ROLE_MEMBER),
)
DEFAULT_DEMO_PORT = 5001


def demo_app_url() -> str:
    """DEMO_URL, else the demo client app on DEMO_PORT; on another site (127.0.0.1, while the portal is on
    localhost for WebAuthn's sake), so no cookie is shared with the portal."""
    return os.environ.get("DEMO_URL") or f"http://127.0.0.1:{os.environ.get('DEMO_PORT') or DEFAULT_DEMO_PORT}"


def _client_addresses(base: str) -> dict:
    return {
        "redirect_uris": [f"{base}/auth/callback"],
        "backchannel_logout_uri": f"{base}/auth/backchannel-logout",
        "post_logout_redirect_uris": [f"{base}/"],
    }


def _demo_client() -> dict:
    registered = register_client("Demo App", now=now(), first_party=True, **_client_addresses(demo_app_url()))
    return {"name": "Demo App", "client_id": registered.client.client_id, "client_secret": registered.secret,
            "redirect_uris": registered.client.redirect_uris}  # fmt: skip


def _add_missing_client(path: Path) -> None:
    """A demo loaded before the demo client app existed gets its client once (the secret is only in the file);
    one loaded for another DEMO_PORT is moved to this one."""
    saved = json.loads(path.read_text()) if path.exists() else {}
    if "client" not in saved:
        saved["client"] = _demo_client()
        db.session.commit()
        _save(path, saved)
        click.echo(json.dumps({"demo": "client added", "client": saved["client"]}, indent=2))
        return
    _move_client(path, saved)


def _move_client(path: Path, saved: dict) -> None:
    addresses = _client_addresses(demo_app_url())
    client = OAuthClient.by_client_id(saved["client"]["client_id"])
    if client is None or client.redirect_uris == addresses["redirect_uris"]:
        return
    for name, value in addresses.items():
        setattr(client, name, value)
    db.session.commit()
    saved["client"]["redirect_uris"] = addresses["redirect_uris"]
    _save(path, saved)
    click.echo(json.dumps({"demo": "client moved", "redirect_uris": addresses["redirect_uris"]}, indent=2))


def _save(path: Path, saved: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=2))
    path.chmod(0o600)


@click.command("demo")
@with_appcontext
def load_demo() -> None:
    """Load the demo data once; the credentials are printed now and kept in instance/."""
    path = Path(current_app.instance_path) / CREDENTIALS_FILE
    if Account.by_name(DEMO_ACCOUNT):
        _add_missing_client(path)
        click.echo(json.dumps({"demo": "already loaded", "credentials_file": str(path)}, indent=2))
        return
    account = accounts.create_account(DEMO_ACCOUNT, now())
    users = []
    for email, name, role in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        accounts.create_user(account, email, name, role, password, now())
        users.append({"email": email, "name": name, "role": role, "password": password})
    client = _demo_client()
    db.session.commit()
    saved = {"account": DEMO_ACCOUNT, "users": users, "client": client}
    _save(path, saved)
    click.echo(json.dumps({"demo": "loaded", **saved, "credentials_file": str(path)}, indent=2))


def init_cli(app) -> None:
    app.cli.add_command(load_demo)
