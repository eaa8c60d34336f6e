"""Domain errors of accounts and sign-in."""


class InvalidCredentials(Exception):
    """Unknown e-mail or wrong password: deliberately the same error for both (user_id is for the audit log)."""

    def __init__(self, user_id: int | None = None):
        super().__init__("invalid e-mail or password")
        self.user_id = user_id


class AccountDisabled(InvalidCredentials):
    """The right password of a disabled user. Said as such: only the password's holder can learn it."""


class TooManyAttempts(Exception):
    """A password guess refused before it was checked: the account or address used up its attempts."""

    def __init__(self, retry_after_seconds: int):
        super().__init__(f"too many attempts; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class AccountError(ValueError):
    """Bad input for creating an account or user (the CLI prints it on one line)."""
