"""Audit tags, named source:subject:action."""

from enum import StrEnum


class EventTag(StrEnum):
    SIGN_IN_SUCCESS = "account:sign_in:success"
    SIGN_IN_FAILURE = "account:sign_in:failure"
    REAUTHENTICATE = "account:sign_in:reauthenticate"
    PASSWORD_CHANGE = "account:password:change"
    SIGN_OUT = "session:device:sign_out"
    SESSION_EXPIRED = "session:device:expire"
    DEVICE_SIGN_OUT = "session:device:revoke"
    DEVICES_SIGN_OUT_OTHERS = "session:devices:revoke_others"
    ACCOUNT_SESSIONS_REVOKE = "session:account:revoke"
    POLICY_CHANGE = "account:session_policy:change"
    REFRESH_TOKEN_REUSE = "oauth:refresh_token:reuse"
    CODE_REPLAY = "oauth:authorization_code:replay"
    GRANT_DISCONNECT = "oauth:grant:disconnect"
    CLIENT_CREATE = "admin:client:create"
    CLIENT_DISABLE = "admin:client:disable"
    KEYS_ROTATE = "admin:signing_key:rotate"
    ACCOUNT_CREATE = "admin:account:create"
    USER_CREATE = "admin:user:create"
    USER_DISABLE = "admin:user:disable"
    USER_ENABLE = "admin:user:enable"
    USER_DELETE = "admin:user:delete"
