"""Cached grant-verify answers, keyed by the grant token's digest; dropped when the grant changes."""

import json

from flask import current_app

from app.cache import TOMBSTONE_PREFIX, Invalidation, cache
from app.invalidation.services import invalidate

KEY_PREFIX = "grant:"


def key(token_hash: str) -> str:
    return KEY_PREFIX + token_hash


def get(token_hash: str) -> dict | None:
    raw = cache().get(key(token_hash))
    return json.loads(raw.removeprefix(TOMBSTONE_PREFIX)) if raw else None


def put(token_hash: str, answer: dict, ttl_seconds: int) -> None:
    """Only add: a tombstone written by a revocation is never overwritten by a slower reader."""
    if ttl_seconds > 0:
        cache().add(key(token_hash), json.dumps(answer).encode(), ttl_seconds)


def revoked(revoked_grants) -> None:
    """Once the revoking transaction commits, the next verify answers "revoked" without a stale hit, on every
    instance (a durable invalidation); the tombstone names the client so that another client still reads "unknown"."""
    ttl = current_app.config["SESSION_CACHE_TTL_SECONDS"]
    invalidate([Invalidation(key(row.token_hash), _tombstone(row.client_id), ttl) for row in revoked_grants])


def _tombstone(client_id: int) -> bytes:
    return TOMBSTONE_PREFIX + json.dumps({"active": False, "reason": "revoked", "client": client_id}).encode()


def drop(token_hash: str) -> None:
    """A replaced grant token: mark its answer stale once the new one is committed (a marker, not a delete, so a
    reader that read the grant before cannot add its answer back)."""
    invalidate([Invalidation(key(token_hash))])
