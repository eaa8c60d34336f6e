"""Recent security activity (issue 12 item 5, DESIGN §10): each tag in words, keyset paging, who sees what, filters."""

import re
from html import unescape

import pytest
import sqlalchemy

from app.accounts import services
from app.audit import activity
from app.audit.services import record
from app.audit.tags import EventTag as T
from app.extensions import db
from app.oauth.clients import register_client
from tests import factories
from tests.conftest import Auth
from tests.helpers import sessions_of

LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
DEVICE_ID = "dev-4f1c9a7be2d04e55a1b3c9d7e6f80a12"  # a device cookie value: never shown


def texts(html: str) -> list[str]:
    """The events' words as a reader sees them, newest first."""
    items = re.findall(r'<span class="activity__text">(.*?)</span>', html, re.S)
    return [unescape(re.sub(r"<[^>]+>", "", item)).strip() for item in items]


def signed_in(app, email=factories.OWNER_EMAIL, agent=LINUX_FIREFOX):
    client = app.test_client()
    Auth(client).login(email=email, **{"User-Agent": agent})
    return client


def add(app, tag, user_id, **fields):
    with app.app_context():
        record(tag, user_id=user_id, **fields)
        db.session.commit()


@pytest.fixture
def app_id(app, owner):
    with app.app_context():
        client_id = register_client(
            "Photo Prints", ["https://prints.example/cb"], app.config["CLOCK"].now()
        ).client.client_id
        db.session.commit()
    return client_id


