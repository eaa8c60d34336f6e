"""Jinja helpers: relative times ("3 min ago") from the app clock."""

from datetime import datetime

from flask import Flask

from app.clock import now
from app.sessions.devices import agent_details
from app.web.auth import current_user

UNITS = ((86400, "d"), (3600, "h"), (60, "min"))


def _span(seconds: int) -> str | None:
    for unit_seconds, unit in UNITS:
        if seconds >= unit_seconds:
            return f"{seconds // unit_seconds} {unit}"
    return None


def ago(moment: datetime, reference: datetime) -> str:
    """ "3 min ago", "2 d ago"; "just now" under a minute."""
    span = _span(int((reference - moment).total_seconds()))
    return f"{span} ago" if span else "just now"


def until(moment: datetime, reference: datetime) -> str:
    """ "in 12 h", "in 4 min"; "in under a minute"."""
    span = _span(int((moment - reference).total_seconds()))
    return f"in {span}" if span else "in under a minute"


def exact(moment: datetime) -> str:
    return moment.strftime("%a %d %b %Y, %H:%M UTC")


def init_templating(app: Flask) -> None:
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.filters["until"] = until
    app.jinja_env.filters["exact"] = exact
    app.jinja_env.globals["now"] = now
    app.jinja_env.globals["current_user"] = current_user
    app.jinja_env.filters["agent_details"] = agent_details
    if app.config.get("TESTING"):
        from jinja2 import StrictUndefined

        app.jinja_env.undefined = StrictUndefined
