"""Security events in words (DESIGN §10): a person's own at /account/activity, the account's for its owners.

Every tag is worded in WORDING, from the details it records (app/audit/tags.py and the audit.record calls); a detail
is shown only when a wording names it, so nothing else an event holds (device ids, grant ids) ever reaches a page.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.audit.tags import EventTag as T
from app.sessions import methods as m

PAGE_SIZE = 25


class ActivityQueryInvalid(ValueError):
    """A cursor or filter in the query string that is not one we offer; the message says which."""


@dataclass(frozen=True)
class Names:
    """What a page's events mention by id, looked up once per page."""

    apps: Mapping[str, str]
    devices: Mapping[int, str]

    def app(self, details: dict) -> str:
        return self.apps.get(str(details.get("client")), "an app")


Wording = Callable[[AuditEvent, Names], str]

# The second step or the key, in the order used; "user" (the passkey's own check) adds nothing to say.
_METHOD_WORDS = {
    m.PASSWORD: "a password",
    m.AUTHENTICATOR_APP: "an authenticator app",
    m.RECOVERY_CODE: "a recovery code",
    m.HARDWARE_KEY: "a passkey",
    m.SOFTWARE_KEY: "a passkey",
}
_FACTOR_WORDS = {"totp": "an authenticator app", "passkey": "a passkey", "recovery_code": "a recovery code"}
_CODE_FACTOR = {"totp": "authenticator-app code", "recovery_code": "recovery code"}
_SIGN_OUT_REASONS = {
    "sign_out": "Signed out",
    "replaced_by_sign_in": "Signed out by signing in again on the same device",
    "idle_timeout": "Signed out after being idle",
    "absolute_timeout": "Signed out: the session reached its time limit",
    "user_disabled": "Signed out: the person was disabled",
}
_ROLE_WORDS = {"owner": "an owner", "member": "a member"}
_FAILURE_STEPS = {
    "disabled": "Sign-in refused: the person is disabled",
    "reauthenticate": "Wrong password when confirming it was you",
    "password_change": "Wrong current password when changing the password",
}


def methods_in_words(stored: object) -> str:
    """RFC 8176 amr values as a phrase: "a password and an authenticator app"."""
    words = list(dict.fromkeys(_METHOD_WORDS[v] for v in str(stored or "").split() if v in _METHOD_WORDS))
    return " and ".join(words) if words else "an unknown method"


def _detail(event: AuditEvent, key: str) -> str:
    return str(event.details.get(key))


def _count(event: AuditEvent, key: str, one: str) -> str:
    """ "1 other device", "3 other devices" (a missing or odd count reads as 0)."""
    number = event.details.get(key)
    number = number if isinstance(number, int) else 0
    return f"{number} {one}{'' if number == 1 else 's'}"


def _role(event: AuditEvent) -> str:
    return _ROLE_WORDS.get(_detail(event, "role"), "a member")


def _methods(event: AuditEvent) -> str:
    return methods_in_words(event.details.get("methods"))


def _factor(event: AuditEvent) -> str:
    return _FACTOR_WORDS.get(str(event.details.get("factor")), "a second step")


def _on_device(event: AuditEvent) -> str:
    """ " on Firefox on Linux", or nothing when the event names no device."""
    device = event.details.get("device")
    return f" on {device}" if isinstance(device, str) and device else ""


def _sign_in(event: AuditEvent, _: Names) -> str:
    return f"Signed in{_on_device(event)} with {_methods(event)}"


def _factor_failure(event: AuditEvent, _: Names) -> str:
    factor = str(event.details.get("factor"))
    if factor == "passkey":
        return "A passkey was refused"
    code = _CODE_FACTOR.get(factor, "code")
    if event.details.get("reason") == "reused":
        return f"An already used {code} was tried"
    return f"Wrong {code}"


def _disconnect(event: AuditEvent, names: Names) -> str:
    if "count" in event.details:
        return f"Disconnected {names.app(event.details)} from every device"
    return f"Disconnected {names.app(event.details)}"


def _two_step_policy(event: AuditEvent, _: Names) -> str:
    new = event.details.get("new")
    if isinstance(new, dict) and new.get("two_step_required"):
        return "Required two-step verification for everyone in the account"
    return "Stopped requiring two-step verification"


def _account_sessions(event: AuditEvent, _: Names) -> str:
    count = _count(event, "count", "session")
    if event.details.get("scope") == "all":
        return f"Signed out everyone in the account ({count})"
    return f"Signed out everyone else in the account ({count})"


