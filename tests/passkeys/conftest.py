"""Passkey services on a portal served from http://localhost:5000 (a secure context, so WebAuthn's RP ID is a name)."""

import json
from dataclasses import dataclass

import pytest

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.audit.tags import EventTag
from app.extensions import db
from app.passkeys import services
from tests import factories
from tests.conftest import ORIGIN
from tests.passkeys.soft_authenticator import SoftAuthenticator


@dataclass
class Portal:
    """The services in one app context, with the people of a fresh account."""

    clock: object
    owner: User
    member: User

    def now(self):
        return self.clock.now()

    def register(self, user: User, authenticator: SoftAuthenticator, name: str = "Chrome on macOS"):
        handle, options = services.registration_options(user, self.now())
        passkey = services.register(user, handle, json.dumps(authenticator.create(options, ORIGIN)), name, self.now())
        db.session.commit()
        return passkey

    def sign_in(self, authenticator: SoftAuthenticator, user: User | None = None, **overrides):
        handle, options = services.authentication_options(self.now(), user)
        response = authenticator.get(options, ORIGIN, **overrides)
        return services.authenticate(handle, json.dumps(response), self.now(), user)


def portal_in(clock) -> Portal:
    """An account with an owner and a member, in the current app context."""
    people = factories.account_with_users()
    return Portal(clock, db.session.get(User, people.owner_id), db.session.get(User, people.member_id))


@pytest.fixture
def portal(make_app, clock):
    app = make_app(ISSUER=ORIGIN)
    with app.app_context():
        yield portal_in(clock)
        db.session.rollback()


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


def events(tag: EventTag) -> list[AuditEvent]:
    return AuditEvent.tagged(str(tag))
