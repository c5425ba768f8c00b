"""The garbage collector of a process that works orders for a long time, set once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Python collects its youngest generation every 700 new container objects. A payload's work keeps
# thousands of them alive at once (its orders' records, facts, decisions, rows), so at 700 the same
# live objects are scanned again and again, to be freed by their reference counts soon after anyway;
# at 50,000 nearly all of them are gone before a collection comes. Reference cycles (few: the code
# makes almost none) wait a little longer to be collected, a few megabytes at most. Measured in
# docs/performance.md: the collector was about a twentieth of an order's work, and is now a fifth of that.
YOUNG = 50_000


def settle() -> None:
    """Once a worker, a server or a run has started (modules imported, rules compiled, the app built).

    What start-up made lives as long as the process: collected once and then frozen out of the
    collector's sight, so a full collection scans only what the work makes. Then the youngest
    generation is collected every :data:`YOUNG` allocations instead of 700.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG, older, oldest)


@contextmanager
def settled() -> Iterator[None]:
    """:func:`settle` for a run inside a process that goes on afterwards (the benchmark in a test): the
    collector is as it was once the run is over."""
    threshold = gc.get_threshold()
    settle()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
