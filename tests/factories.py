"""Test data built through the real services (hashes, audit and all)."""

from dataclasses import dataclass

from app.accounts import services
from app.accounts.models import ROLE_MEMBER, ROLE_OWNER
from app.clock import now
from app.extensions import db

PASSWORD = "correct horse battery staple"
OWNER_EMAIL = "ada@example.test"
MEMBER_EMAIL = "grace@example.test"


@dataclass(frozen=True)
class People:
    account_id: int
    owner_id: int
    member_id: int


def account_with_users(name="Example", idle_minutes=None, absolute_minutes=None) -> People:
    account = services.create_account(name, now())
    account.idle_minutes = idle_minutes
    account.absolute_minutes = absolute_minutes
    owner = services.create_user(account, OWNER_EMAIL, "Ada Lovelace", ROLE_OWNER, PASSWORD, now())
    member = services.create_user(account, MEMBER_EMAIL, "Grace Hopper", ROLE_MEMBER, PASSWORD, now())
    db.session.commit()
    return People(account.id, owner.id, member.id)
