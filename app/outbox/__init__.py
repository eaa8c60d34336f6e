"""Outboxes delivered by the worker: rows queued in the caller's transaction, claimed when due, retried with
exponential backoff, then marked delivered or failed (back-channel logouts, mail)."""
