"""DESIGN §8: only POST (and the JSON API's PATCH, behind its CSRF header) changes state.

Every route of the URL map that accepts an unsafe method gets every HTTP method, with the owner's cookie, no CSRF
token, and a foreign Origin or none at all (an old browser, a plain link): nothing in the database may change. The
routes come from `app.url_map`, so a new state-changing route is covered as soon as it exists; a route whose
argument the test cannot fill fails here until a real value is added to `argument_values`.
"""

import itertools
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.mail.models import MailMessage
from app.oauth.models import OAuthGrant
from app.people.models import Invitation
from app.sessions.models import UserSession
from tests.conftest import Auth, csrf_token_from
from tests.factories import MEMBER_EMAIL, OWNER_EMAIL
from tests.oauth.conftest import Flow

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SENDERS = [{"Origin": "https://evil.test"}, {"Origin": "null", "Sec-Fetch-Site": "cross-site"}, {}]


def snapshot(app) -> dict[str, list[tuple]]:
    """Every row of every table: a changed session, grant, token, policy or audit event shows up here."""
    with app.app_context():
        rows = {
            t.name: sorted(map(tuple, db.session.execute(select(t)).all()), key=repr) for t in db.metadata.sorted_tables
        }
        db.session.remove()
        return rows


@pytest.fixture
def world(app, client, owner, make_client):
    """The owner signed in here with a live grant from this session, on a second device too; the member
    signed in elsewhere. Returns real values for the URL map's arguments."""
    rp = make_client(first_party=True)
    Auth(client).login()
    flow = Flow(app, rp)
    flow.browser = client
    flow.tokens()
    Auth(app.test_client()).login()  # the owner's other device
    Auth(app.test_client()).login(email=MEMBER_EMAIL)
    forgot = app.test_client()  # a live password-reset link of the owner's
    token = csrf_token_from(forgot.get("/login").text)
    forgot.post("/forgot-password", data={"email": OWNER_EMAIL, "csrf_token": token})
    account = client.get("/account")  # a live e-mail change link of the owner's
    client.post("/account/email", data={"email": "ada@new.example.test", "csrf_token": csrf_token_from(account.text)})
    people = client.get("/account/people")  # a pending invitation, and its live link
    client.post("/account/people/invitations", data={"email": "lin@example.test", "role": "member",
                                                     "csrf_token": csrf_token_from(people.text)})  # fmt: skip
    with app.app_context():
        mails = "\n".join(db.session.scalars(select(MailMessage.text_body)))
        reset_link = re.search(r"/reset-password/(\S+)", mails)
        email_link = re.search(r"/account/email/confirm/(\S+)", mails)
        invitation_link = re.search(r"/invitation/(\S+)", mails)
        not_me_link = re.search(r"/not-me/(\S+)", mails)  # the owner's other device was alerted
        invitation = db.session.scalars(select(Invitation)).one()
        grant = db.session.scalars(select(OAuthGrant)).one()
        sessions = db.session.scalars(select(UserSession).where(UserSession.user_id == owner.owner_id)).all()
        other_device = next(s for s in sessions if s.id != grant.issuer_session_id)
        assert len(sessions) == 2
        return {
            "scope": ["all", "others"],
            "public_id": [other_device.public_id, grant.public_id],
            "client_id": [rp.client_id],
            "token": [reset_link.group(1), email_link.group(1), invitation_link.group(1), not_me_link.group(1)],
            "person_id": [owner.member_id, owner.owner_id],
            "invitation_id": [invitation.id],
        }


def state_changing_urls(app, argument_values: dict[str, list[str]]) -> list[str]:
    urls = set()
    for rule in app.url_map.iter_rules():
        if not rule.methods & UNSAFE:
            continue
        missing = rule.arguments - set(argument_values)
        assert not missing, f"{rule.rule}: add real values for {sorted(missing)} to this test's `world` fixture"
        names = sorted(rule.arguments)
        for values in itertools.product(*(argument_values[n] for n in names)):
            urls.add(rule.build(dict(zip(names, values, strict=True)), append_unknown=False)[1])
    return sorted(urls)


def test_no_method_but_a_genuine_post_changes_anything(app, client, world):
    urls = state_changing_urls(app, world)
    assert "/account/security/revoke/all" in urls and len(urls) > 15
    before = snapshot(app)
    for url, method, headers in itertools.product(urls, METHODS, SENDERS):
        response = client.open(url, method=method, headers=headers)
        assert response.status_code < 500, (method, url, response.status_code)
        assert snapshot(app) == before, f"{method} {url} with {headers or 'no Origin'} changed the database"
    assert client.get("/account/devices").status_code == 200  # still signed in


def test_head_on_a_confirmation_page_is_the_page_not_the_action(app, client, world):
    for url in ["/account/security/revoke/all", f"/account/apps/{world['client_id'][0]}/disconnect"]:
        get, head = client.get(url), client.head(url)
        assert get.status_code == head.status_code == 200
        assert head.headers["Content-Type"] == get.headers["Content-Type"]
