"""Nothing the browser (or anyone) sends to a ceremony escapes as anything but our refusal (DESIGN §8, issue 11):
wrong types, missing fields, bad base64url, huge or deeply nested values, and valid responses with their bytes
mutated so that py_webauthn's deeper parsing (CBOR, COSE keys, signatures) sees them too."""

import json

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.extensions import db
from app.passkeys import services
from app.passkeys.errors import CeremonyRefused, PasskeyError
from tests.passkeys.conftest import ORIGIN
from tests.passkeys.soft_authenticator import SoftAuthenticator, b64url, from_b64url

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
b64_like = st.one_of(
    st.binary(max_size=300).map(b64url), st.text(max_size=60), st.just("!!!"), st.just("===="), st.just("a")
)
field_values = st.one_of(b64_like, json_values)


def credential_shaped(response_keys: list[str]):
    """Objects with the right keys holding the wrong things, so the parsers get past the first checks."""
    return st.fixed_dictionaries(
        {},
        optional={
            "id": field_values,
            "rawId": field_values,
            "type": st.sampled_from(["public-key", "", "PUBLIC-KEY"]) | json_values,
            "authenticatorAttachment": st.sampled_from(["platform", "cross-platform", "x"]) | json_values,
            "response": st.fixed_dictionaries({}, optional={key: field_values for key in response_keys}) | json_values,
        },
    )


registration_bodies = credential_shaped(["clientDataJSON", "attestationObject", "transports"])
assertion_bodies = credential_shaped(["clientDataJSON", "authenticatorData", "signature", "userHandle"])


def register(portal, body):
    handle, _ = services.registration_options(portal.owner, portal.now())
    return _refused_or_ok(lambda: services.register(portal.owner, handle, body, "Laptop", portal.now()))


def authenticate(portal, body, user=None):
    handle, _ = services.authentication_options(portal.now(), user)
    return _refused_or_ok(lambda: services.authenticate(handle, body, portal.now(), user))


def _refused_or_ok(call):
    """Run one request as a view would: a PasskeyError is an answer (committed), anything else fails the test."""
    try:
        result = call()
    except PasskeyError as refusal:
        db.session.commit()
        return refusal
    db.session.commit()
    return result


@FUZZ
@given(body=st.one_of(json_values.map(json.dumps), registration_bodies.map(json.dumps), st.text(), st.binary()))
def test_registration_bodies(portal, body):
    assert isinstance(register(portal, body), CeremonyRefused)


@FUZZ
@given(body=st.one_of(json_values.map(json.dumps), assertion_bodies.map(json.dumps), st.text(), st.binary()))
def test_assertion_bodies(portal, body):
    assert isinstance(authenticate(portal, body), CeremonyRefused)


def mutate(data: bytes, position: int, replacement: bytes) -> bytes:
    position = position % (len(data) + 1)
    return data[:position] + replacement + data[position + len(replacement) :]


@FUZZ
@given(
    field=st.sampled_from(["clientDataJSON", "attestationObject"]),
    position=st.integers(min_value=0, max_value=2000),
    replacement=st.binary(min_size=1, max_size=8),
)
def test_registrations_with_mutated_bytes(portal, field, position, replacement):
    handle, options = services.registration_options(portal.owner, portal.now())
    response = SoftAuthenticator().create(options, ORIGIN)
    response["response"][field] = b64url(mutate(from_b64url(response["response"][field]), position, replacement))
    _refused_or_ok(lambda: services.register(portal.owner, handle, json.dumps(response), "Laptop", portal.now()))


@FUZZ
@given(cose_key=json_values | st.dictionaries(st.integers(-4, 4), json_values | st.binary(max_size=80), max_size=6))
def test_registrations_with_any_public_key(portal, cose_key):
    """A well-formed attestation around any CBOR value as the credential's public key."""
    handle, options = services.registration_options(portal.owner, portal.now())
    response = SoftAuthenticator().create(options, ORIGIN)
    attestation = cbor2.loads(from_b64url(response["response"]["attestationObject"]))
    auth_data = attestation["authData"]
    id_length = int.from_bytes(auth_data[53:55], "big")
    attestation["authData"] = auth_data[: 55 + id_length] + cbor2.dumps(cose_key)
    response["response"]["attestationObject"] = b64url(cbor2.dumps(attestation))
    _refused_or_ok(lambda: services.register(portal.owner, handle, json.dumps(response), "Laptop", portal.now()))


@FUZZ
@given(
    field=st.sampled_from(["clientDataJSON", "authenticatorData", "signature", "userHandle"]),
    position=st.integers(min_value=0, max_value=400),
    replacement=st.binary(min_size=1, max_size=8),
    second_step=st.booleans(),
)
def test_assertions_with_mutated_bytes(portal, field, position, replacement, second_step):
    authenticator = SoftAuthenticator()
    portal.register(portal.owner, authenticator)
    user = portal.owner if second_step else None
    handle, options = services.authentication_options(portal.now(), user)
    response = authenticator.get(options, ORIGIN)
    response["response"][field] = b64url(mutate(from_b64url(response["response"][field]), position, replacement))
    _refused_or_ok(lambda: services.authenticate(handle, json.dumps(response), portal.now(), user))


@FUZZ
@given(client_data=st.dictionaries(st.sampled_from(["type", "origin", "crossOrigin", "tokenBinding", "topOrigin"]),
                                   json_values, max_size=5))  # fmt: skip
def test_assertions_with_odd_client_data(portal, client_data):
    """clientDataJSON carrying the right challenge and anything else, so the checks after the challenge run."""
    authenticator = SoftAuthenticator()
    portal.register(portal.owner, authenticator)
    handle, options = services.authentication_options(portal.now())
    response = authenticator.get(options, ORIGIN)
    original = json.loads(from_b64url(response["response"]["clientDataJSON"]))
    odd = {"type": "webauthn.get", **client_data, "challenge": original["challenge"]}
    response["response"]["clientDataJSON"] = b64url(json.dumps(odd).encode())
    _refused_or_ok(lambda: services.authenticate(handle, json.dumps(response), portal.now()))


def test_a_deeply_nested_body_is_refused(portal):
    nested = "[" * 100_000 + "]" * 100_000
    assert register(portal, nested).reason == "malformed"
    assert authenticate(portal, '{"response": ' + nested + "}").reason == "malformed"


def test_a_huge_body_is_refused_before_it_is_read(portal):
    huge = json.dumps({"id": "A" * 100_000, "rawId": "A" * 100_000})
    assert register(portal, huge).reason == "malformed"
    assert authenticate(portal, huge).reason == "malformed"


@pytest.mark.parametrize("body", [None, 42, {"id": "x"}, ["x"], "", b"", b"\xff\xfe", "null", "[]", '"x"'])
def test_bodies_that_are_not_json_objects_are_refused(portal, body):
    assert register(portal, body).reason == "malformed"
    assert authenticate(portal, body).reason == "malformed"


def test_a_credential_id_too_long_to_be_one_reads_as_unknown(portal):
    portal.register(portal.owner, SoftAuthenticator())
    authenticator = SoftAuthenticator()
    authenticator.create(services.registration_options(portal.owner, portal.now())[1], ORIGIN)
    authenticator.credentials[0].credential_id = b"\x01" * 2000
    handle, options = services.authentication_options(portal.now())
    refusal = _refused_or_ok(
        lambda: services.authenticate(handle, json.dumps(authenticator.get(options, ORIGIN)), portal.now())
    )
    assert refusal.reason == "unknown_credential"
