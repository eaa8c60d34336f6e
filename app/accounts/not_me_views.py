""" "This wasn't me" pages (issue 12 item 4): the alert's link shows the sign-in and one button; posting it reports it.

Signed in or not, in any browser: the link is the authority, never the session (CSRF still guards the button)."""

from flask import Blueprint, g, render_template, url_for

from app.accounts import not_me
from app.accounts.new_device import NotMeLinkInvalid
from app.clock import now
from app.extensions import db
from app.web.auth import client_ip, forget_session

bp = Blueprint("not_me", __name__)

INVALID_EXPLANATION = ("A \"This wasn't me\" link works for 7 days after the sign-in it reports. This one has "
                       "expired, or was not copied whole. If someone else may know your password, choose a new one: "
                       "that signs out every device and disconnects every app.")  # fmt: skip


def _invalid():
    page = render_template("accounts/reset_link_invalid.html", explanation=INVALID_EXPLANATION,
                           again_url=url_for("password_reset.forgot"), again_label="Reset my password")  # fmt: skip
    return page, 404


@bp.get("/not-me/<token>")
def confirm(token: str):
    try:
        reported = not_me.look_up(token, now())
    except NotMeLinkInvalid:
        return _invalid()
    earlier = not_me.earlier_report(reported)
    if earlier is not None:
        return render_template("accounts/not_me_done.html", report=earlier)
    return render_template("accounts/not_me.html", sign_in=reported.session, token=token)


@bp.post("/not-me/<token>")
def report(token: str):
    try:
        done = not_me.report(token, now(), client_ip())
    except NotMeLinkInvalid:
        db.session.rollback()
        return _invalid()
    db.session.commit()
    if g.current_session is not None and g.current_session.id in done.ended_session_ids:
        forget_session()  # this browser was the reported sign-in: it is signed out here too
    return render_template("accounts/not_me_done.html", report=done)
