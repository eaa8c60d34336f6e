"""Your devices: every signed-in session, signed out one by one or all at once; the expiry status."""

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, url_for

from app.clock import now
from app.extensions import db
from app.oauth import connected
from app.sessions import revocation
from app.sessions.models import UserSession
from app.sessions.services import ActiveSession, extend_idle
from app.web.auth import (
    client_ip,
    fresh_auth_required,
    is_fresh,
    json_api,
    login_required,
    passive,
    passive_session,
    reauthenticate_url,
)
from app.web.htmx import is_htmx, render_page_or_partial
from app.web.json_answers import json_answer

bp = Blueprint("sessions", __name__)

WARN_BEFORE_SECONDS = 5 * 60


def _devices_context(notice: str | None = None) -> dict:
    rows = UserSession.live_for_user(g.current_session.user_id, now())
    rows.sort(key=lambda row: row.id != g.current_session.id)  # this device first, then by recent activity
    others = rows[1:]
    return {
        "rows": rows,
        "current_id": g.current_session.id,
        "has_others": bool(others),
        "fresh": is_fresh(),
        "reauth_url": reauthenticate_url(url_for("sessions.confirm_sign_out_others")),
        "notice": notice,
        "apps_by_session": connected.grants_by_session(g.current_session.user_id, now()),
    }


def _after_change(message: str):
    """htmx swaps the list in place with the notice; a plain form post goes back to the page (303)."""
    db.session.commit()
    if is_htmx():
        return render_template("devices/_list.html", **_devices_context(message))
    flash(message, "success")
    return redirect(url_for("sessions.devices"), 303)


@bp.get("/account/devices")
@login_required
def devices():
    return render_page_or_partial("devices/index.html", "devices/_list.html", **_devices_context())


@bp.get("/account/devices/<public_id>/sign-out")
@login_required
def confirm_sign_out(public_id: str):
    """The confirmation page used when JavaScript is off (the modal does the same with it on)."""
    try:
        row = revocation.other_device(g.current_session.user_id, public_id, g.current_session.id)
    except revocation.UnknownSession:
        abort(404)
    return render_template("devices/confirm.html", row=row)


@bp.post("/account/devices/<public_id>/sign-out")
@login_required
def sign_out_device(public_id: str):
    try:
        name = revocation.revoke_device(g.current_session.user_id, public_id, g.current_session.id, now(), client_ip())
    except revocation.UnknownSession:
        abort(404)
    return _after_change(f"Signed out {name}. It will need to sign in again.")


@bp.get("/account/devices/sign-out-others")
@fresh_auth_required
def confirm_sign_out_others():
    return render_template("devices/confirm_others.html")


@bp.post("/account/devices/sign-out-others")
@fresh_auth_required
def sign_out_others():
    count = revocation.revoke_other_devices(g.current_session.user_id, g.current_session.id, now(), client_ip())
    plural = "s" if count != 1 else ""
    return _after_change(f"Signed out {count} other device{plural}.")


@bp.get("/session/status")
@json_api
@passive
@login_required
def status():
    return json_answer(_status(g.current_session))


@bp.post("/session/extend")
@json_api
@login_required
def extend():
    """ "Stay signed in": slides the idle window from now, never past the absolute expiry."""
    state = extend_idle(g.current_session, now())
    db.session.commit()
    return jsonify(_status(state))


def status_answer(cookie_header: str | None):
    """The status poll answered in front of Flask (app/web/lane.py), or None for Flask's view to answer."""
    state = passive_session(cookie_header, now())
    return None if state is None else json_answer(_status(state))


def _status(state: ActiveSession) -> dict:
    current = now()
    return {
        "idle_expires_at": state.idle_expires_at.isoformat(),
        "absolute_expires_at": state.absolute_expires_at.isoformat(),
        "idle_seconds_left": int((state.idle_expires_at - current).total_seconds()),
        "absolute_seconds_left": int((state.absolute_expires_at - current).total_seconds()),
        # Warn 5 minutes ahead, or half the idle window when that is shorter (a 5-minute policy).
        "warn_before_seconds": min(WARN_BEFORE_SECONDS, state.idle_minutes * 30),
    }
