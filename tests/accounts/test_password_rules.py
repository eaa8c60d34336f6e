"""The password rule (issue 9 item 14; NIST SP 800-63B-4 §3.1.1.2): 15 characters as the only factor (8 with a second
one), a generous maximum, any characters NFKC-normalized, no composition rules, no common password, and an optional
k-anonymity range API that never sees the password or its full hash and never blocks a change when it fails."""

import hashlib
import logging
import threading
import unicodedata

import pytest

from app.accounts.models import User
from app.security import password_policy
from app.security.passwords import MAX_PASSWORD_LENGTH, verify_password
from tests.conftest import Auth, csrf_token_from
from tests.factories import OWNER_EMAIL, PASSWORD
from tests.helpers import LoopbackHTTPServer, QuietHandler

NEW_PASSWORD = "a brand new passphrase"


def chars(n: int) -> str:
    """n characters that are on no list, neither repetitive nor sequential."""
    return "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(n // 64 + 1))[:n]


def change(client, new=NEW_PASSWORD, current=PASSWORD):
    token = csrf_token_from(client.get("/account").text)
    data = {"csrf_token": token, "current_password": current, "new_password": new, "confirm_password": new}
    return client.post("/account", data=data)


def password_of(app) -> str:
    with app.app_context():
        return User.by_email(OWNER_EMAIL).password_hash


@pytest.mark.parametrize(
    ("password", "second_factor", "refused"),
    [
        (chars(14), False, "Use at least 15 characters (this one has 14)."),
        (chars(15), False, None),
        (chars(7), True, "Use at least 8 characters (this one has 7)."),
        (chars(8), True, None),
        (chars(64), False, None),
        (chars(MAX_PASSWORD_LENGTH), False, None),
        (chars(MAX_PASSWORD_LENGTH + 1), False, f"Use at most {MAX_PASSWORD_LENGTH} characters."),
        ("only lower case words", False, None),  # no composition rules
        ("пароль для входа в систему", False, None),  # any characters
        ("🔑🗝🔒🔓🔏🔐🗄🚪🔑🗝🔒🔓🔏🔐🚪", False, None),  # 15 characters, whatever their bytes
        ("1q2w3e4r5t6y7u8i9o0p", False, password_policy.TOO_COMMON),
        ("Qwerty123456789", False, password_policy.TOO_COMMON),  # compared without case
        ("manchesterunited", True, password_policy.TOO_COMMON),
    ],
)
def test_the_rule(app_ctx, password, second_factor, refused):
    assert password_policy.problem(password, has_second_factor=second_factor) == refused


@pytest.mark.parametrize(
    ("password", "refused"),
    [
        (
            "\u200b" * 15,
            "Use at least 15 characters (this one has 0, not counting 15 invisible or control characters).",
        ),
        (
            "\u00ad" * 15,
            "Use at least 15 characters (this one has 0, not counting 15 invisible or control characters).",
        ),
        (
            "\u0001" * 15,
            "Use at least 15 characters (this one has 0, not counting 15 invisible or control characters).",
        ),
        (
            "\ufeff" * 15,
            "Use at least 15 characters (this one has 0, not counting 15 invisible or control characters).",
        ),
        (
            chars(14) + "\u200b",
            "Use at least 15 characters (this one has 14, not counting 1 invisible or control character).",
        ),
        ("a" * 15, password_policy.REPETITIVE),
        ("\u3000" * 15, password_policy.REPETITIVE),  # NFKC: 15 spaces
        ("zkq7zkq7zkq7zkq7", password_policy.REPETITIVE),
        ("123456789012345", password_policy.SEQUENTIAL),
        ("987654321098765", password_policy.SEQUENTIAL),
        ("qwertyuiopasdfghj", password_policy.SEQUENTIAL),
        ("abcdefghijklmnop", password_policy.SEQUENTIAL),
        ("passwordpassword", password_policy.COMMON_VARIANT),  # the list's words repeated
        ("Password1234567", password_policy.COMMON_VARIANT),  # or with digits and symbols added
        ("!!sunshine2024!!", password_policy.COMMON_VARIANT),
        ("olive@example.test", password_policy.PERSONAL),
        ("oliveoliveolive1", password_policy.PERSONAL),  # the e-mail's local part
        ("Olive Owner 2026 !", password_policy.PERSONAL),
        ("gatehousegatehouse", password_policy.PERSONAL),
        ("my gatehouse key is a long phrase", None),  # a context word, but not most of it
        ("correct horse battery staple", None),
    ],
)
def test_trivial_invisible_and_personal_passwords_are_refused(app_ctx, password, refused):
    assert password_policy.problem(password, False, email="olive@example.test", name="Olive Owner") == refused


def test_the_form_refuses_the_users_own_e_mail_and_invisible_characters(client, owner):
    Auth(client).login()
    refused = change(client, new=OWNER_EMAIL)
    assert refused.status_code == 400 and "This password is mostly your e-mail address" in refused.text
    refused = change(client, new="\u200b" * 20)
    assert refused.status_code == 400 and "not counting 20 invisible or control characters" in refused.text


