"""Audit tags, named source:subject:action."""

from enum import StrEnum


class EventTag(StrEnum):
    SIGN_IN_SUCCESS = "account:sign_in:success"
    SIGN_IN_FAILURE = "account:sign_in:failure"
    SIGN_OUT = "session:device:sign_out"
    SESSION_EXPIRED = "session:device:expire"
    ACCOUNT_CREATE = "admin:account:create"
    USER_CREATE = "admin:user:create"
