"""pytest fixtures for plugin authors, shipped with the package (registered as the pytest plugin ``oms``).

Installed with oms-engine, they are available in any test suite::

    import pytest
    from oms_engine.plugin.testing import OrderBuilder, drive, ingest_one

    @pytest.fixture
    def oms_plugins():                      # the plugins under test, as in config.yaml's plugins:
        return ["my_router"]

    def test_orders_go_north(oms):          # a migrated throwaway SQLite OMS, seeded with a small world
        result = ingest_one(oms, OrderBuilder("A-1").line("TEA-1", 2).build())
        drive(oms)
        ...

Fixtures: ``oms_plugins`` (override it), ``oms_rules_dir`` (override it to use
your own rules; default: a minimal rules set), ``oms_templates_dir``,
``oms_database_url`` (a migrated SQLite database in the test's tmp_path),
``make_oms`` (a factory: ``make_oms(plugins=[...], **config)``), and ``oms``
(an OMS with your plugins, seeded with :data:`WAREHOUSES`, :data:`CATALOGUE`
and :data:`CUSTOMERS`, on a simulated clock at :data:`T0`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import insert, select

if TYPE_CHECKING:
    from ..engine import OMS
    from ..orders.intake import IngestResult

T0 = datetime(2026, 11, 2, 9, 0, 0)

WAREHOUSES: list[dict[str, Any]] = [
    dict(code="WH-SH", name="Shanghai", country="CN", region="Shanghai", city="Shanghai", priority=10,
         lat=31.2, lon=121.5, capabilities=["cold_chain"]),
    dict(code="WH-BJ", name="Beijing", country="CN", region="Beijing", city="Beijing", priority=20,
         lat=39.9, lon=116.4, capabilities=["oversize"]),
    dict(code="WH-GZ", name="Guangzhou", country="CN", region="Guangdong", city="Guangzhou", priority=30,
         lat=23.1, lon=113.3, capabilities=["cold_chain", "oversize"]),
]
# sku -> (price in minor units, merchant, attributes, {warehouse: on_hand})
CATALOGUE: dict[str, tuple[int, str, dict[str, Any], dict[str, int]]] = {
    "TEA-1": (5900, "M-01", {"category": "grocery"}, {"WH-SH": 50, "WH-BJ": 50, "WH-GZ": 50}),
    "MUG-1": (3900, "M-01", {"category": "home"}, {"WH-SH": 20, "WH-BJ": 5}),
    "ICE-1": (2900, "M-02", {"category": "frozen", "cold_chain": True}, {"WH-SH": 30, "WH-GZ": 10}),
    "SOFA-1": (399900, "M-03", {"category": "furniture", "oversize": True}, {"WH-BJ": 3, "WH-GZ": 2}),
    "TV-1": (650000, "M-03", {"category": "electronics"}, {"WH-SH": 5, "WH-BJ": 5}),
    "PEN-1": (500, "M-04", {"category": "home"}, {"WH-GZ": 100}),
    "RARE-1": (9900, "M-01", {"category": "home"}, {"WH-SH": 1}),
}
CUSTOMERS: list[dict[str, Any]] = [
    dict(ref="C-BAD", name="Bad Actor", email="bad@example.com", phone="13900000000", level="regular",
         blacklisted=True, blacklist_reason="chargebacks", created_at=T0),
    dict(ref="C-OLD", name="Loyal Li", email="li@example.com", phone="13800000000", level="gold",
         blacklisted=False, blacklist_reason="", created_at=T0),
]

STATUS_MAP = """\
wms:
  ACCEPTED:         {event: wms_accept}
  PICKING:          {event: pick}
  PACKED:           {event: pack}
  SHIPPED:          {event: ship, customer_visible: true, label: Shipped}
  INTERCEPTED:      {event: intercept_confirmed, customer_visible: true}
  INTERCEPT_FAILED: {event: intercept_refused}
carrier:
  COLLECTED:        {event: in_transit, customer_visible: true}
  IN_TRANSIT:       {event: in_transit, customer_visible: true}
  OUT_FOR_DELIVERY: {event: out_for_delivery, customer_visible: true}
  SIGNED:           {event: deliver, customer_visible: true, label: Delivered}
  REFUSED:          {event: refuse, customer_visible: true}
  RETURNED:         {event: returned}
