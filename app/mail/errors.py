class InvalidRecipient(ValueError):
    """Not one plain e-mail address: nothing is queued (a CR or LF would inject headers)."""
