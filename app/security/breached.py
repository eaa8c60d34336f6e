"""The optional breached-password check: a k-anonymity range API (the Pwned Passwords "range" protocol). Only the
first 5 hex digits of the password's SHA-1 leave this process; the answer lists the suffixes of every breached hash
with that prefix, and the match is made here. A slow, failing or unreachable API never blocks a password change
(it fails open, with a warning in the log): the bundled list and the length rule still apply."""

import hashlib
import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from flask import current_app

log = logging.getLogger("gatehouse.passwords")

PREFIX_LENGTH = 5
# An answer holds about a thousand 40-byte lines (more with padding); anything far larger is not a range answer.
MAX_ANSWER_BYTES = 1024 * 1024


def seen_in_breach(password: str) -> bool:
    """True when the configured range API lists the password's hash; False when it does not, or is not configured
    or does not answer usably."""
    template = current_app.config.get("PASSWORD_RANGE_API_URL")
    if not template:
        return False
    digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()  # the protocol's hash
    prefix, suffix = digest[:PREFIX_LENGTH], digest[PREFIX_LENGTH:]
    answer = _range(_range_url(template, prefix))
    return answer is not None and suffix in _breached_suffixes(answer)


def _range_url(template: str, prefix: str) -> str:
    """`…/range/{prefix}`, or a base URL the prefix is appended to (`https://api.pwnedpasswords.com/range/`)."""
    return template.replace("{prefix}", prefix) if "{prefix}" in template else template + prefix


def _range(url: str) -> str | None:
    if urlsplit(url).scheme not in ("http", "https"):
        log.warning("PASSWORD_RANGE_API_URL is not an http(s) URL: breached-password check skipped")
        return None
    # Add-Padding: the answer's size does not tell which prefix was asked for (padding lines have a count of 0).
    request = urllib.request.Request(url, headers={"Add-Padding": "true", "User-Agent": "Gatehouse"})  # noqa: S310
    timeout = current_app.config["PASSWORD_RANGE_API_TIMEOUT_SECONDS"]
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked above
            return response.read(MAX_ANSWER_BYTES).decode("ascii", "replace")
    except (OSError, urllib.error.URLError, ValueError) as exc:  # timeouts, refusals, HTTP errors, bad URLs
        log.warning("password range API did not answer (%s): password accepted without it", type(exc).__name__)
        return None


def _breached_suffixes(answer: str) -> set[str]:
    suffixes = set()
    for line in answer.splitlines():
        suffix, _, count = line.strip().partition(":")
        if count.strip() not in ("", "0"):  # count 0: a padding line
            suffixes.add(suffix.upper())
    return suffixes
