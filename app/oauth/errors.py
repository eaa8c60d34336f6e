"""OAuth errors in the RFC 6749 §5.2 shape."""


class OAuthError(Exception):
    status = 400

    def __init__(self, error: str, description: str, status: int | None = None):
        super().__init__(description)
        self.error = error
        self.description = description
        if status is not None:
            self.status = status

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


def invalid_client(description: str = "Client authentication failed.") -> OAuthError:
    return OAuthError("invalid_client", description, 401)


class ClientError(ValueError):
    """Bad input when registering a client (the CLI prints it on one line)."""
