r"""Read by gunicorn from the working directory (`make run`, and `gunicorn wsgi:app` from here).

Access log lines carry the path, never the query string: an authorization code (a client app's callback) or an
id_token_hint (RP-initiated logout by GET) must not end up in a log (catalogue #32), and neither may the token a
mailed link carries in its path (app/security/log_paths.py).

The path is the decoded one, so `%0d%0a` in a URL would start a forged line (CWE-117): every value written is
escaped first, control and non-ASCII characters as `\xNN` (the path is latin-1 decoded bytes, as WSGI gives it).
"""

from gunicorn.glogging import Logger, SafeAtoms

from app.security.log_paths import loggable

access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s'


def escaped(text: str) -> str:
    """Printable ASCII stays (a backslash and a quote get a backslash); anything else is written as its code."""
    out = []
    for char in text:
        if char in '\\"':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
    return "".join(out)


class EscapedAtoms(SafeAtoms):
    """SafeAtoms' lookups (headers by any case, "-" when missing) over values escaped once, here (SafeAtoms'
    own quoting would add a second backslash before each quote)."""

    def __init__(self, atoms: dict):
        atoms = {**atoms, "U": loggable(atoms.get("U", "-"))}
        dict.__init__(self, {key: escaped(value) if isinstance(value, str) else value for key, value in atoms.items()})


class EscapingLogger(Logger):
    """gunicorn's logger, its access log lines made of escaped values: one request is one line."""

    atoms_wrapper_class = EscapedAtoms


logger_class = EscapingLogger
