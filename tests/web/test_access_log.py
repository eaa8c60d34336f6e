"""Catalogue #32 for the real servers: gunicorn's access log line never carries a query string."""

import re
import runpy
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
# gunicorn's access-log atoms that hold the query string: r (request line), q (query), f (referer, which may be a URL
# with one); U is the path alone.
QUERY_ATOMS = {"r", "q", "f"}


def test_the_access_log_format_logs_paths_not_query_strings():
    fmt = runpy.run_path(str(CONFIG))["access_log_format"]
    atoms = set(re.findall(r"%\((\w+)\)s", fmt))
    assert "U" in atoms and "m" in atoms and "s" in atoms
    assert not atoms & QUERY_ATOMS