def test_length_counts_characters_after_nfkc_normalization(app_ctx):
    # 8 "ﬁ" / "ﬂ" ligatures are 16 characters once normalized; 14 combining sequences are 14 (NFC composes them).
    assert password_policy.problem("\ufb01" * 4 + "\ufb02" * 4, has_second_factor=False) is None
    decomposed = unicodedata.normalize("NFD", "é" * 14)
    assert len(decomposed) == 28
    assert password_policy.problem(decomposed, has_second_factor=False).startswith("Use at least 15 characters")


def test_a_password_set_in_one_unicode_form_signs_in_with_another(app, client, owner):
    composed = "mot de passe très sûr"
    Auth(client).login()
    assert change(client, new=unicodedata.normalize("NFD", composed)).status_code == 303
    assert Auth(app.test_client()).login(password=unicodedata.normalize("NFC", composed)).status_code == 303


def test_the_form_shows_the_rule_as_a_hint_before_any_error(client, owner):
    Auth(client).login()
    page = client.get("/account").text
    assert 'id="new_password-hint"' in page and "At least 15 characters" in page
    assert 'aria-describedby="new_password-hint"' in page
    refused = change(client, new="1q2w3e4r5t6y7u8i9o0p")
    assert refused.status_code == 400
    assert password_policy.TOO_COMMON in refused.text
    assert 'aria-describedby="new_password-hint new_password-error"' in refused.text


def test_a_refused_password_changes_nothing(app, client, owner):
    Auth(client).login()
    before = password_of(app)
    assert change(client, new="manchesterunited").status_code == 400
    assert password_of(app) == before


class RangeAPI(LoopbackHTTPServer):
    """A local Pwned-Passwords-style range API that records every request it receives."""

    def __init__(self, breached: list[str] = (), hang: bool = False, status: int = 200):
        self.received: list[dict] = []
        self.release = threading.Event()
        self.answers = {}
        for password in breached:
            digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
            self.answers.setdefault(digest[:5], []).append(f"{digest[5:]}:42")
        api = self

        class Handler(QuietHandler):
            def do_GET(self):
                api.received.append({"path": self.path, "headers": dict(self.headers), "body": ""})
                if hang:
                    api.release.wait(10)
                    return
                prefix = self.path.rsplit("/", 1)[-1]
                lines = [*api.answers.get(prefix, []), "0" * 35 + ":0"]  # the last: a padding line
                body = "\r\n".join(lines).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler, "/range/")

    def close(self):
        self.release.set()
        super().close()


@pytest.fixture
def range_api(request):
    apis = []

    def start(**kwargs) -> RangeAPI:
        apis.append(RangeAPI(**kwargs))
        return apis[-1]

    yield start
    for api in apis:
        api.close()


def signed_in(make_app, api: RangeAPI, **config):
    from tests import factories

    app = make_app(PASSWORD_RANGE_API_URL=api.url, **config)
    with app.app_context():
        factories.account_with_users()
    client = app.test_client()
    Auth(client).login()
    api.received.clear()  # the users' own passwords were checked when they were created
    return app, client


def test_a_breached_password_is_refused_and_only_five_hex_digits_leave(make_app, range_api):
    breached = "this was in a breach somewhere"
    api = range_api(breached=[breached])
    _, client = signed_in(make_app, api)
    refused = change(client, new=breached)
    assert refused.status_code == 400 and password_policy.BREACHED in refused.text
    digest = hashlib.sha1(breached.encode(), usedforsecurity=False).hexdigest().upper()
    [request] = api.received
    assert request["path"] == f"/range/{digest[:5]}"
    assert request["headers"].get("Add-Padding") == "true"
    sent = repr(request).upper()
    assert digest[5:] not in sent and breached.upper() not in sent
    assert change(client).status_code == 303  # a password the API does not list is accepted
    assert len(api.received) == 2


def test_a_prefix_placeholder_is_filled_in(make_app, range_api):
    api = range_api()
    api.url = api.url + "{prefix}?mode=sha1"
    _, client = signed_in(make_app, api)
    assert change(client).status_code == 303
    digest = hashlib.sha1(NEW_PASSWORD.encode(), usedforsecurity=False).hexdigest().upper()
    assert api.received[0]["path"] == f"/range/{digest[:5]}?mode=sha1"


@pytest.mark.parametrize("failure", ["hang", "error", "refused"])
def test_a_failing_range_api_never_blocks_a_change(make_app, range_api, caplog, failure):
    api = range_api(hang=failure == "hang", status=503)
    if failure == "refused":
        api.close()  # nothing listens there any more
    app, client = signed_in(make_app, api, PASSWORD_RANGE_API_TIMEOUT_SECONDS=0.5)
    with caplog.at_level(logging.WARNING, logger="gatehouse.passwords"):
        assert change(client).status_code == 303
    assert "password range API did not answer" in caplog.text
    with app.app_context():
        assert verify_password(password_of(app), NEW_PASSWORD)
