"""OAuth errors in the RFC 6749 §5.2 shape."""

from urllib.parse import quote

from authlib.oauth2.rfc6749 import InvalidRequestError


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


def refuse_repeated(form) -> None:
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once. The names are percent-encoded: an
    error description holds printable ASCII only, without " or \\ (RFC 6749 §5.2), and a name may hold anything."""
    repeated = sorted(quote(name, safe="") for name, values in form.lists() if len(values) > 1)
    if repeated:
        raise InvalidRequestError(f"Repeated parameter: {', '.join(repeated)}.")


class ClientError(ValueError):
    """Bad input when registering a client (the CLI prints it on one line)."""
