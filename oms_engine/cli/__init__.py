"""The ``oms`` command line: one module per group of commands (importing each registers its commands)."""

from . import (  # noqa: F401
    aftersales,
    bench,
    bench_http,
    channels,
    demo,
    documents,
    invoices,
    masterdata,
    orders,
    outbox,
    payments,
    plugins,
    reports,
    rules,
    settlement,
    stock,
    templates,
    tokens,
    wallets,
    work,
)
from .root import main

__all__ = ["main"]
