"""Mail through the outbox to a real SMTP server: both parts arrive, failures back off, nothing is lost (DESIGN §10)."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.mail import delivery, services
from app.mail.errors import InvalidRecipient
from app.mail.models import MailMessage
from tests.mail.conftest import SENDER, with_test_templates

LINK = "https://login.example.test/reset/one-time-value"


def queue(app, to="ada@example.test", name="Ada") -> int:
    """As a request does it: the service flushes, the request commits."""
    with app.app_context():
        message = services.send(to, "greeting", name=name, link=LINK)
        db.session.commit()
        return message.id


def deliver(app, clock) -> int:
    with app.app_context():
        return delivery.deliver_due(clock.now())


def row(app, message_id: int) -> MailMessage:
    with app.app_context():
        message = db.session.get(MailMessage, message_id)
        db.session.expunge_all()
        return message


def test_a_message_arrives_with_a_text_and_an_html_part(mail_app, smtp, clock):
    message_id = queue(mail_app, name="<Ada & Co>")
    assert deliver(mail_app, clock) == 1
    [received] = smtp.recorder.received
    assert smtp.recorder.envelopes == [("login@gatehouse.test", ["ada@example.test"])]
    assert received["Subject"] == "Welcome, <Ada & Co>"  # one header line whatever the template's whitespace
    assert (received["From"], received["To"]) == (SENDER, "ada@example.test")
    assert received["Message-ID"].endswith("@gatehouse.test>")
    assert received.get_content_type() == "multipart/alternative"
    text = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "Hello <Ada & Co>, start here: " + LINK in text and mail_app.config["ISSUER"] in text
    assert "Hello &lt;Ada &amp; Co&gt;" in html and f'<a href="{LINK}">' in html  # HTML escaped, text left as written
    stored = row(mail_app, message_id)
    assert stored.delivered_at == clock.now() and stored.attempts == 1 and stored.last_status == 250
    assert stored.text_body is None and stored.html_body is None  # the link leaves the database with the mail
    assert deliver(mail_app, clock) == 0 and len(smtp.recorder.received) == 1  # sent once


def test_send_writes_in_the_callers_transaction(mail_app, smtp, clock):
    with mail_app.app_context():
        message = services.send("ada@example.test", "greeting", name="Ada", link=LINK)
        assert message.id is not None  # flushed: the caller's later statements see it, its commit sends it
        assert db.session.scalar(select(MailMessage.subject)) == "Welcome, Ada"  # flushed, visible to the caller
        db.session.rollback()  # the event that sent it did not happen: neither does the mail
        assert db.session.scalars(select(MailMessage)).all() == []
    assert deliver(mail_app, clock) == 0 and smtp.recorder.received == []


REFUSED_ADDRESSES = ["ada@example.test\r\nBcc: eve@example.test", "ada@example.test, eve@example.test",
                     "Ada <ada@example.test>", "no-at-sign", "", "a" * 320 + "@example.test"]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_anything_but_one_plain_address_is_refused(mail_app, address):
    with mail_app.app_context():
        with pytest.raises(InvalidRecipient):
            services.send(address, "greeting", name="Ada", link=LINK)
        assert db.session.scalars(select(MailMessage)).all() == []


def test_smtp_down_is_retried_with_backoff_and_nothing_is_lost(mail_app, smtp, clock):
    smtp.stop()
    first, second = queue(mail_app), queue(mail_app, to="grace@example.test", name="Grace")
    assert deliver(mail_app, clock) == 0
    stored = row(mail_app, first)
    assert (stored.attempts, stored.failed_at) == (1, None)
    assert stored.last_error.startswith("ConnectionRefusedError")
    assert stored.next_attempt_at == clock.now() + timedelta(seconds=1)
    assert deliver(mail_app, clock) == 0 and row(mail_app, first).attempts == 1  # not due before its backoff
    clock.advance(seconds=1)
    assert deliver(mail_app, clock) == 0
    assert row(mail_app, second).next_attempt_at == clock.now() + timedelta(seconds=2)  # the backoff doubles
    clock.advance(seconds=2)
    assert deliver(mail_app, clock) == 0
    assert row(mail_app, second).next_attempt_at == clock.now() + timedelta(seconds=4)
    smtp.start()
    clock.advance(seconds=4)
    assert deliver(mail_app, clock) == 2
    assert sorted(m["To"] for m in smtp.recorder.received) == ["ada@example.test", "grace@example.test"]
    assert row(mail_app, first).attempts == row(mail_app, second).attempts == 4


def test_a_server_that_never_answers_times_out_and_is_retried(mail_app, smtp, hanging_port, clock):
    mail_app.config.update(MAIL_PORT=hanging_port, MAIL_TIMEOUT_SECONDS=0.3)
    message_id = queue(mail_app)
    started = time.monotonic()
    assert deliver(mail_app, clock) == 0
    assert time.monotonic() - started < 3  # the worker moves on instead of waiting for ever
    assert row(mail_app, message_id).last_error == "SMTPServerDisconnected: Connection unexpectedly closed: timed out"
    mail_app.config["MAIL_PORT"] = smtp.port
    clock.advance(seconds=1)
    assert deliver(mail_app, clock) == 1 and len(smtp.recorder.received) == 1


def test_a_mailbox_that_rejects_for_good_is_failed_and_recorded(mail_app, smtp, clock):
    smtp.recorder.refuse["gone@example.test"] = "550 5.1.1 No such mailbox"
    message_id = queue(mail_app, to="gone@example.test")
    assert deliver(mail_app, clock) == 0
    stored = row(mail_app, message_id)
    assert (stored.failed_at, stored.attempts, stored.last_status) == (clock.now(), 1, 550)
    assert stored.last_error == "SMTP 550 5.1.1 No such mailbox"
    assert stored.text_body is None  # given up: the link goes too
    clock.advance(hours=2)
    assert deliver(mail_app, clock) == 0 and row(mail_app, message_id).attempts == 1  # never retried


def test_a_temporary_rejection_is_retried(mail_app, smtp, clock):
    smtp.recorder.refuse["busy@example.test"] = "451 4.3.0 Try again later"
    message_id = queue(mail_app, to="busy@example.test")
    assert deliver(mail_app, clock) == 0
    stored = row(mail_app, message_id)
    assert (stored.failed_at, stored.last_status, stored.last_error) == (None, 451, "SMTP 451 4.3.0 Try again later")
    del smtp.recorder.refuse["busy@example.test"]
    clock.advance(seconds=1)
    assert deliver(mail_app, clock) == 1


def test_retries_end_after_the_last_attempt(mail_app, smtp, clock):
    smtp.stop()
    message_id = queue(mail_app)
    for _ in range(delivery.RETRY.max_attempts):
        deliver(mail_app, clock)
        clock.advance(seconds=delivery.RETRY.max_backoff_seconds)
    stored = row(mail_app, message_id)
    assert stored.failed_at is not None and stored.attempts == delivery.RETRY.max_attempts


def test_without_a_mail_server_messages_stay_in_the_outbox(make_app, clock):
    app = with_test_templates(make_app())
    message_id = queue(app)
    assert deliver(app, clock) == 0
    stored = row(app, message_id)
    assert stored.attempts == 0 and stored.delivered_at is None and stored.text_body


def test_the_worker_delivers_mail(mail_app, smtp):
    result = mail_app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    queue(mail_app)
    mail_app.test_cli_runner().invoke(args=["worker", "--once"])
    assert len(smtp.recorder.received) == 1
