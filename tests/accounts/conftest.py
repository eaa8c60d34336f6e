"""The clock of the hasher: counts of the app's argon2 work, which is what timing attacks measure."""

import threading
from collections import Counter

import pytest

from app.security.passwords import HASHER_EXTENSION_KEY


class CountingHasher:
    """Stands in front of the app's PasswordHasher and counts its hash and verify calls (thread-safe, for the
    concurrent tests); everything else goes straight through."""

    def __init__(self, hasher):
        self._hasher = hasher
        self._lock = threading.Lock()
        self.calls = Counter()

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    def hash(self, *args, **kwargs):
        self._count("hash")
        return self._hasher.hash(*args, **kwargs)

    def verify(self, *args, **kwargs):
        self._count("verify")
        return self._hasher.verify(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._hasher, name)


def count_hasher(app) -> CountingHasher:
    counting = CountingHasher(app.extensions[HASHER_EXTENSION_KEY])
    app.extensions[HASHER_EXTENSION_KEY] = counting
    return counting


@pytest.fixture
def hasher_clock(app) -> CountingHasher:
    return count_hasher(app)
