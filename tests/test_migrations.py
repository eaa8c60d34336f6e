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
