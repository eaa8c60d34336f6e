"""The OAuth harness (clients, flows) is shared with these tests."""

from tests.oauth.conftest import flow, make_client, rp  # noqa: F401 (fixtures)
