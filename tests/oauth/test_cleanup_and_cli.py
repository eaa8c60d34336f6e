"""`flask cleanup` in batches, and the clients / keys commands (issue 4)."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.oauth.models import AuthorizationCode, OAuthGrant, RefreshToken


def counts(app) -> tuple[int, int, int]:
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (AuthorizationCode, RefreshToken, OAuthGrant)
        )


def test_cleanup_deletes_ended_rows_in_batches(app, flow, clock):
    from tests.conftest import Auth

    ended = flow.tokens()
    flow.refresh(ended["refresh_token"])  # a rotated token and its successor
    other = type(flow)(app, flow.rp).sign_in()
    other.tokens()
    Auth(other.browser).logout()  # a revoked grant and its token
    assert counts(app) == (2, 3, 2)
    clock.advance(days=31)  # every session, grant and token above has long expired or ended
    result = app.test_cli_runner().invoke(args=["cleanup", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deleted"] == {"authorization_codes": 2, "refresh_tokens": 3, "grants": 2}
    assert counts(app) == (0, 0, 0)
    again = json.loads(app.test_cli_runner().invoke(args=["cleanup"]).output)["deleted"]
    assert again == {"authorization_codes": 0, "refresh_tokens": 0, "grants": 0}


def test_cleanup_keeps_recent_rows(app, flow, clock):
    flow.refresh(flow.tokens()["refresh_token"])
    before = counts(app)
    clock.advance(minutes=30)
    result = json.loads(app.test_cli_runner().invoke(args=["cleanup"]).output)["deleted"]
    assert result == {"authorization_codes": 0, "refresh_tokens": 0, "grants": 0}
    assert counts(app) == before


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_clients_create_prints_the_secret_once(app, owner):
    result = run(app, "clients", "create", "--name", "Shop", "--redirect-uri", "https://shop.test/cb",
                 "--redirect-uri", "https://shop.test/cb2", "--first-party",
                 "--backchannel-logout-uri", "https://shop.test/bcl")  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["client_secret"].startswith("ghs_") and created["client_id"].startswith("gh_")
    assert created["redirect_uris"] == ["https://shop.test/cb", "https://shop.test/cb2"]
    listed = json.loads(run(app, "clients", "list").output)
    assert "client_secret" not in listed[0] and listed[0]["first_party"] is True


def test_public_clients_have_no_secret(app, owner):
    created = json.loads(run(app, "clients", "create", "--name", "SPA", "--redirect-uri",
                             "http://127.0.0.1/cb", "--public").output)  # fmt: skip
    assert "client_secret" not in created and created["public"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "X"], "at least one --redirect-uri"),
        (["--name", "X", "--redirect-uri", "http://evil.test/cb"], "must use https"),
        (["--name", "X", "--redirect-uri", "https://x.test/cb#frag"], "without a fragment"),
        (["--name", "X", "--redirect-uri", "/relative"], "must be absolute"),
        (["--name", "X", "--redirect-uri", "https://x.test/cb", "--scope", "openid admin"], "unknown scopes"),
        (["--name", "", "--redirect-uri", "https://x.test/cb"], "client name"),
        (["--name", "X", "--redirect-uri", "https://x.test/cb", "--public", "--client-credentials"], "public client"),
    ],
)
def test_clients_create_bad_input_is_one_line_and_exit_1(app, owner, args, message):
    result = run(app, "clients", "create", *args)
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_disable_unknown_client_fails(app, owner):
    result = run(app, "clients", "disable", "gh_nope")
    assert result.exit_code == 1 and "no client" in result.output


def test_keys_rotate_keeps_the_old_key_published(app, owner, clock):
    first = json.loads(run(app, "keys", "rotate").output)
    second = json.loads(run(app, "keys", "rotate").output)
    assert second["published"][0] == second["kid"] and first["kid"] in second["published"]
    clock.advance(seconds=timedelta(minutes=11).total_seconds())
    assert [k["kid"] for k in app.test_client().get("/oauth/jwks").json["keys"]] == [second["kid"]]
