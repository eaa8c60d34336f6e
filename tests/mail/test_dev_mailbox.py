"""/dev/mail: development reads what would have been sent; production has no such page (DESIGN §10)."""

import pytest

from app import create_app
from app.config import ConfigError
from app.extensions import db
from app.mail import services
from tests.conftest import base_config
from tests.mail.conftest import with_test_templates

LINK = "https://login.example.test/reset/one-time-value"


@pytest.fixture
def dev_app(make_app):
    """The app with one queued message; its id (a PostgreSQL sequence is not reset between tests)."""
    app = with_test_templates(make_app())
    with app.app_context():
        message_id = services.send("ada@example.test", "greeting", name="<Ada>", link=LINK).id
        db.session.commit()
    return app, message_id


def test_the_mailbox_lists_messages_and_shows_both_parts(dev_app):
    app, message_id = dev_app
    client = app.test_client()
    listing = client.get("/dev/mail")
    assert listing.status_code == 200
    assert "Welcome, &lt;Ada&gt;" in listing.text and "ada@example.test" in listing.text
    page = client.get(f"/dev/mail/{message_id}")
    assert page.status_code == 200
    assert f"Hello &lt;Ada&gt;, start here: {LINK}" in page.text  # the text part, escaped into the page
    assert '<iframe class="mail-html"' in page.text and f'src="/dev/mail/{message_id}/html"' in page.text
    html = client.get(f"/dev/mail/{message_id}/html")
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert f'<a href="{LINK}">start here</a>' in html.text
    # The mail's own markup never runs as the portal: sandboxed, no script, framed by the portal only.
    assert html.headers["Content-Security-Policy"].startswith("sandbox;")
    assert "frame-ancestors 'self'" in html.headers["Content-Security-Policy"]
    assert client.get(f"/dev/mail/{message_id + 1}").status_code == 404


@pytest.mark.parametrize("number", [0, 2**31, 10**20], ids=["zero", "past-int4", "huge"])
def test_ids_no_row_can_have_are_unknown(dev_app, number):
    """DESIGN §8: an id past PostgreSQL's integer range is a 404, not a driver error and a 500."""
    client = dev_app[0].test_client()
    assert client.get(f"/dev/mail/{number}").status_code == 404
    assert client.get(f"/dev/mail/{number}/html").status_code == 404


def test_production_has_no_mailbox(make_app):
    app = make_app(GATEHOUSE_ENV="production", ISSUER="https://login.example.test")
    client = app.test_client()
    for path in ("/dev/mail", "/dev/mail/1", "/dev/mail/1/html"):
        assert client.get(path, base_url="https://login.example.test").status_code == 404


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"MAIL_SERVER": "mail.example.test", "MAIL_USE_TLS": True, "MAIL_USE_SSL": True}, "not both"),
        ({"MAIL_SERVER": "mail.example.test"}, "MAIL_DEFAULT_SENDER"),
    ],
)
def test_unusable_mail_settings_stop_start_up(tmp_path, settings, complaint):
    with pytest.raises(ConfigError, match=complaint):
        create_app(base_config(f"sqlite:///{tmp_path / 'unused.db'}", **settings))
