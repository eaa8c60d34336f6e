"""The owner's policy card, its JSON API and bulk revocation (issue 3, DESIGN §4)."""

import re
from datetime import timedelta

import pytest

from app.accounts.models import Account, User
from app.audit.models import AuditEvent
from app.extensions import db
from app.sessions.models import UserSession
from tests.conftest import Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL
from tests.helpers import count_statements, sessions_of

API = "/api/accounts/me/security"


def owner_client(app):
    client = app.test_client()
    Auth(client).login()
    return client


def token_of(client, page="/account/security"):
    return csrf_token_from(client.get(page).text)


def account_values(app, account_id):
    with app.app_context():
        account = db.session.get(Account, account_id)
        return account.idle_minutes, account.absolute_minutes


def save(client, **fields):
    data = {"csrf_token": token_of(client), **fields}
    return client.post("/account/security/policy", data=data)


def test_members_get_403_from_the_page_and_the_api(app, owner):
    member = app.test_client()
    Auth(member).login(email=MEMBER_EMAIL)
    page = member.get("/account/security")
    assert page.status_code == 403 and "Not allowed" in page.text
    assert "Security</a>" not in member.get("/").text
    api = member.get(API)
    assert api.status_code == 403 and api.json["error"] == "access_denied"
    token = csrf_token_from(member.get("/").text)
    headers = {"X-CSRFToken": token}
    assert member.patch(API, json={"idle_minutes": 10}, headers=headers).status_code == 403
    revoke = member.post(API + "/revoke-sessions", json={"scope": "all"}, headers=headers)
    assert revoke.status_code == 403
    assert member.post("/account/security/revoke/all", data={"csrf_token": token}).status_code == 403
    assert [r.revoked_at for r in sessions_of(app, owner.member_id)] == [None]


def test_page_shows_presets_bounds_and_people(app, owner):
    Auth(app.test_client()).login(email=MEMBER_EMAIL)
    page = owner_client(app).get("/account/security").text
    assert "Signs out after 15 min idle, 8 hours at most" in page
    assert "Signs out after 30 min idle, 12 hours at most (the default)" in page
    assert "Your own limits: up to 1 day idle and up to 30 days in all" in page
    assert "Applies to sessions started after you save." in page
    assert "Also apply to sessions already signed in" in page
    assert 'Ada Lovelace <span class="muted">(you)</span>' in page
    assert "Grace Hopper" in page and "Sign out everyone else" in page
    checked = re.findall(r'<input[^>]*\bchecked\b[^>]*name="preset"[^>]*value="(\w+)"', page)
    assert checked == ["standard"]  # the account has no overrides: the system default


def test_everyone_else_is_hidden_when_the_owner_is_alone(app, owner):
    page = owner_client(app).get("/account/security").text
    assert "Sign out everyone else" not in page
    assert "Sign out everyone, including me" in page


@pytest.mark.parametrize(
    ("fields", "stored"),
    [
        ({"preset": "strict"}, (15, 480)),
        ({"preset": "standard"}, (None, None)),
        ({"preset": "custom", "idle_minutes": "20", "absolute_minutes": "600"}, (20, 600)),
    ],
)
def test_saving_a_preset(app, owner, fields, stored):
    client = owner_client(app)
    response = save(client, **fields)
    assert response.status_code == 303
    assert "Saved " in client.get("/account/security").text
    assert account_values(app, owner.account_id) == stored


@pytest.mark.parametrize(
    ("idle", "absolute", "field", "message"),
    [
        ("2", "600", "idle_minutes", "Must be between 5 and 1440 minutes."),
        ("20", "43201", "absolute_minutes", "Must be between 60 and 43200 minutes."),
        ("700", "600", "idle_minutes", "The idle timeout cannot be longer than the absolute timeout."),
        ("12.5", "600", "idle_minutes", "Enter a whole number of minutes."),
        ("-5", "600", "idle_minutes", "Enter a whole number of minutes."),
        ("", "600", "idle_minutes", "Enter a whole number of minutes."),
    ],
)
def test_bad_custom_values_show_inline_errors_keep_input_and_save_nothing(app, owner, idle, absolute, field, message):
    client = owner_client(app)
    response = save(client, preset="custom", idle_minutes=idle, absolute_minutes=absolute)
    assert response.status_code == 422
    assert message in response.text
    assert f'id="{field}-error"' in response.text
    assert f'value="{idle}"' in response.text or idle == ""
    assert account_values(app, owner.account_id) == (None, None)


