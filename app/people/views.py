"""/account/people (owners) and an invitation's link /invitation/<token> (anyone): DESIGN §10, issue 12 item 6."""

import functools

from flask import Blueprint, abort, flash, g, make_response, redirect, render_template, request, url_for

from app.accounts import services as accounts
from app.accounts.errors import AccountError
from app.accounts.models import ROLES
from app.clock import now
from app.extensions import db
from app.people import invitations
from app.people import services as people
from app.people.forms import AcceptInvitationForm, InviteForm
from app.sessions.services import ActiveSession
from app.web.auth import (
    client_ip,
    current_user,
    establish_session,
    is_fresh,
    owner_required,
    reauthenticate_url,
    request_meta,
    signed_in_user,
)

bp = Blueprint("people", __name__)

TOO_MANY = "Too many invitations were sent from this account in the last hour. Try again later."


def fresh_owner_required(view):
    """Owners, signed in (or confirmed again) recently: changing people is a sensitive action (DESIGN §9). A stale
    sign-in confirms first and comes back to the confirmation page, or to the people page after a post."""

    @functools.wraps(view)
    @owner_required
    def wrapped(*args, **kwargs):
        if is_fresh():
            return view(*args, **kwargs)
        return redirect(reauthenticate_url(request.path if request.method == "GET" else url_for("people.page")), 303)

    return wrapped


def _page(form: InviteForm | None = None, status: int = 200):
    owner = signed_in_user()
    roster = people.roster(owner.account, now())
    page = render_template("people/index.html", roster=roster, user=owner, form=form or InviteForm(), fresh=is_fresh(),
                           roles=ROLES)  # fmt: skip
    return page, status


def _back(message: str, tone: str = "success"):
    flash(message, tone)
    return redirect(url_for("people.page"), 303)


@bp.get("/account/people")
@owner_required
def page():
    return _page()


@bp.post("/account/people/invitations")
@owner_required
def invite():
    form = InviteForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        sent = invitations.invite(signed_in_user(), form.email.data, form.role.data, now(), client_ip())
    except AccountError as refused:
        db.session.rollback()  # and the account's lock with it
        form.email.errors.append(str(refused))
        return _page(form, 400)
    except invitations.TooManyInvitations as limited:
        db.session.rollback()
        form.email.errors.append(TOO_MANY)
        page, _ = _page(form)
        return page, 429, {"Retry-After": str(limited.retry_after_seconds)}
    db.session.commit()
    return _back(f"Invitation sent to {sent.email}. The link in it works for 7 days.")


@bp.post("/account/people/invitations/<int:invitation_id>/resend")
@owner_required
def resend(invitation_id: int):
    sent = _invitation_action(invitations.resend, invitation_id)
    return _back(f"Sent a new invitation to {sent.email}; the previous link no longer works.")


@bp.post("/account/people/invitations/<int:invitation_id>/cancel")
@owner_required
def cancel(invitation_id: int):
    cancelled = _invitation_action(invitations.cancel, invitation_id)
    return _back(f"Cancelled the invitation to {cancelled.email}; its link no longer works.")


def _invitation_action(action, invitation_id: int):
    """Run resend or cancel and commit; a refusal goes back to the page with its reason (aborts with it)."""
    try:
        result = action(signed_in_user(), invitation_id, now(), client_ip())
    except invitations.UnknownInvitation:
        abort(404)
    except AccountError as refused:
        db.session.rollback()
        abort(_back(str(refused), "danger"))
    except invitations.TooManyInvitations:
        db.session.rollback()
        abort(_back(TOO_MANY, "danger"))
    db.session.commit()
    return result


@bp.post("/account/people/<int:person_id>/role")
@fresh_owner_required
def change_role(person_id: int):
    owner, person, role = signed_in_user(), _person(person_id), request.form.get("role", "")
    changed = _person_action(lambda: people.change_role(owner, person, role, now(), client_ip()))
    if changed and person.id == owner.id:  # no longer an owner: this page is not theirs any more
        flash("You are now a member of the account.", "success")
        return redirect(url_for("accounts.home"), 303)
    said = invitations.ROLE_WORDS[role]
    return _back(f"{person.name} is now {said}." if changed else f"{person.name} already was {said}.")


