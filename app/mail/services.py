"""send(): the one way a mail leaves Gatehouse."""

import re

from flask import current_app, render_template

from app.clock import now
from app.extensions import db
from app.mail.errors import InvalidRecipient
from app.mail.models import MailMessage

MAX_ADDRESS_LENGTH = 320
# One address, no display name, no whitespace: what a form's validated e-mail or a stored user's e-mail looks like.
ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+")


def send(to: str, template: str, **context) -> MailMessage:
    """Render templates/mail/<template>.txt (which sets `subject`) and .html, and queue the message in the caller's
    transaction (flushed, never committed): it leaves only if the event that sends it is committed.
    Raises InvalidRecipient for anything but one plain address."""
    recipient = to.strip()
    if len(recipient) > MAX_ADDRESS_LENGTH or not ADDRESS.fullmatch(recipient):
        raise InvalidRecipient(to)
    text = current_app.jinja_env.get_template(f"mail/{template}.txt").make_module(context)
    # The text template sets `subject`; one header line, whatever the template's whitespace.
    subject = " ".join(str(getattr(text, "subject")).split())  # noqa: B009 (a template's export, unknown to mypy)
    html = render_template(f"mail/{template}.html", subject=subject, **context)
    moment = now()
    message = MailMessage(
        recipient=recipient,
        subject=subject,
        template=template,
        text_body=str(text),
        html_body=html,
        created_at=moment,
        next_attempt_at=moment,
    )
    db.session.add(message)
    db.session.flush()
    return message
