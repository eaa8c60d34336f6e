"""`make bench`: session status, OAuth token calls and grant verify, each beside hello-world under gunicorn."""
