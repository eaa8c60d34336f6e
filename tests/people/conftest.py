"""People and invitations: the owner's browser on /account/people, the real SMTP server of tests/mail, and reading
an invitation's link out of the mail it arrived in."""

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.mail import delivery
from app.people.models import Invitation
from tests.conftest import Auth, csrf_token_from
from tests.factories import OWNER_EMAIL
from tests.mail.conftest import mail_app, smtp  # noqa: F401 (fixtures)

PEOPLE = "/account/people"
NEW_EMAIL = "lin@example.test"
NEW_NAME = "Lin Qiao"
NEW_PASSWORD = "a passphrase of lin's own"
LINK = re.compile(r"https?://[^\s\"<>]+/invitation/[^\s\"<>]+")


@pytest.fixture
def app(mail_app):  # noqa: F811
    return mail_app


class Browser:
    """One browser signed in as someone of the account, posting the people page's forms as rendered."""

    def __init__(self, app, email=OWNER_EMAIL):
        self.app = app
        self.client = app.test_client()
        assert Auth(self.client).login(email=email).status_code == 303

    def page(self):
        return self.client.get(PEOPLE)

    def token(self) -> str:
        return csrf_token_from(self.client.get("/").text)

    def post(self, path: str, **data):
        return self.client.post(path, data={"csrf_token": self.token(), **data})

    def invite(self, email=NEW_EMAIL, role="member", **headers):
        page = self.client.get(PEOPLE, headers=headers)
        data = {"email": email, "role": role, "csrf_token": csrf_token_from(page.text)}
        return self.client.post(f"{PEOPLE}/invitations", data=data, headers=headers)


@pytest.fixture
def owner_browser(app, owner) -> Browser:
    return Browser(app)


def delivered(app, smtp, clock) -> list:  # noqa: F811
    """The invitation mails the SMTP server received so far (other mails, such as new-device alerts, left out)."""
    with app.app_context():
        delivery.deliver_due(clock.now())
    return [message for message in smtp.recorder.received if " invited you to " in message["Subject"]]


def the_link(message) -> str:
    """The one link of the mail, the same in both parts."""
    text_links = LINK.findall(message.get_body(("plain",)).get_content())
    html_links = re.findall(r'href="([^"]+)"', message.get_body(("html",)).get_content())
    assert len(text_links) == 1 and html_links == text_links, (text_links, html_links)
    return text_links[0]


def path_of(link: str) -> str:
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def accept(client, path: str, name=NEW_NAME, password=NEW_PASSWORD, confirm=None):
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    data = {"name": name, "new_password": password, "confirm_password": password if confirm is None else confirm,
            "csrf_token": csrf_token_from(page.text)}  # fmt: skip
    return client.post(path, data=data)


def invitation_rows(app) -> list[Invitation]:
    with app.app_context():
        rows = list(db.session.scalars(select(Invitation).order_by(Invitation.id)))
        db.session.expunge_all()
        return rows