WORDED = [
    (
        T.SIGN_IN_SUCCESS,
        {"device": "Firefox on Linux", "methods": "pwd otp"},
        "Signed in on Firefox on Linux with a password and an authenticator app",
    ),
    (
        T.SIGN_IN_SUCCESS,
        {"device": "Safari on iOS", "methods": "swk user"},
        "Signed in on Safari on iOS with a passkey",
    ),
    (
        T.SIGN_IN_SUCCESS,
        {"device": "Chrome on Windows", "methods": "pwd rec"},
        "Signed in on Chrome on Windows with a password and a recovery code",
    ),
    (T.SIGN_IN_FAILURE, {"device_id": DEVICE_ID}, "Failed sign-in attempt"),
    (T.SIGN_IN_FAILURE, {"step": "disabled"}, "Sign-in refused: the person is disabled"),
    (T.SIGN_IN_FAILURE, {"step": "reauthenticate"}, "Wrong password when confirming it was you"),
    (T.SIGN_IN_FAILURE, {"step": "password_change"}, "Wrong current password when changing the password"),
    (T.REAUTHENTICATE, {"methods": "hwk user"}, "Confirmed it was you with a passkey"),
    (T.PASSWORD_CHANGE, {"signed_out": 2}, "Changed the password and signed out 2 other devices"),
    (T.PASSWORD_CHANGE, {"signed_out": 1}, "Changed the password and signed out 1 other device"),
    (T.FACTOR_ADD, {"factor": "totp"}, "Added an authenticator app"),
    (T.FACTOR_ADD, {"factor": "passkey", "passkey": "pk_9f8e7d"}, "Added a passkey"),
    (
        T.FACTOR_USE,
        {"factor": "passkey", "passkey": "pk_9f8e7d", "step": "sign_in", "user_verified": True},
        "Used a passkey",
    ),
    (T.FACTOR_FAILURE, {"factor": "totp", "reason": "wrong", "step": 1234}, "Wrong authenticator-app code"),
    (T.FACTOR_FAILURE, {"factor": "totp", "reason": "reused"}, "An already used authenticator-app code was tried"),
    (T.FACTOR_FAILURE, {"factor": "recovery_code", "reason": "wrong"}, "Wrong recovery code"),
    (T.FACTOR_FAILURE, {"factor": "passkey", "reason": "cloned"}, "A passkey was refused"),
    (T.FACTOR_REMOVE, {"factor": "totp"}, "Removed an authenticator app"),
    (T.FACTOR_RENAME, {"factor": "passkey", "passkey": "pk_9f8e7d"}, "Renamed a passkey"),
    (T.RECOVERY_CODE_USE, {"remaining": 9}, "Used a recovery code (9 codes left)"),
    (T.RECOVERY_CODES_REGENERATE, {"count": 10}, "Made new recovery codes (the old ones stopped working)"),
    (T.SIGN_OUT, {"reason": "sign_out"}, "Signed out"),
    (T.SIGN_OUT, {"reason": "replaced_by_sign_in"}, "Signed out by signing in again on the same device"),
    (T.SESSION_EXPIRED, {"reason": "idle_timeout"}, "Signed out: the session expired"),
    (T.DEVICE_SIGN_OUT, {"by_session": 7}, "Signed out a device"),
    (T.DEVICES_SIGN_OUT_OTHERS, {"count": 3}, "Signed out 3 other devices"),
    (
        T.ACCOUNT_SESSIONS_REVOKE,
        {"scope": "others", "count": 4},
        "Signed out everyone else in the account (4 sessions)",
    ),
    (T.ACCOUNT_SESSIONS_REVOKE, {"scope": "all", "count": 1}, "Signed out everyone in the account (1 session)"),
    (T.GRANT_DISCONNECT, {"client": "APP", "grant": "gr_1a2b3c"}, "Disconnected Photo Prints"),
    (T.GRANT_DISCONNECT, {"client": "APP", "count": 2}, "Disconnected Photo Prints from every device"),
    (
        T.REFRESH_TOKEN_REUSE,
        {"client": "APP", "chain": "ch_55", "grant": "gr_1a2b3c"},
        "An old token of Photo Prints was used again; app disconnected",
    ),
    (T.CODE_REPLAY, {"grant": "gr_1a2b3c"}, "A sign-in code for an app was used twice; that app's access was ended"),
    (
        T.POLICY_CHANGE,
        {"old": {"idle_minutes": 30}, "new": {"idle_minutes": 15}},
        "Changed how long people stay signed in",
    ),
    (
        T.TWO_STEP_POLICY_CHANGE,
        {"new": {"two_step_required": True}},
        "Required two-step verification for everyone in the account",
    ),
    (T.TWO_STEP_POLICY_CHANGE, {"new": {"two_step_required": False}}, "Stopped requiring two-step verification"),
    (T.ACCOUNT_CREATE, {"name": "Example"}, "Created the account"),
    (T.USER_CREATE, {"role": "member"}, "Joined the account as a member"),
    (T.USER_DISABLE, {"count": 2}, "Was disabled and signed out everywhere"),
    (T.USER_ENABLE, {}, "Was enabled again"),
    (T.USER_DELETE, {"count": 0}, "A person was removed from the account"),
    (T.CLIENT_CREATE, {"client": "APP", "name": "Photo Prints"}, "Registered the app Photo Prints"),
    (T.CLIENT_DISABLE, {"client": "APP", "revoked_grants": 1}, "Disabled the app Photo Prints"),
    (T.KEYS_ROTATE, {"kid": "k-2026"}, "Rotated the signing keys"),
    ("account:future:thing", {"note": "n"}, "Security event (account:future:thing)"),
]


@pytest.mark.parametrize(("tag", "details", "words"), WORDED, ids=[f"{w[0]}-{i}" for i, w in enumerate(WORDED)])
def test_each_tag_is_said_in_words(app, owner, app_id, tag, details, words):
    client = signed_in(app)
    details = {key: app_id if value == "APP" else value for key, value in details.items()}
    add(app, tag, owner.owner_id, ip="203.0.113.9", **details)
    page = client.get("/account/activity")
    assert page.status_code == 200
    assert texts(page.text)[0] == words
    assert "from 203.0.113.9" in page.text


