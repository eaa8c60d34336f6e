"""The owner's session-security card: the account's policy and who is signed in (DESIGN §4)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.accounts.models import Account, User
from app.audit import services as audit
from app.audit.tags import EventTag
from app.sessions.models import UserSession, users_with_live_sessions
from app.sessions.policy import PRESET_CUSTOM, PolicyBounds, SessionPolicy
from app.sessions.services import forget_cached, policy_settings

POLICY_FIELDS = ("idle_minutes", "absolute_minutes")


class PolicyInvalid(ValueError):
    """Per-field messages; nothing was saved."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("invalid session policy")
        self.errors = errors


@dataclass(frozen=True)
class PolicySaved:
    policy: SessionPolicy  # what sessions signed in from now on get
    recomputed: int  # sessions already signed in it was applied to ("apply now")
    custom_minutes_ignored: bool  # minutes typed beside Strict or Standard (a form without JavaScript) were not kept


@dataclass(frozen=True)
class SecurityOverview:
    idle_override: int | None
    absolute_override: int | None
    effective: SessionPolicy
    preset: str
    presets: dict[str, SessionPolicy]
    bounds: PolicyBounds
    active_users: list[User]


def overview(account: Account, now: datetime) -> SecurityOverview:
    settings = policy_settings()
    effective = settings.effective(account.idle_minutes, account.absolute_minutes)
    return SecurityOverview(
        idle_override=account.idle_minutes,
        absolute_override=account.absolute_minutes,
        effective=effective,
        preset=settings.preset_name(effective),
        presets=settings.presets(),
        bounds=settings.bounds,
        active_users=users_with_live_sessions(account.id, now),
    )


def update_policy(
    account: Account, idle: int | None, absolute: int | None, *, apply_now: bool, actor: User, now: datetime
) -> int:
    """Set the overrides (None = system default), checked against the effective values.

    Returns how many signed-in sessions were recomputed (0 unless apply_now).
    """
    settings = policy_settings()
    new = settings.effective(idle, absolute)
    errors = settings.validate(new.idle_minutes, new.absolute_minutes)
    if errors:
        raise PolicyInvalid(errors)
    old = settings.effective(account.idle_minutes, account.absolute_minutes)
    account.idle_minutes, account.absolute_minutes = idle, absolute
    recomputed = _apply_to_live_sessions(account.id, new, now) if apply_now else 0
    audit.record(
        EventTag.POLICY_CHANGE,
        user_id=actor.id,
        account_id=account.id,
        old={"idle_minutes": old.idle_minutes, "absolute_minutes": old.absolute_minutes},
        new={"idle_minutes": new.idle_minutes, "absolute_minutes": new.absolute_minutes},
        applied_to_signed_in=recomputed,
    )
    return recomputed


def patch_policy(account: Account, body: dict, *, actor: User, now: datetime) -> None:
    """The JSON API's partial update: fields left out keep their override, null clears one."""
    errors = {key: "Unknown field." for key in body if key not in POLICY_FIELDS}
    values = [body.get(field, getattr(account, field)) for field in POLICY_FIELDS]
    for field, value in zip(POLICY_FIELDS, values, strict=True):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            errors[field] = "Enter a whole number of minutes or null."
    if errors:
        raise PolicyInvalid(errors)
    update_policy(account, *values, apply_now=False, actor=actor, now=now)


def save_preset(
    account: Account,
    preset: str,
    idle: int | None,
    absolute: int | None,
    *,
    apply_now: bool,
    actor: User,
    now: datetime,
) -> PolicySaved:
    """The policy card's Save: Strict, Standard or Custom (with its minutes); says what was stored."""
    overrides = _overrides_for_preset(preset, idle, absolute)
    recomputed = update_policy(account, *overrides, apply_now=apply_now, actor=actor, now=now)
    policy = policy_settings().effective(account.idle_minutes, account.absolute_minutes)
    typed = (idle, absolute)
    ignored = preset != PRESET_CUSTOM and any(typed) and typed != (policy.idle_minutes, policy.absolute_minutes)
    return PolicySaved(policy, recomputed, ignored)


def _overrides_for_preset(preset: str, idle: int | None, absolute: int | None) -> tuple[int | None, int | None]:
    """Strict and Custom store their minutes; Standard (the system default) clears the overrides."""
    if preset == PRESET_CUSTOM:
        missing = {
            f: "Enter a whole number of minutes."
            for f, v in zip(POLICY_FIELDS, (idle, absolute), strict=True)
            if v is None
        }
        if missing:
            raise PolicyInvalid(missing)
        return idle, absolute
    settings = policy_settings()
    chosen = settings.presets()[preset]
    return (None, None) if chosen == settings.default else (chosen.idle_minutes, chosen.absolute_minutes)


def _apply_to_live_sessions(account_id: int, policy: SessionPolicy, now: datetime) -> int:
    """Recompute each signed-in session's windows from its own start; over-age ones end at their next request."""
    sessions = UserSession.live_in_account(account_id, now)
    UserSession.reset_windows([_windows(session, policy) for session in sessions])
    forget_cached([session.public_id for session in sessions])
    return len(sessions)


def _windows(session: UserSession, policy: SessionPolicy) -> dict:
    absolute = session.created_at + timedelta(minutes=policy.absolute_minutes)
    idle = min(session.last_used_at + timedelta(minutes=policy.idle_minutes), absolute)
    return {
        "id": session.id,
        "idle_minutes": policy.idle_minutes,
        "idle_expires_at": idle,
        "absolute_expires_at": absolute,
    }
