"""The authenticator app's service rules (DESIGN §9, issue 11 item 1), on SQLite and PostgreSQL."""

import re
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import segno
from cryptography.fernet import InvalidToken

from app.extensions import db
from app.factors import totp
from app.factors.errors import (
    AlreadyEnrolled,
    CodeReused,
    EnrolmentExpired,
    NotEnrolled,
    TooManyAttempts,
    WrongCode,
)
from app.factors.models import TotpAuthenticator
from tests.factories import OWNER_EMAIL
from tests.factors.conftest import STEP, app_code, audit_events, enrolled, user_rows, wrong_code


def test_enrolment_gives_the_secret_as_grouped_text_a_uri_and_a_qr_code(user, clock):
    enrolment = totp.begin_enrolment(user, clock.now())
    uri = urlsplit(enrolment.provisioning_uri)
    query = parse_qs(uri.query)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == f"/Gatehouse:{OWNER_EMAIL}"
    assert query["issuer"] == ["Gatehouse"]
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", enrolment.secret_text)  # 160 bits, RFC 4226 §4
    assert enrolment.secret_text.replace(" ", "") == query["secret"][0]


def test_the_qr_code_is_inline_svg_with_a_name_and_nothing_active(user, clock):
    svg = totp.begin_enrolment(user, clock.now()).qr_svg
    root = ET.fromstring(str(svg))  # noqa: S314 (our own output)
    assert root.tag == "svg" and root.get("role") == "img" and root.get("aria-label")
    assert root.find("title") is not None and root.find("title").text == root.get("aria-label")
    tags = {element.tag for element in root.iter()}
    assert tags <= {"svg", "title", "path"}
    attributes = [name.lower() for element in root.iter() for name in element.attrib]
    assert not [name for name in attributes if name.startswith("on") or "href" in name]
    assert "http" not in svg


def test_the_qr_code_encodes_the_provisioning_uri(user, clock):
    enrolment = totp.begin_enrolment(user, clock.now())
    expected = segno.make(enrolment.provisioning_uri, error="m")
    assert expected.svg_inline(scale=totp.QR_SCALE).split("<path", 1)[1] == str(enrolment.qr_svg).split("<path", 1)[1]


def test_the_secret_is_stored_encrypted(user, clock):
    enrolment = totp.begin_enrolment(user, clock.now())
    db.session.commit()
    stored = TotpAuthenticator.for_user(user.id).secret_encrypted
    secret = enrolment.secret_text.replace(" ", "")
    assert secret not in stored and secret.lower() not in stored.lower()
    assert stored.startswith("gAAAAA")  # a Fernet token


def test_enrolment_is_off_until_confirmed_with_a_current_code(user, clock):
    enrolment = totp.begin_enrolment(user, clock.now())
    db.session.commit()
    assert not totp.is_enabled(user)
    with pytest.raises(NotEnrolled):
        totp.verify(user, app_code(enrolment, clock.now()), clock.now())
    for stale in (clock.now() - 2 * STEP, clock.now() + 2 * STEP):
        with pytest.raises(WrongCode):
            totp.confirm_enrolment(user, app_code(enrolment, stale), clock.now())
    assert not totp.is_enabled(user)
    totp.confirm_enrolment(user, app_code(enrolment, clock.now()), clock.now())
    assert totp.is_enabled(user)
    assert TotpAuthenticator.for_user(user.id).confirmed_at == clock.now()


def test_a_new_enrolment_replaces_a_pending_one(user, clock):
    first = totp.begin_enrolment(user, clock.now())
    second = totp.begin_enrolment(user, clock.now())
    assert first.secret_text != second.secret_text
    assert totp.pending_enrolment(user, clock.now()) == second
    with pytest.raises(WrongCode):
        totp.confirm_enrolment(user, app_code(first, clock.now()), clock.now())
    totp.confirm_enrolment(user, app_code(second, clock.now()), clock.now())
    assert totp.pending_enrolment(user, clock.now()) is None


