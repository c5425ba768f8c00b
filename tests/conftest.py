"""Project fixtures: a real OMS on a fresh database, SQLite and PostgreSQL when configured.

``OMS_TEST_DATABASE_URL`` names a PostgreSQL database; each test gets its own
schema in it, dropped afterwards. Without it, the PostgreSQL variants are
skipped with that reason. The fixtures of the shipped pytest plugin
(oms_engine/plugin/testing.py: ``make_oms``, ``oms_plugins``...) are
available too; ``oms`` here overrides the plugin's to run on both backends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from oms_engine.engine import OMS
from tests.support import NO_REFUSALS, PG_URL, ROOT, build_oms
from tests.support.cli import Cli


def pg_url_with_schema(schema: str) -> str:
    assert PG_URL is not None
    url = make_url(PG_URL)
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'oms.db'}"
        return
    with pg_schema() as url:
        yield url


@contextmanager
def pg_schema() -> Iterator[str]:
    """The URL of a schema of its own in the PostgreSQL test database, dropped afterwards (the test is
    skipped when no such database is configured)."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests skipped: OMS_TEST_DATABASE_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_url_with_schema(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'oms.db'}"


@pytest.fixture
def oms_rules_dir() -> Path:
    """The project's own rules, for tests that use the shipped plugin's ``make_oms``."""
    return ROOT / "rules"


@pytest.fixture
def oms_templates_dir() -> Path:
    return ROOT / "templates"


@pytest.fixture
def oms(tmp_path: Path, db_url: str) -> Iterator[OMS]:
    """A seeded OMS on each backend, with a simulated clock starting at T0."""
    o = build_oms(tmp_path, db_url)
    yield o
    o.close()


@pytest.fixture
def quiet(tmp_path: Path, db_url: str) -> Iterator[OMS]:
    """An OMS whose simulated warehouse and carrier never refuse, on each backend: outcomes are certain."""
    o = build_oms(tmp_path, db_url, plugin_settings=NO_REFUSALS)
    yield o
    o.close()


@pytest.fixture
def sqlite_oms(tmp_path: Path, sqlite_url: str) -> Iterator[OMS]:
    """A seeded OMS on SQLite only, for tests whose subject is not the backend."""
    o = build_oms(tmp_path, sqlite_url)
    yield o
    o.close()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The ``oms`` command on a seeded SQLite database with a config.yaml of its own: run in this process, or as
    the installed console script with ``cli(..., subprocess=True)`` (tests/support/cli.py)."""
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    build_oms(tmp_path, url).close()
    return Cli(tmp_path, url)
