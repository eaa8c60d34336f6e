"""Read by gunicorn from the working directory (`make run`, and `gunicorn wsgi:app` from here).

Access log lines carry the path, never the query string: an authorization code (a client app's callback) or an
id_token_hint (RP-initiated logout by GET) must not end up in a log (catalogue #32).
"""

access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s'
