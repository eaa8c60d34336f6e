"""The owner's session-security page and its JSON API (DESIGN §4, §7)."""

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for

from app.accounts import account_policy, two_step_policy
from app.accounts.forms import PolicyForm
from app.clock import now
from app.extensions import db
from app.security import json_bodies
from app.sessions import revocation
from app.web.auth import client_ip, forget_session, json_api, owner_required, signed_in_user
from app.web.htmx import is_htmx
from app.web.templating import minutes_in_words

bp = Blueprint("account_policy", __name__)

REQUIRED = "Two-step verification is now required. People without a second step are sent to set one up."
NOT_REQUIRED = "Two-step verification is no longer required. Second steps already set up stay on."
SET_UP_YOURS = "Two-step verification is now required in your account. Set up yours to continue."


def _context(form: PolicyForm | None = None, notice: str | None = None) -> dict:
    user = signed_in_user()
    view = account_policy.overview(user.account, now())
    if form is None:
        form = PolicyForm(
            preset=view.preset,
            idle_minutes=str(view.effective.idle_minutes),
            absolute_minutes=str(view.effective.absolute_minutes),
        )
    two_step = two_step_policy.card(user.account)
    return {"overview": view, "form": form, "user": user, "notice": notice, "two_step": two_step}


@bp.get("/account/security")
@owner_required
def page():
    return render_template("account_policy/index.html", **_context())


@bp.post("/account/security/policy")
@owner_required
def save_policy():
    form = PolicyForm()
    notice = None
    if form.validate_on_submit():
        try:
            saved = account_policy.save_preset(
                signed_in_user().account,
                form.preset.data,
                *form.custom_minutes(),
                apply_now=form.apply_now.data,
                actor=signed_in_user(),
                now=now(),
            )
        except account_policy.PolicyInvalid as invalid:
            for field, message in invalid.errors.items():
                getattr(form, field).errors.append(message)
        else:
            db.session.commit()
            notice = _saved_notice(form, saved)
    status = 422 if form.errors else 200
    shown = form if form.errors else None  # after a save, show what is stored, not what was posted
    if is_htmx():
        return render_template("account_policy/_policy_card.html", **_context(shown, notice)), status
    if notice:
        flash(notice, "success")
        return redirect(url_for("account_policy.page"), 303)
    return render_template("account_policy/index.html", **_context(form)), status


def _saved_notice(form: PolicyForm, saved: account_policy.PolicySaved) -> str:
    """Says what was stored: without JavaScript, minutes typed beside Strict or Standard are not kept (issue 9 #15)."""
    label = next(choice.label for choice in form.preset.choices if choice.value == form.preset.data)
    notice = (
        f"Saved {label}: signs out after {minutes_in_words(saved.policy.idle_minutes)} idle, "
        f"{minutes_in_words(saved.policy.absolute_minutes)} at most."
    )
    if saved.custom_minutes_ignored:
        notice += " The minutes entered for Custom were not saved; choose Custom to use them."
    if form.apply_now.data:
        notice += f" Applied to {saved.recomputed} signed-in session(s)."
    return notice


@bp.post("/account/security/two-step")
@owner_required
def require_two_step():
    """The "Require two-step verification" switch: the form posts the state it switches to ("on" or "off")."""
    wanted = request.form.get("required")
    if wanted not in ("on", "off"):
        abort(400, description='Send required as "on" or "off".')
    user = signed_in_user()
    switched = two_step_policy.set_required(
        user.account, wanted == "on", actor=user, ip=client_ip(), session_id=g.current_session.id
    )
    db.session.commit()
    if switched.actor_must_set_up:  # the owner is held at set-up like everyone else: say why they land there
        flash(SET_UP_YOURS, "success")
        return redirect(url_for("factors.page"), 303)
    flash(REQUIRED if wanted == "on" else NOT_REQUIRED, "success")
    return redirect(url_for("account_policy.page"), 303)


# The confirmation page (GET, and so HEAD) only reads; POST alone acts (DESIGN §8).
@bp.get("/account/security/revoke/<scope>")
@owner_required
def confirm_revoke(scope: str):
    """The confirmation page used without JavaScript."""
    if scope not in revocation.SCOPES:
        abort(404)
    return render_template("account_policy/confirm_revoke.html", scope=scope)


@bp.post("/account/security/revoke/<scope>")
@owner_required
def revoke(scope: str):
    if scope not in revocation.SCOPES:
        abort(404)
    count = _revoke(scope)
    db.session.commit()
    if scope == revocation.SCOPE_ALL:
        forget_session()
        return render_template("account_policy/signed_out.html", count=count)
    flash(f"Signed out {count} session{'s' if count != 1 else ''}. Only this device stays signed in.", "success")
    return redirect(url_for("account_policy.page"), 303)


def _revoke(scope: str) -> int:
    user = signed_in_user()
    return revocation.revoke_account_sessions(user.account_id, scope, user.id, g.current_session.id, now(), client_ip())


# --- JSON API: the same card for scripts (session cookie + X-CSRFToken header) ---


@bp.get("/api/accounts/me/security")
@json_api
@owner_required
def api_get():
    return jsonify(_api_body())


@bp.patch("/api/accounts/me/security")
@json_api
@owner_required
def api_patch():
    try:
        account_policy.patch_policy(signed_in_user().account, _json_object(), actor=signed_in_user(), now=now())
    except account_policy.PolicyInvalid as invalid:
        return _invalid(invalid.errors)
    db.session.commit()
    return jsonify(_api_body())


@bp.post("/api/accounts/me/security/revoke-sessions")
@json_api
@owner_required
def api_revoke():
    body = _json_object()
    scope = body.get("scope")
    if scope not in revocation.SCOPES or set(body) != {"scope"}:
        return _invalid({"scope": 'Must be "all" or "others".'})
    count = _revoke(scope)
    db.session.commit()
    if scope == revocation.SCOPE_ALL:
        forget_session()
    return jsonify(revoked_count=count)


def _json_object() -> dict:
    if not request.is_json:
        abort(415)
    try:
        return json_bodies.object_from(request.get_data(cache=False))
    except json_bodies.InvalidJSON as exc:
        abort(400, description=str(exc))


def _invalid(errors: dict[str, str]):
    body = {"error": "invalid_request", "error_description": "Some fields are not valid.", "fields": errors}
    return jsonify(body), 422


def _api_body() -> dict:
    view = account_policy.overview(signed_in_user().account, now())
    return {
        "idle_minutes": view.idle_override,
        "absolute_minutes": view.absolute_override,
        "effective_idle_minutes": view.effective.idle_minutes,
        "effective_absolute_minutes": view.effective.absolute_minutes,
        "idle_minutes_min": view.bounds.idle_min,
        "idle_minutes_max": view.bounds.idle_max,
        "absolute_minutes_min": view.bounds.absolute_min,
        "absolute_minutes_max": view.bounds.absolute_max,
        "active_users": [
            {
                "user_id": u.id,
                "name": u.name,
                "email": u.email,
                "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
            }
            for u in view.active_users
        ],
    }