def test_a_pending_enrolment_lasts_thirty_minutes(user, clock):
    """A key shown long ago (on a screen left open, in a screenshot) cannot be confirmed later: set-up starts again."""
    enrolment = totp.begin_enrolment(user, clock.now())
    db.session.commit()
    clock.advance(minutes=30)
    assert totp.pending_enrolment(user, clock.now()) == enrolment
    clock.advance(seconds=1)
    assert totp.pending_enrolment(user, clock.now()) is None
    with pytest.raises(EnrolmentExpired):
        totp.confirm_enrolment(user, app_code(enrolment, clock.now()), clock.now())
    assert not totp.is_enabled(user)
    again = totp.begin_enrolment(user, clock.now())
    totp.confirm_enrolment(user, app_code(again, clock.now()), clock.now())
    assert totp.is_enabled(user)


def test_no_enrolment_over_a_confirmed_authenticator(user, clock):
    enrolment = enrolled(user, clock.now())
    with pytest.raises(AlreadyEnrolled):
        totp.begin_enrolment(user, clock.now())
    with pytest.raises(AlreadyEnrolled):
        totp.confirm_enrolment(user, app_code(enrolment, clock.now()), clock.now())
    assert totp.pending_enrolment(user, clock.now()) is None


def test_nothing_to_confirm_verify_or_remove_without_an_enrolment(user, clock):
    with pytest.raises(NotEnrolled):
        totp.confirm_enrolment(user, "123456", clock.now())
    with pytest.raises(NotEnrolled):
        totp.verify(user, "123456", clock.now())
    with pytest.raises(NotEnrolled):
        totp.remove(user, clock.now())


@pytest.mark.parametrize("skew", [-1, 0, 1])
def test_one_time_step_of_skew_either_way_is_accepted(user, clock, skew):
    enrolment = enrolled(user, clock.now())
    totp.verify(user, app_code(enrolment, clock.now() + skew * STEP), clock.now())


@pytest.mark.parametrize("skew", [-2, 2])
def test_two_time_steps_off_is_a_wrong_code(user, clock, skew):
    enrolment = enrolled(user, clock.now())
    with pytest.raises(WrongCode):
        totp.verify(user, app_code(enrolment, clock.now() + skew * STEP), clock.now())


@pytest.mark.parametrize("typed", ["{0} {1}", " {0}{1} ", "{0}\t{1}"])
def test_spaces_in_the_code_are_tolerated(user, clock, typed):
    code = app_code(enrolled(user, clock.now()), clock.now())
    totp.verify(user, typed.format(code[:3], code[3:]), clock.now())


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "{code}0", "0{code}"])
def test_anything_but_six_digits_is_a_wrong_code(user, clock, typed):
    code = app_code(enrolled(user, clock.now()), clock.now())
    with pytest.raises(WrongCode):
        totp.verify(user, typed.format(code=code), clock.now())


def test_a_code_is_accepted_once(user, clock):
    enrolment = enrolled(user, clock.now())
    code = app_code(enrolment, clock.now())
    totp.verify(user, code, clock.now())
    db.session.commit()
    with pytest.raises(CodeReused):
        totp.verify(user, code, clock.now())
    clock.advance(seconds=30)  # still inside the skew window, still refused
    with pytest.raises(CodeReused):
        totp.verify(user, code, clock.now())
    totp.verify(user, app_code(enrolment, clock.now()), clock.now())


def test_after_a_later_step_an_earlier_one_is_refused(user, clock):
    enrolment = enrolled(user, clock.now())
    totp.verify(user, app_code(enrolment, clock.now() + STEP), clock.now())  # the phone runs ahead
    with pytest.raises(CodeReused):
        totp.verify(user, app_code(enrolment, clock.now()), clock.now())


def test_the_confirming_code_cannot_sign_in(user, clock):
    enrolment = totp.begin_enrolment(user, clock.now())
    code = app_code(enrolment, clock.now())
    totp.confirm_enrolment(user, code, clock.now())
    with pytest.raises(CodeReused):
        totp.verify(user, code, clock.now())