"""
MINIMAL_RULES: dict[str, str] = {
    "blocking.yaml": "ruleset: blocking\nrules:\n  - name: blacklisted\n    when: {customer.blacklisted: true}\n"
                     "    then: [{hold: {reason: customer is on the blacklist}}]\n",
    "split.yaml": "ruleset: split\nmode: first\nrules:\n  - name: by-stock\n    when: {order.line_count: {gt: 1}}\n"
                  "    then: [{split: {strategy: by_warehouse_stock}}]\n",
    "routing.yaml": "ruleset: routing\nrules:\n  - name: priority\n    then: [{route: {strategy: priority}}]\n",
    "notifications.yaml": "ruleset: notifications\nrules: []\n",
    # Nothing merges; with carriers in master data, the cheapest that takes the parcel carries it.
    "merging.yaml": "ruleset: merging\nrules: []\n",
    "carriers.yaml": "ruleset: carriers\nrules:\n  - name: cheapest\n    then: [{cheapest: {}}]\n",
    # Every after-sales case waits for a person.
    "aftersales.yaml": "ruleset: aftersales\nrules: []\n",
    "refunds.yaml": "ruleset: refunds\nrules: []\n",
    "commission.yaml": "ruleset: commission\nrules: []\n",
    "freight.yaml": "ruleset: freight\nrules: []\n",
    # No channel is offered any stock (no account pushes any in a plugin's tests).
    "stock.yaml": "ruleset: stock\nrules: []\n",
}


# -- building a world ---------------------------------------------------------------
def write_minimal_rules(directory: Path) -> Path:
    """A rules directory that screens the blacklist, splits by stock and routes by priority."""
    (directory / "maps").mkdir(parents=True, exist_ok=True)
    for name, text in MINIMAL_RULES.items():
        (directory / name).write_text(text, encoding="utf-8")
    (directory / "maps" / "status.yaml").write_text(STATUS_MAP, encoding="utf-8")
    return directory


def migrated_sqlite_url(directory: Path) -> str:
    from ..storage.db import make_engine
    from ..storage.migrate import upgrade
    url = f"sqlite:///{directory / 'oms.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def seed_world(oms: OMS, *, warehouses: Sequence[dict[str, Any]] = WAREHOUSES,
               catalogue: dict[str, tuple[int, str, dict[str, Any], dict[str, int]]] | None = None,
               customers: Sequence[dict[str, Any]] = CUSTOMERS) -> None:
    """Warehouses, products with their opening stock (through the import code, as a user's files would come),
    and customers."""
    from ..masterdata.seeding import seed
    from ..storage.models import Customer
    catalogue = CATALOGUE if catalogue is None else catalogue
    seed(oms.db, oms.clock, warehouses=warehouses, source="test world",
         products=[dict(sku=sku, name=sku.title(), price=price, currency="CNY", merchant=merchant,
                        weight_g=30000 if attrs.get("oversize") else 500, attributes=attrs)
                   for sku, (price, merchant, attrs, _) in catalogue.items()],
         stock=[dict(warehouse=w, sku=sku, quantity=q) for sku, (_, _, _, stock) in catalogue.items()
                for w, q in stock.items() if q])
    if customers:
        with oms.db.session() as s:
            s.execute(insert(Customer), list(customers))


# -- orders ---------------------------------------------------------------------------
class OrderBuilder:
    """A canonical JSON-channel order over the test catalogue, paid in full unless told otherwise."""

    def __init__(self, external_id: str, *, customer: str = "C-OLD") -> None:
        self.external_id, self.customer = external_id, customer
        self.lines: list[tuple[str, int, int | None]] = []
        self.freight, self.coupon, self.is_paid = 1000, 0, True
        self.address: dict[str, str] = {"name": "Test Customer", "phone": "13800000000", "country": "CN",
                                        "region": "Shanghai", "city": "Shanghai", "district": "Pudong",
                                        "line1": "1 Century Avenue", "postcode": "200120"}
        self.extra: dict[str, Any] = {}

    def line(self, sku: str, quantity: int = 1, *, unit_price: int | None = None) -> OrderBuilder:
        """A line as the channel sends it. ``unit_price`` (minor units) is sent with the line; without it
        the catalogue price is used, so give it for a channel SKU that only a mapper knows (the payment
        then covers it)."""
        self.lines.append((sku, quantity, unit_price))
        return self

    def ship_to(self, **fields: str) -> OrderBuilder:
        self.address.update(fields)
        return self

    def unpaid(self) -> OrderBuilder:
        self.is_paid = False
        return self

    def with_(self, **fields: Any) -> OrderBuilder:
        """Any other field of the canonical JSON format, as it is sent."""
        self.extra.update(fields)
        return self

    def build(self) -> dict[str, Any]:
        lines = self.lines or [("TEA-1", 2, None)]
        goods = sum((CATALOGUE[sku][0] if price is None else price) * q for sku, q, price in lines
                    if price is not None or sku in CATALOGUE)
        payable = goods + self.freight - self.coupon
        order: dict[str, Any] = {
            "external_id": self.external_id, "currency": "CNY", "placed_at": T0.isoformat() + "Z",
            "customer": {"ref": self.customer, "name": "Test Customer",
                         "email": f"{self.customer.lower()}@example.com", "phone": "13800000000"},
            "ship_to": dict(self.address),
            "lines": [{"sku": sku, "quantity": q, **({} if price is None else {"unit_price": _money(price)})}
                      for sku, q, price in lines],
            "freight": _money(self.freight), "coupon": _money(self.coupon)}
        if self.is_paid:
            order["payment"] = {"transaction_id": f"PAY-{self.external_id}", "amount": _money(payable)}
        order.update(self.extra)
        return order


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def payload(*orders: dict[str, Any]) -> bytes:
    """One order as an object, several as a list: both are what the JSON channel takes."""
    return json.dumps(list(orders) if len(orders) != 1 else orders[0]).encode()


def ingest(oms: OMS, *orders: dict[str, Any], channel: str = "json") -> list[IngestResult]:
    return oms.intake.ingest(channel, payload(*orders))


def ingest_one(oms: OMS, order: dict[str, Any], channel: str = "json") -> IngestResult:
    (result,) = ingest(oms, order, channel=channel)
    assert result.error is None, result
    assert result.number
    return result


# -- driving ----------------------------------------------------------------------------
def drive(oms: OMS, *, max_steps: int = 2000, min_step: timedelta | None = None,
          until: datetime | None = None) -> int:
    """Run the pipeline to quiescence, moving the simulated clock to each next due time.

    ``min_step`` makes the clock jump at least that far (fewer passes for big
    runs); ``until`` stops before the clock would pass that time.
    """
    for step in range(max_steps):
        oms.pipeline.run_until_idle()
        due = oms.pipeline.next_due()
        if due is None:
            return step
        if min_step is not None:
            due = max(due, oms.clock.now() + min_step)
        if until is not None and due > until:
            oms.clock.advance_to(until)  # type: ignore[attr-defined]
            oms.pipeline.run_until_idle()
            return step
        oms.clock.advance_to(due)  # type: ignore[attr-defined]
    raise AssertionError(f"the pipeline did not become idle within {max_steps} steps")


def status(oms: OMS, number: str) -> str:
    from ..storage.models import Order
    with oms.db.read() as s:
        st = s.scalar(select(Order.status).where(Order.number == number))
    assert st is not None, f"no order {number}"
    return st


def show_order(oms: OMS, number: str) -> dict[str, Any]:
    """The order as ``oms order show NUMBER --json`` prints it: warehouse, lines (with ``channel_sku``),
    children, history, decisions (with the strategy that answered), messages and incidents."""
    from ..orders.explain import explain
    with oms.db.read() as s:
        return explain(s, number)


def drive_until_state(oms: OMS, number: str, state: str, *, max_steps: int = 200) -> None:
    """Drive one due time at a time until ``number`` is in ``state``."""
    for _ in range(max_steps):
        oms.pipeline.run_until_idle()
        if status(oms, number) == state:
            return
        due = oms.pipeline.next_due()
        assert due is not None, f"{number} stopped in {status(oms, number)} before reaching {state}"
        oms.clock.advance_to(due)  # type: ignore[attr-defined]
    raise AssertionError(f"{number} never reached {state}")


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture
def oms_plugins() -> list[str]:
    """The plugins under test (module names or .py paths, as in config.yaml). Override it."""
    return []


@pytest.fixture
def oms_rules_dir(tmp_path: Path) -> Path:
    """The rules the OMS decides with; override it to point at your own rules directory."""
    return write_minimal_rules(tmp_path / "rules")


@pytest.fixture
def oms_templates_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "templates"
    directory.mkdir(exist_ok=True)
    return directory


@pytest.fixture
def oms_database_url(tmp_path: Path) -> str:
    """A migrated, empty SQLite database of this test's own."""
    return migrated_sqlite_url(tmp_path)


@pytest.fixture
def make_oms(tmp_path: Path, oms_database_url: str, oms_plugins: list[str], oms_rules_dir: Path,
             oms_templates_dir: Path) -> Iterator[Callable[..., OMS]]:
    """``make_oms(plugins=None, seed=True, **config)``: an OMS on the test's database, closed after the test."""
    from ..clock import SimulatedClock
    from ..config import Config
    from ..engine import OMS
    made: list[OMS] = []

    def make(plugins: Sequence[str] | None = None, *, seed: bool = True, **config: Any) -> OMS:
        settings: dict[str, Any] = {
            "database_url": oms_database_url, "rules_dir": str(oms_rules_dir),
            "templates_dir": str(oms_templates_dir), "outbox_dir": str(tmp_path / "outbox"),
            "plugins": list(oms_plugins if plugins is None else plugins), "base_dir": str(tmp_path),
            "number_secret": "test", **config}
        oms = OMS(Config(**settings), clock=SimulatedClock(T0))
        made.append(oms)
        if seed and not made[:-1]:
            seed_world(oms)
        return oms

    yield make
    for oms in made:
        oms.close()


@pytest.fixture
def oms(make_oms: Callable[..., OMS]) -> OMS:
    """An OMS with ``oms_plugins`` loaded, seeded with the test world, its clock at T0."""
    return make_oms()
