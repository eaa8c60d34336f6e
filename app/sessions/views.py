"""Session status for the expiry banner: polling that is never activity."""

from flask import Blueprint, g, jsonify

from app.clock import now
from app.web.auth import json_api, login_required, passive

bp = Blueprint("sessions", __name__)


@bp.get("/session/status")
@json_api
@passive
@login_required
def status():
    state = g.current_session
    current = now()
    return jsonify(
        idle_expires_at=state.idle_expires_at.isoformat(),
        absolute_expires_at=state.absolute_expires_at.isoformat(),
        idle_seconds_left=int((state.idle_expires_at - current).total_seconds()),
        absolute_seconds_left=int((state.absolute_expires_at - current).total_seconds()),
    )
