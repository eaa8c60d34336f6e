"""Record security events; callers pass metadata, never a secret."""

from app.audit.models import AuditEvent
from app.audit.tags import EventTag
from app.clock import now
from app.extensions import db

# Keys that must never reach the audit table (STYLE rule 5: never a token value).
FORBIDDEN_DETAIL_KEYS = frozenset({"password", "token", "cookie", "secret", "code", "refresh_token"})


def record(
    tag: EventTag,
    *,
    user_id: int | None = None,
    account_id: int | None = None,
    session_id: int | None = None,
    ip: str | None = None,
    **details,
) -> AuditEvent:
    """Add one event to the current transaction."""
    leaked = FORBIDDEN_DETAIL_KEYS.intersection(details)
    if leaked:
        raise ValueError(f"audit details must not carry secrets: {sorted(leaked)}")
    event = AuditEvent(
        tag=str(tag),
        created_at=now(),
        user_id=user_id,
        account_id=account_id,
        session_id=session_id,
        ip=ip,
        details=details,
    )
    db.session.add(event)
    return event
