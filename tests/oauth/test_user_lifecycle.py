"""Disabling, enabling and deleting a user (catalogue #31): sign-ins stop, sessions and app grants end at once."""

import json

import sqlalchemy as sa

from app.extensions import db
from tests.client_api.test_internal_endpoints import verify
from tests.conftest import Auth
from tests.factories import MEMBER_EMAIL, OWNER_EMAIL, PASSWORD
from tests.oauth.conftest import Flow

DISABLED = "This sign-in has been disabled. Ask an owner of your account."
GENERIC = "Invalid email or password."
LIFECYCLE = "('admin:user:disable', 'admin:user:enable', 'admin:user:delete')"


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def rows(app, sql: str, **params) -> list:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(sa.text(sql), params)]


def member_with_an_app(app, make_client) -> tuple[Flow, dict]:
    rp = make_client(first_party=True, backchannel_logout_uri="https://app.test/bcl")
    flow = Flow(app, rp).sign_in(email=MEMBER_EMAIL)
    return flow, flow.tokens(device_id="member-laptop")


def test_disabling_ends_sessions_and_grants_and_refuses_sign_in(app, owner, make_client):
    flow, tokens = member_with_an_app(app, make_client)
    result = run(app, "users", "disable", "--email", MEMBER_EMAIL)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["sessions_ended"] == 1 and shown["user"]["disabled_at"]

    assert flow.browser.get("/").headers["Location"].startswith("/login")  # that browser is signed out
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert verify(app, flow.rp, tokens["grant_token"]).json == {"active": False, "reason": "revoked"}
    queued = rows(app, "SELECT count(*) FROM oauth_logout_deliveries WHERE uri = 'https://app.test/bcl'")
    assert queued == [(1,)]  # the app hears of it over the back channel

    right = Auth(app.test_client()).login(email=MEMBER_EMAIL)
    wrong = Auth(app.test_client()).login(email=MEMBER_EMAIL, password="not the password")
    assert right.status_code == 400 and DISABLED in right.text
    assert wrong.status_code == 400 and GENERIC in wrong.text and DISABLED not in wrong.text  # no oracle
    steps = rows(app, f"SELECT tag FROM audit_events WHERE tag IN {LIFECYCLE}")
    assert steps == [("admin:user:disable",)]


def test_enabling_lets_the_user_sign_in_again(app, owner):
    assert run(app, "users", "disable", "--email", MEMBER_EMAIL).exit_code == 0
    assert run(app, "users", "enable", "--email", MEMBER_EMAIL).exit_code == 0
    assert Auth(app.test_client()).login(email=MEMBER_EMAIL).status_code == 303


def test_the_last_owner_who_can_sign_in_stays(app, owner):
    for command in (["disable", "--email", OWNER_EMAIL], ["delete", "--email", OWNER_EMAIL, "--yes"]):
        result = run(app, "users", *command)
        assert result.exit_code == 1 and "last owner" in result.output
    assert Auth(app.test_client()).login(email=OWNER_EMAIL, password=PASSWORD).status_code == 303


def test_deleting_tells_the_apps_and_keeps_the_audit_trail(app, owner, make_client):
    flow, tokens = member_with_an_app(app, make_client)
    assert run(app, "users", "delete", "--email", MEMBER_EMAIL).exit_code == 1  # --yes is required
    result = run(app, "users", "delete", "--email", MEMBER_EMAIL, "--yes")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deleted"]["email"] == MEMBER_EMAIL

    assert rows(app, "SELECT count(*) FROM users WHERE email = :e", e=MEMBER_EMAIL) == [(0,)]
    assert rows(app, "SELECT count(*) FROM oauth_grants") == [(0,)]  # sessions, grants, refresh tokens cascade
    assert flow.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert verify(app, flow.rp, tokens["grant_token"]).json["active"] is False
    assert rows(app, "SELECT count(*) FROM oauth_logout_deliveries") == [(1,)]
    kept = rows(app, f"SELECT tag, user_id FROM audit_events WHERE tag IN {LIFECYCLE} ORDER BY id")
    assert kept == [("admin:user:disable", None), ("admin:user:delete", None)]
    assert GENERIC in Auth(app.test_client()).login(email=MEMBER_EMAIL).text


def test_unknown_users_are_a_one_line_error(app, owner):
    for command in ("disable", "enable"):
        result = run(app, "users", command, "--email", "nobody@example.test")
        assert result.exit_code == 1 and "no user with e-mail nobody@example.test" in result.output
