"""Shared fixtures for the rules tests: a real RuleEngine, a fact schema, an action catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from oms_engine.rules import (
    ActionCatalog,
    ActionSpec,
    FactSchema,
    RuleEngine,
    Ruleset,
    load_ruleset_text,
)

SPLIT_STRATEGIES = ("by_attribute", "by_warehouse")


def _validate_split(params: dict[str, Any]) -> None:
    strategy = params.get("strategy")
    if strategy not in SPLIT_STRATEGIES:
        raise ValueError(f"unknown split strategy {strategy!r}; known: {', '.join(SPLIT_STRATEGIES)}")


def _validate_hold(params: dict[str, Any]) -> None:
    if not isinstance(params.get("reason"), str):
        raise ValueError("'reason' (text) is required")


def make_catalog() -> ActionCatalog:
    return ActionCatalog(
        [
            ActionSpec("hold", "Put the order on hold", _validate_hold),
            ActionSpec("split", "Split the order into shipments", _validate_split),
            ActionSpec("notify", "Notify a team"),
            ActionSpec("flag", "Tag the order"),
        ]
    )


def make_schema() -> FactSchema:
    return FactSchema(
        {
            "order.payable": int,
            "order.weight": float,
            "order.currency": str,
            "order.channel": str,
            "order.coupon": str,
            "customer.level": str,
            "customer.blacklisted": bool,
            "customer.order_count": int,
            "customer.tags": "list[str]",
            "ship_to.country": str,
            "ship_to.region": str,
            "ship_to.city": str,
            "lines.sku": str,
            "lines.quantity": int,
            "lines.attributes.cold_chain": bool,
        }
    )


@pytest.fixture
def schema() -> FactSchema:
    return make_schema()


@pytest.fixture
def catalog() -> ActionCatalog:
    return make_catalog()


@pytest.fixture
def engine() -> Iterator[RuleEngine]:
    eng = RuleEngine()
    yield eng
    eng.close()


Loader = Callable[..., Ruleset]


@pytest.fixture
def load(schema: FactSchema, catalog: ActionCatalog) -> Loader:
    """Load YAML text with the test schema and catalog (pass schema=None to go without)."""

    def _load(text: str, filename: str = "rules/test.yaml", **kwargs: Any) -> Ruleset:
        kwargs.setdefault("schema", schema)
        kwargs.setdefault("actions", catalog)
        return load_ruleset_text(text, filename=filename, **kwargs)

    return _load