def _fixed(text: str) -> Wording:
    return lambda _event, _names: text


WORDING: dict[str, tuple[str, Wording]] = {
    T.SIGN_IN_SUCCESS: ("sign_in", _sign_in),
    T.REAUTHENTICATE: ("sign_in", lambda e, _: f"Confirmed it was you with {_methods(e)}"),
    T.SIGN_OUT: ("sign_in", lambda e, _: _SIGN_OUT_REASONS.get(_detail(e, "reason"), "Signed out")),
    T.SESSION_EXPIRED: ("sign_in", _fixed("Signed out: the session expired")),
    T.SIGN_IN_FAILURE: ("failure", lambda e, _: _FAILURE_STEPS.get(_detail(e, "step"), "Failed sign-in attempt")),
    T.FACTOR_FAILURE: ("failure", _factor_failure),
    T.REFRESH_TOKEN_REUSE: (
        "failure",
        lambda e, n: f"An old token of {n.app(e.details)} was used again; app disconnected",
    ),
    T.CODE_REPLAY: ("failure", _fixed("A sign-in code for an app was used twice; that app's access was ended")),
    T.PASSWORD_CHANGE: (
        "password",
        lambda e, _: f"Changed the password and signed out {_count(e, 'signed_out', 'other device')}",
    ),
    T.PASSWORD_RESET: (
        "password",
        lambda e, _: f"Reset the forgotten password and signed out {_count(e, 'signed_out', 'device')}",
    ),
    T.EMAIL_CHANGE_REQUEST: ("account", _fixed("Asked to change the e-mail address; a link went to the new one")),
    T.EMAIL_CHANGE: ("account", _fixed("Changed the e-mail address")),
    T.FACTOR_ADD: ("two_step", lambda e, _: f"Added {_factor(e)}"),
    T.FACTOR_USE: ("two_step", lambda e, _: f"Used {_factor(e)}"),
    T.FACTOR_REMOVE: ("two_step", lambda e, _: f"Removed {_factor(e)}"),
    T.FACTOR_RENAME: ("two_step", lambda e, _: f"Renamed {_factor(e)}"),
    T.RECOVERY_CODE_USE: ("two_step", lambda e, _: f"Used a recovery code ({_count(e, 'remaining', 'code')} left)"),
    T.RECOVERY_CODES_REGENERATE: ("two_step", _fixed("Made new recovery codes (the old ones stopped working)")),
    T.DEVICE_SIGN_OUT: ("devices", lambda e, n: f"Signed out {n.devices.get(e.session_id or 0, 'a device')}"),
    T.DEVICES_SIGN_OUT_OTHERS: ("devices", lambda e, _: f"Signed out {_count(e, 'count', 'other device')}"),
    T.ACCOUNT_SESSIONS_REVOKE: ("devices", _account_sessions),
    T.DEVICE_NOT_ME: ("devices", lambda e, _: f"Reported a sign-in{_on_device(e)} as not theirs; it was signed out"),
    T.USER_SIGN_OUT_EVERYWHERE: (
        "devices",
        lambda e, _: f"Was signed out everywhere by an owner ({_count(e, 'count', 'session')})",
    ),
    T.GRANT_CONNECT: ("apps", lambda e, n: f"Connected {n.app(e.details)}"),
    T.GRANT_DISCONNECT: ("apps", _disconnect),
    T.POLICY_CHANGE: ("account", _fixed("Changed how long people stay signed in")),
    T.TWO_STEP_POLICY_CHANGE: ("account", _two_step_policy),
    T.ACCOUNT_CREATE: ("account", _fixed("Created the account")),
    T.USER_CREATE: ("account", lambda e, _: f"Joined the account as {_role(e)}"),
    T.USER_DISABLE: ("account", _fixed("Was disabled and signed out everywhere")),
    T.USER_ENABLE: ("account", _fixed("Was enabled again")),
    T.USER_DELETE: ("account", _fixed("A person was removed from the account")),
    T.CLIENT_CREATE: ("account", lambda e, n: f"Registered the app {n.app(e.details)}"),
    T.CLIENT_DISABLE: ("account", lambda e, n: f"Disabled the app {n.app(e.details)}"),
    T.KEYS_ROTATE: ("account", _fixed("Rotated the signing keys")),
    T.USER_ROLE_CHANGE: ("account", lambda e, _: f"Was made {_role(e)}"),
    T.INVITATION_SEND: ("account", lambda e, _: f"Invited someone as {_role(e)}"),
    T.INVITATION_RESEND: ("account", _fixed("Sent an invitation again")),
    T.INVITATION_CANCEL: ("account", _fixed("Cancelled an invitation")),
    T.INVITATION_ACCEPT: ("account", _fixed("Accepted an invitation")),
}

