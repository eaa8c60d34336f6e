"""Recovery codes' service rules (DESIGN §9, issue 11 item 2), on SQLite and PostgreSQL."""

import hashlib
import math
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.factors import recovery, totp
from app.factors.errors import CodeReused, TooManyAttempts, WrongCode
from app.factors.models import RecoveryCode
from tests.factors.conftest import app_code, audit_events, enrolled, user_rows, wrong_code

UNAMBIGUOUS = set("abcdefghjkmnpqrstuvwxyz23456789")


def test_ten_readable_codes_of_at_least_fifty_bits(user, clock):
    codes = recovery.generate(user, clock.now())
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", code)
        assert set(code.replace("-", "")) <= UNAMBIGUOUS
    assert not UNAMBIGUOUS & set("0o1li")
    assert 12 * math.log2(len(recovery.ALPHABET)) >= 50 and set(recovery.ALPHABET) == UNAMBIGUOUS


def test_codes_are_stored_only_as_keyed_hashes(user, clock):
    codes = recovery.generate(user, clock.now())
    db.session.commit()
    stored = list(db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)))
    assert len(stored) == 10 and all(re.fullmatch(r"[0-9a-f]{64}", value) for value in stored)
    for code in codes:
        assert not any(code.replace("-", "") in value or code in value for value in stored)
    assert hashlib.sha256(codes[0].replace("-", "").encode()).hexdigest() not in stored  # keyed, not a bare hash


def test_one_field_can_take_either_kind_of_code(user, clock):
    assert all(not totp.is_code_shaped(code) for code in recovery.generate(user, clock.now()))
    assert totp.is_code_shaped("123 456") and not totp.is_code_shaped("12345")


def test_each_code_works_once(user, clock):
    codes = recovery.generate(user, clock.now())
    assert recovery.use(user, codes[3], clock.now()) == 9
    db.session.commit()
    with pytest.raises(CodeReused, match="already used"):
        recovery.use(user, codes[3], clock.now())
    assert recovery.remaining(user) == 9
    assert recovery.use(user, codes[4], clock.now()) == 8


@pytest.mark.parametrize("typed", ["{}", "{} ", "{U}", "{N}", "{S}", " {D} "])
def test_case_spaces_and_dashes_are_ignored(user, clock, typed):
    code = recovery.generate(user, clock.now())[0]
    plain = code.replace("-", "")
    variants = {"U": code.upper(), "N": plain, "S": code.replace("-", " "), "D": "-".join(plain)}
    assert recovery.use(user, typed.format(code, **variants), clock.now()) == 9


@pytest.mark.parametrize("typed", ["", "abcd-efgh-2345", "{}x", "{short}", "123456"])
def test_anything_else_is_a_wrong_code(user, clock, typed):
    code = recovery.generate(user, clock.now())[0]
    with pytest.raises(WrongCode):
        recovery.use(user, typed.format(code, short=code[:-1]), clock.now())
    assert recovery.remaining(user) == 10


def test_another_users_code_is_wrong(user, owner, clock):
    member = db.session.get(type(user), owner.member_id)
    member_codes = recovery.generate(member, clock.now())
    recovery.generate(user, clock.now())
    with pytest.raises(WrongCode):
        recovery.use(user, member_codes[0], clock.now())
    assert recovery.remaining(member) == 10


def test_a_new_set_voids_the_old_one(user, clock):
    old = recovery.generate(user, clock.now())
    recovery.use(user, old[0], clock.now())
    new = recovery.generate(user, clock.now())
    db.session.commit()
    assert recovery.remaining(user) == 10
    for code in old[:2]:
        with pytest.raises(WrongCode):
            recovery.use(user, code, clock.now())
    assert recovery.use(user, new[0], clock.now()) == 9


def test_none_left_when_none_were_made_or_after_discarding(user, clock):
    assert recovery.remaining(user) == 0
    recovery.generate(user, clock.now())
    assert recovery.discard(user) == 10
    assert recovery.remaining(user) == 0


def test_wrong_recovery_codes_share_the_authenticator_apps_limit(make_app, clock):
    app = make_app(SECOND_FACTOR_RATE_LIMIT="5 per minute")
    with app.app_context():
        owner, _ = user_rows()
        enrolment = enrolled(owner, clock.now())
        codes = recovery.generate(owner, clock.now())
        for right in codes[:6]:  # right codes cost nothing
            recovery.use(owner, right, clock.now())
        for _ in range(3):
            with pytest.raises(WrongCode):
                recovery.use(owner, "abcd-efgh-2345", clock.now())
        for _ in range(2):
            with pytest.raises(WrongCode):
                totp.verify(owner, wrong_code(enrolment, clock.now()), clock.now())
        with pytest.raises(TooManyAttempts):
            recovery.use(owner, codes[6], clock.now())
        with pytest.raises(TooManyAttempts):
            totp.verify(owner, app_code(enrolment, clock.now()), clock.now())
        assert recovery.remaining(owner) == 4  # a refused guess spends no code


def test_codes_made_before_a_key_rotation_still_work(make_app, clock):
    old_key, new_key = "o" * 40, "n" * 40
    with make_app(SECRET_KEY=old_key).app_context():
        owner, _ = user_rows()
        codes = recovery.generate(owner, clock.now())
        db.session.commit()
    with make_app(SECRET_KEY=new_key).app_context():
        owner, _ = user_rows()
        with pytest.raises(WrongCode):
            recovery.use(owner, codes[0], clock.now())
    with make_app(SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=[old_key]).app_context():
        owner, _ = user_rows()
        assert recovery.use(owner, codes[0], clock.now()) == 9
        db.session.commit()
        with pytest.raises(CodeReused):
            recovery.use(owner, codes[0], clock.now())


def test_generating_and_using_are_audited_without_a_code(user, clock):
    codes = recovery.generate(user, clock.now(), ip="192.0.2.7")
    recovery.use(user, codes[0], clock.now(), ip="192.0.2.7")
    with pytest.raises(CodeReused):
        recovery.use(user, codes[0], clock.now(), ip="192.0.2.7")
    with pytest.raises(WrongCode):
        recovery.use(user, "abcd-efgh-2345", clock.now(), ip="192.0.2.7")
    db.session.commit()
    events = [event for event in audit_events() if "factor" in event.tag or "recovery" in event.tag]
    assert [(event.tag, event.details) for event in events] == [
        ("account:recovery_codes:regenerate", {"count": 10}),
        ("account:recovery_code:use", {"remaining": 9}),
        ("account:factor:failure", {"factor": "recovery_code", "reason": "reused"}),
        ("account:factor:failure", {"factor": "recovery_code", "reason": "wrong"}),
    ]
    assert {(event.user_id, event.account_id, event.ip) for event in events} == {
        (user.id, user.account_id, "192.0.2.7")
    }
    for event in audit_events():
        text = repr(event.details).lower()
        assert not any(code in text or code.replace("-", "") in text for code in codes)
