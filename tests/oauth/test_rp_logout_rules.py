"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2, §3): client_id must be the hint's audience,
the post-logout URI must be registered for the client the request names, state comes back, an expired hint is a hint."""

import pytest

from tests.oauth.conftest import Flow

BYE = "https://app.test/bye"
OTHER_BYE = "https://other.test/bye"


@pytest.fixture
def signed_in(app, owner, make_client):
    """A browser signed in through an app with a registered post-logout URI, holding that app's ID token."""
    flow = Flow(app, make_client(first_party=True, post_logout_redirect_uris=[BYE])).sign_in()
    return flow, flow.tokens()


@pytest.fixture
def other_client(make_client):
    return make_client(["https://other.test/cb"], first_party=True, post_logout_redirect_uris=[OTHER_BYE])


def rp_logout(flow, **params):
    return flow.browser.get("/oauth/logout", query_string=params)


def still_signed_in(flow) -> bool:
    return flow.browser.get("/account/devices").status_code == 200


@pytest.mark.parametrize("post_logout_redirect_uri", [BYE, OTHER_BYE, None])
def test_a_client_id_that_is_not_the_hints_audience_is_refused(signed_in, other_client, post_logout_redirect_uri):
    """§2: "the OP MUST verify that the Client Identifier matches the one used when issuing the ID Token"."""
    flow, tokens = signed_in
    params = {"id_token_hint": tokens["id_token"], "client_id": other_client.client_id, "state": "s1"}
    if post_logout_redirect_uri:
        params["post_logout_redirect_uri"] = post_logout_redirect_uri
    response = rp_logout(flow, **params)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "Sign-out request refused" in response.text
    assert "The application that asked to sign you out is not the one this sign-in was issued to." in response.text
    assert still_signed_in(flow)
    assert flow.refresh(tokens["refresh_token"]).status_code == 200  # nothing was revoked


@pytest.mark.parametrize("client_id", ["unknown-client", "x" * 300, "a\nb"])
def test_an_unknown_or_malformed_client_id_with_a_hint_is_refused(signed_in, client_id):
    flow, tokens = signed_in
    response = rp_logout(flow, id_token_hint=tokens["id_token"], client_id=client_id, post_logout_redirect_uri=BYE)
    assert response.status_code == 400 and "Location" not in response.headers
    assert still_signed_in(flow)


def test_a_client_id_that_is_the_hints_audience_signs_out_and_goes_back(signed_in):
    flow, tokens = signed_in
    response = rp_logout(flow, id_token_hint=tokens["id_token"], client_id=flow.rp.client_id,
                         post_logout_redirect_uri=BYE, state="s 1/é")  # fmt: skip
    assert response.status_code == 303
    assert response.headers["Location"] == BYE + "?state=s+1%2F%C3%A9"
    assert not still_signed_in(flow)


def test_an_empty_client_id_is_an_omitted_one(signed_in):
    """RFC 6749 §3.1: parameters sent without a value are treated as if they were omitted."""
    flow, tokens = signed_in
    response = rp_logout(flow, id_token_hint=tokens["id_token"], client_id="", post_logout_redirect_uri=BYE)
    assert response.status_code == 303 and response.headers["Location"] == BYE


def test_a_post_logout_uri_registered_for_another_client_is_never_followed(signed_in, other_client):
    """§3: the URI must be registered for the client the hint (or client_id) identifies, not for any client."""
    flow, tokens = signed_in
    response = rp_logout(flow, id_token_hint=tokens["id_token"], post_logout_redirect_uri=OTHER_BYE)
    assert response.status_code == 200 and "Location" not in response.headers
    assert "Sign out of Gatehouse?" in response.text
    assert still_signed_in(flow)


def test_a_client_id_alone_never_redirects_to_another_clients_uri(signed_in, other_client):
    flow, _ = signed_in
    response = rp_logout(flow, client_id=flow.rp.client_id, post_logout_redirect_uri=OTHER_BYE)
    assert response.status_code == 200 and "Location" not in response.headers
    assert still_signed_in(flow)


def test_an_expired_but_genuine_hint_is_still_a_hint(app, signed_in, clock):
    """§2: the OP "SHOULD accept ID Tokens [...] even when the exp time has passed", and MUST validate that it was
    their issuer: the signature still counts."""
    flow, tokens = signed_in
    clock.advance(seconds=app.config["ID_TOKEN_TTL_SECONDS"] + 60)
    response = rp_logout(flow, id_token_hint=tokens["id_token"], client_id=flow.rp.client_id,
                         post_logout_redirect_uri=BYE, state="s2")  # fmt: skip
    assert response.status_code == 303 and response.headers["Location"] == BYE + "?state=s2"
    assert not still_signed_in(flow)


def test_an_expired_hint_with_a_broken_signature_is_not_a_hint(app, signed_in, clock):
    flow, tokens = signed_in
    clock.advance(seconds=app.config["ID_TOKEN_TTL_SECONDS"] + 60)
    header, body, signature = tokens["id_token"].split(".")
    forged = f"{header}.{body}.{signature[::-1]}"
    response = rp_logout(flow, id_token_hint=forged, client_id=flow.rp.client_id, post_logout_redirect_uri=BYE)
    assert "Location" not in response.headers
    assert still_signed_in(flow)
