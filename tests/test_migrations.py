"""Migrations are the schema: an empty database upgraded to head matches the models exactly."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.extensions import db


def test_upgraded_database_has_no_autogenerate_difference(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
        assert context.get_current_revision() is not None


def test_database_check_refuses_idle_longer_than_absolute(app, owner):
    with app.app_context(), db.engine.connect() as connection:
        try:
            connection.execute(sa.text("UPDATE accounts SET idle_minutes = 120, absolute_minutes = 60"))
            connection.commit()
            refused = False
        except sa.exc.IntegrityError:
            connection.rollback()
            refused = True
        assert refused
        values = connection.execute(sa.text("SELECT idle_minutes, absolute_minutes FROM accounts")).all()
        assert values == [(None, None)]


def test_app_never_creates_tables_itself(tmp_path):
    from app import create_app
    from tests.conftest import base_config

    app = create_app(base_config(f"sqlite:///{tmp_path / 'empty.db'}"))
    with app.app_context():
        response = app.test_client().get("/login")
        assert response.status_code == 200
        assert sa.inspect(db.engine).get_table_names() == []


# The last revision before this round's migrations (two-step, passkeys, mail, resets, people): databases deployed
# at version 1 sit here, holding accounts, people, sessions and grants that every later migration must carry over.
VERSION_1_HEAD = "32b82d0fdf86"
WHEN = "2026-11-30 12:00:00+00:00"


def _version_1_rows(connection) -> None:
    """One of everything a version 1 database holds that a later migration adds a column to or reads."""
    for statement in (
        f"INSERT INTO accounts (id, name, created_at) VALUES (1, 'Acme', '{WHEN}')",
        "INSERT INTO users (id, account_id, email, name, password_hash, role, created_at, password_changed_at) "
        f"VALUES (1, 1, 'ada@example.com', 'Ada', 'x', 'owner', '{WHEN}', '{WHEN}')",
        "INSERT INTO user_sessions (id, public_id, user_id, device_id, device_name, user_agent, ip, created_at, "
        "authenticated_at, last_used_at, idle_minutes, idle_expires_at, absolute_expires_at) VALUES "
        f"(1, 'sess-1', 1, 'device-a', 'Firefox on Linux', 'UA', '192.0.2.1', '{WHEN}', '{WHEN}', '{WHEN}', 30, "
        f"'{WHEN}', '{WHEN}'), (2, 'sess-2', 1, 'device-a', 'Firefox on Linux', 'UA', '192.0.2.1', "
        f"'2026-11-30 13:00:00+00:00', '{WHEN}', '{WHEN}', 30, '{WHEN}', '{WHEN}')",
        "INSERT INTO oauth_clients (id, client_id, name, first_party, redirect_uris, post_logout_redirect_uris, "
        f"scopes, grant_types, created_at) VALUES (1, 'demo', 'Demo', true, '[]', '[]', 'openid', '[]', '{WHEN}')",
        "INSERT INTO oauth_grants (id, public_id, token_hash, user_id, client_id, issuer_session_id, device_id, "
        f"scope, auth_time, expires_at, created_at) VALUES (1, 'grant-1', 'h', 1, 1, 1, 'device-a', 'openid', "
        f"'{WHEN}', '{WHEN}', '{WHEN}')",
    ):
        connection.execute(sa.text(statement))


def test_a_version_1_database_with_data_upgrades_and_downgrades(database_url, tmp_path):
    """Upgrade a database holding version 1's rows to head, on SQLite and PostgreSQL: every row survives, the columns
    added to existing tables take their defaults, and the devices people already used are known (no alert on the
    first sign-in after the upgrade). Then down to version 1 and up again, data intact both ways."""
    from flask_migrate import downgrade, upgrade

    from app import create_app
    from tests.conftest import base_config, fresh_database

    with fresh_database(database_url, tmp_path) as url:
        app = create_app(base_config(url))
        with app.app_context():
            upgrade(revision=VERSION_1_HEAD)
            with db.engine.begin() as connection:
                _version_1_rows(connection)
            db.engine.dispose()
            upgrade()
            with db.engine.connect() as connection:
                read = lambda query: connection.execute(sa.text(query)).all()  # noqa: E731
                assert read("SELECT two_step_required FROM accounts") == [(False,)]
                assert read("SELECT auth_methods FROM user_sessions ORDER BY id") == [("pwd",), ("pwd",)]
                assert read("SELECT auth_methods FROM oauth_grants") == [("pwd",)]
                known = read("SELECT user_id, device_id, first_seen_at FROM known_devices")
                assert [(user, device) for user, device, _ in known] == [(1, "device-a")]
                assert str(known[0][2]).startswith("2026-11-30 12:00:00")  # the first session's time
            db.engine.dispose()
            downgrade(revision=VERSION_1_HEAD)
            db.engine.dispose()
            upgrade()
            with db.engine.connect() as connection:
                assert connection.execute(sa.text("SELECT count(*) FROM user_sessions")).scalar_one() == 2
                assert connection.execute(sa.text("SELECT count(*) FROM oauth_grants")).scalar_one() == 1
            db.engine.dispose()
