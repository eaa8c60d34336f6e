"""SQLite's immediate write transactions wait in line (app.sqlite_writers): the line is held from BEGIN IMMEDIATE
until the transaction ends, however it ends, so the next writer is woken at once and never waits for nothing."""

import fcntl
import os
import threading

import pytest
import sqlalchemy as sa

from app import sqlite_writers
from app.extensions import db
from app.oauth.models import RefreshToken
from tests.oauth.test_refresh_rotation import racing_flow


@pytest.fixture
def database_url(database_urls) -> str:
    return database_urls["sqlite"]  # the line is SQLite's only


def line_is_free(app) -> bool:
    """Whether another writer would get in now (a non-blocking try on the line's file)."""
    descriptor = os.open(app.config["DATABASE_URL"].removeprefix("sqlite:///") + sqlite_writers.LINE_SUFFIX,
                         os.O_RDWR | os.O_CREAT)  # fmt: skip
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)
    return True


def locked_read(app) -> None:
    RefreshToken.by_token_hash("0" * 64, lock=True)  # BEGIN IMMEDIATE: in line, then the write lock
    assert not line_is_free(app)


@pytest.mark.parametrize("ending", ["commit", "rollback", "close"])
def test_the_line_is_held_for_the_transaction_and_left_however_it_ends(app, ending):
    with app.app_context():
        locked_read(app)
        getattr(db.session, ending)()
        assert line_is_free(app)


def test_a_failed_write_leaves_the_line(app, owner):
    with app.app_context():
        locked_read(app)
        with pytest.raises(sa.exc.IntegrityError):
            db.session.execute(sa.text("INSERT INTO oauth_refresh_tokens (id) VALUES (NULL)"))
        db.session.rollback()
        assert line_is_free(app)


def test_writers_in_line_take_turns_and_all_get_through(make_app, clock):
    """Twelve chains rotated at once from as many threads: every rotation answers (no busy timeout)."""
    app = make_app()
    flow = racing_flow(app, clock)
    tokens = [flow.tokens()["refresh_token"] for _ in range(12)]
    barrier, statuses = threading.Barrier(len(tokens)), []

    def worker(token):
        barrier.wait()
        statuses.append(flow.refresh(token).status_code)

    pool = [threading.Thread(target=worker, args=(token,)) for token in tokens]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert statuses == [200] * len(tokens)
    assert line_is_free(app)
