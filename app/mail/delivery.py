"""The worker's side of mail: SMTP delivery of the outbox, with app.outbox's retries and backoff."""

import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from flask import current_app

from app.mail.models import MailMessage
from app.outbox import services as outbox
from app.outbox.services import Outcome, RetryPolicy

# 14 attempts over about an hour (1 s, 2 s, 4 s … then every 15 min): a mail server's restart or an outage of
# its own is waited out, and a message is not delivered after the link it carries would have died anyway.
RETRY = RetryPolicy(max_attempts=14, max_backoff_seconds=900)
BATCH_SIZE = 20


def deliver_due(now: datetime, limit: int = BATCH_SIZE) -> int:
    """Send the due messages; without MAIL_SERVER they stay in the outbox (read at /dev/mail in development)."""
    if not current_app.config["MAIL_SERVER"]:
        return 0
    return outbox.deliver_due(MailMessage, _attempt, RETRY, now, limit)


def _attempt(message: MailMessage, now: datetime) -> Outcome:
    try:
        email = _compose(message)
    except ValueError as exc:  # a header the mail library refuses: no retry can fix it
        return Outcome(error=f"{type(exc).__name__}: {exc}", permanent=True)
    try:
        with _connect() as smtp:
            smtp.send_message(email)
    except smtplib.SMTPRecipientsRefused as exc:
        [(code, reply)] = exc.recipients.values()
        return _refused(code, reply, permanent_if_5xx=True)
    except smtplib.SMTPDataError as exc:
        return _refused(exc.smtp_code, exc.smtp_error, permanent_if_5xx=True)
    except smtplib.SMTPResponseException as exc:  # sender, authentication: the configuration, not this message
        return _refused(exc.smtp_code, exc.smtp_error, permanent_if_5xx=False)
    except OSError as exc:  # refused, unreachable, disconnected, timed out (smtplib reports it as a disconnection)
        return Outcome(error=f"{type(exc).__name__}: {exc}")
    return Outcome(status=250)


def _refused(code: int, reply: bytes | str, permanent_if_5xx: bool) -> Outcome:
    """RFC 5321 §4.2.1: 5yz is a permanent failure (a mailbox that does not exist stays so), 4yz transient."""
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return Outcome(code, f"SMTP {code} {text}", permanent=permanent_if_5xx and 500 <= code < 600)


def _compose(message: MailMessage) -> EmailMessage:
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = sender
    email["To"] = message.recipient
    email["Date"] = format_datetime(message.created_at)
    email["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    email.set_content(message.text_body or "")
    email.add_alternative(message.html_body or "", subtype="html")
    return email


def _connect() -> smtplib.SMTP:
    """A connection with a socket timeout on every step, so a server that never answers cannot stall the worker."""
    config = current_app.config
    host, port, timeout = config["MAIL_SERVER"], config["MAIL_PORT"], config["MAIL_TIMEOUT_SECONDS"]
    context = ssl.create_default_context()
    if config["MAIL_USE_SSL"]:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        if config["MAIL_USE_TLS"]:
            smtp.starttls(context=context)
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
    except BaseException:
        smtp.close()
        raise
    return smtp
