"""`make bench`: Gatehouse's hot paths, embedded and in production (one and two instances), beside a bare Flask app."""
