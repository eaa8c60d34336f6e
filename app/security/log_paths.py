"""Request paths as access logs may write them (catalogue #32): a mailed link carries its single-use token in the
path (/reset-password/ghp_…), so every issued token, which all start with "gh" + a letter + "_", is cut to its
prefix. gunicorn.conf.py applies this to every access-log line; the test servers do too."""

import re

ISSUED_TOKEN = re.compile(r"(?<![A-Za-z0-9])(gh[a-z]_)[A-Za-z0-9_\-.~%]+")
REDACTED = r"\1[redacted]"


def loggable(path: str) -> str:
    """The path with every issued token's secret part replaced by "[redacted]"."""
    return ISSUED_TOKEN.sub(REDACTED, path)
