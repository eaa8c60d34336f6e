"""Catalogue #32: the captured logs of the whole suite contain none of the secret values issued during it.

Every token, code, client secret, grant public id, signed JWT and portal cookie the app issues is recorded as it is
made; every log record of the run is kept as text. When the run ends, any issued value found in a log line fails it.
"""

import functools
import logging
import re

# Word-like runs long enough to be issued material (tokens are 43+ characters; JWS and cookies have dots).
CANDIDATE = re.compile(r"[A-Za-z0-9_\-.]{16,}")
# The app's own loggers, at DEBUG so that nothing is filtered out early, and the test servers' request lines.
# Handlers go on these loggers, not on the root: Alembic's fileConfig replaces the root's handlers at each migration.
LOGGERS = {"app": logging.DEBUG, "gatehouse": logging.DEBUG, "werkzeug": logging.INFO}


class LogScan(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.issued: set[str] = set()
        self.candidates: dict[str, str] = {}  # run of characters -> the first log line it came from

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.name}: {record.getMessage()}"
        except Exception:  # a record whose arguments do not format is still not a leak of ours
            return
        for run in CANDIDATE.findall(line):
            self.candidates.setdefault(run, line)
            for part in run.split("."):  # a value logged inside a dotted run
                self.candidates.setdefault(part, line)

    def record(self, function):
        @functools.wraps(function)
        def issuing(*args, **kwargs):
            value = function(*args, **kwargs)
            self.issued.add(value)
            return value

        return issuing

    def leaks(self) -> list[str]:
        found = (value for value in self.issued if value in self.candidates)
        return [f"{value[:12]}… in: {self.candidates[value][:200]}" for value in found]


def install() -> LogScan:
    from app.accounts import new_device
    from app.oauth import keys, tokens
    from app.sessions.codec import SignedCookieStore

    scan = LogScan()
    new_device.link_token = scan.record(new_device.link_token)  # "This wasn't me" links: signed, not random
    tokens.new_token = scan.record(tokens.new_token)
    tokens.successor_of = scan.record(tokens.successor_of)
    keys.sign = scan.record(keys.sign)
    SignedCookieStore.encode = scan.record(SignedCookieStore.encode)
    for name, level in LOGGERS.items():
        logging.getLogger(name).addHandler(scan)
        logging.getLogger(name).setLevel(level)
    return scan
