"""Listing, renaming and removing passkeys: by opaque public id, only one's own, every change audited."""

import pytest

from app.audit.tags import EventTag
from app.extensions import db
from app.passkeys import services
from app.passkeys.errors import CeremonyRefused, InvalidPasskeyName, PasskeyNotFound
from tests.passkeys.conftest import events
from tests.passkeys.soft_authenticator import SoftAuthenticator

MALFORMED_IDS = ["", "x" * 65, "abc\x00def", "abc def", "é" * 10, "abc\n", None, 42, ["a"]]


@pytest.fixture
def laptop(portal, authenticator):
    return portal.register(portal.owner, authenticator, name="Firefox on Linux")


def test_list_shows_only_ones_own_passkeys_oldest_first(portal, laptop, clock):
    clock.advance(days=1)
    phone = portal.register(portal.owner, SoftAuthenticator(), name="Safari on iPhone")
    portal.register(portal.member, SoftAuthenticator())
    listed = services.list_for(portal.owner)
    assert [(p.public_id, p.name) for p in listed] == [(laptop.public_id, "Firefox on Linux"),
                                                       (phone.public_id, "Safari on iPhone")]  # fmt: skip
    assert len(laptop.public_id) == 43 and not laptop.public_id.isdigit()  # opaque, not the row number


def test_rename(portal, laptop):
    renamed = services.rename(portal.owner, laptop.public_id, "  Work   laptop ", portal.now())
    db.session.commit()
    assert renamed.name == "Work laptop"
    assert [p.name for p in services.list_for(portal.owner)] == ["Work laptop"]
    assert [(e.user_id, e.details) for e in events(EventTag.FACTOR_RENAME)] == [
        (portal.owner.id, {"factor": "passkey", "passkey": laptop.public_id})
    ]


@pytest.mark.parametrize("name", ["", "   ", "x" * 65])
def test_a_name_must_fit(portal, laptop, name):
    with pytest.raises(InvalidPasskeyName, match="1 to 64 characters"):
        services.rename(portal.owner, laptop.public_id, name, portal.now())
    assert events(EventTag.FACTOR_RENAME) == []


def test_remove(portal, laptop):
    services.remove(portal.owner, laptop.public_id, portal.now())
    db.session.commit()
    assert services.list_for(portal.owner) == []
    assert [(e.user_id, e.details) for e in events(EventTag.FACTOR_REMOVE)] == [
        (portal.owner.id, {"factor": "passkey", "passkey": laptop.public_id})
    ]
    with pytest.raises(PasskeyNotFound):
        services.remove(portal.owner, laptop.public_id, portal.now())


def test_a_removed_passkey_no_longer_signs_in(portal, authenticator, laptop):
    services.remove(portal.owner, laptop.public_id, portal.now())
    with pytest.raises(CeremonyRefused, match="not registered here"):
        portal.sign_in(authenticator)


def test_another_users_passkey_cannot_be_renamed_or_removed(portal, laptop):
    with pytest.raises(PasskeyNotFound):
        services.rename(portal.member, laptop.public_id, "mine now", portal.now())
    with pytest.raises(PasskeyNotFound):
        services.remove(portal.member, laptop.public_id, portal.now())
    assert [p.name for p in services.list_for(portal.owner)] == ["Firefox on Linux"]


@pytest.mark.parametrize("public_id", MALFORMED_IDS)
def test_malformed_ids_read_as_unknown(portal, laptop, public_id):
    with pytest.raises(PasskeyNotFound):
        services.rename(portal.owner, public_id, "x", portal.now())
    with pytest.raises(PasskeyNotFound):
        services.remove(portal.owner, public_id, portal.now())