def test_htmx_save_returns_the_card(app, owner):
    client = owner_client(app)
    data = {"csrf_token": token_of(client), "preset": "strict"}
    response = client.post("/account/security/policy", data=data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section class="card" id="policy-card"')
    assert "Saved Strict: signs out after 15 min idle, 8 hours at most." in response.text


def test_policy_applies_to_new_sign_ins_only_unless_asked(app, owner, clock):
    member = app.test_client()
    Auth(member).login(email=MEMBER_EMAIL)
    client = owner_client(app)
    save(client, preset="strict")
    [before] = sessions_of(app, owner.member_id)
    assert before.idle_minutes == 30  # unchanged: the policy applies at next sign-in
    fresh = app.test_client()
    Auth(fresh).login(email=MEMBER_EMAIL)
    assert sessions_of(app, owner.member_id)[1].idle_minutes == 15


def test_apply_now_recomputes_and_over_age_sessions_end_at_next_request(app, owner, clock):
    member = app.test_client()
    Auth(member).login(email=MEMBER_EMAIL)
    for minutes in (25, 25):
        clock.advance(minutes=minutes)
        assert member.get("/").status_code == 200  # active, so only the absolute limit can end it
    clock.advance(minutes=20)
    client = owner_client(app)
    save(client, preset="custom", idle_minutes="20", absolute_minutes="60", apply_now="y")
    # The member signed in 70 min ago: with a 60-min absolute limit that session is over.
    assert member.get("/").headers["Location"].startswith("/login?reason=session_expired")
    [mine] = [row for row in sessions_of(app, owner.owner_id) if row.revoked_at is None]
    assert mine.idle_minutes == 20
    assert mine.absolute_expires_at == mine.created_at + timedelta(minutes=60)
    assert client.get("/").status_code == 200
    with app.app_context():
        [event] = AuditEvent.tagged("account:session_policy:change")
        assert event.details["old"] == {"idle_minutes": 30, "absolute_minutes": 720}
        assert event.details["new"] == {"idle_minutes": 20, "absolute_minutes": 60}
        assert event.details["applied_to_signed_in"] == 2


def test_api_get_describes_the_card(app, owner):
    Auth(app.test_client()).login(email=MEMBER_EMAIL)
    body = owner_client(app).get(API).json
    assert body["idle_minutes"] is None and body["absolute_minutes"] is None
    assert (body["effective_idle_minutes"], body["effective_absolute_minutes"]) == (30, 720)
    assert (body["idle_minutes_min"], body["idle_minutes_max"]) == (5, 1440)
    assert (body["absolute_minutes_min"], body["absolute_minutes_max"]) == (60, 43200)
    assert [u["email"] for u in body["active_users"]] == ["ada@example.test", "grace@example.test"]
    assert set(body["active_users"][0]) == {"user_id", "name", "email", "last_login_at"}


def patch(client, body, **kwargs):
    return client.patch(API, headers={"X-CSRFToken": token_of(client)}, **({"json": body} | kwargs))


def test_api_patch_sets_and_clears_overrides(app, owner):
    client = owner_client(app)
    assert patch(client, {"idle_minutes": 10}).json["effective_idle_minutes"] == 10
    assert account_values(app, owner.account_id) == (10, None)
    cleared = patch(client, {"idle_minutes": None, "absolute_minutes": 90}).json
    assert (cleared["idle_minutes"], cleared["absolute_minutes"]) == (None, 90)
    assert (cleared["effective_idle_minutes"], cleared["effective_absolute_minutes"]) == (30, 90)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"idle_minutes": 800, "absolute_minutes": 700}, {"idle_minutes"}),
        ({"idle_minutes": 800}, {"idle_minutes"}),  # checked against the effective absolute (720)
        ({"idle_minutes": -1}, {"idle_minutes"}),
        ({"idle_minutes": 12.5}, {"idle_minutes"}),
        ({"idle_minutes": "30"}, {"idle_minutes"}),
        ({"idle_minutes": True}, {"idle_minutes"}),
        ({"absolute_minutes": 50000}, {"absolute_minutes"}),
        ({"idle_minutes": 30, "colour": "blue"}, {"colour"}),
    ],
)
def test_api_patch_refuses_bad_values_per_field(app, owner, body, fields):
    client = owner_client(app)
    response = patch(client, body)
    assert response.status_code == 422
    assert response.json["error"] == "invalid_request"
    assert set(response.json["fields"]) == fields
    assert account_values(app, owner.account_id) == (None, None)


def test_api_patch_bad_bodies(app, owner):
    client = owner_client(app)
    token = token_of(client)
    headers = {"X-CSRFToken": token}
    malformed = client.patch(API, data="{not json", headers=headers, content_type="application/json")
    assert malformed.status_code == 400 and malformed.json["error"] == "invalid_request"
    not_object = client.patch(API, json=[1, 2], headers=headers)
    assert not_object.status_code == 400
    form = client.patch(API, data={"idle_minutes": "10"}, headers=headers)
    assert form.status_code == 415 and form.json["error"] == "unsupported_media_type"
    no_csrf = client.patch(API, json={"idle_minutes": 10})
    assert no_csrf.status_code == 400 and no_csrf.json["error"] == "invalid_request"
    assert account_values(app, owner.account_id) == (None, None)


