"""Schema migrations with Alembic, run against the OMS's own engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

HERE = Path(__file__).parent


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revision(engine: Engine, message: str) -> None:
    """Developer helper: autogenerate a migration from the models."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)


def require_current(engine: Engine) -> None:
    """Raise DatabaseNotReady unless the database is reachable and at the head revision."""
    from ..errors import DatabaseNotReady
    url = engine.url.render_as_string()
    try:
        found = current(engine)
    except Exception as exc:  # an unreachable database is reported the same way
        raise DatabaseNotReady(f"cannot open the database {url}: {exc}") from None
    if found != head():
        raise DatabaseNotReady(f"the database {url} is at schema revision {found or 'none'}, "
                               f"expected {head()}: run 'oms init' first")
