""" "This wasn't me" (issue 12 item 4): the link of a new-device alert, from any browser, signed in or not. Confirming
signs that device out (with the apps it signed in to) and mails the user a link to set a new password; the link is
its own authority (app/accounts/new_device.py), so the report asks nothing else."""

from dataclasses import dataclass
from datetime import datetime

from app.accounts import password_reset
from app.accounts.new_device import REASON_NOT_ME, ReportedSignIn, read_link
from app.audit import services as audit
from app.audit.tags import EventTag
from app.sessions import services as sessions
from app.sessions.models import KnownDevice, UserSession


@dataclass(frozen=True)
class Report:
    """What a confirmed report did, as the page says it."""

    device: str
    address: str  # the user's e-mail, masked: the page may be open on someone else's screen
    already_done: bool  # reported before: nothing was done again
    reset_sent: bool  # False when the address's reset mails for the hour were spent
    ended_session_ids: tuple[int, ...]


def look_up(token: str, now: datetime) -> ReportedSignIn:
    """The sign-in a link reports, for the confirmation page (changes nothing). Raises NotMeLinkInvalid."""
    return read_link(token, now)


def earlier_report(reported: ReportedSignIn) -> "Report | None":
    """What the page says when this sign-in was reported before (nothing is done again), else None."""
    if reported.session.revoked_reason != REASON_NOT_ME:
        return None
    return Report(reported.session.device_name, masked(reported.user.email), True, False, ())


def report(token: str, now: datetime, ip: str) -> Report:
    """In this transaction: every live session of the user on the reported device ends (the one path every sign-out
    takes, which revokes the grants each approved with their refresh tokens and queues the apps' back-channel
    logouts), the device is forgotten (a later sign-in from it is alerted again), the report is recorded, and a
    password-reset link is mailed within the address's limit. A session that had already ended (expired, signed out)
    is still reported: the person says it was not them. Reported once: a second report (a reload, a second click,
    the same link in two tabs) does nothing and says so. Raises NotMeLinkInvalid."""
    reported = read_link(token, now)
    session, user = reported.session, reported.user
    earlier = earlier_report(reported)
    if earlier is not None:
        return earlier
    ended = sessions.end_sessions(
        UserSession.user_id == user.id, UserSession.device_id == session.device_id, reason=REASON_NOT_ME, now=now
    )
    ended_ids = tuple(session_id for session_id, _, _ in ended)
    # The reported session carries the reason from now on, whether this report ended it or it had ended before;
    # a concurrent report of the same link finds it set, and stops here.
    if session.id not in ended_ids and not UserSession.relabel_ended(session.id, REASON_NOT_ME):
        return Report(session.device_name, masked(user.email), True, False, ended_ids)
    KnownDevice.forget(user.id, session.device_id)
    audit.record(EventTag.DEVICE_NOT_ME, user_id=user.id, session_id=session.id, ip=ip, device=session.device_name,
                 count=len(ended))  # fmt: skip
    reset_sent = password_reset.within_mail_limit(user.email)
    if reset_sent:
        password_reset.send_link(user, now)
    return Report(session.device_name, masked(user.email), False, reset_sent, ended_ids)


def masked(email: str) -> str:
    """ "a•••@example.com": enough for the person to recognise their address, not enough to read it off a screen."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"
