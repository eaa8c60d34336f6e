"""Jinja helpers: relative times ("3 min ago") from the app clock, durations in words ("up to 30 days")."""

from datetime import datetime
from urllib.parse import urlencode, urlsplit

from flask import Flask

from app.clock import now
from app.sessions import methods
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


MINUTES_PER = (("day", 1440), ("hour", 60))


def minutes_in_words(minutes: int) -> str:
    """ "30 days", "8 hours", "1 hour 30 min", "45 min": limits read as people say them, not as 43200."""
    for name, size in MINUTES_PER:
        if minutes >= size and minutes % size == 0:
            count = minutes // size
            return f"{count} {name}{'s' if count != 1 else ''}"
    if minutes > 60:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''} {minutes % 60} min"
    return f"{minutes} min"


def url_host(url: str) -> str:
    """ "app.example.com" or "localhost:5001": where an app sends the browser back, as the consent page shows it."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or ""


def exact(moment: datetime) -> str:
    return moment.strftime("%a %d %b %Y, %H:%M UTC")


def init_templating(app: Flask) -> None:
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.filters["until"] = until
    app.jinja_env.filters["exact"] = exact
    app.jinja_env.filters["minutes_in_words"] = minutes_in_words
    app.jinja_env.filters["url_host"] = url_host
    app.jinja_env.filters["urlencode_pairs"] = urlencode
    app.jinja_env.globals["now"] = now
    app.jinja_env.globals["current_user"] = current_user
    app.jinja_env.filters["agent_details"] = agent_details
    app.jinja_env.filters["signed_in_with"] = methods.describe
    if app.config.get("TESTING"):
        from jinja2 import StrictUndefined

        app.jinja_env.undefined = StrictUndefined
