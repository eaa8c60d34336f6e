"""Why a device was signed out, as the sign-in page tells it: a closed set of `/login?reason=` values.

A remote sign-out is a security event: calling it "session expired" would hide it from the person it happened to.
Values outside the set show no notice, so a crafted link cannot put words on the sign-in page.
"""

from app.accounts.new_device import REASON_NOT_ME
from app.accounts.services import REASON_PASSWORD_CHANGED
from app.sessions.revocation import REASON_DEVICE, REASON_OTHER_DEVICES, REASON_OWNER

EXPIRED = "session_expired"
SIGNED_OUT_ELSEWHERE = "signed_out_elsewhere"
SIGNED_OUT_BY_OWNER = "signed_out_by_owner"
PASSWORD_CHANGED = "password_changed"
SECOND_STEP_EXPIRED = "second_step_expired"

NOTICES = {
    EXPIRED: "Your session expired. Please sign in again.",
    SIGNED_OUT_ELSEWHERE: "You were signed out from another device. Sign in again to continue.",
    SIGNED_OUT_BY_OWNER: "Your account's owner signed you out. Sign in again to continue.",
    PASSWORD_CHANGED: "You were signed out because your password was changed. Sign in with the new password.",
    SECOND_STEP_EXPIRED: "Your sign-in was not finished in time. Please sign in again.",
}

# The registry's revoked_reason → what the next page says; idle, absolute and anything else read as expiry.
_BY_ENDED_REASON = {
    REASON_DEVICE: SIGNED_OUT_ELSEWHERE,
    REASON_OTHER_DEVICES: SIGNED_OUT_ELSEWHERE,
    REASON_OWNER: SIGNED_OUT_BY_OWNER,
    REASON_PASSWORD_CHANGED: PASSWORD_CHANGED,
    REASON_NOT_ME: SIGNED_OUT_ELSEWHERE,  # reported from the new-device alert's link
}


def login_reason(ended_reason: str) -> str:
    return _BY_ENDED_REASON.get(ended_reason, EXPIRED)


def notice_for(reason: str | None) -> str | None:
    return NOTICES.get(reason or "")
