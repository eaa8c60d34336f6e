"""Parsing JSON request bodies, bounded in depth (DESIGN §8); their size is bounded before they are read.

The standard parser recurses once per level: a body like `[[[[…]]]]` nested past the interpreter's recursion limit
raises RecursionError, which is no ValueError and would escape as a 500. Every body we accept is a flat object of
a few fields, so anything nested deeper than MAX_DEPTH is refused as well.
"""

import json

MAX_DEPTH = 8


class InvalidJSON(ValueError):
    """Not a JSON object we accept: malformed, not UTF-8, not an object, or nested too deep (400 invalid_request)."""


def object_from(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError covers malformed JSON and bad UTF-8
        raise InvalidJSON("The body must be a JSON object.") from exc
    if not isinstance(body, dict):
        raise InvalidJSON("The body must be a JSON object.")
    if _deeper_than(body, MAX_DEPTH):
        raise InvalidJSON(f"The body is nested deeper than {MAX_DEPTH} levels.")
    return body


def _deeper_than(value, limit: int) -> bool:
    """Iterative, so that checking depth cannot itself run out of stack."""
    pending = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if depth > limit:
            return True
        children = current.values() if isinstance(current, dict) else current if isinstance(current, list) else ()
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