KINDS = {"sign_in": "Sign-ins and sign-outs", "failure": "Failed attempts", "password": "Password changes",
         "two_step": "Two-step verification", "devices": "Devices signed out", "apps": "Apps",
         "account": "Account settings and people"}  # fmt: skip


def _generic(event: AuditEvent, _: Names) -> str:
    """A tag this table does not know yet (a newer feature's): said as such, with none of its details."""
    return f"Security event ({event.tag})"


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    text: str
    ip: str | None
    person: str | None


@dataclass(frozen=True)
class ActivityPage:
    entries: list[Entry]
    older_cursor: int | None  # the `before` of the "Older" link, when there is an older page
    newer_cursor: int | None  # the `after` of the "Newer" link


@dataclass(frozen=True)
class Filters:
    person_id: int | None
    kind: str | None

    def query(self) -> dict[str, object]:
        """The filters as query parameters, so that Older and Newer keep them."""
        return {key: value for key, value in (("person", self.person_id), ("kind", self.kind)) if value is not None}


def parse_cursor(before: str | None, after: str | None) -> tuple[int | None, int | None]:
    """The keyset cursor from the query string: one of before / after, a positive event id."""
    if before and after:
        raise ActivityQueryInvalid("Use either Older or Newer, not both.")
    return _positive(before, "before"), _positive(after, "after")


def _positive(value: str | None, name: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 2**63:
        raise ActivityQueryInvalid(f"That page link is not valid ({name} must be an event number).")
    return int(value)


def parse_filters(owner: User, person: str | None, kind: str | None) -> Filters:
    """The owner log's filters: a person of the owner's account (by id) and a kind from KINDS; empty means all."""
    if kind and kind not in KINDS:
        raise ActivityQueryInvalid("There is no such kind of event. Choose one from the list.")
    if not person:
        return Filters(None, kind or None)
    people = {row.User.id for row in User.in_account_with(owner.account_id)}
    if not person.isdigit() or int(person) not in people:
        raise ActivityQueryInvalid("There is no such person in this account. Choose one from the list.")
    return Filters(int(person), kind or None)


def own_activity(user: User, before: int | None, after: int | None) -> ActivityPage:
    """The user's own events, newest first, PAGE_SIZE at a time."""
    return _page(AuditEvent.of_user(user.id), before, after, people=None)


def account_activity(owner: User, filters: Filters, before: int | None, after: int | None) -> ActivityPage:
    """The owner's account's events (the caller checked that `owner` is one), filtered, newest first."""
    tags = None if filters.kind is None else [tag for tag, (kind, _) in WORDING.items() if kind == filters.kind]
    criteria = AuditEvent.of_account(owner.account_id, filters.person_id, tags)
    people = {row.User.id: row.User.name for row in User.in_account_with(owner.account_id)}
    return _page(criteria, before, after, people=people)


def people_of(owner: User) -> list[tuple[int, str]]:
    """The filter's choices: the account's people by name."""
    return [(row.User.id, row.User.name) for row in User.in_account_with(owner.account_id)]


def _page(criteria, before: int | None, after: int | None, people: dict[int, str] | None) -> ActivityPage:
    rows, has_older, has_newer = AuditEvent.page(criteria, before=before, after=after, size=PAGE_SIZE)
    names = Names(
        apps=AuditEvent.app_names({str(e.details["client"]) for e in rows if "client" in e.details}),
        devices=AuditEvent.device_names({e.session_id for e in rows if e.tag == T.DEVICE_SIGN_OUT and e.session_id}),
    )
    entries = [_entry(event, names, people) for event in rows]
    return ActivityPage(entries, rows[-1].id if has_older else None, rows[0].id if has_newer else None)


def _entry(event: AuditEvent, names: Names, people: dict[int, str] | None) -> Entry:
    _, wording = WORDING.get(event.tag, ("", _generic))
    person = None if people is None else people.get(event.user_id or 0, "Someone no longer in the account")
    return Entry(event.id, event.created_at, wording(event, names), event.ip, person)
