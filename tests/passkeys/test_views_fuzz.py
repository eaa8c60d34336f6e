"""No body, name or id sent to the passkey endpoints ends in a 5xx (DESIGN §8, issue 11): malformed, deep, huge and
NUL-laden bodies get a JSON refusal, and nothing is registered."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.extensions import db
from app.passkeys.models import PasskeyCredential
from tests.conftest import csrf_token_from
from tests.factories import account_with_users
from tests.passkeys.conftest import ORIGIN
from tests.passkeys.test_malformed_responses import json_values, registration_bodies
from tests.passkeys.test_views import OPTIONS, PAGE, REGISTER, signed_in

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

DEEP = ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000, '{"response":' * 9 + "{}" + "}" * 9]
HUGE = [json.dumps({"id": "A" * 70_000}), "x" * 900_000]
NUL = ['{"id":"\x00","rawId":"\x00","type":"public-key","response":{"clientDataJSON":"\x00"}}', "\x00", '{"\\u0000":1}']
bodies = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=2000),
    json_values.map(json.dumps),
    registration_bodies.map(json.dumps),
    st.sampled_from(DEEP + HUGE + NUL),
)


@pytest.fixture
def fuzzing(make_app, clock):
    app = make_app(ISSUER=ORIGIN, PASSKEY_RATE_LIMIT="100000 per minute")
    with app.app_context():
        account_with_users()
    browser = signed_in(app, clock)
    return browser, csrf_token_from(browser.client.get(PAGE).text)


def assert_json_refusal(answer, statuses=(400,)) -> None:
    assert answer.status_code in statuses, (answer.status_code, answer.text[:300])
    assert answer.is_json and set(answer.json) >= {"error", "error_description"}


@FUZZ
@given(body=bodies)
def test_registration_bodies_are_refused_as_json(fuzzing, body):
    browser, token = fuzzing
    assert browser.json_post(OPTIONS, token=token).status_code == 200
    answer = browser.json_post(REGISTER, body, token=token)
    assert_json_refusal(answer, (400, 413))
    with browser.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(PasskeyCredential)) == 0


@pytest.mark.parametrize("body", DEEP + HUGE + NUL + ["", "null", "[]", '"x"', "1e999999"])
def test_each_hostile_body_is_a_json_refusal(fuzzing, body):
    browser, token = fuzzing
    browser.json_post(OPTIONS, token=token)
    assert_json_refusal(browser.json_post(REGISTER, body, token=token), (400, 413))


def test_a_body_past_the_request_limit_is_a_json_413(fuzzing):
    browser, token = fuzzing
    assert_json_refusal(browser.json_post(REGISTER, "x" * (2 * 1024 * 1024), token=token), (413,))


@FUZZ
@given(body=bodies)
def test_the_options_endpoint_ignores_any_body(fuzzing, body):
    browser, token = fuzzing
    answer = browser.json_post(OPTIONS, body, token=token)
    assert answer.status_code in (200, 413) and answer.is_json


@FUZZ
# A "/" makes another path (werkzeug decodes %2F before routing), so ids are fuzzed without it.
@given(name=st.text(max_size=300), public_id=st.text(min_size=1, max_size=80).filter(lambda text: "/" not in text))
def test_rename_and_remove_never_fail_on_any_name_or_id(fuzzing, name, public_id):
    browser, token = fuzzing
    quoted = public_id.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    for action in ("rename", "remove"):
        answer = browser.client.post(f"/account/passkeys/{quoted}/{action}", data={"csrf_token": token, "name": name})
        assert answer.status_code in (303, 404), (answer.status_code, public_id)
