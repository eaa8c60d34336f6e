"""Signing devices out: one device, all my other devices, or an account's sessions (owner)."""

from datetime import datetime

from app.audit import services as audit
from app.audit.tags import EventTag
from app.sessions.models import UserSession
from app.sessions.services import end_sessions

REASON_DEVICE = "signed_out_by_user"
REASON_OTHER_DEVICES = "signed_out_other_devices"
REASON_OWNER = "revoked_by_owner"
SCOPE_ALL = "all"
SCOPE_OTHERS = "others"
SCOPES = (SCOPE_ALL, SCOPE_OTHERS)


class UnknownSession(LookupError):
    """No live session with that id belongs to this user (the same answer for someone else's)."""


def other_device(user_id: int, public_id: str, current_session_id: int) -> UserSession:
    """One of this user's other live sessions; someone else's id reads exactly like an unknown one (no IDOR)."""
    row = UserSession.by_public_id(public_id)
    if row is None or row.user_id != user_id or row.revoked_at is not None or row.id == current_session_id:
        raise UnknownSession(public_id)
    return row


def revoke_device(user_id: int, public_id: str, current_session_id: int, now: datetime, ip: str | None) -> str:
    """Sign out one of the user's other devices and return its name; the current one uses the header button."""
    row = other_device(user_id, public_id, current_session_id)
    if not end_sessions(UserSession.id == row.id, reason=REASON_DEVICE, now=now):
        raise UnknownSession(public_id)  # ended by a concurrent request a moment ago
    audit.record(EventTag.DEVICE_SIGN_OUT, user_id=user_id, session_id=row.id, ip=ip, by_session=current_session_id)
    return row.device_name


def revoke_other_devices(user_id: int, current_session_id: int, now: datetime, ip: str | None) -> int:
    ended = end_sessions(
        UserSession.user_id == user_id,
        UserSession.id != current_session_id,
        reason=REASON_OTHER_DEVICES,
        now=now,
    )
    audit.record(
        EventTag.DEVICES_SIGN_OUT_OTHERS, user_id=user_id, session_id=current_session_id, ip=ip, count=len(ended)
    )
    return len(ended)


def revoke_account_sessions(
    account_id: int, scope: str, actor_user_id: int, actor_session_id: int, now: datetime, ip: str | None
) -> int:
    """Owner: end every session of the account ("all") or all but the caller's own ("others"), one statement per
    reason: the owner's own devices were signed out from another device (theirs), everyone else's by the owner."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    criteria = [UserSession.in_account(account_id)]
    if scope == SCOPE_OTHERS:
        criteria.append(UserSession.id != actor_session_id)
    ended = end_sessions(*criteria, UserSession.user_id == actor_user_id, reason=REASON_OTHER_DEVICES, now=now)
    ended += end_sessions(*criteria, UserSession.user_id != actor_user_id, reason=REASON_OWNER, now=now)
    audit.record(
        EventTag.ACCOUNT_SESSIONS_REVOKE,
        user_id=actor_user_id,
        account_id=account_id,
        session_id=actor_session_id,
        ip=ip,
        scope=scope,
        count=len(ended),
    )
    return len(ended)
