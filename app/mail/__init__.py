"""Mail (DESIGN §10): one service renders a message into the outbox in the caller's transaction; the worker sends it
over SMTP with the outbox's retries. Without MAIL_SERVER, development reads it at /dev/mail."""
