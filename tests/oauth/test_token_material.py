"""Token material: entropy, uniqueness, and never a value in the logs (catalogue #32)."""

import logging
import re

from app.oauth import tokens
from tests.conftest import Auth

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_tokens_are_256_bit_url_safe_and_unique():
    values = {tokens.new_token(tokens.REFRESH_PREFIX) for _ in range(10_000)}
    assert len(values) == 10_000
    for value in list(values)[:100]:
        body = value.removeprefix(tokens.REFRESH_PREFIX)
        assert URL_SAFE.match(body) and len(body) >= 43  # 32 random bytes, base64url


def test_no_issued_value_reaches_the_logs(app, flow, clock, caplog):
    with caplog.at_level(logging.DEBUG):
        issued = flow.tokens()
        clock.advance(seconds=10)
        refreshed = flow.refresh(issued["refresh_token"]).json
        flow.refresh(issued["refresh_token"])  # a reuse: revoked and logged as an event
        Auth(flow.browser).logout()
        cookie = flow.browser.get_cookie("gh_session")
    secrets_seen = [issued[k] for k in ("access_token", "refresh_token", "id_token", "grant_token")]
    secrets_seen += [refreshed["refresh_token"], flow.rp.secret]
    if cookie:
        secrets_seen.append(cookie.value)
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    for value in secrets_seen:
        assert value not in logged
