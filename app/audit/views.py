"""Recent security activity (DESIGN §10): a person's own, and the account's audit log for its owners."""

from flask import Blueprint, render_template, request

from app.audit import activity
from app.web.auth import login_required, owner_required, signed_in_user

bp = Blueprint("activity", __name__)


@bp.get("/account/activity")
@login_required
def own():
    try:
        before, after = activity.parse_cursor(request.args.get("before"), request.args.get("after"))
    except activity.ActivityQueryInvalid as invalid:
        return render_template("activity/own.html", page=None, problem=str(invalid), filter_args={}), 400
    page = activity.own_activity(signed_in_user(), before, after)
    return render_template("activity/own.html", page=page, problem=None, filter_args={})


@bp.get("/account/security/activity")
@owner_required
def account_log():
    owner = signed_in_user()
    context = {"people": activity.people_of(owner), "kinds": activity.KINDS, "account_name": owner.account.name,
               "filters": activity.Filters(None, None), "filter_args": {}}  # fmt: skip
    try:
        before, after = activity.parse_cursor(request.args.get("before"), request.args.get("after"))
        filters = activity.parse_filters(owner, request.args.get("person"), request.args.get("kind"))
    except activity.ActivityQueryInvalid as invalid:
        return render_template("activity/account.html", page=None, problem=str(invalid), **context), 400
    page = activity.account_activity(owner, filters, before, after)
    return render_template(
        "activity/account.html", page=page, problem=None, **dict(context, filters=filters, filter_args=filters.query())
    )
