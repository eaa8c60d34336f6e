"""Connecting an app is recorded (oauth:grant:connect, issue 12 item 5's "apps connected"): when the person approves
the consent page, or, for a first-party app (no consent page), when it gets access they had not given it on any
device; never again while it is connected, and never on a silent (prompt=none) re-authorization. Said on
/account/activity as "Connected <app name>"."""

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.audit.tags import EventTag
from app.extensions import db
from tests.conftest import Auth, csrf_token_from
from tests.oauth.conftest import Flow, pkce, query_of

CONNECTED = "Connected Example App"


def connects(app) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.tag == EventTag.GRANT_CONNECT)))
        db.session.expunge_all()
        return rows


def activity(flow: Flow) -> str:
    return flow.browser.get("/account/activity").text


@pytest.fixture
def third_party(app, owner, make_client):
    return Flow(app, make_client()).sign_in()


@pytest.fixture
def first_party(app, owner, make_client):
    return Flow(app, make_client(first_party=True)).sign_in()


def test_approving_the_consent_page_connects_the_app(app, owner, third_party):
    page = third_party.authorize(pkce()[1])
    assert connects(app) == []  # the page alone connects nothing
    assert "code" in query_of(third_party.consent(page).headers["Location"])
    [event] = connects(app)
    assert event.user_id == owner.owner_id and event.details["client"] == third_party.rp.client_id
    assert CONNECTED in activity(third_party)


def test_declining_connects_nothing(app, third_party):
    third_party.consent(third_party.authorize(pkce()[1]), decision="deny")
    assert connects(app) == [] and CONNECTED not in activity(third_party)


def test_using_a_connected_app_again_records_nothing_new(app, third_party):
    third_party.code()  # approves once
    third_party.code()  # the consent stands: no page
    assert "code" in query_of(third_party.authorize(pkce()[1], prompt="none").headers["Location"])
    assert len(connects(app)) == 1
    assert activity(third_party).count(CONNECTED) == 1


def test_a_first_party_app_connects_when_first_used(app, first_party):
    first_party.code()
    first_party.code()
    [event] = connects(app)
    assert event.details["client"] == first_party.rp.client_id
    other_device = Flow(app, first_party.rp).sign_in()
    other_device.code()  # connected already: another device's grant is not a new connection
    assert len(connects(app)) == 1
    assert activity(first_party).count(CONNECTED) == 1


def test_a_first_party_app_reconnected_after_a_disconnect_is_recorded_again(app, first_party):
    first_party.code()
    page = first_party.browser.get(f"/account/apps/{first_party.rp.client_id}/disconnect")
    first_party.browser.post(f"/account/apps/{first_party.rp.client_id}/disconnect",
                             data={"csrf_token": csrf_token_from(page.text)})  # fmt: skip
    first_party.code()
    assert len(connects(app)) == 2


def test_a_silent_re_authorization_is_never_a_connection(app, first_party):
    """The device check's prompt=none after the grant was revoked: access comes back without the person acting."""
    first_party.code()
    Auth(first_party.browser).logout()
    Auth(first_party.browser).login()
    assert "code" in query_of(first_party.authorize(pkce()[1], prompt="none").headers["Location"])
    assert len(connects(app)) == 1
