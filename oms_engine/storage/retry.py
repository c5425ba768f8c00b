"""Running a transaction again when it lost a race with another one.

PostgreSQL aborts one of two transactions that wait on each other's row locks
(deadlock detected, SQLSTATE 40P01), a serializable transaction can lose to a
concurrent one (40001), and a NOWAIT lock can be refused (55P03); on SQLite a
writer can find the database still locked when its busy timeout runs out.
None of these says anything about the work: the server rolled the whole
transaction back, so running it again from the start is correct, and after a
short randomised pause (so that the two losers do not meet again in step) it
almost always goes through.

What makes it safe: the function retried opens its own transaction and does
nothing outside the database before it commits that cannot be done twice.

A lost race inside a SAVEPOINT is re-raised by :func:`~oms_engine.storage.db.savepoint`
as :class:`LostRace`, which is not an SQLAlchemy error: code that handles a
failed savepoint as a problem of its own work (intake reports the order as not
stored and goes on with the payload) does not swallow it, and the whole
transaction runs again instead.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger("oms.retry")

# PostgreSQL: deadlock detected, serialization failure, lock not available.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
# Enough to outlast any realistic pile-up (about 15 s of pauses in all), few enough that a
# transaction that can never win is reported instead of retried forever.
MAX_ATTEMPTS = 12

P = ParamSpec("P")
T = TypeVar("T")


class LostRace(Exception):
    """A transaction lost a race inside a savepoint; the whole transaction must run again.

    Not an :class:`~oms_engine.errors.OmsError` on purpose: nothing that handles a
    refusal (and goes on in the same transaction) may catch it.
    """


def is_retryable(exc: BaseException) -> bool:
    """A transaction that lost a race with another one, and should simply run again."""
    if isinstance(exc, LostRace):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(orig)


def pause(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential from 20 ms, at most 2 s, with jitter."""
    return min(2.0, 0.02 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def run_retrying(fn: Callable[[], T], *, what: str, attempts: int = MAX_ATTEMPTS,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()``, run again while it loses races (at most ``attempts`` times in all); other errors pass."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt >= attempts or not is_retryable(exc):
                raise
            log.info("%s lost a race with another transaction (%s, attempt %d); running it again",
                     what, _cause(exc), attempt)
            sleep(pause(attempt))
    raise AssertionError("unreachable")


def retrying(fn: Callable[P, T]) -> Callable[P, T]:
    """Decorate a function that is one transaction: it is run again while it loses races."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_retrying(lambda: fn(*args, **kwargs), what=fn.__qualname__)

    return wrapper


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ if isinstance(exc, LostRace) and exc.__cause__ is not None else exc
    return type(getattr(inner, "orig", None) or inner).__name__
