"""The cookie codec alone: every forged, stale or broken value decodes to "no session" (catalogue #8, #50)."""

import base64
import contextlib
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from app.sessions.codec import SESSION_COOKIE_SALT, CookieExpired, CookieInvalid, SessionHandle, SignedCookieStore

KEY = "k" * 40
OLD_KEY = "o" * 40
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def handle(**changes) -> SessionHandle:
    values = {
        "public_id": "pub-123",
        "user_id": 7,
        "issued_at": NOW,
        "expires_at": NOW + timedelta(hours=1),
    } | changes
    return SessionHandle(**values)


def flip(value: str, index: int) -> str:
    char = value[index]
    return value[:index] + ("A" if char != "A" else "B") + value[index + 1 :]


def test_round_trip_holds_only_the_handle():
    store = SignedCookieStore(KEY)
    value = store.encode(handle())
    assert store.decode(value, NOW) == handle()
    payload = base64.urlsafe_b64decode(value.split(".")[0] + "==")
    # Catalogue #3: the handle carries ids and times only, no e-mail or role.
    assert (
        payload
        == b'["pub-123",7,'
        + str(int(NOW.timestamp())).encode()
        + b","
        + str(int((NOW + timedelta(hours=1)).timestamp())).encode()
        + b"]"
    )


def test_flipped_payload_and_signature_bytes_are_invalid():
    store = SignedCookieStore(KEY)
    value = store.encode(handle())
    with pytest.raises(CookieInvalid):
        store.decode(flip(value, 3), NOW)
    with pytest.raises(CookieInvalid):
        store.decode(flip(value, len(value) - 2), NOW)


def test_payload_of_one_cookie_with_signature_of_another_is_invalid():
    store = SignedCookieStore(KEY)
    first, second = store.encode(handle()), store.encode(handle(public_id="other"))
    spliced = first.split(".")[0] + "." + second.split(".")[1]
    with pytest.raises(CookieInvalid):
        store.decode(spliced, NOW)


@pytest.mark.parametrize("salt", ["cookie-session", "wtf-csrf-token", "itsdangerous"])
def test_right_key_with_another_purpose_salt_is_invalid(salt):
    forged = URLSafeSerializer(KEY, salt=salt).dumps(["pub-123", 7, int(NOW.timestamp()), int(NOW.timestamp()) + 60])
    with pytest.raises(CookieInvalid):
        SignedCookieStore(KEY).decode(forged, NOW)


def test_expired_cookie_is_reported_as_expired_with_its_handle():
    store = SignedCookieStore(KEY)
    value = store.encode(handle(expires_at=NOW - timedelta(seconds=1)))
    with pytest.raises(CookieExpired) as raised:
        store.decode(value, NOW)
    assert raised.value.handle.public_id == "pub-123"


def test_issued_in_the_future_is_invalid():
    store = SignedCookieStore(KEY)
    value = store.encode(handle(issued_at=NOW + timedelta(minutes=5), expires_at=NOW + timedelta(hours=2)))
    with pytest.raises(CookieInvalid):
        store.decode(value, NOW)


@pytest.mark.parametrize("value", ["", "x" * 10_000, "not-a-cookie", ".", "a.b.c", "\u00e9\u00e9.\u00e9"])
def test_empty_oversized_and_malformed_values_are_invalid(value):
    with pytest.raises(CookieInvalid):
        SignedCookieStore(KEY).decode(value, NOW)


def test_fallback_key_still_verifies_but_new_cookies_use_the_current_key_alone():
    old_cookie = SignedCookieStore(OLD_KEY).encode(handle())
    rotated = SignedCookieStore(KEY, fallback_keys=[OLD_KEY])
    assert rotated.decode(old_cookie, NOW) == handle()
    assert rotated.decode(old_cookie, NOW).signed_with_fallback
    fresh = rotated.encode(handle())
    # CVE-2025-47278 regression: what we sign verifies with the current key and no fallback.
    assert SignedCookieStore(KEY).decode(fresh, NOW) == handle()
    assert not rotated.decode(fresh, NOW).signed_with_fallback


def test_unknown_key_is_invalid():
    with pytest.raises(CookieInvalid):
        SignedCookieStore(KEY).decode(SignedCookieStore(OLD_KEY).encode(handle()), NOW)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=700), st.binary(max_size=700).map(lambda b: b.decode("latin-1"))))
def test_decode_never_raises_anything_but_the_two_answers(value):
    store = SignedCookieStore(KEY)
    with contextlib.suppress(CookieInvalid, CookieExpired):
        store.decode(value, NOW)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=600), st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_is_refused(index, byte):
    store = SignedCookieStore(KEY)
    value = store.encode(handle())
    index %= len(value)
    mutated = value[:index] + chr(byte) + value[index + 1 :]
    if mutated == value:
        return
    with pytest.raises(CookieInvalid):
        store.decode(mutated, NOW)


def _respelled(value: str) -> list[str]:
    """Texts that itsdangerous verifies as this same cookie: "+" for "-", and the signature's last character with
    a different unused low bit (27 characters carry the 160 bits of an HMAC-SHA1)."""
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    assert "-" in value  # this key and handle give one; the spelling below relies on it
    plus = value.replace("-", "+", 1)
    last = alphabet[alphabet.index(value[-1]) ^ 1]
    return [plus, value[:-1] + last]


def test_other_spellings_of_a_valid_cookie_are_refused():
    store = SignedCookieStore(KEY)
    value = store.encode(handle())
    for spelling in _respelled(value):
        assert URLSafeSerializer(KEY, salt=SESSION_COOKIE_SALT).loads(spelling)  # itsdangerous alone accepts it
        with pytest.raises(CookieInvalid):
            store.decode(spelling, NOW)
