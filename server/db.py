"""The database: engine, sessions and migrations, for SQLite and PostgreSQL alike.

`open_database(url)` connects (creating the SQLite folder), checks the
connection, and brings the schema to the newest Alembic revision. A database
that cannot be reached raises `StorageError` naming the URL with its password
masked.

Nothing waits on the database without a bound: connecting (and taking a
pooled connection) gives up after `connect_timeout_s`, and PostgreSQL cancels
a statement after `statement_timeout_s` (a lock held elsewhere, a database
that hangs). SQLite waits `connect_timeout_s` for its write lock. `unavailable`
says whether an error means "the database cannot be used now, try again".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from telerehab.errors import StorageError
from telerehab.settings import Settings

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def masked(url: str | URL) -> str:
    """The URL as text with any password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_pragmas(busy_ms: int):
    def on_connect(dbapi_connection, _record) -> None:
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cur.execute(f"PRAGMA busy_timeout={busy_ms:d}")
        cur.close()

    return on_connect


def _postgres_timeout(statement_ms: int):
    def on_connect(dbapi_connection, _record) -> None:
        cur = dbapi_connection.cursor()
        cur.execute(f"SET statement_timeout = {statement_ms:d}")
        cur.close()
        dbapi_connection.commit()

    return on_connect


def make_engine(url: str, *, connect_timeout_s: float = 5.0,
                statement_timeout_s: float = 30.0) -> Engine:  # fmt: skip
    """An engine for `url`; SQLite gets its folder created and WAL mode. SQL
    parameters (a patient's notes, a password hash) never reach a log or an
    error message: `hide_parameters`. Timeouts: see the module's docstring."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"database URL {url!r} is not valid: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": connect_timeout_s},
            hide_parameters=True,
        )  # fmt: skip
        event.listen(engine, "connect", _sqlite_pragmas(round(connect_timeout_s * 1000)))
        return engine
    connect_args = {}
    if parsed.get_backend_name() == "postgresql":  # libpq counts whole seconds, at least 2
        connect_args["connect_timeout"] = max(2, math.ceil(connect_timeout_s))
    try:
        engine = create_engine(
            parsed, pool_pre_ping=True, hide_parameters=True, pool_timeout=connect_timeout_s,
            connect_args=connect_args,
        )  # fmt: skip
    except ImportError as exc:  # e.g. a driver that is not installed
        raise StorageError(f"database {masked(parsed)}: driver missing ({exc})") from None
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "connect", _postgres_timeout(round(statement_timeout_s * 1000)))
    return engine


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be used now (refused, gone, timed
    out, locked) rather than that the statement is wrong: worth a retry."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, SQLAlchemyTimeoutError)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to `revision` on `engine`."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # a migration may rightly take long
            conn.execute(text("SET LOCAL statement_timeout = 0"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def head_revision() -> str:
    """The newest revision of the migrations shipped with this code."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def require_head(db: Database) -> None:
    """StorageError unless the database is at `head_revision()` (a server
    process that does not migrate: another one did, before it started)."""
    found, head = current_revision(db.engine), head_revision()
    if found != head:
        raise StorageError(f"database {db.url} is at revision {found}, this server needs "
                           f"{head}: run `telerehab db upgrade`")  # fmt: skip


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None: never migrated)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@dataclass
class Database:
    """An engine and its session factory."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def url(self) -> str:
        """The URL, password masked."""
        return masked(self.engine.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as s, s.begin():
            yield s

    def ping(self) -> None:
        """Read the accounts table, which every request needs: raises when the
        database is refused, hangs past its timeouts, or the table is locked."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT id FROM users LIMIT 1"))

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def open_database(url: str, *, migrate: bool = True, connect_timeout_s: float = 5.0,
                  statement_timeout_s: float = 30.0) -> Database:  # fmt: skip
    """Connect to `url`, check the connection and (by default) migrate to head."""
    engine = make_engine(
        url, connect_timeout_s=connect_timeout_s, statement_timeout_s=statement_timeout_s
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StorageError(f"database {masked(url)} is unreachable: {reason}") from None
    if migrate:
        upgrade(engine)
    logger.info("database %s at revision %s", masked(url), current_revision(engine))
    return Database(engine, sessionmaker(engine, expire_on_commit=False))


def open_configured(settings: Settings, *, migrate: bool = True) -> Database:
    """The database the settings name, with their timeouts."""
    return open_database(
        settings.resolved_database_url, migrate=migrate,
        connect_timeout_s=settings.database_connect_timeout_s,
        statement_timeout_s=settings.database_statement_timeout_s,
    )  # fmt: skip
