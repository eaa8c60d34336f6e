"""Password change: the current password first, then every other device is signed out in one transaction."""

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.extensions import db
from app.security.passwords import HASHER_EXTENSION_KEY, verify_password
from tests.conftest import Auth, csrf_token_from
from tests.factories import PASSWORD
from tests.helpers import sessions_of

NEW_PASSWORD = "a brand new passphrase"


def change(client, current=PASSWORD, new=NEW_PASSWORD, confirm=None):
    token = csrf_token_from(client.get("/account").text)
    data = {"csrf_token": token, "current_password": current, "new_password": new, "confirm_password": confirm or new}
    return client.post("/account", data=data)


def test_password_change_gives_this_session_a_new_id(app, client, owner):
    """A cookie copied before the change (OWASP: a new id on every privilege change) stops working with it."""
    Auth(client).login()
    before = client.get_cookie("gh_session").value
    assert change(client).status_code == 303
    assert client.get_cookie("gh_session").value != before
    assert client.get("/account/devices").status_code == 200
    copied = app.test_client()
    copied.set_cookie("gh_session", before)
    assert copied.get("/account/devices").headers["Location"].startswith("/login")


def test_a_hash_of_the_password_as_typed_is_remade_of_its_nfkc_form_on_sign_in(app, client, owner):
    typed = "\ufb01ne passphrase with a ligature"  # NFKC turns the ligature into "fi"
    with app.app_context():
        user = User.by_email("ada@example.test")
        user.password_hash = app.extensions[HASHER_EXTENSION_KEY].hash(typed)  # made before normalization
        db.session.commit()
    assert Auth(client).login(password=typed).status_code == 303
    with app.app_context():
        assert app.extensions[HASHER_EXTENSION_KEY].verify(
            User.by_email("ada@example.test").password_hash, "fine passphrase with a ligature"
        )


def test_password_change_signs_out_every_other_device(app, owner):
    others = [app.test_client() for _ in range(2)]
    for client in others:
        Auth(client).login()
    me = app.test_client()
    Auth(me).login()
    response = change(me)
    assert response.status_code == 303
    assert "Password changed. Signed out 2 other devices." in me.get("/account").text
    for client in others:
        assert client.get("/").headers["Location"].startswith("/login?reason=password_changed")
    reasons = [row.revoked_reason for row in sessions_of(app, owner.owner_id)]
    assert reasons == ["password_changed", "password_changed", None]
    with app.app_context():
        user = User.by_email("ada@example.test")
        assert verify_password(user.password_hash, NEW_PASSWORD)
        [event] = AuditEvent.tagged("account:password:change")
        assert event.details == {"signed_out": 2}
    assert Auth(app.test_client()).login(password=PASSWORD).status_code == 400
    assert Auth(app.test_client()).login(password=NEW_PASSWORD).status_code == 303


def test_wrong_current_password_changes_nothing(app, owner):
    other = app.test_client()
    Auth(other).login()
    me = app.test_client()
    Auth(me).login()
    response = change(me, current="not my password")
    assert response.status_code == 400
    assert "That is not your current password." in response.text
    assert other.get("/").status_code == 200
    with app.app_context():
        assert verify_password(User.by_email("ada@example.test").password_hash, PASSWORD)


def test_new_password_rules_keep_the_form(app, owner):
    me = app.test_client()
    Auth(me).login()
    short = change(me, new="short")
    assert short.status_code == 400 and "Use at least 15 characters (this one has 5)." in short.text
    mismatch = change(me, confirm="something else entirely")
    assert "The two entries differ." in mismatch.text
    same = change(me, new=PASSWORD)
    assert "Choose a password different from the current one." in same.text


def test_password_change_needs_csrf(app, owner):
    me = app.test_client()
    Auth(me).login()
    data = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    assert me.post("/account", data=data).status_code == 400
    with app.app_context():
        assert verify_password(User.by_email("ada@example.test").password_hash, PASSWORD)
