"""/dev/mail: the development mailbox, registered only when GATEHOUSE_ENV=development (DESIGN §10)."""

from flask import Blueprint, Response, abort, render_template

from app.extensions import db
from app.mail.models import MailMessage
from app.security.identifiers import is_row_id

bp = Blueprint("dev_mail", __name__, url_prefix="/dev/mail")
MAILBOX_SIZE = 100
# The HTML part is shown as the mail client would, framed by the message page only, with no script and no fetches.
HTML_PART_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


@bp.get("")
def index():
    return render_template("dev_mail/index.html", messages=MailMessage.newest(MAILBOX_SIZE))


@bp.get("/<int:message_id>")
def message(message_id: int):
    return render_template("dev_mail/message.html", message=_message(message_id))


@bp.get("/<int:message_id>/html")
def html_part(message_id: int):
    response = Response(_message(message_id).html_body or "", mimetype="text/html")
    response.headers["Content-Security-Policy"] = HTML_PART_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _message(message_id: int) -> MailMessage:
    if not is_row_id(message_id):  # past the id column's range: unknown, not a driver error (DESIGN §8)
        abort(404)
    return db.get_or_404(MailMessage, message_id)
