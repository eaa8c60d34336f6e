"""Refuse state-changing requests sent by another site (catalogue #9; defence in depth beside CSRF tokens)."""

from urllib.parse import urlsplit

from flask import Flask, abort, current_app, request

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def cross_site_allowed(view):
    """Mark an endpoint other sites may call by design (token endpoints authenticate the client instead)."""
    view.gatehouse_cross_site_allowed = True
    return view


def sent_by_another_site() -> bool:
    """Fetch Metadata says cross-site, or the Origin names another scheme or host ("null" included)."""
    # Browsers send Sec-Fetch-Site on every request; Origin on every cross-origin POST ("null" when opaque).
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    given, expected = urlsplit(origin), urlsplit(request.host_url)
    return (given.scheme, given.netloc) != (expected.scheme, expected.netloc)


def refuse_cross_site() -> None:
    if request.method not in UNSAFE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if getattr(view, "gatehouse_cross_site_allowed", False):
        return
    if sent_by_another_site():
        abort(403)


def init_origin_check(app: Flask) -> None:
    app.before_request(refuse_cross_site)