def test_wrong_codes_are_rate_limited_per_user_and_right_ones_cost_nothing(make_app, clock):
    app = make_app(SECOND_FACTOR_RATE_LIMIT="5 per minute;20 per hour")
    with app.app_context():
        owner, member = user_rows()
        enrolment, member_enrolment = enrolled(owner, clock.now()), enrolled(member, clock.now())
        for _ in range(8):  # right codes, each in its own step: never counted
            clock.advance(seconds=30)
            totp.verify(owner, app_code(enrolment, clock.now()), clock.now())
        for _ in range(5):
            with pytest.raises(WrongCode):
                totp.verify(owner, wrong_code(enrolment, clock.now()), clock.now())
        clock.advance(seconds=30)
        with pytest.raises(TooManyAttempts) as refused:  # even the right code, once the user is locked out
            totp.verify(owner, app_code(enrolment, clock.now()), clock.now())
        assert 0 < refused.value.retry_after_seconds <= 60
        assert "Try again in" in str(refused.value)
        totp.verify(member, app_code(member_enrolment, clock.now()), clock.now())  # another user is not affected


def test_removing_turns_the_authenticator_off(user, clock):
    enrolment = enrolled(user, clock.now())
    totp.remove(user, clock.now())
    db.session.commit()
    assert not totp.is_enabled(user) and TotpAuthenticator.for_user(user.id) is None
    with pytest.raises(NotEnrolled):
        totp.verify(user, app_code(enrolment, clock.now()), clock.now())


def test_who_has_an_authenticator_in_one_query(user, owner, clock):
    totp.begin_enrolment(db.session.get(type(user), owner.member_id), clock.now())  # pending: not on
    assert totp.enabled_among([owner.owner_id, owner.member_id]) == set()
    enrolled(user, clock.now())
    assert totp.enabled_among([owner.owner_id, owner.member_id]) == {owner.owner_id}
    assert totp.enabled_among([]) == set()


def test_each_step_is_audited_without_the_secret_or_a_code(user, clock):
    enrolment = totp.begin_enrolment(user, clock.now())
    codes = [app_code(enrolment, clock.now() + n * STEP) for n in range(-1, 3)]
    totp.confirm_enrolment(user, codes[1], clock.now(), ip="192.0.2.1", session_id=None)
    with pytest.raises(CodeReused):
        totp.verify(user, codes[1], clock.now(), ip="192.0.2.1")
    with pytest.raises(WrongCode):
        totp.verify(user, wrong_code(enrolment, clock.now()), clock.now(), ip="192.0.2.1")
    totp.verify(user, codes[2], clock.now(), ip="192.0.2.1")
    totp.remove(user, clock.now(), ip="192.0.2.1")
    db.session.commit()
    events = [(e.tag, e.details.get("reason")) for e in audit_events() if e.tag.startswith("account:factor")]
    assert events == [
        ("account:factor:add", None),
        ("account:factor:failure", "reused"),
        ("account:factor:failure", "wrong"),
        ("account:factor:use", None),
        ("account:factor:remove", None),
    ]
    secret = enrolment.secret_text.replace(" ", "")
    for event in audit_events():
        text = repr((event.details, event.ip)).lower()
        assert secret.lower() not in text and not any(code in text for code in codes)
        if event.tag.startswith("account:factor"):
            assert event.details["factor"] == "totp" and event.ip == "192.0.2.1" and event.user_id == user.id


def test_a_pending_enrolment_removed_is_no_factor_event(user, clock):
    totp.begin_enrolment(user, clock.now())
    totp.remove(user, clock.now())
    assert not [e for e in audit_events() if e.tag.startswith("account:factor")]


def test_a_rotated_secret_key_still_verifies_and_reseals(make_app, clock):
    old_key, new_key = "o" * 40, "n" * 40
    with make_app(SECRET_KEY=old_key).app_context():
        owner, _ = user_rows()
        enrolment = enrolled(owner, clock.now())
        sealed_before = TotpAuthenticator.for_user(owner.id).secret_encrypted
    with make_app(SECRET_KEY=new_key).app_context():
        owner, _ = user_rows()
        with pytest.raises(InvalidToken):  # without the old key, nothing opens it
            totp.verify(owner, app_code(enrolment, clock.now()), clock.now())
    with make_app(SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=[old_key]).app_context():
        owner, _ = user_rows()
        totp.verify(owner, app_code(enrolment, clock.now()), clock.now())
        db.session.commit()
        sealed_after = TotpAuthenticator.for_user(owner.id).secret_encrypted
    assert sealed_after != sealed_before
    with make_app(SECRET_KEY=new_key).app_context():  # re-sealed: the old key can go
        owner, _ = user_rows()
        clock.advance(seconds=30)
        totp.verify(owner, app_code(enrolment, clock.now()), clock.now())
