"""/dev/mail: the development mailbox, registered only when GATEHOUSE_ENV=development (DESIGN §10)."""

from flask import Blueprint, Response, render_template

from app.extensions import db
from app.mail.models import MailMessage

bp = Blueprint("dev_mail", __name__, url_prefix="/dev/mail")
MAILBOX_SIZE = 100
# The HTML part is shown as the mail client would, framed by the message page only, with no script and no fetches.
HTML_PART_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


@bp.get("")
def index():
    return render_template("dev_mail/index.html", messages=MailMessage.newest(MAILBOX_SIZE))


@bp.get("/<int:message_id>")
def message(message_id: int):
    return render_template("dev_mail/message.html", message=db.get_or_404(MailMessage, message_id))


@bp.get("/<int:message_id>/html")
def html_part(message_id: int):
    response = Response(db.get_or_404(MailMessage, message_id).html_body or "", mimetype="text/html")
    response.headers["Content-Security-Policy"] = HTML_PART_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