def revoke_api(client, scope):
    return client.post(API + "/revoke-sessions", json={"scope": scope}, headers={"X-CSRFToken": token_of(client)})


def test_revoke_others_keeps_exactly_the_callers_session(app, owner):
    member = app.test_client()
    Auth(member).login(email=MEMBER_EMAIL)
    second_device = owner_client(app)
    client = owner_client(app)
    assert revoke_api(client, "others").json == {"revoked_count": 2}
    assert member.get("/").status_code == 302 and second_device.get("/").status_code == 302
    assert client.get("/").status_code == 200
    assert revoke_api(client, "others").json == {"revoked_count": 0}  # idempotent


def test_revoke_all_ends_the_callers_session_too(app, owner):
    member = app.test_client()
    Auth(member).login(email=MEMBER_EMAIL)
    client = owner_client(app)
    response = revoke_api(client, "all")
    assert response.json == {"revoked_count": 2}
    assert client.get("/").status_code == 302
    with app.app_context():
        [event] = AuditEvent.tagged("session:account:revoke")
        assert event.details == {"scope": "all", "count": 2}


@pytest.mark.parametrize("body", [{"scope": "everyone"}, {}, {"scope": "all", "extra": 1}, {"scope": None}])
def test_revoke_api_refuses_bad_scopes(app, owner, body):
    client = owner_client(app)
    response = client.post(API + "/revoke-sessions", json=body, headers={"X-CSRFToken": token_of(client)})
    assert response.status_code == 422 and "scope" in response.json["fields"]
    assert client.get("/").status_code == 200


def test_revoke_all_page_flow_shows_the_count_then_goes_to_login(app, owner):
    Auth(app.test_client()).login(email=MEMBER_EMAIL)
    client = owner_client(app)
    confirm = client.get("/account/security/revoke/all")
    assert "Sign out everyone, including you?" in confirm.text
    done = client.post("/account/security/revoke/all", data={"csrf_token": csrf_token_from(confirm.text)})
    assert done.status_code == 200
    assert "Signed out 2 sessions, including yours." in done.text
    assert 'http-equiv="refresh"' not in done.text  # WCAG 2.2.1: no timed redirect, a link instead
    assert '<a class="button button--primary" href="/login">Sign in again</a>' in done.text
    assert client.get("/").status_code == 302


def test_revoke_others_page_flow(app, owner):
    Auth(app.test_client()).login(email=MEMBER_EMAIL)
    client = owner_client(app)
    confirm = client.get("/account/security/revoke/others")
    assert "Sign out everyone else?" in confirm.text
    done = client.post("/account/security/revoke/others", data={"csrf_token": csrf_token_from(confirm.text)})
    assert done.headers["Location"] == "/account/security"
    assert "Signed out 1 session. Only this device stays signed in." in client.get("/account/security").text


def test_unknown_scope_is_404(app, owner):
    assert owner_client(app).get("/account/security/revoke/everyone").status_code == 404


def test_bulk_revoke_of_a_thousand_sessions_is_one_statement(app, owner, clock):
    with app.app_context():
        from app.security.passwords import hash_password

        account = db.session.get(Account, owner.account_id)
        digest = hash_password("irrelevant-password")
        users = [User(account=account, email=f"u{i}@example.test", name=f"User {i}", role="member",
                      password_hash=digest, created_at=clock.now(), password_changed_at=clock.now())
                 for i in range(200)]  # fmt: skip
        db.session.add_all(users)
        db.session.flush()
        db.session.add_all(
            UserSession(public_id=f"bulk-{u.id}-{n}", user_id=u.id, device_id="d" * 32, device_name="x",
                        user_agent="", ip="127.0.0.1", created_at=clock.now(), authenticated_at=clock.now(),
                        last_used_at=clock.now(), idle_minutes=30, idle_expires_at=clock.now() + timedelta(minutes=30),
                        absolute_expires_at=clock.now() + timedelta(hours=12))
            for u in users for n in range(5)
        )  # fmt: skip
        db.session.commit()
    client = owner_client(app)
    token = token_of(client)
    with count_statements(app, "UPDATE") as updates, count_statements(app, "SELECT") as selects:
        response = client.post(API + "/revoke-sessions", json={"scope": "others"}, headers={"X-CSRFToken": token})
    assert response.json == {"revoked_count": 1000}
    assert updates["n"] <= 3  # sessions, then their grants and refresh tokens: per table, never per row
    assert selects["n"] <= 3  # the session check and the caller's user, never one per revoked row
    again = client.post(API + "/revoke-sessions", json={"scope": "others"}, headers={"X-CSRFToken": token})
    assert again.json == {"revoked_count": 0}
