"""Domain errors of the authenticator app and recovery codes; each message can be shown to the user as it is."""


class FactorError(Exception):
    """A second-factor step that did not succeed (the view shows str(error) and keeps the user on the step)."""

    message = "That did not work."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)


class WrongCode(FactorError):
    message = "That code is not right. Check your authenticator app (or recovery code) and try again."


class CodeReused(FactorError):
    """A right TOTP code whose time step (or a later one) was already accepted: a replay, or a double submit."""

    message = "That code was already used. Wait for your authenticator app to show a new one."


class TooManyAttempts(FactorError):
    """A code refused before it was checked: the user's attempts for this window are used up."""

    def __init__(self, retry_after_seconds: int):
        super().__init__(f"Too many wrong codes. Try again in {retry_after_seconds} seconds.")
        self.retry_after_seconds = retry_after_seconds


class AlreadyEnrolled(FactorError):
    message = "An authenticator app is already set up. Remove it first to set up another one."


class NotEnrolled(FactorError):
    message = "No authenticator app is set up."


class EnrolmentExpired(NotEnrolled):
    """A set-up not confirmed within app.factors.totp.PENDING_LIFETIME: its key is no longer accepted."""

    message = "This set-up expired after 30 minutes. Start it again: you will get a new key to scan."


class SecondStepRequired(FactorError):
    """The account requires two-step verification (an owner's switch, DESIGN §9): its last second factor stays."""

    message = (
        "Your account requires two-step verification, so your last second step cannot be removed. "
        "Add another one first (an authenticator app or a passkey), then remove this one."
    )
