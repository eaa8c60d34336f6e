"""Shared request sequences for tests in several folders."""

from tests.conftest import csrf_token_from


def failed_logins(client, email: str, count: int) -> list[int]:
    token = csrf_token_from(client.get("/login").text)
    data = {"email": email, "password": "certainly-wrong", "csrf_token": token}
    return [client.post("/login", data=data).status_code for _ in range(count)]
