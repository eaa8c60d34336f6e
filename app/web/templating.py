"""Jinja helpers: relative times ("3 min ago") from the app clock."""

from datetime import datetime

from flask import Flask

from app.clock import now


def ago(moment: datetime, reference: datetime) -> str:
    seconds = int((reference - moment).total_seconds())
    if seconds < 60:
        return "just now"
    for unit_seconds, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= unit_seconds:
            return f"{seconds // unit_seconds} {unit} ago"
    return "just now"


def init_templating(app: Flask) -> None:
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.globals["now"] = now
    if app.config.get("TESTING"):
        from jinja2 import StrictUndefined

        app.jinja_env.undefined = StrictUndefined
