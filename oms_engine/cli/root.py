"""The ``oms`` command group and what every command shares: the config, the OMS, clear errors."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from ..config import Config, load_config
from ..errors import OmsError
from ..rules import RulesetInvalid


def _width(stream: Any) -> int | None:
    """The width to lay output out at: the terminal's when the stream is one (None: rich asks it). Output going
    to a pipe or a file is laid out at COLUMNS, or 80: never at the width of a terminal that rich finds on
    another stream (stdin, stderr), so what a script reads does not depend on where it was started."""
    try:
        if stream.isatty():
            return None
    except (AttributeError, ValueError):
        pass
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else 80


console = Console(width=_width(sys.stdout))
err = Console(stderr=True, width=_width(sys.stderr))
F = TypeVar("F", bound=Callable[..., Any])


class Ctx:
    def __init__(self, config_path: str | None, db: str | None) -> None:
        self.config_path, self.db = config_path, db
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, database_url=self.db)
        return self._config

    def oms(self, **kw: Any) -> Any:
        from ..engine import OMS
        return OMS(self.config, **kw)


def fail(message: str, code: int = 1) -> None:
    # click.echo, not rich: a message is one line whatever the terminal (rich wraps at 80 columns
    # when piped) and square brackets in it are text, not markup.
    click.secho("error: ", fg="red", err=True, nl=False)
    click.echo(message, err=True)
    sys.exit(code)


def errors_to_exit(fn: F) -> F:
    """Known failures print one clear line and exit non-zero, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except (OmsError, RulesetInvalid, LookupError) as exc:
            # str() of a KeyError is the repr of its message; the message itself is what to print.
            fail(exc.args[0] if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str)
                 else str(exc))
    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(package_name="oms-engine", prog_name="oms")
@click.option("--config", "config_path", envvar="OMS_CONFIG", default=None, help="config.yaml path")
@click.option("--db", default=None, help="database URL (overrides config.yaml and OMS_DATABASE_URL)")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, db: str | None) -> None:
    """oms-engine: order management for retail e-commerce."""
    ctx.obj = Ctx(config_path, db)