def test_every_known_tag_has_its_own_wording():
    assert set(T) <= set(activity.WORDING)
    assert set(kind for kind, _ in activity.WORDING.values()) == set(activity.KINDS)


def test_a_real_sign_in_reads_with_its_device_and_method_and_a_relative_time(app, owner, clock):
    client = signed_in(app)
    clock.advance(minutes=5)
    page = client.get("/account/activity").text
    assert texts(page)[0] == "Signed in on Firefox on Linux with a password"
    assert '<time datetime="2026-01-05T09:00:00+00:00" title="Mon 05 Jan 2026, 09:00 UTC">5 min ago</time>' in page


def test_a_signed_out_visitor_is_sent_to_sign_in(client, owner):
    assert client.get("/account/activity").status_code in (302, 303)


def test_nothing_secret_an_event_holds_reaches_the_page(app, owner, app_id):
    client = signed_in(app)
    add(app, T.SIGN_IN_FAILURE, owner.owner_id, device_id=DEVICE_ID)
    add(app, T.REFRESH_TOKEN_REUSE, owner.owner_id, chain="chain-77aa", grant="grant-88bb", client=app_id)
    add(app, T.FACTOR_USE, owner.owner_id, factor="passkey", passkey="pk-99cc")
    html = client.get("/account/activity").text
    for held in (DEVICE_ID, "chain-77aa", "grant-88bb", "pk-99cc", app_id):
        assert held not in html


def test_sixty_events_page_by_25_newest_first_with_keyset_links(app, owner):
    client = signed_in(app)  # joining the account (the factory) and the sign-in come first: 2 of the 60
    for number in range(58):
        add(app, T.RECOVERY_CODE_USE, owner.owner_id, remaining=number)
    said = [f"Used a recovery code ({n} code{'' if n == 1 else 's'} left)" for n in reversed(range(58))]
    said += ["Signed in on Firefox on Linux with a password", "Joined the account as an owner"]
    first = client.get("/account/activity").text
    assert texts(first) == said[:25]
    assert ">Newer<" not in first
    second = client.get(older_link(first)).text
    assert texts(second) == said[25:50]
    third = client.get(older_link(second)).text
    assert texts(third) == said[50:]
    assert ">Older<" not in third
    back = client.get(newer_link(third)).text
    assert texts(back) == said[25:50]
    assert texts(client.get(newer_link(back)).text) == said[:25]


def older_link(html: str) -> str:
    return unescape(re.search(r'rel="next" href="([^"]+)">Older<', html).group(1))


def newer_link(html: str) -> str:
    return unescape(re.search(r'rel="prev" href="([^"]+)">Newer<', html).group(1))


def test_paging_asks_no_offset(app, owner):
    client = signed_in(app)
    for _ in range(30):
        add(app, T.SIGN_OUT, owner.owner_id, reason="sign_out")
    link = older_link(client.get("/account/activity").text)
    statements: list[str] = []
    with app.app_context():
        engine = db.engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    assert len(texts(client.get(link).text)) == 32 - 25
    pages = [sql for sql in statements if "FROM audit_events" in sql and "LIMIT" in sql]
    assert pages and all("audit_events.id <" in sql for sql in pages)
    if engine.dialect.name != "sqlite":  # SQLite's compiler always writes "LIMIT ? OFFSET ?" (the offset 0)
        assert not any("OFFSET" in sql.upper() for sql in pages)


def test_a_person_sees_only_their_own_events(app, owner):
    member = signed_in(app, factories.MEMBER_EMAIL)
    add(app, T.PASSWORD_CHANGE, owner.owner_id, signed_out=0)
    said = texts(member.get("/account/activity").text)
    assert said == ["Signed in on Firefox on Linux with a password", "Joined the account as a member"]


