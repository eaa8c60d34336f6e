"""The one place that asks whether a request came from htmx."""

from flask import Response, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def render_page_or_partial(page: str, partial: str, **context) -> Response:
    """Full page for a normal load, the fragment alone for htmx; caches must keep them apart."""
    response = Response(render_template(partial if is_htmx() else page, **context))
    response.vary.add("HX-Request")
    return response


def client_redirect(location: str) -> Response:
    """htmx follows HX-Redirect with a full navigation; a 302 would be swapped in as a fragment."""
    response = Response(status=200)
    response.headers["HX-Redirect"] = location
    return response