# Sign out, disable and remove: GET is the confirmation page used without JavaScript (the page's modals post to the
# same address); only POST acts (DESIGN §8).
@bp.get("/account/people/<int:person_id>/sign-out")
@fresh_owner_required
def confirm_sign_out(person_id: int):
    return render_template("people/confirm.html", person=_person(person_id), action="sign_out")


@bp.post("/account/people/<int:person_id>/sign-out")
@fresh_owner_required
def sign_out(person_id: int):
    owner, person = signed_in_user(), _person(person_id)
    count = _person_action(lambda: people.sign_out_everywhere(owner, person, now(), client_ip()))
    return _back(f"Signed {person.name} out of {count} device{'' if count == 1 else 's'} and the apps they approved.")


@bp.get("/account/people/<int:person_id>/disable")
@fresh_owner_required
def confirm_disable(person_id: int):
    return render_template("people/confirm.html", person=_person(person_id), action="disable")


@bp.post("/account/people/<int:person_id>/disable")
@fresh_owner_required
def disable(person_id: int):
    owner, person = signed_in_user(), _person(person_id)
    _person_action(lambda: people.disable(owner, person, now(), client_ip()))
    return _back(f"{person.name} is disabled: they cannot sign in, and were signed out everywhere.")


@bp.post("/account/people/<int:person_id>/enable")
@fresh_owner_required
def enable(person_id: int):
    owner, person = signed_in_user(), _person(person_id)
    _person_action(lambda: people.enable(owner, person, client_ip()))
    return _back(f"{person.name} can sign in again.")


@bp.get("/account/people/<int:person_id>/remove")
@fresh_owner_required
def confirm_remove(person_id: int):
    return render_template("people/confirm.html", person=_person(person_id), action="remove")


@bp.post("/account/people/<int:person_id>/remove")
@fresh_owner_required
def remove(person_id: int):
    owner, person = signed_in_user(), _person(person_id)
    name = person.name
    _person_action(lambda: people.remove(owner, person, now(), client_ip()))
    return _back(f"Removed {name} from the account.")


def _person(person_id: int):
    try:
        return people.person_of(signed_in_user(), person_id)
    except people.UnknownPerson:
        abort(404)


def _person_action(run):
    """Run one service call on a person and commit; a refusal (the last owner, yourself) goes back to the page with
    its reason, nothing changed (aborts with that answer)."""
    try:
        result = run()
    except AccountError as refused:
        db.session.rollback()
        abort(_back(str(refused), "danger"))
    db.session.commit()
    return result


# --- The invitation's link: anyone, from any browser ---


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept(token: str):
    try:
        link = invitations.check_link(token, now())
    except invitations.InvitationLinkInvalid:
        return render_template("people/invitation_invalid.html"), 404
    except invitations.AddressTaken as taken:
        return render_template("people/invitation_taken.html", email=taken.email), 409
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        previous = g.current_session.id if g.current_session else None
        meta = request_meta()
        try:
            signed_in = invitations.accept(token, form.name.data, form.new_password.data, meta, now(), previous)
        except invitations.InvitationLinkInvalid:
            db.session.rollback()
            return render_template("people/invitation_invalid.html"), 404
        except invitations.AddressTaken as taken:
            db.session.rollback()
            return render_template("people/invitation_taken.html", email=taken.email), 409
        except invitations.AcceptanceRefused as refused:
            db.session.rollback()  # nothing spent: the link still works
            getattr(form, refused.field).errors.append(str(refused))
        else:
            db.session.commit()
            flash(f"Welcome to {link.account.name}, {signed_in.user.name}.", "success")
            response = make_response(redirect(url_for("accounts.home"), 303))
            establish_session(response, ActiveSession.of(signed_in.session), meta.device_id)
            return response
    page = render_template("people/accept.html", form=form, link=link, signed_in_as=current_user(),
                           password_hint=accounts.password_hint(None))  # fmt: skip
    return page, 400 if form.errors else 200
