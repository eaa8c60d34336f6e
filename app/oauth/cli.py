"""`flask clients …`, `flask keys rotate`, `flask cleanup`: JSON out, one-line errors with exit status 1."""

import json
from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from app.audit import services as audit
from app.audit.tags import EventTag
from app.clock import now
from app.extensions import db
from app.oauth import clients, keys
from app.oauth.cleanup import cleanup
from app.oauth.errors import ClientError
from app.oauth.models import OAuthClient

clients_cli = AppGroup("clients", help="Manage OAuth client apps.")
keys_cli = AppGroup("keys", help="Manage token signing keys.")


def _emit(data) -> None:
    click.echo(json.dumps(data, indent=2))


def describe(client: OAuthClient) -> dict:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.is_public,
        "first_party": client.first_party,
        "redirect_uris": client.redirect_uris,
        "scope": client.scopes,
        "grant_types": client.grant_types,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "disabled": client.disabled_at is not None,
    }


@clients_cli.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI; repeat for several.")
@click.option("--public", is_flag=True, help="No secret (PKCE alone); for apps that cannot keep one.")
@click.option("--first-party", is_flag=True, help="Skip the consent page (apps of this organization).")
@click.option("--backchannel-logout-uri", default=None)
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True)
@click.option("--scope", default="openid profile email", show_default=True)
@click.option("--client-credentials", is_flag=True, help="Also allow the client_credentials grant.")
def create_client(name, redirect_uris, public, first_party, backchannel_logout_uri, post_logout_uris, scope,
                  client_credentials):  # fmt: skip
    try:
        registered = clients.register_client(
            name, list(redirect_uris), now(), public=public, first_party=first_party,
            backchannel_logout_uri=backchannel_logout_uri, post_logout_redirect_uris=list(post_logout_uris),
            scope=scope, client_credentials=client_credentials,
        )  # fmt: skip
    except ClientError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    audit.record(EventTag.CLIENT_CREATE, client=registered.client.client_id, name=name)
    db.session.commit()
    shown = describe(registered.client)
    if registered.secret:
        shown["client_secret"] = registered.secret  # shown once; only a keyed digest is stored
    _emit(shown)


@clients_cli.command("list")
def list_clients() -> None:
    _emit([describe(c) for c in db.session.scalars(db.select(OAuthClient).order_by(OAuthClient.id))])


@clients_cli.command("disable")
@click.argument("client_id")
def disable_client(client_id: str) -> None:
    client = clients.find(client_id)
    if client is None:
        raise click.ClickException(f"no client {client_id!r}")
    revoked = clients.disable(client, now())
    audit.record(EventTag.CLIENT_DISABLE, client=client_id, revoked_grants=revoked)
    db.session.commit()
    _emit(describe(client) | {"revoked_grants": revoked})


@keys_cli.command("rotate")
def rotate_keys() -> None:
    row = keys.rotate(now())
    audit.record(EventTag.KEYS_ROTATE, kid=row.kid)
    db.session.commit()
    _emit({"kid": row.kid, "algorithm": row.algorithm, "published": [k.kid for k in keys.published_keys(now())]})


@click.command("cleanup")
@click.option("--retention-days", type=click.IntRange(0, 3650), default=None,
              help="Keep ended rows this long (default: CLEANUP_RETENTION_DAYS).")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=None,
              help="Rows per delete transaction (default: CLEANUP_BATCH_SIZE).")  # fmt: skip
@with_appcontext
def cleanup_command(retention_days: int | None, batch_size: int | None) -> None:
    """Delete expired codes and long-ended refresh tokens and grants, in batches."""
    config = current_app.config
    retention = timedelta(days=config["CLEANUP_RETENTION_DAYS"] if retention_days is None else retention_days)
    counts = cleanup(now(), retention, batch_size or config["CLEANUP_BATCH_SIZE"])
    _emit({"deleted": counts})


def init_cli(app) -> None:
    app.cli.add_command(clients_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(cleanup_command)
