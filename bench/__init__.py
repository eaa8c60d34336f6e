"""`make bench`: the session-status path measured against a hello-world baseline under gunicorn."""
