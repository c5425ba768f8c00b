"""Schema migrations with Alembic, run against the OMS's own engine.

Alembic is imported only where a migration is run or the schema is found out of date: every ``oms`` command
checks the schema as it starts (:func:`require_current`), and importing Alembic and its revision scripts cost
more than the rest of a short command's start.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

HERE = Path(__file__).parent
_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*['\"]([^'\"]*)['\"]", re.M)


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@lru_cache(maxsize=1)
def _head_by_reading() -> str | None:
    """The head revision as the scripts' own ``revision``/``down_revision`` lines give it, without importing
    them; None unless there is exactly one (then Alembic decides)."""
    revisions, downs = set(), set()
    for script in (HERE / "migrations" / "versions").glob("*.py"):
        found = dict(m.groups() for m in _REVISION.finditer(script.read_text(encoding="utf-8")))
        if "revision" in found:
            revisions.add(found["revision"])
            downs.add(found.get("down_revision"))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def _recorded(engine: Engine) -> str | None:
    """The revision the database records (alembic_version), or None when it records none or cannot say."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception:   # no table yet, or no database: require_current asks Alembic and says which
        return None
    return rows[0] if len(rows) == 1 else None


def revision(engine: Engine, message: str) -> None:
    """Developer helper: autogenerate a migration from the models."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)


def require_current(engine: Engine) -> None:
    """Raise DatabaseNotReady unless the database is reachable and at the head revision."""
    from ..errors import DatabaseNotReady
    quick = _head_by_reading()
    if quick is not None and _recorded(engine) == quick:
        return      # at the head: the common case, answered without Alembic
    url = engine.url.render_as_string()
    try:
        found = current(engine)
    except Exception as exc:  # an unreachable database is reported the same way
        raise DatabaseNotReady(f"cannot open the database {url}: {exc}") from None
    if found != head():
        raise DatabaseNotReady(f"the database {url} is at schema revision {found or 'none'}, "
                               f"expected {head()}: run 'oms init' first")
