"""Cached answers about grants (app/oauth/standing), keyed by the grant token's digest (the grant check) and by the
grant's public id (introspection of an access token, by its `sid`); tombstoned when the grant is revoked."""

import json

from flask import current_app

from app.cache import TOMBSTONE_PREFIX, Invalidation, cache
from app.invalidation.services import invalidate

KEY_PREFIX = "grant:"
PUBLIC_ID_KEY_PREFIX = "grant-sid:"


def key(token_hash: str) -> str:
    return KEY_PREFIX + token_hash


def public_id_key(public_id: str) -> str:
    return PUBLIC_ID_KEY_PREFIX + public_id


def get(token_hash: str) -> dict | None:
    return _get(key(token_hash))


def get_by_public_id(public_id: str) -> dict | None:
    return _get(public_id_key(public_id))


def put(token_hash: str, answer: dict, ttl_seconds: int) -> None:
    _put(key(token_hash), answer, ttl_seconds)


def put_by_public_id(public_id: str, answer: dict, ttl_seconds: int) -> None:
    _put(public_id_key(public_id), answer, ttl_seconds)


def _get(cache_key: str) -> dict | None:
    raw = cache().get(cache_key)
    return json.loads(raw.removeprefix(TOMBSTONE_PREFIX)) if raw else None


def _put(cache_key: str, answer: dict, ttl_seconds: int) -> None:
    """Only add: a tombstone written by a revocation is never overwritten by a slower reader."""
    if ttl_seconds > 0:
        cache().add(cache_key, json.dumps(answer).encode(), ttl_seconds)


def revoked(revoked_grants) -> None:
    """Once the revoking transaction commits, the next verify answers "revoked" without a stale hit, on every
    instance (a durable invalidation); the tombstone names the client so that another client still reads "unknown"."""
    ttl = current_app.config["SESSION_CACHE_TTL_SECONDS"]
    invalidate([Invalidation(cache_key, _tombstone(row.client_id), ttl) for row in revoked_grants
                for cache_key in (key(row.token_hash), public_id_key(row.public_id))])  # fmt: skip


def _tombstone(client_id: int) -> bytes:
    return TOMBSTONE_PREFIX + json.dumps({"active": False, "reason": "revoked", "client": client_id}).encode()


def drop(token_hash: str) -> None:
    """A replaced grant token: mark its answer stale once the new one is committed (a marker, not a delete, so a
    reader that read the grant before cannot add its answer back)."""
    invalidate([Invalidation(key(token_hash))])