@pytest.mark.parametrize(
    "query", ["before=abc", "after=-3", "before=1&after=2", "before=0", "after=99999999999999999999"]
)
def test_a_bad_page_link_is_a_clear_message(app, owner, query):
    page = signed_in(app).get(f"/account/activity?{query}")
    assert page.status_code == 400
    assert "That page link is not valid" in page.text or "not both" in page.text


def test_a_member_cannot_open_the_account_log(app, owner):
    assert signed_in(app, factories.MEMBER_EMAIL).get("/account/security/activity").status_code == 403


def test_the_owner_log_names_each_person_and_filters_by_person_and_kind(app, owner):
    client = signed_in(app)
    signed_in(app, factories.MEMBER_EMAIL)
    add(app, T.FACTOR_ADD, owner.member_id, factor="totp")
    everyone = texts(client.get("/account/security/activity").text)
    assert everyone[:3] == ["Grace Hopper: Added an authenticator app",
                            "Grace Hopper: Signed in on Firefox on Linux with a password",
                            "Ada Lovelace: Signed in on Firefox on Linux with a password"]  # fmt: skip
    grace = texts(client.get(f"/account/security/activity?person={owner.member_id}").text)
    assert grace and all(line.startswith("Grace Hopper: ") for line in grace)
    sign_ins = texts(client.get("/account/security/activity?kind=sign_in").text)
    assert sign_ins[:2] == everyone[1:3]
    assert not any("authenticator" in line for line in sign_ins)
    both = client.get(f"/account/security/activity?person={owner.member_id}&kind=two_step").text
    assert texts(both) == ["Grace Hopper: Added an authenticator app"]
    assert f'<option value="{owner.member_id}" selected>' in both


def test_the_owner_log_pages_keep_the_filters(app, owner):
    client = signed_in(app)
    for _ in range(30):
        add(app, T.FACTOR_USE, owner.member_id, factor="totp")
        add(app, T.SIGN_OUT, owner.owner_id, reason="sign_out")
    first = client.get(f"/account/security/activity?person={owner.member_id}").text
    link = older_link(first)
    assert f"person={owner.member_id}" in link
    second = texts(client.get(link).text)
    assert len(second) == 30 - 25 + 1  # the member's uses and their account's creation entry
    assert all(line.startswith("Grace Hopper: ") for line in second)


def test_the_owner_log_leaves_other_accounts_out(app, owner):
    with app.app_context():
        other = services.create_account("Elsewhere", app.config["CLOCK"].now())
        stranger = services.create_user(
            other, "eve@example.test", "Eve", "owner", factories.PASSWORD, app.config["CLOCK"].now()
        )
        db.session.commit()
        stranger_id = stranger.id
    add(app, T.PASSWORD_CHANGE, stranger_id, signed_out=0)
    client = signed_in(app)
    assert not any("Eve" in line or "Changed the password" in line
                   for line in texts(client.get("/account/security/activity").text))  # fmt: skip
    assert client.get(f"/account/security/activity?person={stranger_id}").status_code == 400


@pytest.mark.parametrize(
    ("query", "message"),
    [("person=abc", "no such person"), ("person=999999", "no such person"), ("kind=everything", "no such kind"),
     ("kind=%3Cscript%3E", "no such kind"), ("before=x", "page link is not valid")],
)  # fmt: skip
def test_bad_filter_values_are_a_clear_message(app, owner, query, message):
    page = signed_in(app).get(f"/account/security/activity?{query}")
    assert page.status_code == 400
    assert message in page.text
    assert "<script>" not in page.text


def test_a_device_signed_out_is_named(app, owner):
    signed_in(
        app, agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Version/17.4 Mobile/15E148 Safari/604.1"
    )
    client = signed_in(app)
    phone = next(row for row in sessions_of(app, owner.owner_id) if row.device_name != "Firefox on Linux")
    add(app, T.DEVICE_SIGN_OUT, owner.owner_id, session_id=phone.id, by_session=0)
    assert texts(client.get("/account/activity").text)[0] == f"Signed out {phone.device_name}"
