"""Settings from the environment, checked at start-up."""

import os
from pathlib import Path

MIN_SECRET_KEY_LENGTH = 32
SECRET_KEY_FILE_NAME = "secret_key"
DEFAULT_PORT = 5000
# The URL hosting platforms hand out (postgres://, postgresql://) names no driver; psycopg 3 is the one installed.
POSTGRES_SCHEMES = ("postgres://", "postgresql://")
POSTGRES_DRIVER_SCHEME = "postgresql+psycopg://"


class ConfigError(RuntimeError):
    """A setting is missing or unusable; start-up stops with this message."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _env_bool(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _read_secret_file(instance_path: str) -> str | None:
    path = Path(instance_path) / SECRET_KEY_FILE_NAME
    return path.read_text().strip() if path.exists() else None


def from_environment(instance_path: str) -> dict:
    """Build the settings mapping from environment variables (and instance/ for the dev secret)."""
    env = os.environ.get("GATEHOUSE_ENV", "production")
    default_db = f"sqlite:///{Path(instance_path) / 'gatehouse.db'}"
    fallbacks = os.environ.get("SECRET_KEY_FALLBACKS", "")
    return {
        "GATEHOUSE_ENV": env,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or _read_secret_file(instance_path),
        "SECRET_KEY_FALLBACKS": [k for k in fallbacks.split(",") if k],
        "DATABASE_URL": os.environ.get("DATABASE_URL") or default_db,
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "TRUSTED_PROXY_COUNT": _env_int("TRUSTED_PROXY_COUNT", 0),
        "GEOIP_DATABASE": os.environ.get("GEOIP_DATABASE") or None,
        "SESSION_IDLE_MINUTES": _env_int("SESSION_IDLE_MINUTES", 30),
        "SESSION_ABSOLUTE_MINUTES": _env_int("SESSION_ABSOLUTE_MINUTES", 720),
        "SESSION_IDLE_MINUTES_MIN": _env_int("SESSION_IDLE_MINUTES_MIN", 5),
        "SESSION_IDLE_MINUTES_MAX": _env_int("SESSION_IDLE_MINUTES_MAX", 1440),
        "SESSION_ABSOLUTE_MINUTES_MIN": _env_int("SESSION_ABSOLUTE_MINUTES_MIN", 60),
        "SESSION_ABSOLUTE_MINUTES_MAX": _env_int("SESSION_ABSOLUTE_MINUTES_MAX", 43200),
        "SESSION_CACHE_TTL_SECONDS": _env_int("SESSION_CACHE_TTL_SECONDS", 60),
        "FRESH_AUTH_MINUTES": _env_int("FRESH_AUTH_MINUTES", 10),
        "ISSUER": os.environ.get("ISSUER") or None,
        # Passkeys (DESIGN §9): unset, the RP ID is ISSUER's host and the origin ISSUER's origin (app.passkeys).
        "WEBAUTHN_RP_ID": os.environ.get("WEBAUTHN_RP_ID") or None,
        "WEBAUTHN_ORIGIN": os.environ.get("WEBAUTHN_ORIGIN") or None,
        "PORT": _env_int("PORT", DEFAULT_PORT),
        "ACCESS_TOKEN_TTL_SECONDS": _env_int("ACCESS_TOKEN_TTL_SECONDS", 600),
        "ID_TOKEN_TTL_SECONDS": _env_int("ID_TOKEN_TTL_SECONDS", 600),
        "AUTH_CODE_TTL_SECONDS": _env_int("AUTH_CODE_TTL_SECONDS", 60),
        "REFRESH_TOKEN_TTL_SECONDS": _env_int("REFRESH_TOKEN_TTL_SECONDS", 14 * 24 * 3600),
        "REFRESH_GRACE_SECONDS": _env_int("REFRESH_GRACE_SECONDS", 5),
        "CLEANUP_RETENTION_DAYS": _env_int("CLEANUP_RETENTION_DAYS", 30),
        "CLEANUP_BATCH_SIZE": _env_int("CLEANUP_BATCH_SIZE", 1000),
        "INTERNAL_RATE_LIMIT": os.environ.get("INTERNAL_RATE_LIMIT", "6000 per minute"),
        "TOKEN_RATE_LIMIT": os.environ.get("TOKEN_RATE_LIMIT", "20 per minute"),
        "LOGIN_RATE_LIMIT_PER_IP": os.environ.get("LOGIN_RATE_LIMIT_PER_IP", "20 per minute"),
        "LOGIN_RATE_LIMIT_PER_ACCOUNT": os.environ.get("LOGIN_RATE_LIMIT_PER_ACCOUNT", "5 per minute;20 per hour"),
        # Wrong authenticator-app and recovery codes, per user (app.factors.totp). The daily window bounds a year of
        # guessing at a 6-digit code (3 valid at a time) to about 5 % (RFC 4226 §7.3, RFC 6238 §5.2).
        "SECOND_FACTOR_RATE_LIMIT": os.environ.get("SECOND_FACTOR_RATE_LIMIT", "5 per minute;20 per hour;50 per day"),
        # Passkey sign-in challenges begun per client address (the sign-in page asks for one on every load).
        "PASSKEY_SIGN_IN_RATE_LIMIT": os.environ.get("PASSKEY_SIGN_IN_RATE_LIMIT", "60 per minute"),
        # Passkey registrations begun per user: each stores a challenge, then one credential at most (passkeys.views).
        "PASSKEY_RATE_LIMIT": os.environ.get("PASSKEY_RATE_LIMIT", "10 per minute;50 per hour"),
        # Optional k-anonymity breached-password check (e.g. https://api.pwnedpasswords.com/range/): off when unset.
        "PASSWORD_RANGE_API_URL": os.environ.get("PASSWORD_RANGE_API_URL") or None,
        "PASSWORD_RANGE_API_TIMEOUT_SECONDS": _env_int("PASSWORD_RANGE_API_TIMEOUT_SECONDS", 2),
        # Mail (DESIGN §10): unset MAIL_SERVER keeps every message in the outbox (read at /dev/mail in development).
        "MAIL_SERVER": os.environ.get("MAIL_SERVER") or None,
        "MAIL_PORT": _env_int("MAIL_PORT", 25),
        "MAIL_USE_TLS": _env_bool("MAIL_USE_TLS"),
        "MAIL_USE_SSL": _env_bool("MAIL_USE_SSL"),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER") or None,
        "MAIL_TIMEOUT_SECONDS": _env_int("MAIL_TIMEOUT_SECONDS", 10),
    }


def finalize(config: dict) -> None:
    """Derive dependent settings and refuse unusable ones (fail fast, never fall back to a literal)."""
    secret = config.get("SECRET_KEY")
    if not secret:
        raise ConfigError(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            f"(at least {MIN_SECRET_KEY_LENGTH} random characters), or run 'make run' "
            "once to write a development secret into instance/."
        )
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"SECRET_KEY is too short ({len(secret)} characters): it must be at least "
            f"{MIN_SECRET_KEY_LENGTH} random characters."
        )
    for key in config.get("SECRET_KEY_FALLBACKS", []):
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError("Every SECRET_KEY_FALLBACKS entry must be at least 32 characters.")
    idle, absolute = config["SESSION_IDLE_MINUTES"], config["SESSION_ABSOLUTE_MINUTES"]
    if not (
        config["SESSION_IDLE_MINUTES_MIN"] <= idle <= config["SESSION_IDLE_MINUTES_MAX"]
        and config["SESSION_ABSOLUTE_MINUTES_MIN"] <= absolute <= config["SESSION_ABSOLUTE_MINUTES_MAX"]
        and idle <= absolute
    ):
        raise ConfigError(
            "SESSION_IDLE_MINUTES / SESSION_ABSOLUTE_MINUTES must lie within their bounds "
            "and idle must not exceed absolute."
        )
    if not 300 <= config["ACCESS_TOKEN_TTL_SECONDS"] <= 900:
        raise ConfigError("ACCESS_TOKEN_TTL_SECONDS must lie between 300 and 900 (5 to 15 minutes).")
    if not 0 <= config["REFRESH_GRACE_SECONDS"] <= 60:
        raise ConfigError("REFRESH_GRACE_SECONDS must lie between 0 and 60.")
    if config["MAIL_USE_TLS"] and config["MAIL_USE_SSL"]:
        raise ConfigError("Set MAIL_USE_TLS (STARTTLS, usually port 587) or MAIL_USE_SSL (usually port 465), not both.")
    if config["MAIL_SERVER"] and not config["MAIL_DEFAULT_SENDER"]:
        raise ConfigError("MAIL_SERVER is set but MAIL_DEFAULT_SENDER is not: set the From address, e.g. "
                          "'Gatehouse <login@example.com>'.")  # fmt: skip
    development = config["GATEHOUSE_ENV"] == "development"
    config["DEVELOPMENT"] = development
    config["ISSUER"] = _issuer(config, development)
    secure = not development
    config["SECURE_COOKIES"] = secure
    # ASVS 5.0 3.3.1: the __Host- prefix needs Secure, so plain names over http in development.
    config["PORTAL_COOKIE_NAME"] = "__Host-gh_session" if secure else "gh_session"
    config["SESSION_COOKIE_NAME"] = "__Host-gh_csrf" if secure else "gh_csrf"
    config["DEVICE_COOKIE_NAME"] = "__Host-gh_did" if secure else "gh_did"
    config["SESSION_COOKIE_SECURE"] = secure
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["DATABASE_URL"] = database_uri(config["DATABASE_URL"])
    config["SQLALCHEMY_DATABASE_URI"] = config["DATABASE_URL"]
    config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(config["DATABASE_URL"])
    config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"] or "memory://"
    config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    config["RATELIMIT_KEY_PREFIX"] = config.get("RATELIMIT_KEY_PREFIX", "gh-rl")
    config["WTF_CSRF_TIME_LIMIT"] = 3600


def _issuer(config: dict, development: bool) -> str:
    """The public base URL tokens and discovery name; guessing it in production would advertise a wrong one."""
    issuer = config.get("ISSUER")
    if issuer:
        return issuer.rstrip("/")
    if development:
        # localhost, not 127.0.0.1: WebAuthn refuses an IP address as RP ID, and browsers treat http://localhost
        # as a secure context (DESIGN §9), so passkeys work in development.
        return f"http://localhost:{config.get('PORT', DEFAULT_PORT)}"
    raise ConfigError(
        "ISSUER is not set. Set it to the portal's public base URL exactly as clients reach it "
        "(for example https://login.example.com); GATEHOUSE_ENV=development defaults it to http://localhost:$PORT."
    )


def database_uri(url: str) -> str:
    """postgres://… and postgresql://… (what hosting platforms give) run on psycopg 3; other URLs are kept."""
    for scheme in POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return POSTGRES_DRIVER_SCHEME + url[len(scheme) :]
    return url


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        # A file database shared by threads: wait for the writer instead of failing at once.
        return {"connect_args": {"timeout": 5, "check_same_thread": False}}
    # psycopg 3 prepares a statement on its first use rather than its fifth: the hot paths run the same few.
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "pool_timeout": 5,
            "connect_args": {"prepare_threshold": 0}}  # fmt: skip
