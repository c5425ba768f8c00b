"""The ``oms`` command line: one module per group of commands."""

from . import bench, bench_http, demo, masterdata, orders, outbox, plugins, rules, stock, work  # noqa: F401  (each registers its commands)
from .root import main

__all__ = ["main"]
