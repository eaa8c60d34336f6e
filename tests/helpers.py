"""Small test helpers: reading cookies and rows back, counting SQL."""

from contextlib import contextmanager
from http.cookies import SimpleCookie

from sqlalchemy import event, select

from app.extensions import db
from app.sessions.models import UserSession

PORTAL_COOKIE = "gh_session"


def set_cookies(response) -> dict[str, SimpleCookie]:
    """Parsed Set-Cookie headers by cookie name."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            cookies[name] = morsel
    return cookies


def portal_cookie(client, name=PORTAL_COOKIE) -> str | None:
    cookie = client.get_cookie(name)
    return cookie.value if cookie else None


def sessions_of(app, user_id: int) -> list[UserSession]:
    with app.app_context():
        rows = db.session.scalars(select(UserSession).where(UserSession.user_id == user_id).order_by(UserSession.id))
        result = list(rows)
        db.session.expunge_all()
        return result


@contextmanager
def count_statements(app, prefix: str):
    """Count SQL statements starting with prefix (case-insensitive) run by the app's engine."""
    counter = {"n": 0}

    def before(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(prefix.upper()):
            counter["n"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", before)
