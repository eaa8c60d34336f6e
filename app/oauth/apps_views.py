"""Connected apps in the portal: disconnect one app from one device, or from every device."""

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for

from app.clock import now
from app.extensions import db
from app.oauth import connected
from app.web.auth import login_required

bp = Blueprint("apps", __name__)


@bp.get("/account/apps")
@login_required
def index():
    return render_template("apps/index.html", apps=connected.apps_of(g.current_session.user_id, now()))


# Each action is two routes: the confirmation page (GET, and so HEAD) only reads; POST alone acts (DESIGN §8).


@bp.get("/account/apps/grants/<public_id>/disconnect")
@login_required
def confirm_disconnect_grant(public_id: str):
    """The confirmation page used without JavaScript."""
    try:
        grant = connected.owned_grant(g.current_session.user_id, public_id)
    except connected.UnknownApp:
        abort(404)
    return render_template("apps/confirm_grant.html", grant=grant)


@bp.post("/account/apps/grants/<public_id>/disconnect")
@login_required
def disconnect_grant(public_id: str):
    try:
        name = connected.disconnect_grant(g.current_session.user_id, public_id, now())
    except connected.UnknownApp:
        abort(404)
    db.session.commit()
    return _done(f"Disconnected {name} from that device.", url_for("sessions.devices"))


@bp.get("/account/apps/<client_id>/disconnect")
@login_required
def confirm_disconnect_app(client_id: str):
    try:
        app_ = connected.connected_client(g.current_session.user_id, client_id, now())
    except connected.UnknownApp:
        abort(404)
    return render_template("apps/confirm_app.html", app_=app_)


@bp.post("/account/apps/<client_id>/disconnect")
@login_required
def disconnect_app(client_id: str):
    try:
        name, count = connected.disconnect_app(g.current_session.user_id, client_id, now())
    except connected.UnknownApp:
        abort(404)
    db.session.commit()
    return _done(f"Disconnected {name} from {count} device{'s' if count != 1 else ''}.", url_for("apps.index"))


def _done(message: str, location: str):
    flash(message, "success")
    return redirect(location, 303)
