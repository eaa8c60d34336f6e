"""Flask extensions, created unbound and bound in create_app (rate limits: app.security.ratelimit, on `limits`)."""

import sqlite3
from typing import TYPE_CHECKING, Any, cast

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql import Executable

# Stable constraint names, so migrations can alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

# The base of our models. Flask-SQLAlchemy builds db.Model at run time (Base with its table-naming and bind mixins),
# so a type checker cannot see that attribute as a class; to it the models' base is Base, which declares the same
# mapping (metadata, Mapped columns).
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
csrf = CSRFProtect()


def rows_changed(statement: Executable) -> int:
    """Run an UPDATE or DELETE in the request's session; how many rows it matched. Session.execute is typed as
    returning Result, but a DML statement gives a CursorResult, the one that carries rowcount."""
    return cast(CursorResult[Any], db.session.execute(statement)).rowcount


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: enforce foreign keys, let readers run beside the writer (WAL), wait on locks."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
