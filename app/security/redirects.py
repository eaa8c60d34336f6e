"""The one place that decides whether a `next` target stays on this site."""

from urllib.parse import urlsplit

DEFAULT_REDIRECT = "/"


def safe_next(target: str | None, default: str = DEFAULT_REDIRECT) -> str:
    """Return target if it is a plain same-site path, else default.

    Browsers treat `\\` like `/` and drop tabs and newlines, so `/\\evil.test` or `/\t/evil.test`
    would leave the site; only an absolute path with no scheme and no authority is accepted.
    """
    if not target or len(target) > 2048:
        return default
    if any(ch in target for ch in "\\\r\n\t\x00") or any(ord(ch) < 0x20 for ch in target):
        return default
    if not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
